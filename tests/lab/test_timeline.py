"""The timeline recorder's outage arithmetic, and its plot on a synthetic run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pycarp.lab.timeline import Timeline, plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEP = 0.02


def synthetic() -> tuple[Timeline, float, float]:
    """zoneA master, crashed at 2 s (3 s outage), zoneB takes over; zoneA back
    as backup; zoneB stopped gracefully at 8 s (one probe lost)."""
    tl = Timeline(clock=lambda: 0.0, t0=0.0)
    for i in range(0, 110):  # states every 0.1 s over 11 s
        t = i / 10
        tl.state(
            "zoneA", "MASTER" if t < 2 else "down" if t < 6 else "INIT" if t < 6.3 else "BACKUP", t
        )
        tl.state(
            "zoneB", "INIT" if t < 0.5 else "BACKUP" if t < 5 else "MASTER" if t < 8 else "down", t
        )
    crash = tl.event("crash zoneA", 2.0)
    tl.event("restart zoneA", 6.0)
    stop = tl.event("graceful stop zoneB", 8.0)
    for n in range(int(11 / STEP)):
        t = n * STEP
        if t < 2.0:
            tl.probe(True, "zoneA", t)
        elif t < 5.0 or abs(t - 8.02) < 1e-9:
            tl.probe(False, None, t)
        elif t < 8.0:
            tl.probe(True, "zoneB", t)
        else:
            tl.probe(True, "zoneA", t)
    tl.finish(11.0)
    return tl, crash, stop


def test_outages_are_runs_of_lost_probes_between_answers() -> None:
    tl, crash, stop = synthetic()
    found = tl.outages()
    assert len(found) == 2
    first, second = found
    assert first.lost == 150 and first.ms == pytest.approx(3000.0 + 20.0)
    assert first.start == pytest.approx(1.98) and first.end == pytest.approx(5.0)
    assert second.lost == 1 and second.ms == pytest.approx(40.0)
    assert tl.outages(crash, stop - 0.1) == [first]  # the answer before may precede it
    assert tl.outages(stop, 11.0) == [second]


def test_outage_at_an_edge_is_not_counted() -> None:
    tl = Timeline(t0=0.0)
    for t, ok in ((0.0, False), (0.02, True), (0.04, True), (0.06, False)):
        tl.probe(ok, "zoneA" if ok else None, t)
    assert tl.outages() == []


def test_longest_silence_without_loss_is_the_probe_interval() -> None:
    tl, _, stop = synthetic()
    assert tl.longest_silence(12.0, 13.0) is None  # after the end
    crashed = tl.longest_silence(2.2, 4.0)  # no answer in there: the gap around it
    assert crashed is not None and crashed.lost == 150
    calm = tl.longest_silence(5.5, 7.5)
    assert calm is not None and calm.lost == 0 and calm.ms == pytest.approx(20.0)
    graceful = tl.longest_silence(stop - 0.5, stop + 1.0)
    assert graceful is not None and graceful.lost == 1
    assert (graceful.start, graceful.end) == pytest.approx((8.0, 8.04))


def test_lost_probes_carry_no_zone_and_states_are_checked() -> None:
    tl = Timeline()
    tl.probe(False, "zoneA")
    assert tl.probes[0].zone is None
    with pytest.raises(ValueError):
        tl.state("zoneA", "LEADER")


def test_recording_from_threads() -> None:
    tl = Timeline()
    threads = [threading.Thread(target=lambda: _many(tl)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tl.probes) == 2000


def test_plot_writes_a_png(tmp_path: Path) -> None:
    tl, _, _ = synthetic()
    out = tmp_path / "timeline.png"
    plot(tl, out)
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000  # bands, labels and legend, not an empty canvas
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 800 and height > 200


def test_plot_of_an_empty_timeline(tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    plot(Timeline(), out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def _many(tl: Timeline) -> None:
    for i in range(500):
        tl.probe(True, "zoneA", float(i))
