"""Virtual addresses on Linux interfaces through rtnetlink, with pyroute2's asyncio API.

The netlink socket is made in the constructor, so the manager works in the
network namespace of the thread that built it, whichever namespace that thread
is in when the coroutines later run (a netlink socket stays in the namespace it
was created in). pyroute2 gets the socket through use_socket: we own it, and
pyroute2 never opens a socket of its own lazily (which would land in whatever
namespace the first caller happens to be in).

pyroute2 keeps its asyncio state per thread: use one manager from the thread
that opened it (the daemon's event-loop thread).

IPv6 addresses are added with IFA_F_NODAD: a backup taking over must answer
at once, not after duplicate address detection (a second or more, during
which the kernel treats the address as not there); the previous master had
the address, so DAD would only tell what CARP already knows.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pycarp.core.actions import Network
from pycarp.core.config import broadcast_of
from pycarp.platform.base import AddressError

NETLINK_ROUTE = 0
OP_TIMEOUT = 5.0  # seconds for one netlink request: a wedged socket must not hang the daemon
IFA_F_NODAD = 0x02  # <linux/if_addr.h>
FAMILIES = (socket.AF_INET, socket.AF_INET6)

log = logging.getLogger(__name__)


def _check_prefix(address: IPv4Address | IPv6Address, prefixlen: int) -> None:
    if not 1 <= prefixlen <= address.max_prefixlen:  # the config's range: 1..32, 1..128
        raise AddressError(
            f"{address}/{prefixlen}: prefix length must be 1..{address.max_prefixlen}"
        )


def _extra(address: IPv4Address | IPv6Address, prefixlen: int) -> dict[str, Any]:
    """What an RTM_NEWADDR carries beyond the address: IPv4's broadcast, IPv6's NODAD."""
    if isinstance(address, IPv6Address):
        return {"flags": IFA_F_NODAD}  # pyroute2 sends it as IFA_FLAGS
    broadcast = broadcast_of(address, prefixlen)
    return {} if broadcast is None else {"broadcast": str(broadcast)}


def _error_code(exc: BaseException) -> int | None:
    """The errno of a netlink or socket error, None for anything else (a timeout)."""
    code = exc.code if isinstance(exc, NetlinkError) else getattr(exc, "errno", None)
    return code if isinstance(code, int) and code > 0 else None


def _reason(exc: BaseException, address: IPv4Address | IPv6Address | None = None) -> str:
    code = _error_code(exc)
    if code is not None:
        why = f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"
        if code == errno.EACCES and isinstance(address, IPv6Address):
            why += "; is IPv6 disabled on the interface?"  # what disable_ipv6=1 answers
        return why
    if isinstance(exc, TimeoutError):
        return f"no answer from the kernel within {OP_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__


class NetlinkAddressManager:
    """Implements pycarp.platform.base.AddressManager with RTM_NEWADDR / RTM_DELADDR."""

    def __init__(self) -> None:
        try:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        except OSError as exc:
            raise AddressError(f"cannot open a netlink socket: {_reason(exc)}") from exc
        try:
            self._ipr: Any = AsyncIPRoute(use_socket=sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._closed = False

    async def _index(self, interface: str) -> int:
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                found = await self._ipr.link_lookup(ifname=interface)
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{interface}: lookup failed: {_reason(exc)}") from exc
        if not found:
            raise AddressError(f"{interface}: no such interface")
        return int(found[0])

    async def add(self, interface: str, networks: Sequence[Network]) -> None:
        for address, prefixlen in networks:
            _check_prefix(address, prefixlen)
        index = await self._index(interface)
        for address, prefixlen in networks:
            extra = _extra(address, prefixlen)
            try:
                async with asyncio.timeout(OP_TIMEOUT):
                    await self._ipr.addr(
                        "add", index=index, address=str(address), prefixlen=prefixlen, **extra
                    )
            except (NetlinkError, OSError, TimeoutError) as exc:
                # EEXIST: IPv4, the same address with the same prefix; IPv6, the
                # same address whatever its prefix (one entry per address there).
                if _error_code(exc) == errno.EEXIST:
                    continue
                raise AddressError(
                    f"{interface}: cannot add {address}/{prefixlen}: {_reason(exc, address)}"
                ) from exc
            log.debug("added %s/%s to %s", address, prefixlen, interface)

    async def remove(self, interface: str, networks: Sequence[Network]) -> None:
        for address, prefixlen in networks:
            _check_prefix(address, prefixlen)
        index = await self._index(interface)
        for address, prefixlen in networks:
            try:
                # address= sends IFA_ADDRESS (and IFA_LOCAL for IPv4), so the kernel
                # deletes only an entry with this address and this prefix length,
                # never a same-address entry of the administrator's with another prefix.
                async with asyncio.timeout(OP_TIMEOUT):
                    await self._ipr.addr(
                        "del", index=index, address=str(address), prefixlen=prefixlen
                    )
            except (NetlinkError, OSError, TimeoutError) as exc:
                if _error_code(exc) == errno.EADDRNOTAVAIL:  # not there: nothing to do
                    continue
                raise AddressError(
                    f"{interface}: cannot remove {address}/{prefixlen}: {_reason(exc)}"
                ) from exc
            log.debug("removed %s/%s from %s", address, prefixlen, interface)

    async def present(self, interface: str) -> set[IPv4Address | IPv6Address]:
        """Both families' addresses; IPv6 ones that DAD has not cleared yet included."""
        index = await self._index(interface)
        found: set[IPv4Address | IPv6Address] = set()
        try:
            for family in FAMILIES:
                async with asyncio.timeout(OP_TIMEOUT):
                    found |= await self._dump(family, index)
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{interface}: cannot list addresses: {_reason(exc)}") from exc
        return found

    async def _dump(self, family: int, index: int) -> set[IPv4Address | IPv6Address]:
        kind = IPv4Address if family == socket.AF_INET else IPv6Address
        found: set[IPv4Address | IPv6Address] = set()
        async for msg in await self._ipr.get_addr(family=family, index=index):
            if msg["index"] != index or msg["family"] != family:  # filtered in userspace
                continue
            # IFA_ADDRESS is the address, except on point-to-point links where it is
            # the peer's and IFA_LOCAL ours (IPv4 always sends IFA_LOCAL; IPv6 then only).
            local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if local:
                found.add(kind(local))
        return found

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._ipr.close()
        finally:
            self._sock.close()
