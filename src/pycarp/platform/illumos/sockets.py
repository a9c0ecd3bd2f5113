"""CARP sockets on illumos: raw IPv4 in, raw IPv4 with IP_HDRINCL out.

illumos has no AF_PACKET (raw Ethernet would need DLPI through libdlpi), so
the sender hands the IPv4 datagram of each frame the core made to the kernel,
which writes the Ethernet header itself (the group's multicast MAC, the
interface's own MAC as source). Consequences:

* --nomcast's Ethernet broadcast cannot be expressed: such frames leave as
  IP multicast to the group (logged once). A peer in --nomcast mode still
  receives them: it joins the group (ucarp and pycarp both do).
* The source MAC is the interface's, not 00:00:5e:00:01:<vhid>; ucarp never
  used the virtual MAC either.
* ARP frames are dropped (debug log): `ifconfig <if> addif <ip> up` (the
  built-in plumbing, and what up scripts do) makes the illumos kernel
  announce the address itself with gratuitous ARPs, so a second announcement
  from us adds nothing that a raw-DLPI dependency would be worth.

Option numbers are illumos's <netinet/in.h> values, not the socket module's
(which are the host's: tests run on Linux). Every socket comes from an
injectable factory so tests can record what is set and sent.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any, Protocol

from pycarp.core.packet import BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IP, Frame
from pycarp.platform.base import InterfaceInfo

IPPROTO_IP = 0
IPPROTO_CARP = 112
IPPROTO_RAW = 255
IP_HDRINCL = 2
IP_RECVIF = 0x9
IP_MULTICAST_IF = 0x10
IP_MULTICAST_TTL = 0x11
IP_MULTICAST_LOOP = 0x12
IP_ADD_MEMBERSHIP = 0x13
IP_BOUND_IF = 0x41  # SunOS private: bind the socket to an ifindex, both directions

MAX_BATCH = 64  # datagrams per receive(): keeps one flood from starving the loop
_MAX_DATAGRAM = 65535
_CMSG_SPACE = 64

log = logging.getLogger(__name__)


class RawSocket(Protocol):
    """The part of socket.socket these adapters use."""

    def setblocking(self, flag: bool) -> None: ...

    def setsockopt(self, level: int, option: int, value: int | bytes, /) -> None: ...

    def fileno(self) -> int: ...

    def recv(self, bufsize: int, /) -> bytes: ...

    def recvmsg(
        self, bufsize: int, ancbufsize: int = ..., /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]: ...

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int: ...

    def close(self) -> None: ...


# (family, type, proto) -> socket; socket.socket in production.
SocketFactory = Callable[[int, int, int], RawSocket]


def new_socket(family: int, kind: int, proto: int) -> RawSocket:
    return socket.socket(family, kind, proto)


def _unsupported(exc: OSError) -> bool:
    return exc.errno in (errno.ENOPROTOOPT, errno.EINVAL, errno.EOPNOTSUPP)


class RawCarpReceiver:
    """Protocol-112 datagrams (IP header included) arriving on one interface.

    illumos has no SO_BINDTODEVICE; IP_BOUND_IF ties the socket to the
    interface's index so the kernel delivers only what arrived there. Where
    that option is refused (an older kernel, or a zone that forbids it), the
    socket asks for IP_RECVIF, the arrival ifindex in ancillary data, and
    drops datagrams from other interfaces itself: with several interfaces,
    each receiver would otherwise see every interface's adverts.

    There is no ip_mreqn: the group is joined on the interface by its
    address (srcip), the classic struct ip_mreq.
    """

    def __init__(
        self,
        info: InterfaceInfo,
        group: IPv4Address,
        srcip: IPv4Address,
        *,
        factory: SocketFactory = new_socket,
    ) -> None:
        if not group.is_multicast:
            raise ValueError(f"CARP group {group} is not a multicast address")
        self.info, self.group, self.srcip = info, group, srcip
        sock = factory(socket.AF_INET, socket.SOCK_RAW, IPPROTO_CARP)
        try:
            sock.setblocking(False)
            self.filtering = False
            try:
                sock.setsockopt(IPPROTO_IP, IP_BOUND_IF, info.index)
            except OSError as exc:
                if not _unsupported(exc):
                    raise
                sock.setsockopt(IPPROTO_IP, IP_RECVIF, 1)
                self.filtering = True
                log.info("%s: IP_BOUND_IF unavailable, filtering by IP_RECVIF", info.name)
            mreq = struct.pack("=4s4s", group.packed, srcip.packed)
            sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def _arrived_here(self, ancillary: list[tuple[int, int, bytes]]) -> bool:
        for level, kind, data in ancillary:
            if level == IPPROTO_IP and kind == IP_RECVIF and len(data) >= 4:
                return int(struct.unpack_from("=I", data)[0]) == self.info.index
        return False  # no arrival index: cannot tell, so not ours

    def receive(self) -> list[bytes]:
        """Up to MAX_BATCH waiting datagrams; [] if none. Other OSErrors propagate."""
        out: list[bytes] = []
        for _ in range(MAX_BATCH):
            try:
                if not self.filtering:
                    out.append(self._sock.recv(_MAX_DATAGRAM))
                    continue
                data, ancillary, _flags, _addr = self._sock.recvmsg(_MAX_DATAGRAM, _CMSG_SPACE)
            except BlockingIOError:
                break
            if self._arrived_here(ancillary):
                out.append(data)
        return out

    def close(self) -> None:
        self._sock.close()  # closing drops the membership too

    def __repr__(self) -> str:
        return f"<illumos RawCarpReceiver {self.info.name} group={self.group}>"


class IpFrameSender:
    """Sends the IPv4 datagram of each frame out of one interface (a LinkSender).

    IPPROTO_RAW: the kernel delivers nothing to such a socket, so no unread
    copies of every advert pile up in its buffer. IP_HDRINCL: the runtime's
    header (source address, TTL 255, identification) goes out as built; the
    kernel fills in the length and checksum. IP_BOUND_IF and IP_MULTICAST_IF
    both pin the outgoing interface (the routing table would pick one for the
    group otherwise); loopback is off, as with Linux's packet socket, so our
    own receiver does not hear our adverts.
    """

    def __init__(self, info: InterfaceInfo, *, factory: SocketFactory = new_socket) -> None:
        self.info = info
        sock = factory(socket.AF_INET, socket.SOCK_RAW, IPPROTO_RAW)
        try:
            sock.setblocking(False)
            sock.setsockopt(IPPROTO_IP, IP_HDRINCL, 1)
            # illumos takes u_char for these two, as its own ping and in.mpathd do.
            sock.setsockopt(IPPROTO_IP, IP_MULTICAST_TTL, bytes([255]))
            sock.setsockopt(IPPROTO_IP, IP_MULTICAST_LOOP, bytes([0]))
            try:
                sock.setsockopt(IPPROTO_IP, IP_BOUND_IF, info.index)
            except OSError as exc:
                if not _unsupported(exc):
                    raise
                log.info("%s: IP_BOUND_IF unavailable, relying on IP_MULTICAST_IF", info.name)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._multicast_if: bytes | None = None  # source address last set as IP_MULTICAST_IF
        self._told_nomcast = False

    def transmit(self, frame: Frame) -> None:
        """The frame's datagram out; OSError if the frame or the kernel refuses."""
        ethertype = frame.ethertype
        if ethertype == ETHERTYPE_ARP:
            log.debug("%s: gratuitous ARP left to the kernel (it announces on up)", self.info.name)
            return
        if ethertype != ETHERTYPE_IP:
            raise OSError(errno.EPROTONOSUPPORT, f"cannot send ethertype {ethertype:#06x}")
        datagram = frame.payload
        if len(datagram) < 20 or datagram[0] >> 4 != 4:
            raise OSError(errno.EINVAL, "the frame holds no IPv4 datagram")
        if frame.destination == BROADCAST_MAC and not self._told_nomcast:
            self._told_nomcast = True
            log.warning(
                "%s: --nomcast: illumos cannot send IP to the Ethernet broadcast address; "
                "advertisements go out as multicast to the group",
                self.info.name,
            )
        source, destination = datagram[12:16], datagram[16:20]
        if source != self._multicast_if:
            self._sock.setsockopt(IPPROTO_IP, IP_MULTICAST_IF, source)
            self._multicast_if = source
        sent = self._sock.sendto(datagram, (str(IPv4Address(destination)), 0))
        if sent != len(datagram):
            raise OSError(f"short send on {self.info.name}: {sent} of {len(datagram)} bytes")

    def close(self) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"<illumos IpFrameSender {self.info.name}>"
