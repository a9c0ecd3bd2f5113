"""The command line's VRRPv3 options (pycarp's own: ucarp has none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycarp.config.getopt import Given, Option
from pycarp.config.values import parse_centiseconds, parse_number
from pycarp.core.config import PROTOCOLS

# CARP's options, which mean nothing to a VRRP host (VRRPv3 has no password either).
CARP_ONLY = ("advbase", "advskew", "virtual-mac")

VRRP_OPTIONS: tuple[Option, ...] = (
    Option(
        ("protocol",),
        None,
        "name",
        "carp (default) or vrrp3: VRRPv3 (RFC 5798), vhid as the VRID (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("priority",),
        None,
        "n",
        "VRRP priority (1-255, 255 for the address owner, default 100) (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("advert-int",),
        None,
        "seconds",
        "VRRP advertisement interval (0.01-40.95 in 0.01 steps, default 1) (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("preempt-delay",),
        None,
        "seconds",
        "VRRP: leave a lower-priority master for <seconds> before preempting "
        "(0-1000, default 0) (pycarp only)",
        ucarp=False,
    ),
)


def vrrp_fields(values: Mapping[str, str]) -> dict[str, Any]:
    """VirtualHostConfig's fields from the seconds options' text (priority is a C number)."""
    fields: dict[str, Any] = {}
    if "advert-int" in values:
        seconds = parse_number(values["advert-int"], "advert_int")
        fields["advert_int"] = parse_centiseconds(seconds, "advert_int")
    if "preempt-delay" in values:
        fields["preempt_delay"] = float(parse_number(values["preempt-delay"], "preempt_delay"))
    return fields


def check_protocol_options(chosen: Mapping[str, Given]) -> bool:
    """Whether the options ask for VRRPv3; a bad --protocol, or CARP's options with
    VRRP, is a ConfigError (before a missing password is)."""
    given = chosen.get("protocol")
    if given is None:
        return False
    if given.value not in PROTOCOLS:
        raise given.fail(f"{given.value!r} is not one of {', '.join(PROTOCOLS)}")
    if given.value != "vrrp3":
        return False
    for key in CARP_ONLY:
        if (other := chosen.get(key)) is not None:
            raise other.fail("is CARP's: a VRRP host has --priority, --advert-int and --mac")
    return True
