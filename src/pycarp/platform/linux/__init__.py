"""The Linux adapters: ioctl interface facts, raw IP receive, AF_PACKET send, rtnetlink."""

from __future__ import annotations

from ipaddress import IPv4Address

from pycarp.platform.base import InterfaceInfo
from pycarp.platform.linux.addresses import NetlinkAddressManager
from pycarp.platform.linux.iface import interface_info
from pycarp.platform.linux.linkmon import NetlinkLinkMonitor
from pycarp.platform.linux.privileges import drop_capabilities
from pycarp.platform.linux.rawsock import PacketFrameSender, RawCarpReceiver
from pycarp.platform.linux.rawsock6 import Raw6CarpReceiver
from pycarp.platform.linux.sched import normal_thread, set_realtime
from pycarp.platform.linux.timerfd import TimerFd
from pycarp.platform.routed import RoutedSender

__all__ = [
    "LinuxPlatform",
    "NetlinkAddressManager",
    "NetlinkLinkMonitor",
    "PacketFrameSender",
    "Raw6CarpReceiver",
    "RawCarpReceiver",
    "RoutedSender",
    "TimerFd",
    "interface_info",
]


class LinuxPlatform:
    """Implements pycarp.platform.base.Platform; every socket opens in the caller's netns."""

    supports_ipv6 = True
    supports_virtual_mac = True

    def interface_info(self, name: str) -> InterfaceInfo:
        return interface_info(name)

    def open_receiver(
        self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address
    ) -> RawCarpReceiver:
        return RawCarpReceiver(info, group, srcip)

    def open_receiver6(self, info: InterfaceInfo) -> Raw6CarpReceiver:
        return Raw6CarpReceiver(info)

    def open_sender(self, info: InterfaceInfo) -> PacketFrameSender:
        return PacketFrameSender(info)

    def open_unicast_sender(self) -> RoutedSender:
        return RoutedSender()

    def open_timer(self) -> TimerFd:
        return TimerFd()

    def open_link_monitor(self) -> NetlinkLinkMonitor:
        return NetlinkLinkMonitor()

    def open_address_manager(self) -> NetlinkAddressManager:
        return NetlinkAddressManager()

    def set_realtime(self, priority: int) -> tuple[str, bool]:
        return set_realtime(priority)

    def normal_thread(self) -> None:
        normal_thread()

    def drop_privileges(self, *, keep_bounding: bool, locked_memory: bool = False) -> str:
        return drop_capabilities(keep_bounding=keep_bounding, locked_memory=locked_memory)
