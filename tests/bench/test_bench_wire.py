"""bench/wire.py: tcpdump's lines and the arithmetic of intervals and takeovers."""

from __future__ import annotations

import pytest

from bench import wire

TCPDUMP = """\
1700000000.000100 IP 198.51.100.4 > 224.0.0.18: VRRPv2, Advertisement, vrid 1, prio 0
noise
1700000001.000300 IP 198.51.100.4 > 224.0.0.18: VRRPv3, Advertisement, vrid 1, prio 100
1700000001.1 IP6 fe80::1 > ff02::12: VRRPv3
"""


def test_lines_give_the_time_and_source_of_ipv4_packets() -> None:
    assert wire.advert_lines(TCPDUMP) == [
        (1700000000.0001, "198.51.100.4"),
        (1700000001.0003, "198.51.100.4"),
    ]


def test_errors_are_absolute_and_the_drift_signed() -> None:
    found = wire.interval_errors([0.0, 1.001, 2.001, 3.003, 4.002], 1.0)
    assert found["intervals"] == 4
    assert found["max_ms"] == pytest.approx(2.0)
    assert found["drift_ms"] == pytest.approx(0.5)
    assert found["p50_ms"] in (pytest.approx(1.0), pytest.approx(2.0))
    assert found["errors_ms"] == [1.0, 0.0, 2.0, -1.0]
    with pytest.raises(ValueError):
        wire.interval_errors([1.0], 1.0)


def test_takeover_is_the_new_masters_first_after_the_old_ones_last() -> None:
    packets = [(1.0, "a"), (2.0, "a"), (3.0, "a"), (6.2, "b"), (6.3, "a"), (7.2, "b")]
    assert wire.takeover(packets, "a", "b", after=3.5) == (3.0, 6.2)
    assert wire.takeover(packets, "a", "c", after=3.5) == (6.3, None)
    assert wire.largest_gap_ms([0.0, 0.1, 0.35, 0.45]) == pytest.approx(250.0)
    assert wire.largest_gap_ms([1.0]) == 0.0
    assert wire.percentile([5, 1, 3], 50) == 3
