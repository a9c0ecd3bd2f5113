"""Link state changes from rtnetlink (RTMGRP_LINK).

A plain AF_NETLINK socket, non-blocking with a real fileno() for the event
loop (pyroute2 0.9's socket classes run their own asyncio machinery, which gets
in the way of an fd our own loop polls); pyroute2's marshal decodes what it reads.
"""

from __future__ import annotations

import errno
import socket
import struct

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFF_RUNNING = 0x40

MAX_READS = 64  # recv() calls per read(): bounded work per wake-up
_RCVBUF = 1 << 20
_BUFSIZE = 65536

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change


def parse_link_messages(data: bytes) -> list[tuple[str, bool]]:
    """(ifname, running) for each RTM_NEWLINK / RTM_DELLINK in one netlink read.

    pyroute2 decodes the messages; a deleted link counts as not running.
    """
    out: list[tuple[str, bool]] = []
    try:
        messages = MarshalRtnl().parse(data)
    except Exception:  # a malformed read must not stop the daemon
        return out
    for msg in messages:
        kind = msg["header"]["type"]
        name = msg.get_attr("IFLA_IFNAME")
        if kind in (RTM_NEWLINK, RTM_DELLINK) and isinstance(name, str):
            out.append((name, kind == RTM_NEWLINK and bool(msg["flags"] & IFF_RUNNING)))
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
