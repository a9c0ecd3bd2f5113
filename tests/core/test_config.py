"""Each validation rule of VirtualHostConfig."""

from __future__ import annotations

import dataclasses
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
        {"addresses": ("192.0.2.255",)},  # a /32: no broadcast address of its own
        {"addresses": ("192.0.2.255",), "prefixes": (31,)},  # RFC 3021
        {"addresses": ("192.0.2.254",), "prefixes": (24,)},
    ],
    ids=repr,
)
def test_valid(overrides: dict[str, Any]) -> None:
    make_config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"interface": ""}, "interface", "interface: required"),
        ({"vhid": 0}, "vhid", "vhid: 0 is outside 1..255"),
        ({"vhid": 256}, "vhid", "vhid"),
        ({"vhid": -1}, "vhid", "vhid"),
        ({"advbase": -1}, "advbase", "advbase"),
        ({"advbase": 256}, "advbase", "advbase: 256 is outside 0..255"),
        ({"advskew": -1}, "advskew", "advskew"),
        ({"advskew": 256}, "advskew", "advskew"),
        ({"advbase": 0, "advskew": 0}, "advbase", "advbase: 0 needs an advskew above 0"),
        ({"advbase": 255, "advskew": 255}, "advbase/advskew", "leaving master"),
        ({"deadratio": 0}, "deadratio", "deadratio"),
        ({"deadratio": -3}, "deadratio", "deadratio"),
        ({"password": b"x" * (MAX_PASSWORD + 1)}, "password", "20 bytes; at most 19"),
        ({"addresses": ()}, "addresses", "at least one"),
        ({"addresses": ("192.0.2.50", "192.0.2.50")}, "addresses", "twice"),
        ({"prefixes": (24, 24)}, "prefixes", "one prefix length per virtual address"),
        ({"prefixes": (33,)}, "prefixes", r"/33: the prefix length is outside 1\.\.32"),
        ({"group": "192.0.2.200"}, "group", "not a multicast address"),
        ({"group": "255.255.255.255"}, "group", "not a multicast address"),
        ({"srcip": "192.0.2.50"}, "srcip", "srcip: 192.0.2.50 is also a virtual address"),
        ({"srcip": "224.0.0.1"}, "srcip", "224.0.0.1 cannot be a host's own address"),
        ({"srcip": "255.255.255.255"}, "srcip", "cannot be a host's own address"),
        ({"addresses": ("224.0.0.18",)}, "addresses", "224.0.0.18 is a multicast address"),
        ({"addresses": ("255.255.255.255",)}, "addresses", "is the broadcast address$"),
        ({"addresses": ("0.0.0.0",)}, "addresses", "0.0.0.0 is the unspecified address"),
        ({"addresses": ("127.0.0.1",)}, "addresses", "127.0.0.1 is a loopback address"),
        (
            {"addresses": ("192.0.2.50", "192.0.2.127"), "prefixes": (24, 25)},
            "addresses",
            r"192\.0\.2\.127 is the broadcast address of 192\.0\.2\.0/25",
        ),
    ],
    ids=repr,
)
def test_invalid(overrides: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        make_config(**overrides)
    # named by the dataclass field: each front-end says it in its own words
    assert caught.value.field == field
    assert caught.value.origin is None
    assert str(caught.value) == f"{field}: {caught.value.reason}"


def test_the_fields_named_are_the_dataclass_fields() -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(advbase=255, advskew=255)
    assert caught.value.fields == ("advbase", "advskew")
    assert set(caught.value.fields) <= {f.name for f in dataclasses.fields(VirtualHostConfig)}


def test_config_error_shape() -> None:
    error = ConfigError("advskew", "300 is outside 0..255", "ucarp.cfg:2 (ucarp options)")
    assert (error.field, error.fields) == ("advskew", ("advskew",))
    assert (error.reason, error.origin) == ("300 is outside 0..255", "ucarp.cfg:2 (ucarp options)")
    assert str(error) == "ucarp.cfg:2 (ucarp options): advskew: 300 is outside 0..255"
    both = ConfigError(("--advbase", "--advskew"), "255/255 is reserved")
    assert (both.field, both.fields, str(both)) == (
        "--advbase/--advskew",
        ("--advbase", "--advskew"),
        "--advbase/--advskew: 255/255 is reserved",
    )
    nameless = ConfigError(None, "unknown option --bogus", "f.cfg:1")
    assert (nameless.field, nameless.fields, str(nameless)) == (
        None,
        (),
        "f.cfg:1: unknown option --bogus",
    )
    assert str(ConfigError(None, "missing required options: --vhid")) == (
        "missing required options: --vhid"
    )


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
