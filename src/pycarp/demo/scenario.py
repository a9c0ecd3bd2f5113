"""The scripted failover story: election, crash of the master, its return, graceful stop.

Each phase checks what the reference scenario promises (one master, takeover
after a crash, no preemption, a hand-over on SIGTERM) and measures the
client's outages; DemoError says which promise was broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pycarp.demo.reference import VIP
from pycarp.demo.sampler import Sampler, ZoneRunner
from pycarp.lab.probe import PROBE_TIMEOUT, Prober
from pycarp.lab.timeline import Outage, Timeline
from pycarp.lab.wait import wait_until

PROBE_INTERVAL = 0.02  # seconds between the client's echo requests
PROBE_MAX = 3000  # 60 s of probes at most, whatever happens
ELECTION_TIMEOUT = 10.0  # a lone node needs about 3 s (3 x advbase)
TAKEOVER_TIMEOUT = 10.0
ANSWER_TIMEOUT = 3.0  # seconds for the client to hear the new master
SETTLED = PROBE_TIMEOUT + 0.2  # seconds until the probes sent so far are answered or lost
OUTAGE_LIMIT_MS = 6000.0  # about 3 s is expected after a crash; twice that fails
GRACEFUL_LIMIT_MS = 1000.0  # a hand-over costs the client a probe or two


class DemoError(Exception):
    """A step of the demo did not go as expected; the message says which."""


@dataclass
class Results:
    crash: Outage | None = None
    graceful: Outage | None = None

    def summary(self) -> str:
        crash_ms = self.crash.ms if self.crash else float("nan")
        graceful_ms = self.graceful.ms if self.graceful else float("nan")
        return f"summary: crash outage {crash_ms:.0f} ms, graceful stop outage {graceful_ms:.0f} ms"

    def measured(self) -> list[Outage]:
        return [o for o in (self.crash, self.graceful) if o is not None]


def outage(say: Callable[[str], None], tl: Timeline, what: str, start: float) -> Outage:
    """The client's longest silence since start; DemoError if it heard nothing."""
    found = tl.longest_silence(start, time.monotonic())
    if found is None:
        raise DemoError(f"the client got no answer around the {what}")
    say(f"client outage during the {what}: {found.ms:.0f} ms ({found.lost} probes lost)")
    return found


def took_over(
    say: Callable[[str], None],
    tl: Timeline,
    client: Prober,
    sampler: Sampler,
    zone: ZoneRunner,
    since: float,
    *,
    what: str,
    after: str,
    failed: str,
) -> Outage:
    """zone becomes MASTER (else DemoError(failed)) and answers the client; the client's
    outage during `what`, which happened at since."""
    if not sampler.wait_for(zone, "MASTER", TAKEOVER_TIMEOUT):
        raise DemoError(failed)
    took = (sampler.since[zone.name] - since) * 1000
    say(f"{zone.name} is MASTER {took:.0f} ms after {after}")
    if not wait_until(lambda: client.answered_by(zone.name, since), ANSWER_TIMEOUT):
        raise DemoError(f"the client gets no answer from {zone.name}")
    time.sleep(SETTLED)  # let the probes around the change settle
    return outage(say, tl, what, since)


def scenario(
    say: Callable[[str], None],
    tl: Timeline,
    zones: Sequence[ZoneRunner],
    client: Prober,
    sampler: Sampler,
    results: Results,
) -> None:
    """The phases; results is filled as they go (a failed run still plots)."""
    first, second = zones
    t0 = time.monotonic()
    first.start()
    say(f"started pycarp in {first.name}: pycarp {' '.join(first.args())}")
    if not sampler.wait_for(first, "MASTER", ELECTION_TIMEOUT):
        raise DemoError(f"{first.name} did not become MASTER within {ELECTION_TIMEOUT:.0f} s")
    say(f"{first.name} is MASTER after {time.monotonic() - t0:.2f} s (alone on the segment)")
    second.start()
    say(f"started pycarp in {second.name}")
    if not sampler.wait_for(second, "BACKUP", ELECTION_TIMEOUT):
        raise DemoError(f"{second.name} did not become BACKUP")
    time.sleep(1.5)  # long enough to hear an advertisement
    if sampler.current[first.name] != "MASTER" or sampler.current[second.name] != "BACKUP":
        raise DemoError(f"not one master: {sampler.current}")
    say(f"{first.name} is MASTER, {second.name} is BACKUP")

    client.start(PROBE_MAX)
    say(f"client {client.host.ip} probes {VIP} every {PROBE_INTERVAL * 1000:.0f} ms")
    started = time.monotonic()
    if not wait_until(lambda: client.answered_by(first.name, started), ANSWER_TIMEOUT):
        raise DemoError(f"{first.name} does not answer the client on {VIP}")
    time.sleep(1.5)
    say(f"client: {VIP} answered by {first.name} (the source MAC of the replies)")

    say(f"crash {first.name}: pycarp SIGKILLed, its link down")
    crashed = tl.event(f"crash {first.name}")
    first.crash()
    results.crash = took_over(
        say, tl, client, sampler, second, crashed, what="crash", after="the crash",
        failed=f"{second.name} did not take over within {TAKEOVER_TIMEOUT:.0f} s",
    )  # fmt: skip
    if results.crash.ms > OUTAGE_LIMIT_MS:
        raise DemoError(f"an outage of {results.crash.ms:.0f} ms is above {OUTAGE_LIMIT_MS:.0f}")

    tl.event(f"restart {first.name}")
    first.restart()
    say(f"restarted {first.name} (link up, pycarp started again)")
    if not sampler.wait_for(first, "BACKUP", ELECTION_TIMEOUT):
        raise DemoError(f"{first.name} did not come back as BACKUP")
    time.sleep(2.0)  # no preemption: it must stay BACKUP
    if sampler.current[first.name] != "BACKUP" or sampler.current[second.name] != "MASTER":
        raise DemoError(f"{first.name} did not stay BACKUP: {sampler.current}")
    say(f"{first.name} is BACKUP, {second.name} stays MASTER (no preemption)")

    say(f"graceful stop of {second.name}: SIGTERM to its pycarp")
    stopped = tl.event(f"graceful stop {second.name}")
    if not second.graceful_stop():
        raise DemoError(f"{second.name}'s pycarp did not exit after SIGTERM")
    results.graceful = took_over(
        say, tl, client, sampler, first, stopped, what="graceful stop",
        after=f"the SIGTERM; {second.name}'s pycarp exited",
        failed=f"{first.name} did not take over from the stopping {second.name}",
    )  # fmt: skip
    if results.graceful.ms > GRACEFUL_LIMIT_MS:
        raise DemoError(
            f"the graceful stop cost {results.graceful.ms:.0f} ms, above {GRACEFUL_LIMIT_MS:.0f}"
        )
