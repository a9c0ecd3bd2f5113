"""Each validation rule of VirtualHostConfig."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.core.config import DEFAULT_GROUP, MAX_PASSWORD, VirtualHostConfig
from pycarp.core.errors import CarpError, ConfigError
from tests.helpers import make_config


def test_defaults_match_ucarp() -> None:
    config = make_config()
    assert (config.advbase, config.advskew, config.deadratio) == (1, 0, 3)
    assert config.group == DEFAULT_GROUP == IPv4Address("224.0.0.18")
    assert not (config.preempt or config.neutral or config.nomcast or config.ignoreifstate)
    assert not config.shutdown
    assert config.upscript is config.downscript is config.xparam is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"vhid": 1},
        {"vhid": 255},
        {"advbase": 0, "advskew": 1},
        {"advbase": 255, "advskew": 254},
        {"advbase": 254, "advskew": 255},
        {"deadratio": 1},
        {"password": b""},
        {"password": b"x" * MAX_PASSWORD},
        {"addresses": ("192.0.2.50", "192.0.2.51")},
        {"group": "239.1.2.3"},
    ],
    ids=repr,
)
def test_valid(overrides: dict[str, Any]) -> None:
    make_config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"interface": ""}, "interface"),
        ({"vhid": 0}, "vhid"),
        ({"vhid": 256}, "vhid"),
        ({"vhid": -1}, "vhid"),
        ({"advbase": -1}, "advbase"),
        ({"advbase": 256}, "advbase"),
        ({"advskew": -1}, "advskew"),
        ({"advskew": 256}, "advskew"),
        ({"advbase": 0, "advskew": 0}, "advbase"),
        ({"advbase": 255, "advskew": 255}, "leaving master"),
        ({"deadratio": 0}, "deadratio"),
        ({"deadratio": -3}, "deadratio"),
        ({"password": b"x" * (MAX_PASSWORD + 1)}, "pass"),
        ({"addresses": ()}, "addr"),
        ({"addresses": ("192.0.2.50", "192.0.2.50")}, "twice"),
        ({"group": "192.0.2.200"}, "mcast"),
        ({"group": "255.255.255.255"}, "mcast"),
        ({"srcip": "192.0.2.50"}, "srcip"),
    ],
    ids=repr,
)
def test_invalid(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


def test_config_error_is_a_carp_error() -> None:
    assert issubclass(ConfigError, CarpError)


def test_config_is_frozen() -> None:
    config = make_config()
    with pytest.raises(AttributeError):
        config.vhid = 2  # type: ignore[misc]


def test_direct_construction() -> None:
    config = VirtualHostConfig(
        interface="eth1",
        srcip=IPv4Address("10.0.0.1"),
        vhid=9,
        addresses=(IPv4Address("10.0.0.100"),),
    )
    assert config.password == b""
