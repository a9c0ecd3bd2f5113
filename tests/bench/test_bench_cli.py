"""`python -m bench`'s command line, and the config-parse section (runs in-process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as cli
from bench import parse_cost

ROOT = Path(__file__).resolve().parents[2]


def test_help_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pycarp's benchmark" in done.stdout and "--quick" in done.stdout


def test_defaults_and_quick() -> None:
    args = cli.parse_args(["--kinds", "pycarp,ucarp,keepalived"])
    assert (args.timing, args.trials, args.subsecond_trials) == ("1s", 5, 10)
    assert args.sizes == [1, 16, 255] and args.out == cli.RESULTS
    assert args.phases == [("idle", 15.0), ("cpu", 120.0), ("memory", 45.0)]
    assert args.sections == list(cli.SECTIONS)
    quick = cli.parse_args(["--quick", "--kinds", "pycarp"])
    assert quick.out != cli.RESULTS  # a smoke run never overwrites the real results
    assert (quick.timing, quick.trials, quick.sizes) == ("100ms", 1, [1])
    assert cli.parse_args(["--kinds", "pycarp", "--trials", "2"]).trials == 2
    for bad in (["--kinds", "vrrpd"], ["--sections", "nope"], ["--sizes", "0"]):
        with pytest.raises(SystemExit):
            cli.parse_args(["--kinds", "pycarp", *bad] if bad[0] != "--kinds" else bad)


def test_parse_cost_rows() -> None:
    rows = parse_cost.run([16 * 1024])
    assert [r["shape"] for r in rows] == list(parse_cost.SHAPES)
    assert all(r["seconds"] >= 0 and r["outcome"] for r in rows)
