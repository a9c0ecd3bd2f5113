"""`python -m bench --quick`: the benchmark's harness runs every section on a real rig and
writes well-formed results (the timings themselves are the full run's business)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("startup", "failover", "interval", "stability", "idle", "parse")
KINDS = ("pycarp", "ucarp", "keepalived")


def test_the_quick_run_fills_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--kinds", ",".join(KINDS), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "bench.json").read_text())
    assert set(SECTIONS) <= set(result["sections"])
    for name in SECTIONS:
        rows = result["sections"][name]
        assert rows, f"section {name} is empty"
        assert all("status" in r or name == "parse" for r in rows), name
    for name in ("startup", "failover", "interval", "idle"):
        assert {r["kind"] for r in result["sections"][name]} == set(KINDS), name
    # Every kind in a case gets the same trials: interleaved, none left out.
    failover = result["sections"]["failover"]
    for case in {(r["timing"], r["mode"]) for r in failover}:
        rows = [r for r in failover if (r["timing"], r["mode"]) == case]
        per_kind = {k: sum(1 for r in rows if r["kind"] == k) for k in {r["kind"] for r in rows}}
        assert len(set(per_kind.values())) == 1, (case, per_kind)
    for trial in failover:
        if trial["status"] == "ok":
            assert trial["outage_ms"] >= 0 and trial["bound_s"] > 0
    assert {r["phase"] for r in result["sections"]["stability"]} == {"idle", "cpu", "memory"}
    assert result["summary"] and all(set(KINDS) <= set(r) for r in result["summary"])
    assert result["targets"] and result["machine"]["nproc"]
    assert "| measurement | pycarp | ucarp | keepalived |" in done.stdout
    for png in ("failover.png", "interval.png", "stability.png", "idle.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png
