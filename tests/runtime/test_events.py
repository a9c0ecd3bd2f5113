"""The event stream: the bus (order, numbering, slow readers) and the control socket's events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pycarp.core.actions import (
    CheckReported,
    DemotionChanged,
    HostKey,
    Reason,
    State,
    StateChanged,
)
from pycarp.lab.wait import wait_until
from pycarp.runtime.control import ControlServer
from pycarp.runtime.events import EventBus, Subscription, event_of
from tests.runtime.test_control import FakeHandler

NOON = 1796131201.123  # 2026-12-01T13:20:01.123 UTC
STAMP = "2026-12-01T13:20:01.123+00:00"
OVERFLOW = {"ok": False, "error": "events: this reader fell 3 events behind; reconnect"}


def take(subscription: Subscription) -> list[dict[str, Any]]:
    """What a reader that keeps up has been sent so far, without waiting."""

    async def drain() -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        while subscription.pending:
            taken.append(await anext(subscription))
        return taken

    return asyncio.run(drain())


# --- the facts as events -------------------------------------------------------------


def test_a_transition_as_an_event() -> None:
    fact = StateChanged(HostKey("eth0", 1), State.BACKUP, State.MASTER, Reason.MASTER_DOWN)
    assert event_of(fact) == {
        "type": "transition",
        "host": "eth0/vhid 1",
        "interface": "eth0",
        "vhid": 1,
        "old": "BACKUP",
        "new": "MASTER",
        "reason": "master_down",
        "why": "no advertisement within the master-down interval",
    }


def test_a_check_result_as_an_event() -> None:
    fact = CheckReported("web", False, "exit status 1", "failing", True)
    assert event_of(fact) == {
        "type": "check",
        "check": "web",
        "ok": False,
        "detail": "exit status 1",
        "state": "failing",
        "changed": True,
    }


def test_a_demotion_change_as_an_event() -> None:
    fact = DemotionChanged("web", 0, 1, "check web is failing", (HostKey("eth0", 1),))
    assert event_of(fact) == {
        "type": "demotion",
        "group": "web",
        "old": 0,
        "new": 1,
        "why": "check web is failing",
        "hosts": ["eth0/vhid 1"],
    }


# --- the bus ---------------------------------------------------------------------------


def test_each_reader_gets_every_event_in_order_numbered_and_stamped() -> None:
    bus = EventBus(clock=lambda: NOON)
    first, second = bus.subscribe(), bus.subscribe()
    for n in range(3):
        bus.publish({"type": "x", "n": n})
    expected = [{"seq": n + 1, "time": STAMP, "type": "x", "n": n} for n in range(3)]
    assert take(first) == expected
    assert take(second) == expected
    assert list(expected[0]) == ["seq", "time", "type", "n"]  # seq and time come first


def test_numbers_go_on_without_readers_and_cost_no_clock() -> None:
    looks: list[int] = []

    def clock() -> float:
        looks.append(1)
        return NOON

    bus = EventBus(clock=clock)
    for _ in range(1000):
        bus.publish({"type": "x"})
    assert looks == []  # nobody listens: nothing is formatted
    late = bus.subscribe()
    bus.publish({"type": "x"})
    assert [event["seq"] for event in take(late)] == [1001]  # from the next event on
    assert looks == [1]


def test_a_reader_that_falls_behind_is_dropped_with_a_last_line() -> None:
    bus = EventBus(limit=3)
    slow, quick = bus.subscribe(), bus.subscribe()
    for n in range(3):
        bus.publish({"n": n})
    assert [e["n"] for e in take(quick)] == [0, 1, 2]
    bus.publish({"n": 3})  # one more than slow can hold
    assert take(slow) == [OVERFLOW]
    assert asyncio.run(_ended(slow))
    bus.publish({"n": 4})
    assert [e["n"] for e in take(quick)] == [3, 4]  # the others lose nothing
    assert bus.subscribers == 1


async def _ended(subscription: Subscription) -> bool:
    try:
        await asyncio.wait_for(anext(subscription), 1)
    except StopAsyncIteration:
        return True
    return False


def test_a_reader_that_never_reads_holds_a_bounded_backlog() -> None:
    bus = EventBus(limit=100)
    stuck = bus.subscribe()
    most = 0
    for n in range(100_000):
        bus.publish({"n": n})
        most = max(most, stuck.pending)
    assert most == 100
    assert stuck.pending == 1  # only the last line is left for it
    assert bus.subscribers == 0


async def test_a_waiting_reader_wakes_for_the_next_event() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    waiting = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    bus.publish({"type": "x"})
    assert (await asyncio.wait_for(waiting, 1))["seq"] == 1


async def test_close_delivers_what_is_queued_then_ends() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    bus.publish({"n": 0})
    subscription.close()
    subscription.close()  # twice is harmless
    bus.publish({"n": 1})  # after close: not for it
    assert [event["n"] async for event in subscription] == [0]
    assert bus.subscribers == 0


async def test_close_ends_a_waiting_reader() -> None:
    subscription = EventBus().subscribe()
    waiting = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0.01)
    subscription.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 1)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        EventBus(limit=0)


# --- over the control socket --------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, FakeHandler, ControlServer]]:
    path = str(tmp_path / "ctl.sock")
    handler = FakeHandler()
    handler.bus = EventBus(limit=3, clock=lambda: NOON)
    server = ControlServer(path, handler, max_clients=2, read_timeout=0.3, write_timeout=0.3)
    await server.start()
    yield path, handler, server
    await server.close()


async def follow(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "events"}\n')
    assert json.loads(await asyncio.wait_for(reader.readline(), 2)) == {
        "ok": True,
        "events": "follow",
    }
    return reader, writer


async def line(reader: asyncio.StreamReader) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 2))
    return value


async def subscribed(handler: FakeHandler, count: int) -> bool:
    return await asyncio.to_thread(wait_until, lambda: handler.bus.subscribers == count, 3)


async def test_events_come_in_order_and_outlive_the_read_timeout(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, _ = served
    reader, writer = await follow(path)
    await asyncio.sleep(0.5)  # longer than the read timeout: a stream is not idle
    handler.bus.publish({"type": "x", "n": 0})
    handler.bus.publish({"type": "x", "n": 1})
    assert [await line(reader), await line(reader)] == [
        {"seq": 1, "time": STAMP, "type": "x", "n": 0},
        {"seq": 2, "time": STAMP, "type": "x", "n": 1},
    ]
    writer.close()


async def test_a_stream_after_other_requests_on_one_connection(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, _ = served
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "status"}\n{"command": "events"}\n{"command": "status"}\n')
    assert (await line(reader))["hosts"]
    assert await line(reader) == {"ok": True, "events": "follow"}
    handler.bus.publish({"type": "x"})
    # what followed the events request was not taken for a request
    assert await line(reader) == {"seq": 1, "time": STAMP, "type": "x"}
    writer.close()


async def test_a_stream_counts_as_a_client(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, _, _ = served
    streams = [await follow(path), await follow(path)]  # max_clients=2
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "status"}\n')
    assert await line(reader) == {"ok": False, "error": "too many control clients; try again"}
    writer.close()
    for _, stream in streams:
        stream.close()


async def test_a_client_that_closes_frees_its_place(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, server = served
    _, writer = await follow(path)
    assert await subscribed(handler, 1)
    writer.close()  # no event comes: the server sees the hang-up by itself
    assert await subscribed(handler, 0)
    assert await asyncio.to_thread(wait_until, lambda: not server._clients, 3)


async def test_a_reader_that_falls_behind_is_told_and_dropped(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, _ = served
    reader, writer = await follow(path)
    for n in range(4):  # all at once, before the server can send any: one more than it holds
        handler.bus.publish({"n": n})
    assert await line(reader) == OVERFLOW
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_a_reader_that_does_not_read_is_dropped_without_slowing_publishing(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, server = served
    handler.bus = EventBus(limit=10_000)
    _, writer = await follow(path)  # and never reads again
    big = "x" * 60_000
    started = time.monotonic()
    for _ in range(100):  # 6 MB: far more than the socket buffers
        handler.bus.publish({"detail": big})
        await asyncio.sleep(0)  # the server gets to write between two
    assert time.monotonic() - started < 1.0
    assert await subscribed(handler, 0)  # after the write timeout
    assert await asyncio.to_thread(wait_until, lambda: not server._clients, 3)
    writer.close()


async def test_close_ends_the_streams_after_what_is_queued(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, server = served
    reader, writer = await follow(path)
    assert await subscribed(handler, 1)
    handler.bus.publish({"type": "transition", "why": "shutting down"})
    await asyncio.wait_for(server.close(), 3)
    assert (await line(reader))["why"] == "shutting down"
    assert await asyncio.wait_for(reader.read(), 2) == b""  # then a clean end
    writer.close()


async def test_a_failing_events_handler_is_an_error_answer(
    served: tuple[str, FakeHandler, ControlServer],
) -> None:
    path, handler, _ = served
    handler.events_error = RuntimeError("no bus")
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "events"}\n')
    assert await line(reader) == {
        "ok": False,
        "error": "events failed: no bus (see the daemon's log)",
    }
    writer.close()
