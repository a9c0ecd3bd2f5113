"""bench/interval.py's arithmetic and command line (the capture runs in bench runs)."""

from __future__ import annotations

import interval
import pytest


def test_errors_are_absolute_and_the_drift_signed() -> None:
    stamps = [0.0, 1.001, 2.001, 3.003, 4.002]  # intervals 1.001, 1.000, 1.002, 0.999
    found = interval.errors_of(stamps, 1.0)
    assert found["intervals"] == 4
    assert found["max_ms"] == pytest.approx(2.0)
    assert found["drift_ms"] == pytest.approx(0.5)
    assert found["p50_ms"] in (pytest.approx(1.0), pytest.approx(2.0))
    with pytest.raises(ValueError):
        interval.errors_of([1.0], 1.0)


def test_timestamps_are_the_first_field_of_tcpdump_lines() -> None:
    text = (
        "1700000000.000100 IP 198.51.100.201 > 224.0.0.18: VRRPv2\n\nnoise\n1700000001.0002 IP x\n"
    )
    assert interval.timestamps(text) == [1700000000.0001, 1700000001.0002]


def test_the_command_line_defaults() -> None:
    args = interval.parse_args([])
    assert (args.seconds, args.daemons, args.loads, args.advskew) == (
        30.0,
        "pycarp,ucarp",
        "idle,busy",
        0,
    )
    assert interval.master_argv("pycarp", _Host(), _Dir(), 26)[-2:] == [
        "--advbase=0",
        "--control-socket=/w/ctl.sock",
    ]


class _Host:
    ifname, ip, role = "eth0", "198.51.100.201", "a"


class _Dir:
    def __truediv__(self, name: str) -> str:
        return f"/w/{name}"
