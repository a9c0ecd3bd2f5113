"""`pycarp demo`'s front end: its refusals, its exit codes, and the signal handlers it restores."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pycarp.demo import command
from pycarp.demo.scenario import DemoError
from pycarp.lab import LabError


def test_refuses_without_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert command.main([]) == 2
    assert capsys.readouterr().err == (
        "pycarp demo: it needs root to create network namespaces (try: sudo pycarp demo)\n"
    )


def test_refuses_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "sunos5")
    assert command.problem() == "it needs Linux (network namespaces)"


def test_plot_needs_matplotlib(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(command, "problem", lambda: None)
    monkeypatch.setattr(command.importlib.util, "find_spec", lambda name: None)
    assert command.main(["--plot", str(tmp_path / "t.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        command.main(["--nonsense"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --nonsense" in capsys.readouterr().err


def _running(
    monkeypatch: pytest.MonkeyPatch, demo: Callable[[Callable[[str], None], Path | None], None]
) -> None:
    monkeypatch.setattr(command, "problem", lambda: None)
    monkeypatch.setattr(command, "run_demo", demo)


def test_passing_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[Path | None] = []
    _running(monkeypatch, lambda say, plot: seen.append(plot))
    assert command.main([]) == 0
    assert seen == [None]
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("demo passed: takeover after a crash, no preemption, graceful hand-over")
    )


@pytest.mark.parametrize(
    "error", [DemoError("zoneB did not take over"), LabError("no bridge"), OSError("no route")]
)
def test_failure_exits_1(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(say: Callable[[str], None], plot: Path | None) -> None:
        raise error

    _running(monkeypatch, fail)
    assert command.main([]) == 1
    assert f"FAILED: {error}" in capsys.readouterr().out


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(say: Callable[[str], None], plot: Path | None) -> None:
        raise KeyboardInterrupt

    _running(monkeypatch, interrupted)
    assert command.main([]) == 130
    assert "interrupted; everything was cleaned up" in capsys.readouterr().out


def test_sigterm_unwinds_and_the_handlers_come_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def terminated(say: Callable[[str], None], plot: Path | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as run_demo's cleanup does
        signal.raise_signal(signal.SIGTERM)

    _running(monkeypatch, terminated)
    assert command.main([]) == 128 + signal.SIGTERM
    assert "terminated; everything was cleaned up" in capsys.readouterr().out
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
