"""Sockets that carry CARP: a raw IPv4 socket in, an AF_PACKET socket out
(unicast peers' advertisements go through pycarp.platform.routed).

Receiving uses the IP stack (protocol 112 raw socket) so the kernel does the
IP checks and reassembly; sending writes whole Ethernet frames, because ucarp
compatibility needs control of the source MAC (00:00:5e:00:00:<vhid>) and of
the destination MAC (broadcast in --nomcast mode) that an IP socket lacks.
The core says what each frame's header holds (a Frame); the header is
written here, with the core's codec.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

from pycarp.core.packet import Frame
from pycarp.platform.base import InterfaceInfo

IPPROTO_CARP = 112
IP_MULTICAST_ALL = 49  # <linux/in.h>; not exported by the socket module before 3.12
MAX_BATCH = 64  # datagrams per receive(): keeps one flood from starving the loop
_MAX_DATAGRAM = 65535


class RawCarpReceiver:
    """Protocol-112 datagrams (IP header included) arriving on one interface.

    The group is joined on the interface even for --nomcast peers: they send
    to the Ethernet broadcast address but keep the group as IP destination,
    and the kernel delivers a multicast destination locally only when the
    receiving interface has joined that group, whatever the frame's MAC.
    IP_MULTICAST_ALL is off so only this socket's own group gets through,
    not every group some other program joined on the host.
    """

    def __init__(self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address) -> None:
        if not group.is_multicast:
            raise ValueError(f"CARP group {group} is not a multicast address")
        self.info = info
        self.group = group
        self.srcip = srcip
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_CARP)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, info.name.encode())
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            # struct ip_mreqn: the ifindex picks the interface; the address is informative.
            mreqn = struct.pack("=4s4si", group.packed, srcip.packed, info.index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> list[bytes]:
        """Up to MAX_BATCH waiting datagrams; [] if none. Other OSErrors propagate."""
        out: list[bytes] = []
        for _ in range(MAX_BATCH):
            try:
                out.append(self._sock.recv(_MAX_DATAGRAM))
            except BlockingIOError:
                break
        return out

    def close(self) -> None:
        self._sock.close()  # leaving the socket drops its membership too

    def __repr__(self) -> str:
        return f"<RawCarpReceiver {self.info.name} group={self.group}>"


class PacketFrameSender:
    """Sends Ethernet frames out of one interface (a LinkSender)."""

    def __init__(self, info: InterfaceInfo) -> None:
        self.info = info
        # Protocol 0: a send-only packet socket, the kernel queues nothing to it.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.setblocking(False)
            sock.bind((info.name, 0))
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def transmit(self, frame: Frame) -> None:
        """One frame out, its Ethernet header written here; OSError as send()."""
        self.send(frame.encode())

    def send(self, frame: bytes) -> None:
        """One whole frame out; OSError (e.g. ENETDOWN, EMSGSIZE, EAGAIN) if the kernel refuses."""
        sent = self._sock.send(frame)
        if sent != len(frame):
            raise OSError(f"short send on {self.info.name}: {sent} of {len(frame)} bytes")

    def close(self) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"<PacketFrameSender {self.info.name}>"
