"""AddressQueue: one request at a time, batched per interface, retried with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest

from pycarp.platform.base import AddressError
from pycarp.runtime.plumbing import AddressQueue

Networks = Sequence[tuple[IPv4Address, int]]


def net(i: int) -> tuple[IPv4Address, int]:
    return IPv4Address(f"203.0.113.{i}"), 32


class FlakyManager:
    """Records calls; fails the first `fail` calls, and always for `refused` addresses."""

    def __init__(self, fail: int = 0, refused: frozenset[IPv4Address] = frozenset()) -> None:
        self.calls: list[tuple[str, str, list[IPv4Address]]] = []
        self.fail = fail
        self.refused = refused
        self.active = 0
        self.most_active = 0
        self.closed = False

    async def _op(self, op: str, interface: str, networks: Networks) -> None:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(0.001)
            self.calls.append((op, interface, [a for a, _ in networks]))
            if self.fail:
                self.fail -= 1
                raise AddressError(f"{interface}: cannot {op}: No buffer space available")
            bad = [a for a, _ in networks if a in self.refused]
            if bad:
                raise AddressError(f"{interface}: cannot {op} {bad[0]}: refused")
        finally:
            self.active -= 1

    async def add(self, interface: str, networks: Networks) -> None:
        await self._op("add", interface, networks)

    async def remove(self, interface: str, networks: Networks) -> None:
        await self._op("remove", interface, networks)

    async def present(self, interface: str) -> set[IPv4Address]:
        return set()

    async def close(self) -> None:
        self.closed = True


async def test_255_concurrent_adds_are_serialised_and_batched() -> None:
    manager = FlakyManager()
    queue = AddressQueue(manager)
    await asyncio.gather(*(queue.add("eth0", [net(i)]) for i in range(1, 256)))
    assert manager.most_active == 1  # never two requests in flight
    assert len(manager.calls) <= 3  # the first alone, then the rest together
    added = [a for _, _, addresses in manager.calls for a in addresses]
    assert added == [net(i)[0] for i in range(1, 256)]  # in the order asked


async def test_batches_keep_order_across_kinds_and_interfaces() -> None:
    manager = FlakyManager()
    queue = AddressQueue(manager)
    await asyncio.gather(
        queue.add("eth0", [net(1)]),
        queue.remove("eth0", [net(2)]),
        queue.add("eth1", [net(3)]),
        queue.add("eth1", [net(4)]),
    )
    assert [(op, i) for op, i, _ in manager.calls] == [
        ("add", "eth0"),
        ("remove", "eth0"),
        ("add", "eth1"),
    ]
    assert manager.calls[-1][2] == [net(3)[0], net(4)[0]]


async def test_a_transient_failure_is_retried() -> None:
    manager = FlakyManager(fail=2)
    queue = AddressQueue(manager, retry_delays=(0.01, 0.01))
    await queue.add("eth0", [net(1)])
    assert len(manager.calls) == 3


async def test_a_lasting_failure_reaches_the_caller_after_the_retries() -> None:
    manager = FlakyManager(fail=10)
    queue = AddressQueue(manager, retry_delays=(0.01, 0.01))
    with pytest.raises(AddressError, match="No buffer space"):
        await queue.add("eth0", [net(1)])
    assert len(manager.calls) == 3


async def test_one_refused_address_fails_only_its_own_request() -> None:
    manager = FlakyManager(refused=frozenset({net(5)[0]}))
    queue = AddressQueue(manager, retry_delays=(0.0,))
    results = await asyncio.gather(
        *(queue.add("eth0", [net(i)]) for i in range(1, 10)), return_exceptions=True
    )
    failed = [i for i, r in zip(range(1, 10), results, strict=True) if r is not None]
    assert failed == [5]
    assert isinstance(results[4], AddressError) and "refused" in str(results[4])


async def test_close_fails_what_is_still_queued_and_closes_the_manager() -> None:
    manager = FlakyManager()
    queue = AddressQueue(manager)
    first = asyncio.ensure_future(queue.add("eth0", [net(1)]))
    second = asyncio.ensure_future(queue.remove("eth1", [net(2)]))
    await asyncio.sleep(0)  # the first is in flight (the manager sleeps), the second waits
    await asyncio.sleep(0)
    await queue.close()
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 1)
    assert all(isinstance(r, AddressError) for r in results), results
    assert manager.closed


class OSErrorManager(FlakyManager):
    """An adapter that lets the system's OSError through for one address."""

    async def add(self, interface: str, networks: Networks) -> None:
        await self._op("add", interface, networks)
        if any(a == net(3)[0] for a, _ in networks):
            raise OSError(99, "Cannot assign requested address")


async def test_an_oserror_in_a_batch_fails_only_its_request_and_never_hangs() -> None:
    queue = AddressQueue(OSErrorManager(), retry_delays=(0.0,))
    adds = (queue.add("eth0", [net(i)]) for i in range(1, 6))
    results = await asyncio.wait_for(asyncio.gather(*adds, return_exceptions=True), 2.0)
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["AddressError"] + [
        "NoneType"
    ] * 2
    assert "Cannot assign requested address" in str(results[2])
