"""One queue for every address change of the process.

A hundred virtual hosts becoming MASTER together used to send a hundred
netlink requests at once on one socket: the kernel's answers overflowed it
(ENOBUFS) or never came, and no address was configured. Here requests wait
in one queue, served one call at a time; consecutive requests of the same
kind for the same interface go to the platform as one call (one interface
lookup), and a failed call is tried again with backoff before its requests
fail. The caller (a per-host job) awaits its own request only. Requests
behind a virtual MAC (`mac`) batch only with those behind the same MAC.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pycarp.core import vrrp
from pycarp.core.actions import Network
from pycarp.core.config import VirtualHostConfig
from pycarp.core.packet import Address
from pycarp.platform.base import AddressError, AddressManager

log = logging.getLogger("pycarp")

Networks = Sequence[Network]
RETRY_DELAYS = (0.05, 0.2)  # seconds before the second and third attempt of a call
MAX_BATCH = 256  # requests in one call
SPLIT_BUDGET = 10.0  # seconds to spend retrying a failed batch request by request


@dataclass
class Request:
    op: Literal["add", "remove"]
    interface: str
    networks: tuple[Network, ...]
    done: asyncio.Future[None] = field(repr=False)
    mac: bytes | None = None

    @property
    def batch(self) -> tuple[str, str, bytes | None]:
        """What requests share to go to the platform as one call."""
        return self.op, self.interface, self.mac


class AddressQueue:
    """An AddressManager that serialises, batches and retries another one."""

    def __init__(
        self, manager: AddressManager, *, retry_delays: Sequence[float] = RETRY_DELAYS
    ) -> None:
        self.manager = manager
        self._retry_delays = tuple(retry_delays)
        self._pending: deque[Request] = deque()
        self._current: list[Request] = []  # the batch being carried out
        self._worker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # present() and the worker take turns

    async def add(self, interface: str, networks: Networks, mac: bytes | None = None) -> None:
        await self._submit("add", interface, networks, mac)

    async def remove(self, interface: str, networks: Networks, mac: bytes | None = None) -> None:
        await self._submit("remove", interface, networks, mac)

    async def present(self, interface: str, mac: bytes | None = None) -> set[Address]:
        async with self._lock:
            if mac is None:  # a mac only when there is one: managers made before it fit
                return await self.manager.present(interface)
            return await self.manager.present(interface, mac)

    async def virtual_macs(self, interface: str) -> set[bytes]:
        async with self._lock:
            return await self.manager.virtual_macs(interface)

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        stopping = AddressError("pycarp is stopping")
        for request in [*self._current, *self._pending]:
            _settle(request, stopping)
        self._pending.clear()
        await self.manager.close()

    async def _submit(
        self, op: Literal["add", "remove"], interface: str, networks: Networks, mac: bytes | None
    ) -> None:
        loop = asyncio.get_running_loop()
        request = Request(op, interface, tuple(networks), loop.create_future(), mac)
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve())
        await request.done

    async def _serve(self) -> None:
        while self._pending:
            batch = [self._pending.popleft()]
            while (
                self._pending
                and len(batch) < MAX_BATCH
                and self._pending[0].batch == batch[0].batch
            ):
                batch.append(self._pending.popleft())
            self._current = batch
            async with self._lock:
                await self._carry_out(batch)
            self._current = []

    async def _carry_out(self, batch: list[Request]) -> None:
        first = batch[0]
        networks = [n for r in batch for n in r.networks]
        try:
            await self._call(first, networks)
        except AddressError as exc:
            if len(batch) == 1:
                _settle(first, exc)
                return
            log.debug("%s of %d requests failed (%s): one by one", first.op, len(batch), exc)
            await self._one_by_one(batch, exc)
            return
        for request in batch:
            _settle(request, None)

    async def _one_by_one(self, batch: list[Request], error: AddressError) -> None:
        """Find which requests of a failed batch fail, within a time budget."""
        deadline = time.monotonic() + SPLIT_BUDGET
        for request in batch:
            if time.monotonic() >= deadline:
                _settle(request, error)  # a wedged kernel: do not try each for long
                continue
            try:
                await self._single(request)
            except AddressError as exc:
                error = exc
                _settle(request, exc)
            else:
                _settle(request, None)

    async def _single(self, request: Request) -> None:
        await self._attempt(request, request.networks)

    async def _call(self, first: Request, networks: Networks) -> None:
        """The batch that `first` leads, tried again after each delay."""
        for delay in (*self._retry_delays, None):
            try:
                await self._attempt(first, networks)
                return
            except AddressError as exc:
                if delay is None:
                    raise
                what = f"{first.op} on {first.interface}"
                log.debug("%s failed (%s): again in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)

    async def _attempt(self, first: Request, networks: Networks) -> None:
        """One call to the platform; whatever it raises of the system's is an AddressError."""
        method = self.manager.add if first.op == "add" else self.manager.remove
        try:
            if first.mac is None:
                await method(first.interface, networks)
            else:
                await method(first.interface, networks, first.mac)
        except OSError as exc:  # an adapter that let one through
            raise AddressError(f"{first.interface}: {exc.strerror or exc}") from exc


def _settle(request: Request, error: AddressError | None) -> None:
    if request.done.done():
        return  # the caller was cancelled
    if error is None:
        request.done.set_result(None)
    else:
        request.done.set_exception(error)


def stale_macs(vhid: int) -> tuple[bytes, bytes]:
    """The virtual MACs an earlier run may have left a vhid's addresses behind, whatever
    its config said then: VRRP's IPv4 one (CARP's too) and VRRP's IPv6 one."""
    return vrrp.virtual_mac(vhid, 4), vrrp.virtual_mac(vhid, 6)


async def remove_stale(
    addresses: AddressManager, configs: Iterable[VirtualHostConfig], *, virtual_macs: bool
) -> None:
    """Addresses of ours left by a crashed predecessor go: on the interfaces and, with
    ``virtual_macs`` (the platform has them), behind the vhids' virtual MACs, whose
    macvlan goes with its last address (an empty one left is reused by the next add)."""
    by_interface: dict[str, list[VirtualHostConfig]] = {}
    for config in configs:
        if config.plumbs:
            by_interface.setdefault(config.interface, []).append(config)
    for interface, on_it in by_interface.items():
        try:
            found = await addresses.virtual_macs(interface) if virtual_macs else set()
        except (AddressError, OSError) as exc:
            log.error("%s: could not check for stale virtual MACs: %s", interface, exc)
            found = set()
        places = [None, *(m for c in on_it for m in stale_macs(c.vhid) if m in found)]
        for mac in dict.fromkeys(places):  # one listing per interface and MAC
            try:
                present = await addresses.present(interface, mac)
                for config in on_it:
                    if mac is None or mac in stale_macs(config.vhid):
                        await _remove_stale_of(addresses, config, present, mac)
            except (AddressError, OSError) as exc:
                log.error("%s: could not check for stale addresses: %s", interface, exc)


async def _remove_stale_of(
    addresses: AddressManager, config: VirtualHostConfig, present: set[Address], mac: bytes | None
) -> None:
    stale = [(a, p) for a, p in config.networks if a in present]
    if not stale:
        return
    shown = ", ".join(str(a) for a, _ in stale)
    behind = "" if mac is None else f" behind {mac.hex(':')}"
    log.warning(
        "%s/vhid %d: %s already configured%s while not MASTER (left by an earlier run?): removing",
        config.interface,
        config.vhid,
        shown,
        behind,
    )
    await addresses.remove(config.interface, stale, mac)
