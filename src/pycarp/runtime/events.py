"""The daemon's event stream: transitions, check results and demotion changes, in order.

The daemon publishes each fact once (EventBus.publish); each reader of the
control socket's ``events`` request has a Subscription. A reader that keeps
up gets every event, numbered 1, 2, ... without gaps; one that falls
``limit`` events behind is dropped with a last line that says so, so that
publishing never blocks, never waits for a reader and never grows memory
without bound. Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pycarp.core.actions import CheckReported, DemotionChanged, StateChanged

__all__ = ["LIMIT", "EventBus", "Subscription", "event_of"]

LIMIT = 10_000  # events a reader may fall behind before it is dropped


def event_of(fact: StateChanged | CheckReported | DemotionChanged) -> dict[str, Any]:
    """The fields of the event line for a core fact (publish() adds ``seq`` and ``time``)."""
    if isinstance(fact, StateChanged):
        return {
            "type": "transition",
            "host": str(fact.key),
            "interface": fact.key.interface,
            "vhid": fact.key.vhid,
            "old": fact.old.value,
            "new": fact.new.value,
            "reason": fact.reason.code,
            "why": fact.reason.value,
        }
    if isinstance(fact, CheckReported):
        return {
            "type": "check",
            "check": fact.name,
            "ok": fact.ok,
            "detail": fact.detail,
            "state": fact.state,
            "changed": fact.changed,
        }
    return {
        "type": "demotion",
        "group": fact.group,
        "old": fact.old,
        "new": fact.new,
        "why": fact.why,
        "hosts": [str(key) for key in fact.hosts],
    }


class Subscription:
    """One reader's events, as an async iterator; it ends after close() or when dropped."""

    def __init__(self, limit: int, leave: Callable[[Subscription], None]) -> None:
        self._limit = limit
        self._leave = leave
        self._queue: deque[dict[str, Any]] = deque()
        self._open = True
        self._ready = asyncio.Event()  # set while there is something to take, or at the end

    @property
    def pending(self) -> int:
        """Events published and not yet taken."""
        return len(self._queue)

    def close(self) -> None:
        """No more events; the ones already queued are still delivered, then iteration ends."""
        if self._open:
            self._open = False
            self._leave(self)
        self._ready.set()

    def _put(self, event: dict[str, Any]) -> None:
        if not self._open:
            return
        if len(self._queue) >= self._limit:
            # Its backlog is of no use now: the reader must read the status again.
            self._queue.clear()
            self._queue.append(
                {
                    "ok": False,
                    "error": f"events: this reader fell {self._limit} events behind; reconnect",
                }
            )
            self.close()
            return
        self._queue.append(event)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._queue:
            if not self._open:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class EventBus:
    """Numbers and time-stamps each event and hands it to every subscriber."""

    def __init__(self, *, limit: int = LIMIT, clock: Callable[[], float] = time.time) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self._limit = limit
        self._clock = clock  # wall clock: the time a person reads, not for deadlines
        self._seq = 0
        self._subscriptions: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` with the next ``seq`` and the ``time`` (ISO 8601, UTC, ms) to all."""
        self._seq += 1
        if not self._subscriptions:
            return  # numbered all the same: seq counts every event since the start
        stamp = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")
        line = {"seq": self._seq, "time": stamp, **event}
        for subscription in list(self._subscriptions):  # one that overflows leaves the set
            subscription._put(line)

    def subscribe(self) -> Subscription:
        """A new reader, from the next event on."""
        subscription = Subscription(self._limit, self._subscriptions.discard)
        self._subscriptions.add(subscription)
        return subscription
