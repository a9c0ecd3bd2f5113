"""A TOML [[vhost]] of VRRPv3 (`protocol = "vrrp3"`): its own keys, and CARP's it refuses."""

from __future__ import annotations

from typing import Any

from pycarp.config.tomlkeys import Host
from pycarp.config.values import parse_centiseconds
from pycarp.core.config import PROTOCOLS
from pycarp.core.errors import ConfigError

# CARP's keys: an error in a VRRP [[vhost]]; from [defaults] they serve the CARP hosts.
CARP_ONLY = ("advbase", "advskew", "password", "password_file", "virtual_mac")


def protocol_problem(host: Host) -> ConfigError | None:
    """A bad `protocol` (before anything else: it decides which keys are required)."""
    protocol = host.values.get("protocol", "carp")
    if protocol in PROTOCOLS:
        return None
    return ConfigError("protocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")


def protocol_fields(host: Host, fields: dict[str, Any]) -> dict[str, Any]:
    """A VRRP host's fields: `fields` less CARP's from [defaults], with its intervals."""
    values = host.values
    for key in CARP_ONLY:
        if key in values and key not in host.from_defaults:
            raise ConfigError(key, "is CARP's: a VRRP host has priority and advert_int")
    out = {k: v for k, v in fields.items() if k not in CARP_ONLY}
    if "advert_int" in values:
        out["advert_int"] = parse_centiseconds(values["advert_int"], "advert_int")
    if "preempt_delay" in values:
        out["preempt_delay"] = float(values["preempt_delay"])
    return out
