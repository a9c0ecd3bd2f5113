"""TOML config files: the documented example, every kind of error, the cross-host rules."""

from __future__ import annotations

import grp
import os
import re
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.cli import main as cli
from pycarp.config.settings import DaemonSettings
from pycarp.config.tomlfile import MAX_SHOWN, ConfigErrors, load_toml, parse_toml
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"
FAKE_INTERFACES = {"eth0", "eth1"}

# The smallest valid file; cases add keys to it.
HEAD = """
[defaults]
interface = "eth0"
srcip = "10.0.0.1"
password = "secret"
"""


def vhost(vhid: int, *addresses: str, **keys: object) -> str:
    """A [[vhost]] table; ``keys`` are written as TOML literals (strings are quoted)."""
    lines = ["[[vhost]]", f"vhid = {vhid}", f"addresses = {list(addresses)!r}".replace("'", '"')]
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


class Raw(str):
    """A value written into the TOML text as it is (a date, say)."""


def toml_value(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@pytest.fixture(autouse=True)
def fake_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "interface_exists", lambda name: name in FAKE_INTERFACES)


def load(tmp_path: Path, text: str, *, check_machine: bool = True) -> DaemonSettings:
    path = tmp_path / "pycarp.toml"
    path.write_text(text)
    return load_toml(path, check_machine=check_machine)


def errors(tmp_path: Path, text: str, *, check_machine: bool = True) -> list[str]:
    """The problems found, without the "FILE (TOML): " every one starts with."""
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, text, check_machine=check_machine)
    prefix = f"{tmp_path / 'pycarp.toml'} (TOML): "
    for message in caught.value.messages:
        assert message.startswith(prefix), message
        assert "\n" not in message
    return [message.removeprefix(prefix) for message in caught.value.messages]


def executable(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return path


# --- the documented example ---------------------------------------------------


def doc_block(kind: str) -> str:
    blocks = re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return str(blocks[0])


@pytest.fixture
def doc_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's scripts and password file, as if this were its host."""
    monkeypatch.setattr(cli, "check_script", lambda path: path)
    monkeypatch.setattr(
        cli, "read_passfile", lambda path: {"/etc/pycarp/secret": b"changeme"}[path]
    )


@pytest.mark.usefixtures("doc_machine")
def test_documented_example(tmp_path: Path) -> None:
    settings = load(tmp_path, doc_block("toml"))
    assert (settings.facility, settings.debug, settings.daemonize) == ("daemon", False, False)
    assert settings.control_socket == "/run/pycarp/pycarp.sock"
    web, db, other = settings.vhosts
    assert web == VirtualHostConfig(
        interface="eth0",
        srcip=IPv4Address("198.51.100.201"),
        vhid=101,
        addresses=(IPv4Address("198.51.100.200"), IPv4Address("198.51.100.210")),
        prefixes=(24, 32),
        password=b"changeme",
        preempt=True,
    )
    assert (db.vhid, db.advskew, db.xparam, db.shutdown) == (102, 100, "db", True)
    assert (db.upscript, db.downscript) == ("/etc/pycarp/vip-up.sh", "/etc/pycarp/vip-down.sh")
    assert not db.plumbs
    assert (other.interface, other.vhid, other.password) == ("eth1", 101, b"other-secret")
    assert other.srcip == IPv4Address("203.0.113.201")
    assert other.neutral and other.plumbs


@pytest.mark.usefixtures("doc_machine")
def test_documented_check_config_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pycarp.toml"
    path.write_text(doc_block("toml"))
    console = doc_block("console").splitlines()
    assert console[0] == "$ pycarp --check-config /etc/pycarp/pycarp.toml"
    assert cli.main(["--check-config", str(path)]) == 0
    expected = "\n".join(console[1:]).replace("/etc/pycarp/pycarp.toml", str(path)) + "\n"
    assert capsys.readouterr().out == expected


# --- valid files -----------------------------------------------------------------


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        HEAD
        + "advskew = 50\n"
        + vhost(1, "10.0.0.100")
        + vhost(2, "10.0.0.101/24", "10.0.0.102", advskew=0, srcip="10.0.0.2"),
    )
    first, second = settings.vhosts
    assert (first.advskew, first.srcip, first.prefixes) == (50, IPv4Address("10.0.0.1"), (32,))
    assert (second.advskew, second.srcip) == (0, IPv4Address("10.0.0.2"))
    assert second.networks == ((IPv4Address("10.0.0.101"), 24), (IPv4Address("10.0.0.102"), 32))
    # what neither table gives keeps VirtualHostConfig's default
    assert (first.advbase, first.deadratio, first.group) == (1, 3, IPv4Address("224.0.0.18"))
    assert settings == DaemonSettings(vhosts=settings.vhosts)  # process defaults


def test_everything_can_be_in_defaults(tmp_path: Path) -> None:
    text = HEAD + "vhid = 9\naddresses = ['10.0.0.9']\n[[vhost]]\n"
    (only,) = load(tmp_path, text).vhosts
    assert (only.vhid, only.addresses) == (9, (IPv4Address("10.0.0.9"),))


def test_toml_integer_forms(tmp_path: Path) -> None:
    text = HEAD + "[[vhost]]\nvhid = 0x65\naddresses = ['10.0.0.9']\ndeadratio = 1_000\n"
    (only,) = load(tmp_path, text).vhosts
    assert (only.vhid, only.deadratio) == (101, 1000)


def test_255_vhids_on_one_interface(tmp_path: Path) -> None:
    hosts = "".join(vhost(n, f"10.1.{n}.1") for n in range(1, 256))
    settings = load(tmp_path, HEAD + hosts + vhost(1, "10.2.0.1", interface="eth1"))
    assert len(settings.vhosts) == 256
    assert {v.vhid for v in settings.vhosts if v.interface == "eth0"} == set(range(1, 256))


def test_process_options(tmp_path: Path) -> None:
    text = 'facility = "LOCAL3"\ndebug = true\ndaemonize = true\ncontrol_socket = "none"\n'
    settings = load(tmp_path, text + HEAD + vhost(1, "10.0.0.100"))
    assert (settings.facility, settings.debug, settings.daemonize) == ("local3", True, True)
    assert settings.control_socket is None


def test_control_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    settings = load(tmp_path, f"control_group = {group!r}\n" + HEAD + vhost(1, "10.0.0.100"))
    assert settings.control_group == group
    assert load(tmp_path, HEAD + vhost(1, "10.0.0.100")).control_group is None


def test_relative_paths_are_from_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(tmp_path / "up.sh")
    (tmp_path / "pw").write_bytes(b"fromfile\r\nsecond\n")
    monkeypatch.chdir("/")
    text = 'control_socket = "run/p.sock"\n' + HEAD.replace('password = "secret"', "")
    text += vhost(1, "10.0.0.100", upscript="up.sh", password_file="pw")
    settings = load(tmp_path, text)
    (only,) = settings.vhosts
    assert settings.control_socket == str(tmp_path / "run" / "p.sock")
    assert only.upscript == str(tmp_path / "up.sh")
    assert only.password == b"fromfile\r"  # the first line, as ucarp reads --passfile


def test_a_vhost_password_replaces_either_of_defaults(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("fromfile\n")
    text = HEAD.replace('password = "secret"', 'password_file = "pw"')
    text += vhost(1, "10.0.0.100") + vhost(2, "10.0.0.101", password="typed")
    first, second = load(tmp_path, text).vhosts
    assert (first.password, second.password) == (b"fromfile", b"typed")


def test_password_is_utf8(tmp_path: Path) -> None:
    text = HEAD.replace("secret", "café") + vhost(1, "10.0.0.100")
    assert load(tmp_path, text).vhosts[0].password == "café".encode()


def test_parse_toml_from_text() -> None:
    settings = parse_toml(HEAD + vhost(1, "10.0.0.100"), name="inline.toml")
    assert settings.vhosts[0].vhid == 1
    with pytest.raises(ConfigErrors, match=r"^inline\.toml \(TOML\): no \[\[vhost\]\] table"):
        parse_toml(HEAD, name="inline.toml")


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
    ('["10.0.0.300"]', "'10.0.0.300' is not an IPv4 address"),
    ('["10.0.0.100/x"]', "'10.0.0.100/x': the prefix length after / is not a number"),
    ('["10.0.0.100/"]', "'10.0.0.100/': the prefix length after / is not a number"),
    ('["0.0.0.0"]', "0.0.0.0 cannot be used"),
    ('["10.0.0.100/33"]', "a prefix length is outside 1..32: (33,)"),
    ('["10.0.0.100/0"]', "a prefix length is outside 1..32: (0,)"),
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
        "vhost[0]: missing required keys: interface, srcip, vhid, addresses, "
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
        load(tmp_path, text)
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
    assert len(load(tmp_path, text).vhosts) == 2


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
    settings = load(tmp_path, text, check_machine=False)
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


# --- the file itself -------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigErrors) as caught:
        load_toml(path)
    assert str(caught.value) == f"{path} (TOML): cannot read: No such file or directory"


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, HEAD + "[[vhost]]\nvhid 1\n")
    assert str(caught.value) == (
        f"{tmp_path}/pycarp.toml:7 (TOML): syntax error at column 6: "
        "Expected '=' after a key in a key/value pair"
    )


def test_syntax_error_at_the_end(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors, match=r"pycarp\.toml \(TOML\): syntax error: Invalid value"):
        load(tmp_path, "a = ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pycarp.toml"
    path.write_bytes(b"# ok\n# caf\xe9\n")
    with pytest.raises(ConfigErrors, match=r"pycarp\.toml:2 \(TOML\): not UTF-8 \(byte 0xe9\)$"):
        load_toml(path)


def test_config_errors_is_a_config_error() -> None:
    assert issubclass(ConfigErrors, ConfigError)  # what the daemon's reload catches
