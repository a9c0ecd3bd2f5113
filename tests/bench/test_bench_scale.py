"""bench/scale.py's command line; both benches run as the scripts they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import scale

BENCH = Path(scale.__file__).parent


@pytest.mark.parametrize(
    ("script", "title"),
    [
        ("scale.py", "Benchmark: idle CPU and memory of one pycarp process against ucarp"),
        ("handover.py", "Benchmark: the outage a client sees when a pycarp master stops."),
    ],
)
def test_help_runs_as_a_script(script: str, title: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert title in " ".join(done.stdout.split()), done.stdout


def test_parse_args_defaults_and_quick() -> None:
    args = scale.parse_args([])
    assert args.sizes == [1, 16, 64, 255] and args.window == 30.0
    assert args.impl == ["pycarp", "ucarp"] and args.out == scale.RESULTS
    quick = scale.parse_args(["--quick"])
    assert quick.sizes == list(scale.QUICK_SIZES) and quick.window == scale.QUICK_WINDOW
    assert quick.out != scale.RESULTS  # a smoke run never overwrites the real results
    assert scale.parse_args(["--impl", "ucarp", "--sizes", "2,3"]).sizes == [2, 3]
    with pytest.raises(SystemExit):
        scale.parse_args(["--sizes", "0"])
    with pytest.raises(SystemExit):
        scale.parse_args(["--impl", "keepalived"])
