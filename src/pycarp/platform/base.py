"""The small interfaces the runtime needs from a platform.

Sockets are non-blocking and expose fileno() so the runtime can wait on them
with the event loop; nothing here decides anything about the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol


class InterfaceError(Exception):
    """An interface is missing or unusable; the message names it."""


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    index: int
    mac: bytes  # 6 bytes
    running: bool  # IFF_RUNNING: up with carrier


class CarpReceiver(Protocol):
    """Receives IPv4 datagrams of protocol 112 on one interface."""

    def fileno(self) -> int: ...

    def receive(self) -> list[bytes]:
        """Every datagram waiting now (IP header included); [] if none."""
        ...

    def close(self) -> None: ...


class FrameSender(Protocol):
    """Sends whole Ethernet frames out of one interface."""

    def send(self, frame: bytes) -> None:
        """Raises OSError when the kernel refuses the frame."""
        ...

    def close(self) -> None: ...


class LinkMonitor(Protocol):
    """Reports changes of the RUNNING flag of interfaces."""

    def fileno(self) -> int: ...

    def read(self) -> list[tuple[str, bool]]:
        """(interface name, running) for each change waiting now."""
        ...

    def close(self) -> None: ...


class Platform(Protocol):
    def interface_info(self, name: str) -> InterfaceInfo: ...

    def open_receiver(
        self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address
    ) -> CarpReceiver: ...

    def open_sender(self, info: InterfaceInfo) -> FrameSender: ...

    def open_link_monitor(self) -> LinkMonitor: ...
