"""TOML config files: every kind of error, one line each, and the cross-host rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.config.tomlfile import MAX_SHOWN, ConfigErrors
from tests.config.config_helpers import executable
from tests.config.toml_helpers import HEAD, Raw, errors, load_text, vhost

# --- errors, one line each -----------------------------------------------------

VALID_HOST = vhost(1, "10.0.0.100")
IN_VHOST_1 = "vhost[0] (vhid 1): "

# (keys of vhost 1 on top of a valid one, the error after "vhost[0] (vhid 1): ")
HOST_BAD: list[tuple[dict[str, object], str]] = [
    # unknown keys, with a hint
    ({"advskw": 1}, "advskw: unknown key (did you mean advskew?)"),
    ({"addr": "10.0.0.100"}, "addr: unknown key (did you mean addresses?)"),
    ({"passfile": "x"}, "passfile: unknown key (did you mean password_file?)"),
    ({"mcastip": "224.0.0.1"}, "mcastip: unknown key (did you mean mcast?)"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"facility": "daemon"}, "facility: a process option: set it at the top of the file"),
    # bad types
    ({"advskew": "300"}, "advskew: expected an integer, got a string ('300')"),
    ({"advbase": 1.5}, "advbase: expected an integer, got a float (1.5)"),
    ({"preempt": 1}, "preempt: expected a boolean, got an integer (1)"),
    ({"preempt": "yes"}, "preempt: expected a boolean, got a string ('yes')"),
    ({"interface": False}, "interface: expected a string, got a boolean (false)"),
    ({"xparam": Raw("1979-05-27")}, "xparam: expected a string, got a date or time"),
    # bad values caught here
    ({"mcast": "nope"}, "mcast: 'nope' is not an IPv4 address"),
    ({"srcip": "1.2.3"}, "srcip: '1.2.3' is not an IPv4 address"),
    ({"deadratio": 2**32}, "deadratio: 4294967296 is above 4294967295"),
    ({"password": ""}, "password: the password is empty"),
    ({"upscript": ""}, "upscript: the path is empty"),
    ({"password": "x", "password_file": "pw"}, "password, password_file: give one or the other"),
    # range errors are VirtualHostConfig's, in the file's words
    ({"advskew": 300}, "advskew: 300 is outside 0..255"),
    ({"advskew": -1}, "advskew: -1 is outside 0..255"),
    ({"advbase": 255, "advskew": 255}, "advbase/advskew: 255/255 is reserved"),
    ({"deadratio": 0}, "deadratio: 0 is below 1"),
    ({"password": "x" * 20}, "password: 20 bytes; at most 19 are allowed"),
    ({"mcast": "10.0.0.5"}, "mcast: 10.0.0.5 is not a multicast address"),
    ({"interface": ""}, "interface: required"),
]

# (addresses = ..., the error after "vhost[0] (vhid 1): addresses: ")
ADDRESSES_BAD = [
    ('"10.0.0.100"', "expected an array, got a string ('10.0.0.100')"),
    ("[1]", "expected strings, got an integer (1)"),
    ("[]", "at least one virtual address is required"),
    ('["10.0.0.300"]', "'10.0.0.300' is not an IPv4 or IPv6 address"),
    ('["10.0.0.100/x"]', "'10.0.0.100/x': the prefix length after / is not a number"),
    ('["10.0.0.100/"]', "'10.0.0.100/': the prefix length after / is not a number"),
    ('["0.0.0.0"]', "0.0.0.0 cannot be used"),
    ('["10.0.0.100/33"]', "10.0.0.100/33: the prefix length is outside 1..32"),
    ('["10.0.0.100/0"]', "10.0.0.100/0: the prefix length is outside 1..32"),
    ('["2001:db8::1/129"]', "2001:db8::1/129: the prefix length is outside 1..128"),
    ('["fe80::1%eth0"]', "'fe80::1%eth0': a scope (%...) is only for peers"),
    ('["ff02::1"]', "ff02::1 is a multicast address"),
    ('["::1"]', "::1 is a loopback address"),
    ('["10.0.0.100/24", "10.0.0.100"]', "the same virtual address is listed twice"),
]

# (the file after HEAD's [defaults], the error)
STRUCTURE_BAD = [
    ("[[vhost]]\naddresses = ['10.0.0.100']\n", "vhost[0]: missing required keys: vhid (here"),
    ("", "no [[vhost]] table: at least one virtual host is needed"),
    ("[vhost]\nvhid = 1\n", "vhost: expected an array of tables ([[vhost]]), got a table"),
    ("[[vhost]]\nvhid = true\n", "vhost[0]: vhid: expected an integer, got a boolean (true)"),
    (vhost(256, "10.0.0.100"), "vhost[0] (vhid 256): vhid: 256 is outside 1..255"),
    (vhost(1, "10.0.0.1"), "vhost[0] (vhid 1): srcip (from [defaults]): 10.0.0.1 is also a"),
]


@pytest.mark.parametrize(("keys", "message"), HOST_BAD, ids=[m for _, m in HOST_BAD])
def test_errors_in_a_vhost(tmp_path: Path, keys: dict[str, object], message: str) -> None:
    (found,) = errors(tmp_path, HEAD + vhost(1, "10.0.0.100", **keys))
    assert found.startswith(IN_VHOST_1 + message), found


@pytest.mark.parametrize(("value", "message"), ADDRESSES_BAD, ids=[v for v, _ in ADDRESSES_BAD])
def test_bad_addresses(tmp_path: Path, value: str, message: str) -> None:
    (found,) = errors(tmp_path, HEAD + f"[[vhost]]\nvhid = 1\naddresses = {value}\n")
    assert found == f"{IN_VHOST_1}addresses: {message}"


@pytest.mark.parametrize(("text", "message"), STRUCTURE_BAD, ids=[m for _, m in STRUCTURE_BAD])
def test_errors_in_the_structure(tmp_path: Path, text: str, message: str) -> None:
    (found,) = errors(tmp_path, HEAD + text)
    assert found.startswith(message), found


def test_vhost_entries_must_be_tables(tmp_path: Path) -> None:
    assert errors(tmp_path, "vhost = [1]\n" + HEAD) == [
        "vhost[0]: expected a table, got an integer"
    ]


TOP_BAD = [
    ("interface = 'eth0'\n", "interface: a per-host key: set it in [defaults] or in a [[vhost]]"),
    ("facilty = 'daemon'\n", "facilty: unknown key (did you mean facility?)"),
    ("control-socket = 'none'\n", "control-socket: unknown key (did you mean control_socket?)"),
    ("facility = 'klingon'\n", "facility: 'klingon' is not a syslog facility"),
    ("facility = 5\n", "facility: expected a string, got an integer (5)"),
    ("debug = 'yes'\n", "debug: expected a boolean, got a string ('yes')"),
    ("control_socket = ''\n", "control_socket: the path is empty (none disables the control"),
    (f"control_socket = '/{'x' * 120}'\n", "control_socket: /xxx"),
    ("control_group = 'no-such-group-x'\n", "control_group: no such group: 'no-such-group-x'"),
    ("control_group = 0\n", "control_group: expected a string, got an integer (0)"),
    ("control_group = ''\n", "control_group: the group name is empty"),
    ("defaults = 1\n", "defaults: expected a table ([defaults]), got an integer"),
]  # fmt: skip


@pytest.mark.parametrize(("top", "message"), TOP_BAD, ids=[m for _, m in TOP_BAD])
def test_errors_at_the_top(tmp_path: Path, top: str, message: str) -> None:
    text = top + (VALID_HOST if top.startswith("defaults") else HEAD + VALID_HOST)
    found = errors(tmp_path, text)
    assert len(found) == 1 and found[0].startswith(message), found


def test_a_bad_key_in_defaults_is_reported_once(tmp_path: Path) -> None:
    text = HEAD + "debug = true\nadvskew = 'x'\n" + vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101")
    assert errors(tmp_path, text) == [
        "defaults: debug: a process option: set it at the top of the file, before any table",
        "defaults: advskew: expected an integer, got a string ('x')",
    ]


def test_a_bad_range_from_defaults_names_each_vhost_and_says_where(tmp_path: Path) -> None:
    text = HEAD + "advbase = 0\n" + vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101", advskew=5)
    assert errors(tmp_path, text) == [
        "vhost[0] (vhid 1): advbase (from [defaults]): 0 needs an advskew above 0 "
        "(the interval would be 0)"
    ]


def test_missing_required_keys_are_all_named(tmp_path: Path) -> None:
    assert errors(tmp_path, "[[vhost]]\n") == [
        "vhost[0]: missing required keys: interface, vhid, addresses, "
        "password or password_file (here or in [defaults])"
    ]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = HEAD + vhost(1, "10.0.0.100", advskw=1) + vhost(2, "10.0.0.101", advskew=300)
    text += vhost(3, "10.0.0.102", preempt="no")
    assert [m.split(":")[0] for m in errors(tmp_path, text)] == [
        "vhost[0] (vhid 1)",
        "vhost[1] (vhid 2)",
        "vhost[2] (vhid 3)",
    ]


def test_many_problems_are_cut_short_visibly(tmp_path: Path) -> None:
    text = HEAD + "".join(vhost(n, f"10.1.0.{n}", advskew=300) for n in range(1, 31))
    with pytest.raises(ConfigErrors) as caught:
        load_text(tmp_path, text)
    assert len(caught.value.messages) == 30
    lines = str(caught.value).splitlines()
    assert len(lines) == MAX_SHOWN + 1
    assert lines[-1] == f"({30 - MAX_SHOWN} more errors not shown)"


# --- across virtual hosts --------------------------------------------------------


def test_duplicate_vhid_names_both(tmp_path: Path) -> None:
    text = HEAD + vhost(7, "10.0.0.100") + vhost(8, "10.0.0.101") + vhost(9, "10.0.0.102")
    text += vhost(7, "10.0.0.103")
    assert errors(tmp_path, text) == [
        "vhost[3] (vhid 7): vhid: 7 on eth0 is already used by vhost[0] (vhid 7)"
    ]


def test_same_vhid_on_two_interfaces_is_fine(tmp_path: Path) -> None:
    text = HEAD + vhost(7, "10.0.0.100") + vhost(7, "10.0.1.100", interface="eth1")
    assert len(load_text(tmp_path, text).vhosts) == 2


def test_address_claimed_twice_names_both(tmp_path: Path) -> None:
    text = HEAD + vhost(1, "10.0.0.100/24") + vhost(2, "10.0.0.101")
    text += vhost(3, "10.0.0.102", "10.0.0.100", interface="eth1")
    assert errors(tmp_path, text) == [
        "vhost[2] (vhid 3): addresses: 10.0.0.100 is already claimed by vhost[0] (vhid 1)"
    ]


def test_virtual_address_may_not_be_another_hosts_srcip(tmp_path: Path) -> None:
    text = HEAD + vhost(1, "10.0.0.2") + vhost(2, "10.0.0.101", srcip="10.0.0.2")
    assert errors(tmp_path, text) == [
        "vhost[0] (vhid 1): addresses: 10.0.0.2 is the srcip of vhost[1] (vhid 2)"
    ]


def test_one_multicast_group_per_interface(tmp_path: Path) -> None:
    text = HEAD + vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101", mcast="224.0.0.19")
    text += vhost(3, "10.0.1.100", interface="eth1", mcast="224.0.0.19")
    assert errors(tmp_path, text) == [
        "vhost[1] (vhid 2): mcast: 224.0.0.19 differs from 224.0.0.18 of vhost[0] (vhid 1) "
        "on eth0 (one multicast group per interface)"
    ]


# --- this machine ----------------------------------------------------------------


def test_machine_checks(tmp_path: Path) -> None:
    executable(tmp_path / "down.sh", mode=0o644)
    text = HEAD + vhost(1, "10.0.0.100", interface="eth9")
    text += vhost(2, "10.0.0.101", upscript="missing.sh", downscript="down.sh")
    text += vhost(3, "10.0.0.102", password_file="absent")
    found = errors(tmp_path, text)
    assert found == [
        "vhost[0] (vhid 1): interface: no such interface: 'eth9'",
        f"vhost[1] (vhid 2): upscript: {tmp_path}/missing.sh does not exist",
        f"vhost[1] (vhid 2): downscript: {tmp_path}/down.sh is not executable",
        f"vhost[2] (vhid 3): password_file: cannot read {tmp_path}/absent: "
        "No such file or directory",
    ]
    settings = load_text(tmp_path, text, check_machine=False)
    assert settings.vhosts[0].interface == "eth9"
    assert settings.vhosts[1].upscript == str(tmp_path / "missing.sh")
    assert settings.vhosts[2].password == b""  # not read: it is on the other host


def test_a_bad_value_from_defaults_is_reported_once(tmp_path: Path) -> None:
    text = HEAD.replace("eth0", "eth9") + vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101")
    assert errors(tmp_path, text) == ["defaults: interface: no such interface: 'eth9'"]


def test_empty_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    text = HEAD.replace('password = "secret"', 'password_file = "pw"') + VALID_HOST
    assert errors(tmp_path, text) == ["defaults: password_file: the password is empty"]
    (tmp_path / "pw").write_text("x" * 25 + "\n")
    assert errors(tmp_path, text) == [
        "vhost[0] (vhid 1): password_file (from [defaults]): 25 bytes; at most 19 are allowed"
    ]


def test_an_empty_password_file_is_wrong_without_machine_checks_too(tmp_path: Path) -> None:
    # as --passfile= on the command line: the path is wrong on any host
    text = HEAD + vhost(1, "198.51.100.9", password_file="")
    problems = errors(tmp_path, text, check_machine=False)
    assert problems == ["vhost[0] (vhid 1): password_file: the path is empty"]
