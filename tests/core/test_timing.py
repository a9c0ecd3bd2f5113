"""Interval arithmetic and the master tie-break, as ucarp computes them."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycarp.core import election, timing
from pycarp.core.timing import Interval


@pytest.mark.parametrize(
    ("advbase", "advskew", "expected"),
    [
        (1, 0, (1, 0)),
        (1, 1, (1, 3906)),  # 1_000_000 / 256 = 3906.25, truncated
        (1, 10, (1, 39062)),
        (1, 100, (1, 390625)),
        (2, 255, (2, 996093)),
        (0, 1, (0, 3906)),
        (255, 254, (255, 992187)),
    ],
)
def test_advert_interval(advbase: int, advskew: int, expected: tuple[int, int]) -> None:
    interval = timing.advert_interval(advbase, advskew)
    assert interval == expected
    assert interval.total == pytest.approx(expected[0] + expected[1] / 1e6)


def test_master_down_rule_says_which_formula() -> None:
    assert (timing.master_down_rule(0), timing.master_down_rule(1)) == ("intervals", "ucarp")


@pytest.mark.parametrize(
    ("advbase", "advskew", "deadratio", "expected"),
    [
        (1, 0, 3, (3, 0)),
        (1, 100, 3, (3, 390625)),  # the skew is added once, not multiplied
        (2, 255, 3, (6, 996093)),
        (1, 0, 1, (1, 0)),
        (5, 10, 10, (50, 39062)),
        (0, 128, 3, (1, 500000)),  # sub-second: deadratio of its intervals, not one
        (0, 26, 3, (0, 304686)),  # ~100 ms adverts: about 300 ms
        (0, 255, 3, (2, 988279)),
    ],
)
def test_master_down_interval(
    advbase: int, advskew: int, deadratio: int, expected: tuple[int, int]
) -> None:
    assert timing.master_down_interval(advbase, advskew, deadratio) == expected


def test_intervals_compare_as_pairs() -> None:
    assert Interval(1, 999_999) < Interval(2, 0)
    assert Interval(1, 3906) < Interval(1, 3907)
    assert Interval(0, 996093) < Interval(1, 0)
    assert Interval(3, 0) == Interval(3, 0)


@pytest.mark.parametrize(
    ("address", "order"),
    [
        ("10.0.0.2", 0x0200000A),
        ("10.0.1.1", 0x0101000A),
        ("192.0.2.1", 0x010200C0),
        ("0.0.0.255", 0xFF000000),
    ],
)
def test_ucarp_order_reads_network_bytes_little_endian(address: str, order: int) -> None:
    assert timing.ucarp_order(IPv4Address(address)) == order


def test_ucarp_tie_break_is_not_numeric_order() -> None:
    low, high = IPv4Address("10.0.1.1"), IPv4Address("10.0.0.2")
    assert low > high  # numerically...
    assert timing.ucarp_order(low) < timing.ucarp_order(high)  # ...but lower for ucarp


SAME = Interval(1, 0)


@pytest.mark.parametrize(
    ("ours", "theirs", "our_ip", "their_ip", "preferred"),
    [
        # A shorter interval wins whatever the addresses.
        (Interval(1, 390625), SAME, "10.0.0.1", "10.0.0.9", True),
        (SAME, Interval(1, 390625), "10.0.0.9", "10.0.0.1", False),
        (Interval(2, 0), Interval(1, 996093), "10.0.0.1", "10.0.0.9", True),
        # Equal intervals: the lower address in ucarp's order.
        (SAME, SAME, "10.0.0.2", "10.0.0.1", True),
        (SAME, SAME, "10.0.0.1", "10.0.0.2", False),
        (SAME, SAME, "10.0.0.2", "10.0.1.1", True),  # last octet first: 1 < 2
        (SAME, SAME, "10.0.1.1", "10.0.0.2", False),
        (SAME, SAME, "192.168.1.10", "192.168.2.10", False),  # 10 = 10, then 1 < 2
        (SAME, SAME, "192.168.2.10", "192.168.1.10", True),
        # The same address is not preferred (it would be our own packet).
        (SAME, SAME, "10.0.0.1", "10.0.0.1", False),
    ],
)
def test_sender_is_preferred(
    ours: Interval, theirs: Interval, our_ip: str, their_ip: str, preferred: bool
) -> None:
    result = election.master_yields(ours, theirs, IPv4Address(our_ip), IPv4Address(their_ip))
    assert result is preferred


addresses = st.integers(0, 2**32 - 1).map(IPv4Address)
intervals = st.builds(timing.advert_interval, st.integers(0, 255), st.integers(0, 255))


@given(intervals, intervals, addresses, addresses)
def test_exactly_one_side_is_preferred(
    a: Interval, b: Interval, ip_a: IPv4Address, ip_b: IPv4Address
) -> None:
    """Two masters with different addresses always agree on which of them stays."""
    if ip_a == ip_b:
        return
    assert election.master_yields(a, b, ip_a, ip_b) != election.master_yields(b, a, ip_b, ip_a)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(1, 255))
def test_master_down_is_never_shorter_than_the_advert_interval(
    advbase: int, advskew: int, deadratio: int
) -> None:
    down = timing.master_down_interval(advbase, advskew, deadratio)
    assert down >= timing.advert_interval(advbase, advskew)
