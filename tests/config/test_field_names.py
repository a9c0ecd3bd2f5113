"""One ConfigError shape: the model names its field, each front-end renames it by table."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pycarp.config import ucarp
from pycarp.config.getopt import Given
from pycarp.config.settings import DaemonSettings
from pycarp.config.tomlkeys import HOST_KEYS, PROCESS_KEYS, TABLES, Host
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
from tests.config.config_helpers import BASE, error
from tests.config.toml_helpers import HEAD, errors, vhost

MODEL_FIELDS = {field.name for field in dataclasses.fields(VirtualHostConfig)}
PROCESS_FIELDS = {field.name for field in dataclasses.fields(DaemonSettings)} - {"vhosts"}
# TOML's only: plumb and demotion (ucarp's command line has no health checks).
TOML_ONLY = {"plumb", "track", "demotion", "penalty", "peers", "min_ttl"}
TOML_ONLY_PROCESS = {"checks", "groups", "metrics"}  # checks: the [[check]] tables
# What no option sets: prefixes come with the addresses.
NO_OPTION = {"prefixes", *TOML_ONLY}


BASE_FIELDS: dict[str, Any] = {
    "interface": "eth0",
    "srcip": IPv4Address("10.0.0.1"),
    "vhid": 1,
    "addresses": (IPv4Address("10.0.0.100"),),
    "password": b"secret",
}
# The same broken value as each SAME_PROBLEM case, given to the model itself.
MODEL_VALUES: dict[str, dict[str, Any]] = {
    "--mcast": {"group": IPv4Address("10.0.0.5")},
    "--advskew": {"advskew": 300},
    "--pass": {"password": b"x" * 20},
    "--srcip": {"addresses": (IPv4Address("10.0.0.1"),)},
}


def given(key: str, value: str = "", origin: str | None = None) -> Given:
    return Given(ucarp.TABLE.by_long[key], value, origin)


def test_every_field_has_an_option_and_a_key() -> None:
    host = Host(0, {"password": "x"}, frozenset())
    for field in MODEL_FIELDS:
        assert field in ucarp.OPTION_OF or field in TOML_ONLY, field
        assert host.key_of(field) in HOST_KEYS, field
    for field in PROCESS_FIELDS - TOML_ONLY_PROCESS:
        assert field in ucarp.OPTION_OF and field in PROCESS_KEYS, field
    for field in TOML_ONLY_PROCESS:
        assert field not in ucarp.OPTION_OF, field
        assert field in PROCESS_KEYS or f"{field[:-1]}" in TABLES, field
    for key, field in ucarp.FIELDS.items():
        assert field in MODEL_FIELDS | PROCESS_FIELDS, key
        assert key == ucarp.PASSWORD or key in ucarp.TABLE.by_long, key
    assert MODEL_FIELDS - set(ucarp.FIELDS.values()) == NO_OPTION


def test_rename_names_the_option_and_where_it_was_written() -> None:
    chosen = {
        "advskew": given("advskew", "300", "ucarp.cfg:2 (ucarp options)"),
        "mcast": given("mcastip", "10.0.0.5"),
        ucarp.PASSWORD: given("passfile", "pw", "ucarp.cfg:1 (ucarp options)"),
    }
    renamed = ucarp.rename(ConfigError("advskew", "300 is outside 0..255"), chosen)
    assert (renamed.field, renamed.reason, renamed.origin) == (
        "--advskew",
        "300 is outside 0..255",
        "ucarp.cfg:2 (ucarp options)",
    )
    assert str(ucarp.rename(ConfigError("group", "not multicast"), chosen)) == (
        "--mcast: not multicast"  # the option's first name, whichever was written
    )
    assert str(ucarp.rename(ConfigError("password", "too long"), chosen)) == (
        "ucarp.cfg:1 (ucarp options): --passfile: too long"
    )
    # several fields: the first origin found; a field not given gets its option's name
    both = ucarp.rename(ConfigError(("advbase", "advskew"), "255/255"), chosen)
    assert (both.fields, both.origin) == (("--advbase", "--advskew"), "ucarp.cfg:2 (ucarp options)")


def test_rename_leaves_what_it_does_not_know() -> None:
    for left in (
        ConfigError(None, "missing required options: --vhid"),
        ConfigError("--vhid", "'x' is not a number", "f.cfg:1"),
    ):
        assert ucarp.rename(left, {}) is left


def test_toml_keys_of_the_fields() -> None:
    typed = Host(0, {"password": "x"}, frozenset({"mcast"}))
    from_file = Host(1, {"password_file": "pw"}, frozenset({"password_file"}))
    assert [typed.key_of(f) for f in ("password", "group", "addresses", "prefixes", "vhid")] == [
        "password",
        "mcast",
        "addresses",
        "addresses",
        "vhid",
    ]
    assert from_file.key_of("password") == "password_file"
    assert typed.key_label(typed.key_of("group")) == "mcast (from [defaults])"
    assert from_file.where(from_file.key_of("password")) == "defaults"


SAME_PROBLEM = [
    (["--mcast=10.0.0.5"], {"mcast": "10.0.0.5"}, "10.0.0.100", "--mcast", "mcast"),
    (["--advskew=300"], {"advskew": 300}, "10.0.0.100", "--advskew", "advskew"),
    (["--pass=" + "x" * 20], {"password": "x" * 20}, "10.0.0.100", "--pass", "password"),
    # the clash is the srcip's in both, and TOML's srcip is [defaults]'
    (["--addr=10.0.0.1"], {}, "10.0.0.1", "--srcip", "srcip (from [defaults])"),
]


@pytest.mark.parametrize(("extra", "keys", "address", "option", "key"), SAME_PROBLEM)
def test_both_front_ends_give_the_models_reason_in_their_words(
    tmp_path: Path, extra: list[str], keys: dict[str, object], address: str, option: str, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        VirtualHostConfig(**{**BASE_FIELDS, **MODEL_VALUES[option]})
    reason = caught.value.reason
    assert error(*BASE, *extra) == f"{option}: {reason}"
    assert errors(tmp_path, HEAD + vhost(1, address, **keys)) == [
        f"vhost[0] (vhid 1): {key}: {reason}"
    ]
