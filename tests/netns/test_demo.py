"""`pycarp demo` end to end: it passes, reports both outages, plots, and leaves nothing behind."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pycarp.demo import command as demo
from pycarp.lab.netns import NETNS_DIR
from pycarp.lab.zones import rundir_of

pytestmark = pytest.mark.netns

DEMO_TIMEOUT = 90.0  # it takes about 16 s
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def start_demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pycarp", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """The demo's output up to the first line matching pattern (bounded in time)."""
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = proc.stdout.readline()
            if not line:
                break
            out += line
            if re.search(pattern, line):
                return out
    proc.kill()
    proc.wait(timeout=10)
    pytest.fail(f"demo output never matched {pattern!r}:\n{out}")


def namespaces_of(output: str) -> list[str]:
    match = re.search(r"lab up: namespaces (.+)", output)
    assert match, output
    names = match.group(1).split()
    assert names and all(n.startswith("pycarp-") for n in names), output
    return names


def left_over(names: list[str]) -> list[str]:
    """Namespaces and the lab's run directory still there. Only ours: other
    labs may be running at the same time."""
    lab = names[0].removeprefix("pycarp-").removesuffix("-br")
    left = [n for n in names if os.path.exists(os.path.join(NETNS_DIR, n))]
    return left + [str(rundir_of(lab))] * rundir_of(lab).exists()


def test_demo_shows_takeover_and_hand_over_and_cleans_up(tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    proc = start_demo("--plot", str(png))
    try:
        out, _ = proc.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert re.search(r"zoneA is MASTER after [\d.]+ s", out), out
    assert "zoneA is MASTER, zoneB is BACKUP" in out, out
    assert "answered by zoneA" in out, out
    took = re.search(r"zoneB is MASTER (\d+) ms after the crash", out)
    assert took and 1500 < int(took.group(1)) < 5000, out
    crash = re.search(r"client outage during the crash: (\d+) ms \((\d+) probes lost\)", out)
    assert crash and 1500 < int(crash.group(1)) < 6000 and int(crash.group(2)) > 50, out
    assert "zoneA is BACKUP, zoneB stays MASTER (no preemption)" in out, out
    assert re.search(r"zoneA is MASTER \d+ ms after the SIGTERM", out), out
    graceful = re.search(r"client outage during the graceful stop: (\d+) ms", out)
    assert graceful and int(graceful.group(1)) < 500, out
    assert "demo passed" in out, out
    assert left_over(namespaces_of(out)) == [], out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000, out


@pytest.mark.parametrize(
    ("sig", "when"),
    [
        pytest.param(signal.SIGINT, "lab up", id="ctrl-c-at-start"),
        pytest.param(signal.SIGINT, "started pycarp in zoneA", id="ctrl-c-electing"),
        pytest.param(signal.SIGTERM, "client .* probes", id="sigterm-while-probing"),
        pytest.param(signal.SIGINT, "crash zoneA", id="ctrl-c-during-takeover"),
        pytest.param(signal.SIGINT, "graceful stop of", id="ctrl-c-during-hand-over"),
    ],
)
def test_demo_interrupted_cleans_up(sig: signal.Signals, when: str, tmp_path: Path) -> None:
    proc = start_demo("--plot", str(tmp_path / "t.png"))
    try:
        out = read_until(proc, when, 30.0)
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 128 + sig, out
    assert "cleaned up" in out, out
    assert left_over(namespaces_of(out)) == [], out


def test_demo_refuses_to_run_without_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.main([]) == 2
    assert "needs root" in capsys.readouterr().err
