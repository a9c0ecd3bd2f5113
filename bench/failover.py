"""Failover trials in a cell: a crash or a graceful stop of the master, and a lone start.

Crash: SIGKILL of every process of the master's daemon and its host's port
down at the same instant. Graceful: SIGTERM. The client pings the VIP every
10 ms (the outage is the longest silence between two replies) and captures
the advertisements (the takeover is the new master's first one after the old
master's last, against the protocol's bound). Start-up: a lone daemon from
exec to its first advertisement on the wire, less the master-down wait the
protocol asks for first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.rig import Cell, Unsettled, pause
from bench.wire import Capture, stamps_from, takeover
from pycarp.lab import LabError
from pycarp.lab.probe import PingProbe, longest_silence_ms, probe_results
from pycarp.lab.wait import wait_until

PROBE_INTERVAL = 0.01
PROBE_MAX = 3000  # 30 s of probes at most
TAKEOVER_SLACK = 5.0  # seconds past the bound a takeover may take before the trial fails
TAIL = 0.4  # seconds of probes after the takeover
STOP_WAIT = 3.0  # seconds a stopped master has to exit before it is killed


def _settle_time(cell: Cell) -> float:
    """How long a fresh backup listens before a trial: a few advertisements, 0.6 s at least."""
    return max(0.6, 1.5 * cell.interval + 0.2)


def kill_phase(n: int, trials: int) -> float:
    """Where trial n of `trials` stops the master within an advertisement interval: spread
    evenly, the same for every kind, so that outages compare (a crash right after an
    advertisement costs the client a whole interval more than one right before the next)."""
    return (n % trials + 0.5) / trials


def _wait_phase(capture: Capture, source: str, interval: float, phase: float) -> None:
    """Sleep until `phase` of an interval after one of source's advertisements."""
    stamps = stamps_from(capture.packets(), source)
    if not stamps:
        return
    target = stamps[-1] + phase * interval
    while target < time.time() + 0.005:
        target += interval
    pause(target - time.time())


def failover_trial(cell: Cell, mode: str, n: int, trials: int = 1) -> dict[str, Any]:
    """One crash ("crash") or graceful stop ("graceful") of the cell's master, at
    kill_phase(n, trials); never raises for a daemon that misbehaves (status "failed" and the
    error)."""
    result: dict[str, Any] = {
        "kind": cell.kind,
        "timing": cell.timing.name,
        "mode": mode,
        "trial": n,
        "status": "failed",
        "error": None,
        "interval_s": round(cell.interval, 6),
        "bound_s": round(cell.bound, 6),
    }
    probe: PingProbe | None = None
    capture: Capture | None = None
    try:
        if cell.fresh:
            cell.close()
        master = cell.pair_up()
        backup = cell.peer(master)
        old, new = cell.host(master), cell.host(backup)
        workdir = cell.groups[master].workdir
        capture = Capture(cell.client, workdir / f"capture-{mode}-{n}.txt", 60).start()
        vip = cell.groups[master].vips[0]
        probe = PingProbe(
            cell.client, vip, workdir / f"ping-{mode}-{n}.txt", PROBE_INTERVAL, PROBE_MAX
        )
        probe.start()
        pause(_settle_time(cell))
        if cell.master_role() != master:
            raise Unsettled(f"no stable pair before the {mode}: {cell.states()}")
        result["phase"] = round(kill_phase(n, trials), 3)
        _wait_phase(capture, old.ip, cell.interval, result["phase"])
        at = time.time()
        if mode == "crash":
            cell.groups[master].kill()
            old.link_down(wait=False)
        else:
            cell.groups[master].terminate()
        took = wait_until(lambda: cell.has_vip(backup), cell.bound + TAKEOVER_SLACK)
        seen_at = time.time()
        pause(TAIL)
        sent, stamps = probe_results(probe.stop())
        packets = capture.stop()
        fallen = cell.groups[master]
        wait_until(lambda: not any(p.poll() is None for p in fallen.procs), STOP_WAIT)
        cell.close_role(master)  # whatever is left of it, and a VIP a crash left behind
        if not took:
            raise RuntimeError(f"{backup} did not take over: {cell.groups[backup].log_tail()}")
        last_old, first_new = takeover(packets, old.ip, new.ip, at - 0.001)
        after = [t for t in stamps if t >= at - 0.5]
        result.update(
            status="ok",
            outage_ms=round(longest_silence_ms(after), 1),
            probes_sent=sent,
            replies=len(stamps),
            vip_seen_s=round(seen_at - at, 4),
            adverts_old=len(stamps_from(packets, old.ip)),
        )
        if last_old is not None and first_new is not None:
            gap = first_new - last_old
            result.update(
                takeover_s=round(gap, 4),
                excess_ms=round((gap - cell.bound) * 1000, 1),
                stop_to_takeover_s=round(first_new - at, 4),
                stop_after_last_advert_ms=round((at - last_old) * 1000, 1),
            )
        else:
            result["error"] = "the capture misses the old master's last or the new one's first"
    except Unsettled as exc:
        result.update(status="unsettled", error=str(exc))
    except (RuntimeError, OSError, LabError) as exc:
        result["error"] = str(exc)
    finally:
        for stopper in (probe.stop if probe else None, capture.stop if capture else None):
            if stopper is not None:
                stopper()
    _recover(cell, result)
    return result


def _recover(cell: Cell, result: dict[str, Any]) -> None:
    """Bring the fallen host back as the backup; a fresh pair if there is no clear master."""
    try:
        master = cell.master_role()
        if cell.fresh:
            cell.close()  # the next trial starts a fresh pair
            return
        if master is None:
            cell.close()
            cell.pair_up()
            return
        backup = cell.peer(master)
        group = cell.groups.get(backup)
        if group is None or not group.alive() or group.states().get(cell.vhid) != "BACKUP":
            cell.rejoin(backup)
    except (RuntimeError, OSError, LabError) as exc:
        result["recover_error"] = str(exc)
        cell.close()


def startup_trial(cell: Cell, n: int) -> dict[str, Any]:
    """A lone daemon on host a: exec to its first advertisement, and that less the master-down
    wait. Leaves the cell empty."""
    result: dict[str, Any] = {
        "kind": cell.kind,
        "timing": cell.timing.name,
        "trial": n,
        "status": "failed",
        "error": None,
        "bound_s": round(cell.bound, 6),
    }
    cell.close()
    role = cell.a.role
    capture = Capture(cell.client, cell.top / f"startup-{cell.index}-{n}.txt", 60).start()
    try:
        group = cell.start(role)
        first = wait_until(lambda: bool(stamps_from(capture.packets(), cell.a.ip)), cell.bound + 10)
        packets = capture.stop()
        if not first:
            raise RuntimeError(f"no advertisement: {group.log_tail()}")
        t = min(stamps_from(packets, cell.a.ip)) - group.started_at
        result.update(status="ok", first_advert_s=round(t, 4),
                      overhead_s=round(t - cell.bound, 4))  # fmt: skip
    except (RuntimeError, OSError, LabError) as exc:
        result["error"] = str(exc)
    finally:
        capture.stop()
        cell.close()
    return result


def run_interleaved(
    cells: list[Cell], trials: int, trial: Callable[[Cell, int], dict[str, Any]],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:  # fmt: skip
    """trial(cell, n) for n in range(trials), cell by cell within each n."""
    out = []
    for n in range(trials):
        for cell in cells:
            result = trial(cell, n)
            say(describe(result))
            out.append(result)
    return out


def describe(result: dict[str, Any]) -> str:
    head = (
        f"{result['kind']}/{result['timing']} {result.get('mode', 'start-up')} #{result['trial']}"
    )
    if result["status"] != "ok":
        return f"{head}: {result['status']}: {result['error']}"
    if "first_advert_s" in result:
        return f"{head}: first advertisement {result['first_advert_s']:.3f} s"
    takeover_s = result.get("takeover_s")
    tail = f", takeover {takeover_s:.3f} s (bound {result['bound_s']:.3f})" if takeover_s else ""
    return f"{head}: outage {result['outage_ms']:.0f} ms{tail}"
