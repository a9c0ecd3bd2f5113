"""Virtual addresses on Linux interfaces through rtnetlink, with pyroute2's asyncio API.

The netlink socket is made in the constructor, so the manager works in the
network namespace of the thread that built it, whichever namespace that thread
is in when the coroutines later run (a netlink socket stays in the namespace it
was created in). pyroute2 gets the socket through use_socket: we own it, and
pyroute2 never opens a socket of its own lazily (which would land in whatever
namespace the first caller happens to be in).

pyroute2 keeps its asyncio state per thread: use one manager from the thread
that opened it (the daemon's event-loop thread).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pycarp.core.actions import Network
from pycarp.core.config import broadcast_of
from pycarp.platform.base import AddressError

NETLINK_ROUTE = 0
OP_TIMEOUT = 5.0  # seconds for one netlink request: a wedged socket must not hang the daemon

log = logging.getLogger(__name__)


def _check_prefix(address: IPv4Address, prefixlen: int) -> None:
    if not 1 <= prefixlen <= 32:  # the config's range
        raise AddressError(f"{address}/{prefixlen}: prefix length must be 1..32")


def _error_code(exc: BaseException) -> int | None:
    """The errno of a netlink or socket error, None for anything else (a timeout)."""
    code = exc.code if isinstance(exc, NetlinkError) else getattr(exc, "errno", None)
    return code if isinstance(code, int) and code > 0 else None


def _reason(exc: BaseException) -> str:
    code = _error_code(exc)
    if code is not None:
        return f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"
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
            extra: dict[str, str] = {}
            broadcast = broadcast_of(address, prefixlen)
            if broadcast is not None:
                extra["broadcast"] = str(broadcast)
            try:
                async with asyncio.timeout(OP_TIMEOUT):
                    await self._ipr.addr(
                        "add", index=index, address=str(address), prefixlen=prefixlen, **extra
                    )
            except (NetlinkError, OSError, TimeoutError) as exc:
                # The kernel says EEXIST only for the same address with the same prefix.
                if _error_code(exc) == errno.EEXIST:
                    continue
                raise AddressError(
                    f"{interface}: cannot add {address}/{prefixlen}: {_reason(exc)}"
                ) from exc
            log.debug("added %s/%s to %s", address, prefixlen, interface)

    async def remove(self, interface: str, networks: Sequence[Network]) -> None:
        for address, prefixlen in networks:
            _check_prefix(address, prefixlen)
        index = await self._index(interface)
        for address, prefixlen in networks:
            try:
                # address= sends IFA_ADDRESS and IFA_LOCAL, so the kernel deletes only
                # an entry with this address and this prefix length, never a
                # same-address entry of the administrator's with another prefix.
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

    async def present(self, interface: str) -> set[IPv4Address]:
        index = await self._index(interface)
        found: set[IPv4Address] = set()
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                async for msg in await self._ipr.get_addr(family=socket.AF_INET, index=index):
                    if msg["index"] != index:  # the dump filter is applied in userspace
                        continue
                    # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on p2p links.
                    local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                    if local:
                        found.add(IPv4Address(local))
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{interface}: cannot list addresses: {_reason(exc)}") from exc
        return found

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._ipr.close()
        finally:
            self._sock.close()
