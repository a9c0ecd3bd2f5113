"""Interval arithmetic, done as ucarp does: (seconds, microseconds) pairs."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

# While sends fail, ucarp advertises with at least this skew (it stops preempting).
SUPPRESSED_ADVSKEW = 240


class Interval(NamedTuple):
    """Compared as (seconds, microseconds) pairs, exactly as ucarp's timercmp."""

    seconds: int
    micros: int

    @property
    def total(self) -> float:
        return self.seconds + self.micros / 1_000_000


def seconds(value: float) -> Interval:
    """An Interval of `value` seconds, to the microsecond."""
    micros = round(value * 1_000_000)
    return Interval(micros // 1_000_000, micros % 1_000_000)


def _skew_micros(advskew: int) -> int:
    return advskew * 1_000_000 // 256


# Pure functions of two or three small ints, asked for every packet: remembered.
@lru_cache(maxsize=4096)
def advert_interval(advbase: int, advskew: int) -> Interval:
    return Interval(advbase, _skew_micros(advskew))


@lru_cache(maxsize=4096)
def master_down_interval(advbase: int, advskew: int, deadratio: int) -> Interval:
    """How long a backup waits without an advertisement before it takes over.

    With advbase 1 or more, ucarp's: deadratio x advbase + advskew/256 (so a
    pycarp backup takes over exactly when a ucarp one would). With advbase 0
    (sub-second intervals), ucarp's formula is one advertisement interval,
    so one lost advertisement is a takeover; pycarp waits deadratio of its
    own intervals instead, as VRRPv3 waits three of the master's.
    """
    if advbase == 0:
        micros = deadratio * _skew_micros(advskew)
        return Interval(micros // 1_000_000, micros % 1_000_000)
    return Interval(advbase * deadratio, _skew_micros(advskew))


def master_down_rule(advbase: int, protocol: str = "carp") -> str:
    """Which formula master_down_interval() uses: "ucarp", or "intervals" (advbase 0);
    "vrrp" is RFC 5798's (core/vrrp.py)."""
    if protocol == "vrrp3":
        return "vrrp"
    return "intervals" if advbase == 0 else "ucarp"


def ucarp_order(address: IPv4Address | IPv6Address) -> int:
    """The integer ucarp compares source addresses by.

    ucarp compares the network-order bytes read as a host integer; on the
    little-endian machines it runs on, the last octet is most significant.
    ucarp has no IPv6: there the address itself, the lower one winning.
    """
    if isinstance(address, IPv6Address):
        return int(address)
    return int.from_bytes(address.packed, "little")
