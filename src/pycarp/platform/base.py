"""The small interfaces the runtime needs from a platform.

Sockets are non-blocking and expose fileno() so the runtime can wait on them
with the event loop; nothing here decides anything about the protocol. The
core builds what goes out (frames whose payload is a whole IP datagram) and
parses what comes in, so a second address family needs new adapters that
implement these, not new methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pycarp.core.actions import Network
from pycarp.core.packet import Frame


class InterfaceError(Exception):
    """An interface is missing or unusable; the message names it."""


class AddressError(Exception):
    """Virtual addresses could not be listed, added or removed; the message says why."""


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    index: int
    mac: bytes  # 6 bytes
    running: bool  # IFF_RUNNING: up with carrier
    # The first IPv6 link-local address (the source of IPv6 advertisements); None: no IPv6.
    link_local: IPv6Address | None = None


class CarpReceiver(Protocol):
    """Receives IPv4 or IPv6 datagrams of protocol 112 on one interface."""

    def fileno(self) -> int: ...

    def receive(self) -> list[bytes]:
        """Every datagram waiting now (IP header included); [] if none.

        An IPv6 receiver rebuilds the fixed IPv6 header (source, destination,
        hop limit) from what the kernel reports: raw IPv6 sockets strip it.
        """
        ...

    def close(self) -> None: ...


class LinkSender(Protocol):
    """Sends link-layer frames out of one interface; the adapter writes the header."""

    def transmit(self, frame: Frame) -> None:
        """Raises OSError when the frame cannot be sent (the kernel refuses it)."""
        ...

    def close(self) -> None: ...


class UnicastSender(Protocol):
    """Sends advertisements where the kernel routes them.

    For an IPv4 peer the datagram is whole (header included); for an IPv6
    peer it is the CARP message and the kernel writes the header (hop limit
    255, its own choice of source): IPv6 sockets have no header inclusion.
    A link-local IPv6 peer carries its interface as scope (fe80::2%eth0).
    """

    def send_to(self, datagram: bytes, address: IPv4Address | IPv6Address) -> None:
        """Raises OSError when the kernel refuses (no route, a full queue, ...)."""
        ...

    def close(self) -> None: ...


class Timer(Protocol):
    """A one-shot timer on the monotonic clock (the event loop's), waited on as a file."""

    def fileno(self) -> int: ...

    def arm(self, deadline: float | None) -> None:
        """Readable at `deadline` (at once if it is past); None: never."""
        ...

    def clear(self) -> None:
        """After it fired: not readable again until it fires again."""
        ...

    def close(self) -> None: ...


class LinkMonitor(Protocol):
    """Reports changes of the RUNNING flag of interfaces."""

    def fileno(self) -> int: ...

    def read(self) -> list[tuple[str, bool]]:
        """(interface name, running) for each change waiting now."""
        ...

    def close(self) -> None: ...


class AddressManager(Protocol):
    """Puts virtual addresses (IPv4, and IPv6 without duplicate address detection)
    on interfaces and takes them off again.

    Async so that a slow kernel or command never stalls the event loop. Each
    call looks the interface up afresh: it may have been recreated meanwhile.
    With `mac` (a virtual MAC, 00:00:5e:00:0X:YY) the addresses are behind
    that MAC instead, so ARP and ND answer for them from it: on Linux on a
    macvlan of the interface, made when needed and deleted once empty.
    Platforms without (Platform.supports_virtual_mac) refuse it.
    """

    async def add(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        """Configure each (address, prefix length); one already there is fine."""
        ...

    async def remove(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        """Unconfigure exactly these (address, prefix length); one absent is fine."""
        ...

    async def present(
        self, interface: str, mac: bytes | None = None
    ) -> set[IPv4Address | IPv6Address]:
        """The addresses configured on the interface now (illumos: on units that are UP)."""
        ...

    async def virtual_macs(self, interface: str) -> set[bytes]:
        """The virtual MACs that have addresses of ours behind them on the interface now
        (Linux: pycarp's macvlans there); empty where there are none."""
        ...

    async def close(self) -> None: ...


class Platform(Protocol):
    supports_ipv6: bool  # IPv6 CARP (receivers, plumbing) is there
    supports_virtual_mac: bool  # AddressManager takes a mac (a macvlan on Linux)

    def interface_info(self, name: str) -> InterfaceInfo: ...

    def open_receiver(
        self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address
    ) -> CarpReceiver: ...

    def open_receiver6(self, info: InterfaceInfo) -> CarpReceiver:
        """Joins ff02::12 on the interface; InterfaceError where IPv6 CARP cannot work."""
        ...

    def open_sender(self, info: InterfaceInfo) -> LinkSender: ...

    def open_unicast_sender(self) -> UnicastSender: ...

    def open_link_monitor(self) -> LinkMonitor: ...

    def open_timer(self) -> Timer | None:
        """A timer finer than the event loop's (milliseconds); None: the loop's will do."""
        ...

    def open_address_manager(self) -> AddressManager: ...

    def set_realtime(self, priority: int) -> tuple[str, bool]:
        """The calling thread scheduled as realtime at `priority`, memory locked where possible.

        A line saying what was done, and whether memory is locked (then
        drop_privileges must keep what locked memory needs); OSError when
        realtime scheduling is not permitted.
        """
        ...

    def normal_thread(self) -> None:
        """The calling thread scheduled normally (a worker thread of a realtime daemon)."""
        ...

    def drop_privileges(self, *, keep_bounding: bool, locked_memory: bool = False) -> str:
        """Keep only the privileges a daemon with open sockets (and, with `locked_memory`,
        locked memory) needs; a line saying what was done.

        ``keep_bounding``: scripts run, and get root's privileges as with
        ucarp. Raises OSError when the kernel refuses.
        """
        ...
