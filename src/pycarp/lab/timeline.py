"""A timeline of a lab run: zone states, client probes, events; and its plot.

The recorder is thread-safe (the demo samples states and probes from
threads) and keeps plain monotonic timestamps; the plot shows them relative
to the start. `plot` draws with matplotlib's Agg backend, so no display is
needed; matplotlib is imported only there (it is the optional `lab` extra).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STATES",
    "Event",
    "Outage",
    "Probe",
    "StateSample",
    "Timeline",
    "plot",
]

STATES = ("MASTER", "BACKUP", "INIT", "down")


@dataclass(frozen=True)
class StateSample:
    t: float
    zone: str
    state: str  # one of STATES


@dataclass(frozen=True)
class Probe:
    t: float  # when the echo request left
    ok: bool
    zone: str | None  # the zone whose MAC answered; None if lost or unknown


@dataclass(frozen=True)
class Event:
    t: float
    label: str


@dataclass(frozen=True)
class Outage:
    """The client's time without an answer: last reply before to first reply after."""

    start: float
    end: float
    lost: int  # probes without an answer in between

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass
class Timeline:
    clock: Callable[[], float] = time.monotonic
    t0: float = field(default=-1.0)
    zones: list[str] = field(default_factory=list)
    states: list[StateSample] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    end: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.t0 < 0:
            self.t0 = self.clock()

    def _now(self, t: float | None) -> float:
        return self.clock() if t is None else t

    def state(self, zone: str, state: str, t: float | None = None) -> None:
        """Record a sample; repeated samples of an unchanged state are kept
        (cheap) so the bands end where sampling stopped."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._lock:
            if zone not in self.zones:
                self.zones.append(zone)
            self.states.append(StateSample(self._now(t), zone, state))

    def probe(self, ok: bool, zone: str | None = None, t: float | None = None) -> None:
        with self._lock:
            self.probes.append(Probe(self._now(t), ok, zone if ok else None))

    def event(self, label: str, t: float | None = None) -> float:
        """Record an event; returns its time, for windows of outages()."""
        with self._lock:
            event = Event(self._now(t), label)
            self.events.append(event)
        return event.t

    def finish(self, t: float | None = None) -> None:
        self.end = self._now(t)

    def stop_time(self) -> float:
        if self.end is not None:
            return self.end
        stamps = [s.t for s in self.states] + [p.t for p in self.probes]
        stamps += [e.t for e in self.events]
        return max(stamps, default=self.t0)

    def sorted_probes(self, start: float | None = None, end: float | None = None) -> list[Probe]:
        with self._lock:
            probes = sorted(self.probes, key=lambda p: p.t)
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        return [p for p in probes if lo <= p.t <= hi]

    def outages(self, start: float | None = None, end: float | None = None) -> list[Outage]:
        """Every run of lost probes, with an answered probe on both sides (a
        run at either edge has no measurable length), that overlaps [start,
        end]: the answer before it may come before start."""
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        found: list[Outage] = []
        last_ok: Probe | None = None
        lost = 0
        for probe in self.sorted_probes():
            if not probe.ok:
                lost += 1
                continue
            if last_ok is not None and lost and probe.t >= lo and last_ok.t <= hi:
                found.append(Outage(last_ok.t, probe.t, lost))
            last_ok, lost = probe, 0
        return found

    def longest_silence(self, start: float, end: float) -> Outage | None:
        """The longest gap between consecutive answers overlapping [start, end],
        lost probes or not: with none lost it is about the probe interval,
        which is what "no outage" looks like to the client. None: no gap
        (fewer than two answers around the window)."""
        probes = self.sorted_probes()
        answered = [p for p in probes if p.ok]
        gaps = [(a, b) for a, b in itertools.pairwise(answered) if b.t >= start and a.t <= end]
        if not gaps:
            return None
        a, b = max(gaps, key=lambda ab: ab[1].t - ab[0].t)
        lost = sum(1 for p in probes if a.t < p.t < b.t and not p.ok)
        return Outage(a.t, b.t, lost)


# --- the plot ----------------------------------------------------------------------

STATE_COLORS = {"MASTER": "#2e7d32", "BACKUP": "#1565c0", "INIT": "#f9a825", "down": "#9e9e9e"}
ZONE_COLORS = ("#8e24aa", "#ef6c00", "#00838f", "#6d4c41")
LOST_COLOR = "#d32f2f"


def _state_bands(samples: Sequence[StateSample], stop: float) -> list[tuple[float, float, str]]:
    """(start, end, state) runs; each sample holds until the next one."""
    bands: list[tuple[float, float, str]] = []
    for i, sample in enumerate(samples):
        until = samples[i + 1].t if i + 1 < len(samples) else stop
        if bands and bands[-1][2] == sample.state and bands[-1][1] == sample.t:
            bands[-1] = (bands[-1][0], until, sample.state)
        else:
            bands.append((sample.t, until, sample.state))
    return bands


def _probe_bands(
    probes: Sequence[Probe], step: float
) -> list[tuple[float, float, str | None, bool]]:
    """(start, end, zone, ok) runs of probes answered by the same zone (or lost)."""
    bands: list[tuple[float, float, str | None, bool]] = []
    for probe in probes:
        key = (probe.zone, probe.ok)
        if bands and (bands[-1][2], bands[-1][3]) == key and probe.t - bands[-1][1] <= 3 * step:
            bands[-1] = (bands[-1][0], probe.t + step, probe.zone, probe.ok)
        else:
            bands.append((probe.t, probe.t + step, probe.zone, probe.ok))
    return bands


def _probe_step(probes: Sequence[Probe]) -> float:
    gaps = sorted(b.t - a.t for a, b in itertools.pairwise(probes) if b.t > a.t)
    return gaps[len(gaps) // 2] if gaps else 0.02  # the median interval


def plot(
    timeline: Timeline,
    path: Path | str,
    title: str = "pycarp: zone states and the client's view of the VIP",
    outages: Sequence[Outage] | None = None,
) -> None:
    """Draw the timeline as a PNG at path. outages: those to annotate
    (default: every run of lost probes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    t0 = timeline.t0
    stop = timeline.stop_time()
    zones = list(timeline.zones)
    for probe in timeline.probes:
        if probe.zone is not None and probe.zone not in zones:
            zones.append(probe.zone)
    zone_color = {z: ZONE_COLORS[i % len(ZONE_COLORS)] for i, z in enumerate(zones)}
    rows = [*zones, "client"]
    y = {name: len(rows) - 1 - i for i, name in enumerate(rows)}  # first zone on top
    height = 0.6

    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.9 * len(rows)), dpi=110)
    try:
        for zone in zones:
            samples = sorted((s for s in timeline.states if s.zone == zone), key=lambda s: s.t)
            for start, end, state in _state_bands(samples, stop):
                ax.broken_barh(
                    [(start - t0, max(end - start, 1e-3))],
                    (y[zone] - height / 2, height),
                    facecolors=STATE_COLORS[state],
                )
                if end - start > 0.06 * max(stop - t0, 1e-9):
                    ax.text(
                        (start + end) / 2 - t0, y[zone], state, ha="center", va="center",
                        color="white", fontsize=8, fontweight="bold",
                    )  # fmt: skip

        probes = timeline.sorted_probes()
        for start, end, who, ok in _probe_bands(probes, _probe_step(probes)):
            if not ok:
                continue  # a gap: nobody answered
            ax.broken_barh(
                [(start - t0, end - start)],
                (y["client"] - height / 2, height),
                facecolors=zone_color.get(who or "", "#424242"),
            )
        for probe in probes:
            if not probe.ok:  # a thin red tick per lost probe under the gap
                ax.plot(
                    [probe.t - t0] * 2,
                    [y["client"] - height / 2, y["client"] - height / 2 - 0.12],
                    color=LOST_COLOR, linewidth=0.8,
                )  # fmt: skip

        for outage in timeline.outages() if outages is None else outages:
            mid = (outage.start + outage.end) / 2 - t0
            ax.annotate(
                f"outage {outage.ms:.0f} ms\n({outage.lost} lost)",
                xy=(mid, y["client"] - height / 2), xytext=(mid, y["client"] - 1.05),
                ha="center", va="bottom", fontsize=8, color=LOST_COLOR,
                bbox={"boxstyle": "round", "fc": "white", "ec": LOST_COLOR, "lw": 0.6},
                arrowprops={"arrowstyle": "->", "color": LOST_COLOR},
            )  # fmt: skip

        top = len(rows) - 0.35
        for i, event in enumerate(sorted(timeline.events, key=lambda e: e.t)):
            ax.axvline(event.t - t0, color="black", linestyle="--", linewidth=0.9)
            ax.text(
                event.t - t0, top + 0.18 * (i % 2), f" {event.label}",
                fontsize=8, ha="left", va="bottom", rotation=0,
            )  # fmt: skip

        ax.set_yticks([y[r] for r in rows])
        ax.set_yticklabels([*zones, "client\n(answered by)"])
        ax.set_ylim(-1.15, len(rows) + 0.3)  # room for outage labels under the client
        ax.set_xlim(0, max(stop - t0, 1e-3))
        ax.set_xlabel("seconds since start")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        legend = [Patch(color=c, label=s) for s, c in STATE_COLORS.items()]
        legend += [Patch(color=zone_color[z], label=f"reply from {z}") for z in zones]
        legend.append(Patch(color=LOST_COLOR, label="probe lost"))
        ax.legend(
            handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.2),
            ncol=len(legend), fontsize=8, frameon=False,
        )  # fmt: skip
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        plt.close(fig)
