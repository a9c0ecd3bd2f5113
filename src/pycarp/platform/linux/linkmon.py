"""Link state changes from rtnetlink (RTMGRP_LINK).

A plain AF_NETLINK socket: it is non-blocking and has a real fileno() for the
event loop. (pyroute2 0.9's socket classes run their own asyncio machinery,
which gets in the way of an fd that our own loop polls; the few fields needed
here are quick to decode.)
"""

from __future__ import annotations

import errno
import socket
import struct

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFLA_IFNAME = 3
IFF_RUNNING = 0x40

MAX_READS = 64  # recv() calls per read(): bounded work per wake-up
_RCVBUF = 1 << 20
_BUFSIZE = 65536

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")  # len, type


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _ifname(attrs: bytes) -> str | None:
    pos = 0
    while pos + _RTATTR.size <= len(attrs):
        length, kind = _RTATTR.unpack_from(attrs, pos)
        if length < _RTATTR.size or pos + length > len(attrs):
            return None
        if kind == IFLA_IFNAME:
            value = attrs[pos + _RTATTR.size : pos + length]
            return value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        pos += _align4(length)
    return None


def parse_link_messages(data: bytes) -> list[tuple[str, bool]]:
    """(ifname, running) for each RTM_NEWLINK / RTM_DELLINK in one netlink read.

    A deleted link counts as not running. Malformed tails are ignored.
    """
    out: list[tuple[str, bool]] = []
    pos = 0
    while pos + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < _NLMSGHDR.size or pos + length > len(data):
            break
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            body = data[pos + _NLMSGHDR.size : pos + length]
            if len(body) >= _IFINFOMSG.size:
                _family, _type, _index, flags, _change = _IFINFOMSG.unpack_from(body)
                name = _ifname(body[_IFINFOMSG.size :])
                if name is not None:
                    running = kind == RTM_NEWLINK and bool(flags & IFF_RUNNING)
                    out.append((name, running))
        pos += _align4(length)
    return out


class NetlinkLinkMonitor:
    """RUNNING flag of every link in this network namespace, as it changes.

    Reports each RTM_NEWLINK as it comes (the kernel sends one for many kinds
    of change): the caller compares with what it knew. If the kernel drops
    events because we fell behind (ENOBUFS), a full link dump is requested so
    the following reads bring every link's current state again.
    """

    def __init__(self) -> None:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
        )
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind((0, RTMGRP_LINK))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._seq = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def request_dump(self) -> None:
        """Ask for every link's state; the answers come through read() like events."""
        self._seq += 1
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0
        )
        try:
            self._sock.sendto(header + body, (0, 0))
        except OSError as exc:
            if exc.errno != errno.EBUSY:  # EBUSY: a dump is already on its way
                raise

    def read(self) -> list[tuple[str, bool]]:
        """(interface name, running) for each link message waiting now; [] if none."""
        out: list[tuple[str, bool]] = []
        for _ in range(MAX_READS):
            try:
                data = self._sock.recv(_BUFSIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.request_dump()  # events were lost: get the whole picture again
                continue
            out.extend(parse_link_messages(data))
        return out

    def close(self) -> None:
        self._sock.close()
