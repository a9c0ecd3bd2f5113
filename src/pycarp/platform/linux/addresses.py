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

With a virtual MAC, the addresses go on pycarp's macvlan of the interface
with that MAC (pycarp.platform.linux.macvlan), made on the first add and
deleted once a remove leaves no address on it: REAP_DELAY after the last
change, not at once, because a deletion takes the kernel 20 ms or more and
a hundred hosts stepping down must lose their addresses first. An empty
macvlan answers nothing meanwhile, an add uses it again, and close()
deletes what is still waiting.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pycarp.core.actions import Network
from pycarp.core.config import broadcast_of
from pycarp.platform.base import AddressError
from pycarp.platform.linux.macvlan import Macvlans
from pycarp.platform.linux.nlerror import OP_TIMEOUT, error_code, reason
from pycarp.platform.linux.sysctl import Sysctls

NETLINK_ROUTE = 0
REAP_DELAY = 0.05  # seconds without an add or remove before empty macvlans are deleted
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


def _holds_nothing(addresses: set[IPv4Address | IPv6Address]) -> bool:
    """Nothing but IPv6 link-local addresses (the kernel's, not ours)."""
    return all(isinstance(a, IPv6Address) and a.is_link_local for a in addresses)


class NetlinkAddressManager:
    """Implements pycarp.platform.base.AddressManager with RTM_NEWADDR / RTM_DELADDR."""

    def __init__(self) -> None:
        try:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        except OSError as exc:
            raise AddressError(f"cannot open a netlink socket: {reason(exc)}") from exc
        try:
            self._ipr: Any = AsyncIPRoute(use_socket=sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._closed = False
        try:
            self._sysctls = Sysctls()  # in this thread's namespace, as the socket
        except OSError as exc:
            self._ipr.close()
            sock.close()
            raise AddressError(f"cannot open this network namespace: {exc.strerror}") from exc
        self._macvlans = Macvlans(self._ipr, self._sysctls)
        self._lock = asyncio.Lock()  # the calls and the reaper take turns
        self._empty: dict[tuple[str, bytes], None] = {}  # (parent, mac) maybe empty, in order
        self._reaper: asyncio.Task[None] | None = None
        self._changed = 0.0  # the loop's time of the last add or remove

    async def _index(self, interface: str) -> int:
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                found = await self._ipr.link_lookup(ifname=interface)
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{interface}: lookup failed: {reason(exc)}") from exc
        if not found:
            raise AddressError(f"{interface}: no such interface")
        return int(found[0])

    async def add(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        for address, prefixlen in networks:
            _check_prefix(address, prefixlen)
        async with self._lock:
            try:
                await self._add(interface, networks, mac)
            finally:
                self._changed = asyncio.get_running_loop().time()

    async def _add(self, interface: str, networks: Sequence[Network], mac: bytes | None) -> None:
        index = await self._index(interface)
        device = interface
        if mac is not None:
            self._empty.pop((interface, mac), None)
            ipv4 = any(isinstance(a, IPv4Address) for a, _ in networks)
            macvlan = await self._macvlans.ensure(interface, index, mac, ipv4=ipv4)
            index, device = macvlan.index, macvlan.name
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
                if error_code(exc) == errno.EEXIST:
                    continue
                raise AddressError(
                    f"{device}: cannot add {address}/{prefixlen}: {reason(exc, address)}"
                ) from exc
            log.debug("added %s/%s to %s", address, prefixlen, device)

    async def remove(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        """With `mac`, the macvlan goes too once no address is left on it (see REAP_DELAY)."""
        for address, prefixlen in networks:
            _check_prefix(address, prefixlen)
        async with self._lock:
            try:
                await self._remove_behind(interface, networks, mac)
            finally:
                self._changed = asyncio.get_running_loop().time()

    async def _remove_behind(
        self, interface: str, networks: Sequence[Network], mac: bytes | None
    ) -> None:
        index = await self._index(interface)
        if mac is None:
            await self._remove(interface, index, networks)
            return
        macvlan = await self._macvlans.find(interface, index, mac)
        if macvlan is None:
            return  # nothing of ours behind that MAC
        await self._remove(macvlan.name, macvlan.index, networks)
        # Whether it holds anything else is for the reaper to see: listing
        # the addresses costs a dump of every interface's.
        self._empty[(interface, mac)] = None
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Delete the macvlans left empty once adds and removes have paused."""
        loop = asyncio.get_running_loop()
        while self._empty:
            if (wait := self._changed + REAP_DELAY - loop.time()) > 0:
                await asyncio.sleep(wait)
                continue
            async with self._lock:  # quiet still, now that it is our turn?
                if self._empty and self._changed + REAP_DELAY <= loop.time():
                    await self._delete_if_empty(*next(iter(self._empty)))

    async def _delete_if_empty(self, parent: str, mac: bytes) -> None:
        self._empty.pop((parent, mac), None)
        try:
            index = await self._index(parent)
        except AddressError:
            return  # the parent gone took its macvlans with it
        try:
            macvlan = await self._macvlans.find(parent, index, mac)
            if macvlan is not None and _holds_nothing(
                await self._listed(macvlan.name, macvlan.index)
            ):
                await self._macvlans.delete(macvlan, parent)
        except AddressError as exc:
            log.warning("%s: macvlan for %s left: %s", parent, mac.hex(":"), exc)

    async def _remove(self, device: str, index: int, networks: Sequence[Network]) -> None:
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
                if error_code(exc) == errno.EADDRNOTAVAIL:  # not there: nothing to do
                    continue
                raise AddressError(
                    f"{device}: cannot remove {address}/{prefixlen}: {reason(exc)}"
                ) from exc
            log.debug("removed %s/%s from %s", address, prefixlen, device)

    async def present(
        self, interface: str, mac: bytes | None = None
    ) -> set[IPv4Address | IPv6Address]:
        """Both families' addresses; IPv6 ones that DAD has not cleared yet included.

        With `mac`, those on pycarp's macvlan with that MAC (none if it does not exist).
        """
        async with self._lock:
            index = await self._index(interface)
            if mac is None:
                return await self._listed(interface, index)
            macvlan = await self._macvlans.find(interface, index, mac)
            return set() if macvlan is None else await self._listed(macvlan.name, macvlan.index)

    async def virtual_macs(self, interface: str) -> set[bytes]:
        async with self._lock:
            return await self._macvlans.macs(interface, await self._index(interface))

    async def _listed(self, device: str, index: int) -> set[IPv4Address | IPv6Address]:
        found: set[IPv4Address | IPv6Address] = set()
        try:
            for family in FAMILIES:
                async with asyncio.timeout(OP_TIMEOUT):
                    found |= await self._dump(family, index)
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{device}: cannot list addresses: {reason(exc)}") from exc
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
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for parent, mac in list(self._empty):  # what the reaper had not done yet
            await self._delete_if_empty(parent, mac)
        try:
            self._ipr.close()
        finally:
            self._sock.close()
            self._sysctls.close()
            self._macvlans.close()
