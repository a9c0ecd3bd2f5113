"""The illumos adapters: ifconfig facts, raw IPv4 sockets, PF_ROUTE link events, ifconfig addresses.

Nothing here needs illumos to import: every OS interaction goes through an
injectable runner or socket factory, so the logic is tested on any OS. IPv6
CARP is not supported here yet: interface_info leaves link_local None, no
IPv6 receiver opens, and the unicast sender has no IPv6 socket.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

from pycarp.platform.base import CarpReceiver, InterfaceError, InterfaceInfo
from pycarp.platform.illumos.iface import SyncRunner, interface_info, parse_status, run_sync
from pycarp.platform.illumos.ifconfig import (
    IfconfigAddressManager,
    LogicalInterface,
    Runner,
    parse_ifconfig,
    run_command,
)
from pycarp.platform.illumos.linkmon import RouteLinkMonitor, parse_ifinfo
from pycarp.platform.illumos.sockets import (
    IP_HDRINCL,
    IPPROTO_IP,
    IPPROTO_RAW,
    IpFrameSender,
    RawCarpReceiver,
    SocketFactory,
    new_socket,
)
from pycarp.platform.routed import RawIpSocket, RoutedSender

__all__ = [
    "IfconfigAddressManager",
    "IllumosPlatform",
    "IpFrameSender",
    "LogicalInterface",
    "RawCarpReceiver",
    "RouteLinkMonitor",
    "Runner",
    "SocketFactory",
    "SyncRunner",
    "interface_info",
    "parse_ifconfig",
    "parse_ifinfo",
    "parse_status",
    "run_command",
    "run_sync",
]


class IllumosPlatform:
    """Implements pycarp.platform.base.Platform; the seams default to the real OS."""

    supports_ipv6 = False  # not yet: ifconfig inet6 units, an IPv6 receiver
    supports_virtual_mac = False  # addresses stay on the interface's own MAC

    def __init__(
        self,
        *,
        runner: SyncRunner = run_sync,
        async_runner: Runner = run_command,
        factory: SocketFactory = new_socket,
    ) -> None:
        self._runner = runner
        self._async_runner = async_runner
        self._factory = factory

    def interface_info(self, name: str) -> InterfaceInfo:
        return interface_info(name, runner=self._runner)

    def open_receiver(
        self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address
    ) -> RawCarpReceiver:
        return RawCarpReceiver(info, group, srcip, factory=self._factory)

    def open_receiver6(self, info: InterfaceInfo) -> CarpReceiver:
        raise InterfaceError(
            "IPv6 CARP is not supported on illumos yet; use IPv4 virtual addresses"
        )

    def open_sender(self, info: InterfaceInfo) -> IpFrameSender:
        return IpFrameSender(info, factory=self._factory)

    def open_unicast_sender(self) -> RoutedSender:
        def make() -> RawIpSocket:
            return self._factory(socket.AF_INET, socket.SOCK_RAW, IPPROTO_RAW)

        return RoutedSender(make, [(IPPROTO_IP, IP_HDRINCL, 1)], factory6=None)

    def open_timer(self) -> None:
        """None: the event loop's timer (illumos has timerfd too; not wired up yet)."""
        return None

    def open_link_monitor(self) -> RouteLinkMonitor:
        return RouteLinkMonitor(factory=self._factory)

    def open_address_manager(self) -> IfconfigAddressManager:
        return IfconfigAddressManager(runner=self._async_runner)

    def set_realtime(self, priority: int) -> tuple[str, bool]:
        raise OSError("realtime scheduling is not wired up on illumos yet")

    def normal_thread(self) -> None:
        """Nothing to undo: set_realtime() never succeeds here."""

    def drop_privileges(self, *, keep_bounding: bool, locked_memory: bool = False) -> str:
        return "privileges: left as they are (only pycarp on Linux drops them)"
