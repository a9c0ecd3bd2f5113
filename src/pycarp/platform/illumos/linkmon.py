"""Link state changes on illumos from a PF_ROUTE socket (RTM_IFINFO), no polling.

The kernel sends RTM_IFINFO whenever an interface's flags change (RUNNING
follows the link's carrier). Each message starts with struct if_msghdr,
<net/if.h> on illumos, in native byte order:

    ushort_t ifm_msglen; uchar_t ifm_version; uchar_t ifm_type;
    int ifm_addrs; int ifm_flags; ushort_t ifm_index; ... struct if_data

Only those first fields are read. A message comes per logical unit and per
address family, so one change may be reported several times: the runtime
compares with what it knew.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable

from pycarp.platform.illumos.sockets import SocketFactory, new_socket

# illumos's AF_ROUTE is 24; Linux's socket.AF_ROUTE is an alias of AF_NETLINK.
AF_ROUTE = int(getattr(socket, "AF_ROUTE", 24)) if sys.platform.startswith("sunos") else 24
RTM_IFINFO = 0xE
IFF_RUNNING = 0x40
MAX_READS = 64  # recv() calls per read(): bounded work per wake-up
_BUFSIZE = 8192

_IF_MSGHDR = struct.Struct("=HBBiiH")  # msglen, version, type, addrs, flags, index


def parse_ifinfo(data: bytes) -> list[tuple[int, int]]:
    """(ifindex, flags) of each RTM_IFINFO in one routing-socket read; others skipped."""
    out: list[tuple[int, int]] = []
    offset = 0
    while offset + _IF_MSGHDR.size <= len(data):
        msglen, _version, kind, _addrs, flags, index = _IF_MSGHDR.unpack_from(data, offset)
        if msglen < 4 or offset + msglen > len(data):  # malformed or cut: stop here
            break
        if kind == RTM_IFINFO and msglen >= _IF_MSGHDR.size:
            out.append((index, flags & 0xFFFFFFFF))
        offset += msglen
    return out


class RouteLinkMonitor:
    """RUNNING flag of every interface, as it changes (RTM_IFINFO on PF_ROUTE)."""

    def __init__(
        self,
        *,
        factory: SocketFactory = new_socket,
        indextoname: Callable[[int], str] = socket.if_indextoname,
    ) -> None:
        sock = factory(AF_ROUTE, socket.SOCK_RAW, 0)  # protocol 0: every family
        try:
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._indextoname = indextoname
        self._names: dict[int, str] = {}  # so a removed interface can still be named

    def fileno(self) -> int:
        return self._sock.fileno()

    def _name(self, index: int) -> tuple[str | None, bool]:
        """(name, still there); a gone (unplumbed) index gets the last name we knew."""
        try:
            name = self._indextoname(index)
        except OSError:
            return self._names.get(index), False
        self._names[index] = name
        return name, True

    def read(self) -> list[tuple[str, bool]]:
        """(interface name, running) for each RTM_IFINFO waiting now; [] if none."""
        out: list[tuple[str, bool]] = []
        for _ in range(MAX_READS):
            try:
                data = self._sock.recv(_BUFSIZE)
            except BlockingIOError:
                break
            for index, flags in parse_ifinfo(data):
                name, there = self._name(index)
                if name is not None:
                    out.append((name, there and bool(flags & IFF_RUNNING)))
        return out

    def close(self) -> None:
        self._sock.close()
