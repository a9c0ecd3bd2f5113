"""bench/handover.py's command line and summary, and how the benches start daemons."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import daemonrig
import handover
import pytest

from pycarp.lab import LabError

HOST: Any = SimpleNamespace(ifname="eth0", ip="198.51.100.201", role="a")


def test_parse_args_defaults() -> None:
    args = handover.parse_args([])
    assert (args.trials, args.backups, args.modes) == (3, "pycarp,ucarp", "graceful,kill")
    assert args.out == handover.RESULTS
    assert handover.parse_args(["--out", "/tmp/x", "--trials", "1"]).out == Path("/tmp/x")


def test_summarise_takes_the_median_per_case() -> None:
    results = [
        {"backup": "pycarp", "mode": "graceful", "outage_ms": 10.0},
        {"backup": "pycarp", "mode": "graceful", "outage_ms": 30.0},
        {"backup": "pycarp", "mode": "graceful", "outage_ms": 20.0},
        {"backup": "ucarp", "mode": "graceful", "outage_ms": 3000.0},
    ]
    assert handover.summarise(results, ["pycarp", "ucarp"], ["graceful"]) == {
        "pycarp/graceful": 20.0,
        "ucarp/graceful": 3000.0,
    }


def test_carp_options_are_ucarps() -> None:
    options = daemonrig.carp_options(HOST, vhid=42, vip="198.51.100.200", password="x", advskew=7)
    assert options == [
        "--interface=eth0",
        "--srcip=198.51.100.201",
        "--vhid=42",
        "--pass=x",
        "--addr=198.51.100.200",
        "--advskew=7",
        "--facility=none",
    ]


def test_ucarp_scripts_plumb_and_log(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    up, down = daemonrig.ucarp_scripts(tmp_path, events)
    assert (up, down) == (
        f"--upscript={tmp_path / 'up.sh'}",
        f"--downscript={tmp_path / 'down.sh'}",
    )
    text = (tmp_path / "up.sh").read_text()
    assert text.startswith("#!/bin/sh\n") and ' addr add "$2/32" dev "$1" ' in text
    assert f'echo "up $2" >> "{events}"' in text
    assert ' addr del "$2/32"' in (tmp_path / "down.sh").read_text()
    assert (tmp_path / "down.sh").stat().st_mode & 0o111


def test_pycarp_runs_as_a_module_or_profiled(tmp_path: Path) -> None:
    assert daemonrig.pycarp(["--config", "c.toml"]) == [
        sys.executable,
        "-m",
        "pycarp",
        "--config",
        "c.toml",
    ]
    profiled = daemonrig.pycarp(["-z"], tmp_path / "p.prof", 36)
    assert profiled == [
        sys.executable,
        str(daemonrig.PROFILED),
        str(tmp_path / "p.prof"),
        "36",
        "-z",
    ]
    assert daemonrig.PROFILED.exists()


def test_which_says_what_is_missing() -> None:
    with pytest.raises(LabError, match="`no-such-tool-here` not found"):
        daemonrig.which("no-such-tool-here")
