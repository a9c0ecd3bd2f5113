"""Replay protection: advertisements whose counter was already heard are dropped.

The digest covers the counter but neither advbase/advskew nor the source
address, so a captured advertisement can be replayed, edited to any
priority, from any address. Peers make counters three ways: ucarp draws a
fresh random one per advertisement, pycarp counts up from a random start,
BSD kernels repeat one per virtual host. So the rule is not "the counter
grows" but "a counter is heard once": each virtual host remembers the
counters it accepted, from whichever sender (so a replay from a spoofed
address is caught too): a run of counters counting up as two numbers, and
at least the last WINDOW others (random ones) in sorted arrays of 64-bit
integers (8 bytes a counter: a day of a ucarp peer's is under 1 MB).

A sender whose first REPEATS advertisements carry one counter is a BSD-style
"constant counter" sender: its repeats are accepted (not drops). One that
then sends another counter starts over as a new sender (a BSD host with a
new cookie; or a real master after replays that came first). A sender once
heard with two different counters is never exempt, so replaying a pycarp or
ucarp master's advertisement after it died stays a replay. Our own
counters (the last OWN_RECENT we sent) are dropped from any source: a looped
or spoofed copy of our own advertisement.

`strict`: each sender's counter must also grow (modulo 2**64), which only
pycarp peers do; no sender is exempt. A peer that restarts starts anew after
REPEATS growing counters (the first ones are dropped).
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

from pycarp.core.errors import DropReason
from pycarp.core.packet import COUNTER_MODULUS as MODULUS
from pycarp.core.packet import Address

Mode = Literal["on", "strict", "off"]

BUCKET = 4096  # counters sealed into one sorted array at a time
WINDOW = 86_400 + BUCKET  # random counters remembered per virtual host: a day at one a second
RUNS = 64  # runs of counters counting up (pycarp senders') remembered besides the senders'
OWN_RECENT = 1 << 20  # our own last counters dropped on arrival (they count up)
REPEATS = 3  # identical first counters that make a sender "constant counter"
SENDERS = 16  # senders remembered per virtual host (least recently heard forgotten)


class CounterWindow:
    """At least the last `size` distinct counters added, at most `size` + BUCKET.

    New ones go to a set; every BUCKET of them become one sorted array of
    64-bit integers (8 bytes a counter), the oldest array dropped as a whole.
    """

    def __init__(self, size: int = WINDOW, bucket: int = BUCKET) -> None:
        self.size, self.bucket = size, bucket
        self._sealed: deque[array[int]] = deque()
        self._held = 0  # counters in the sealed arrays
        self._current: set[int] = set()

    def __len__(self) -> int:
        return self._held + len(self._current)

    def __contains__(self, counter: int) -> bool:
        if counter in self._current:
            return True
        for sealed in self._sealed:
            i = bisect.bisect_left(sealed, counter)
            if i < len(sealed) and sealed[i] == counter:
                return True
        return False

    def add(self, counter: int) -> None:
        """Remember a counter (one that is not in the window yet)."""
        self._current.add(counter)
        if len(self._current) < self.bucket:
            return
        self._sealed.append(array("Q", sorted(self._current)))
        self._held += len(self._current)
        self._current = set()
        while self._held > self.size:
            self._held -= len(self._sealed.popleft())


@dataclass
class Sender:
    last: int
    start: int  # the first counter of the run that `last` ends (counting up by one)
    repeats: int = 1  # identical counters in a row, while it never varied
    varied: bool = False
    constant: bool = False
    restart: int | None = None  # strict: the last of the counters that did not grow
    restarts: int = 0  # how many of them, each growing from the one before


def grows(last: int, counter: int) -> bool:
    """`counter` comes after `last` counting up modulo 2**64 (at most half way round)."""
    return 0 < (counter - last) % MODULUS < MODULUS // 2


def within(start: int, end: int, counter: int) -> bool:
    return (counter - start) % MODULUS <= (end - start) % MODULUS


class ReplayGuard:
    """The replay check of one virtual host.

    Counters that count up by one (pycarp's) are kept as runs, two numbers
    however long they get; the others (ucarp's random ones, the first of
    each run) go to the window.
    """

    def __init__(self, mode: Mode = "on", *, window: int = WINDOW, senders: int = SENDERS) -> None:
        self.mode = mode
        self.window = CounterWindow(window)
        self.runs: deque[tuple[int, int]] = deque(maxlen=RUNS)  # of senders that moved on
        self._senders: OrderedDict[Address, Sender] = OrderedDict()
        self._max_senders = senders
        self.flagged: Address | None = None  # set by check() when a sender turns constant

    @property
    def constant_senders(self) -> list[Address]:
        """The senders exempt because they repeat one counter (BSD's replay cookie)."""
        return [a for a, s in self._senders.items() if s.constant]

    def check(self, counter: int, source: Address, *, own: int) -> DropReason | None:
        """Why an authentic advertisement is not accepted, or None (then it is remembered).

        `own` is the counter we last sent; the OWN_RECENT before it are ours too.
        """
        if self.mode == "off":
            return None
        if (own - counter) % MODULUS < OWN_RECENT:
            return DropReason.OWN_COUNTER
        sender = self._senders.get(source)
        if sender is not None:
            self._senders.move_to_end(source)
            if self.mode == "strict":
                if not grows(sender.last, counter) and not self._restarted(sender, counter):
                    return DropReason.REPLAY
            elif counter == sender.last and (sender.constant or not sender.varied):
                sender.repeats += 1
                if not sender.constant and sender.repeats >= REPEATS:
                    sender.constant, self.flagged = True, source
                return None
        if self.heard(counter):
            return DropReason.REPLAY
        if sender is None or sender.constant:  # new, or a constant one with a new cookie
            self._remember(source, Sender(counter, counter))
            self.window.add(counter)
            return None
        if counter != (sender.last + 1) % MODULUS:  # a new run
            self._close(sender)
            sender.start = counter
            self.window.add(counter)
        sender.varied, sender.last, sender.repeats = True, counter, 1
        sender.restart, sender.restarts = None, 0
        return None

    def heard(self, counter: int) -> bool:
        """The counter was accepted before (within the window, or in a run)."""
        if counter in self.window:
            return True
        if any(within(s.start, s.last, counter) for s in self._senders.values()):
            return True
        return any(within(start, end, counter) for start, end in self.runs)

    def _restarted(self, sender: Sender, counter: int) -> bool:
        """Strict: REPEATS counters in a row that grow from a new start, none heard before.

        A pycarp peer that restarts draws a new random start, lower half of
        the time; only captures older than the window could fake this.
        """
        if self.heard(counter):
            return False
        if sender.restart is not None and grows(sender.restart, counter):
            sender.restarts += 1
        else:
            sender.restarts = 1
        sender.restart = counter
        if sender.restarts < REPEATS:
            return False
        sender.restart, sender.restarts = None, 0
        return True

    def _close(self, sender: Sender) -> None:
        if sender.last != sender.start:
            self.runs.append((sender.start, sender.last))

    def _remember(self, source: Address, sender: Sender) -> None:
        self._senders[source] = sender
        if len(self._senders) > self._max_senders:
            self._close(self._senders.popitem(last=False)[1])


REPLAYED = {  # what a drop of each reason says
    DropReason.REPLAY: "replayed advertisement: its counter was already heard",
    DropReason.OWN_COUNTER: "our own advertisement's counter from another address "
    "(looped back or spoofed)",
}


def constant_notice(source: Address) -> str:
    return (
        f"{source} repeats one counter in every advertisement (BSD's replay cookie): "
        "not checking its advertisements for replays"
    )
