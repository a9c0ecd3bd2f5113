"""ucarp's options: parity with ucarp 1.5.2, and clear errors for bad values."""

from __future__ import annotations

import grp
import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pycarp.config import load
from pycarp.config.getopt import InfoRequested
from pycarp.platform.rundir import run_directory
from tests.config.config_helpers import BASE, error, executable, fields, parse, write

# --- parity: ucarp argv -> settings ------------------------------------------


def test_defaults_are_ucarps() -> None:
    assert fields(parse(*BASE)) == {
        "interface": "eth0",
        "srcip": IPv4Address("10.0.0.1"),
        "vhid": 7,
        "addresses": (IPv4Address("10.0.0.100"),),
        "password": b"secret",
        "advbase": 1,
        "advskew": 0,
        "deadratio": 3,
        "preempt": False,
        "neutral": False,
        "group": IPv4Address("224.0.0.18"),
        "nomcast": False,
        "ignoreifstate": False,
        "upscript": None,
        "downscript": None,
        "xparam": None,
        "shutdown": False,
        "prefixes": (),
        "plumb": None,
        "mac": "interface",
        "protocol": "carp",
        "priority": 100,
        "advert_int": 100,
        "preempt_delay": 0.0,
        "script_timeout": 10,
        "replay": "on",
        "track": (),  # ucarp's command line has no health checks, nor demotion
        "demotion": "penalty",
        "penalty": 100,
        "peers": (),  # nor unicast peers: multicast, as ucarp
        "min_ttl": 1,
        "facility": "daemon",
        "debug": False,
        "daemonize": False,
        # one process per VIP, as ucarp: a socket each (the directory: test_rundir.py)
        "control_socket": f"{run_directory()}/eth0-7.sock",
        "control_group": None,
        "checks": (),
        "groups": (),
        "metrics": None,
        "realtime": "auto",  # realtime only with sub-second advertisements (advbase 0)
    }


def forms(
    long: str, short: str, value: str, abbrev: str, then: list[str] | None = None
) -> list[list[str]]:
    """The ways getopt_long lets one write an option that takes a value."""
    spellings = [
        [f"--{long}={value}"],
        [f"--{long}", value],
        [f"-{short}", value],
        [f"-{short}{value}"],
        [f"--{abbrev}={value}"],
        [f"--{abbrev}", value],
    ]
    return [spelling + (then or []) for spelling in spellings]


def flag_forms(long: str, short: str, abbrev: str) -> list[list[str]]:
    return [[f"--{long}"], [f"-{short}"], [f"--{abbrev}"]]


VALUE_ROWS: list[tuple[list[list[str]], dict[str, Any]]] = [
    (forms("interface", "i", "net0", "inter"), {"interface": "net0"}),
    (forms("srcip", "s", "10.0.0.2", "sr"), {"srcip": IPv4Address("10.0.0.2")}),
    (forms("mcast", "m", "239.1.2.3", "mc"), {"group": IPv4Address("239.1.2.3")}),
    (forms("mcastip", "m", "239.1.2.3", "mcasti"), {"group": IPv4Address("239.1.2.3")}),
    (forms("vhid", "v", "200", "v"), {"vhid": 200}),
    (forms("vhid", "v", "0xc8", "vh"), {"vhid": 200}),  # strtoul base 0: hex
    (forms("vhid", "v", "0310", "vh"), {"vhid": 200}),  # ... and octal, as in ucarp
    (forms("addr", "a", "10.0.0.200", "add"), {"addresses": (IPv4Address("10.0.0.200"),)}),
    (forms("advbase", "b", "5", "advb"), {"advbase": 5}),
    # advbase 0 is allowed only with an advskew above 0
    (forms("advbase", "b", "0", "advb", then=["-k", "1"]), {"advbase": 0, "advskew": 1}),
    (forms("advskew", "k", "100", "advs"), {"advskew": 100}),
    (forms("deadratio", "r", "5", "dea"), {"deadratio": 5}),
    (forms("facility", "f", "local3", "fac"), {"facility": "local3"}),
    (forms("facility", "f", "LOCAL3", "fa"), {"facility": "local3"}),  # strcasecmp
    (forms("facility", "f", "none", "f"), {"facility": "none"}),
    (forms("facility", "f", "security", "f"), {"facility": "auth"}),  # deprecated alias
    (forms("xparam", "x", "extra", "x"), {"xparam": "extra"}),
]

FLAG_ROWS: list[tuple[list[list[str]], dict[str, Any]]] = [
    (flag_forms("preempt", "P", "pr"), {"preempt": True}),
    (flag_forms("neutral", "n", "ne"), {"neutral": True}),
    (flag_forms("debug", "D", "deb"), {"debug": True}),
    (flag_forms("shutdown", "z", "sh"), {"shutdown": True}),
    (flag_forms("daemonize", "B", "da"), {"daemonize": True}),
    (flag_forms("ignoreifstate", "S", "ig"), {"ignoreifstate": True}),
    (flag_forms("nomcast", "M", "no"), {"nomcast": True}),
]

PARITY = [
    pytest.param(extra, expected, id=" ".join(extra))
    for spellings, expected in VALUE_ROWS + FLAG_ROWS
    for extra in spellings
] + [
    pytest.param(["--pass=other"], {"password": b"other"}, id="--pass=other"),
    pytest.param(["--pass", "other"], {"password": b"other"}, id="--pass other"),
    pytest.param(["-p", "other"], {"password": b"other"}, id="-p other"),
    pytest.param(["-pother"], {"password": b"other"}, id="-pother"),
    pytest.param(
        ["-p", "-P"], {"password": b"-P", "preempt": False}, id="value-may-start-with-dash"
    ),
    pytest.param(["--xparam="], {"xparam": ""}, id="empty-xparam"),
    pytest.param(
        ["-PnDzBSM"],
        {
            "preempt": True,
            "neutral": True,
            "debug": True,
            "shutdown": True,
            "daemonize": True,
            "ignoreifstate": True,
            "nomcast": True,
        },
        id="clustered-flags",
    ),
    pytest.param(["-Pk50"], {"preempt": True, "advskew": 50}, id="flag-then-value-cluster"),
    pytest.param(["-v", "9", "--vhid=10"], {"vhid": 10}, id="last-one-wins"),
    pytest.param(["--"], {}, id="double-dash-ends-options"),
    pytest.param(["-k", "+5"], {"advskew": 5}, id="plus-sign"),
]


@pytest.mark.parametrize(("extra", "expected"), PARITY)
def test_parity(extra: list[str], expected: dict[str, Any]) -> None:
    got = fields(parse(*BASE, *extra))
    assert {key: got[key] for key in expected} == expected


@pytest.mark.parametrize(
    "spelling",
    [
        ["--passfile={}"],
        ["--passfile", "{}"],
        ["-o", "{}"],
        ["-o{}"],
        ["--passf={}"],
        ["--passf", "{}"],
    ],
)
def test_passfile_forms(tmp_path: Path, spelling: list[str]) -> None:
    passfile = tmp_path / "pw"
    passfile.write_bytes(b"fromfile\nsecond line\n")
    extra = [part.format(passfile) for part in spelling]
    assert parse(*BASE, *extra).vhosts[0].password == b"fromfile"


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"secret\n", b"secret"),
        (b"secret", b"secret"),
        (b"secret\r\n", b"secret\r"),  # ucarp keeps the CR, so must we to agree with it
        (b"se cret  \n", b"se cret  "),
        (b"sec\0ret\n", b"sec"),  # a C string ends at NUL
        (b"\xff\xfe\n", b"\xff\xfe"),
    ],
)
def test_passfile_first_line_as_ucarp_reads_it(
    tmp_path: Path, content: bytes, password: bytes
) -> None:
    passfile = tmp_path / "pw"
    passfile.write_bytes(content)
    assert parse(*BASE, "-o", str(passfile)).vhosts[0].password == password


def test_pass_and_passfile_last_one_wins(tmp_path: Path) -> None:
    passfile = tmp_path / "pw"
    passfile.write_text("fromfile\n")
    assert parse(*BASE, "-o", str(passfile)).vhosts[0].password == b"fromfile"
    assert parse(*BASE, "-o", str(passfile), "-p", "typed").vhosts[0].password == b"typed"
    # an overridden passfile is never read, so it may be missing
    missing = str(tmp_path / "missing")
    assert parse(*BASE, "-o", missing, "-p", "typed").vhosts[0].password == b"typed"


def test_password_keeps_the_bytes_typed() -> None:
    typed = os.fsdecode(b"caf\xc3\xa9\xff")  # argv as Python sees non-UTF-8 bytes
    assert parse(*BASE, "-p", typed).vhosts[0].password == b"caf\xc3\xa9\xff"


def test_scripts_forms_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    up = executable(tmp_path / "up.sh")
    down = executable(tmp_path / "down.sh")
    for extra in (
        [f"--upscript={up}", f"--downscript={down}"],
        ["--upscript", str(up), "--downscript", str(down)],
        ["-u", str(up), "-d", str(down)],
        [f"-u{up}", f"-d{down}"],
        [f"--up={up}", f"--do={down}"],
    ):
        vhost = parse(*BASE, *extra).vhosts[0]
        assert (vhost.upscript, vhost.downscript) == (str(up), str(down))
    monkeypatch.chdir(tmp_path)  # relative paths are made absolute (the daemon may chdir)
    vhost = parse(*BASE, "-u", "up.sh", "-d", "./down.sh").vhosts[0]
    assert (vhost.upscript, vhost.downscript) == (str(up), str(down))


def test_check_machine_false_skips_interface_and_scripts() -> None:
    settings = load.settings_from_args(
        [*BASE, "-i", "absent0", "-u", "/nonexistent/up.sh"], check_machine=False
    )
    assert settings.vhosts[0].interface == "absent0"
    assert settings.vhosts[0].upscript == "/nonexistent/up.sh"


def test_short_m_and_both_long_mcast_names_are_accepted() -> None:
    # ucarp itself rejects -m and has only --mcastip (--mcast works there as its prefix)
    for extra in (["-m", "239.0.0.1"], ["--mcast=239.0.0.1"], ["--mcastip=239.0.0.1"]):
        assert parse(*BASE, *extra).vhosts[0].group == IPv4Address("239.0.0.1")


def test_ucarp_abbreviations_keep_their_meaning() -> None:
    # --v is --vhid in ucarp; pycarp's --version must not make it ambiguous
    assert parse(*BASE, "--v", "42").vhosts[0].vhid == 42
    # --c is only --config; --ve only --version
    with pytest.raises(InfoRequested) as caught:
        parse(*BASE, "--ve")
    assert caught.value.option == "version"


# --- bad values: one line naming the option ------------------------------------

BAD = [
    (["--advskew=300"], "--advskew: 300 is outside 0..255"),
    (["-k", "-1"], "--advskew: -1 is outside 0..255"),
    (["-k", "0x100"], "--advskew: 256 is outside 0..255"),
    (["--advbase=256"], "--advbase: 256 is outside 0..255"),
    (["--advbase=0"], "--advbase: 0 needs an advskew above 0"),
    (["-b", "255", "-k", "255"], "--advbase/--advskew: 255/255 is reserved"),
    (["--vhid=0"], "--vhid: 0 is outside 1..255"),
    (["--vhid=256"], "--vhid: 256 is outside 1..255"),
    (["-v", "abc"], "--vhid: 'abc' is not a number"),
    (["-v", "5x"], "--vhid: '5x' is not a number"),
    (["-v", "1.5"], "--vhid: '1.5' is not a number"),
    (["-v", ""], "--vhid: '' is not a number"),
    (["-v", "08"], "--vhid: '08' is not a number (a leading 0 means octal"),
    (["--advbase=two"], "--advbase: 'two' is not a number"),
    (["--deadratio=0"], "--deadratio: 0 is below 1"),
    (["--deadratio=4294967296"], "--deadratio: 4294967296 is above 4294967295"),
    (["-r", "x"], "--deadratio: 'x' is not a number"),
    (["--pass=" + "x" * 20], "--pass: 20 bytes; at most 19 are allowed"),
    (["--pass="], "--pass: the password is empty"),
    (["--srcip=1.2.3"], "--srcip: '1.2.3' is not an IPv4 address"),
    (["--srcip=fe80::1"], "--srcip: 'fe80::1' is not an IPv4 address"),
    (["--srcip=0.0.0.0"], "--srcip: 0.0.0.0 cannot be used"),
    (["--srcip=010.0.0.1"], "--srcip: '010.0.0.1' is not an IPv4 address"),
    (["--addr=10.0.0.300"], "--addr: '10.0.0.300' is not an IPv4 address"),
    (["--addr=10.0.0.1"], "--srcip: 10.0.0.1 is also a virtual address"),
    (["--mcast=10.0.0.5"], "--mcast: 10.0.0.5 is not a multicast address"),
    (["--mcastip=10.0.0.5"], "--mcast: 10.0.0.5 is not a multicast address"),
    (["-m", "nope"], "--mcast: 'nope' is not an IPv4 address"),
    (["--facility=mark"], "--facility: 'mark' is not a syslog facility"),
    (["-f", "local8"], "--facility: 'local8' is not a syslog facility"),
    (["--interface=nope0"], "--interface: no such interface: 'nope0'"),
    (["--interface="], "--interface: required"),
    (["--upscript=/nonexistent/up.sh"], "--upscript: /nonexistent/up.sh does not exist"),
    (["--downscript=/"], "--downscript: / is a directory"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_value_is_one_line(extra: list[str], message: str) -> None:
    assert error(*BASE, *extra).startswith(message)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("missing", "does not exist"), ("not-executable", "is not executable")],
)
def test_bad_scripts(tmp_path: Path, kind: str, message: str) -> None:
    script = tmp_path / "up.sh"
    if kind == "not-executable":
        executable(script, mode=0o644)
    assert f"--upscript: {script} {message}" in error(*BASE, "-u", str(script))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"\n", "the password is empty"),
        (b"x" * 25 + b"\n", "25 bytes; at most 19"),
    ],
)
def test_bad_passfile(tmp_path: Path, content: bytes | None, message: str) -> None:
    passfile = tmp_path / "pw"
    if content is not None:
        passfile.write_bytes(content)
    err = error(*BASE, "--passfile", str(passfile))
    assert err.startswith("--passfile: ")
    assert message in err


def test_missing_required_options_are_all_named() -> None:
    err = error()
    for label in ("--interface", "--srcip", "--vhid", "--pass", "--addr"):
        assert label in err
    assert "does not pick one" in err  # ucarp would guess an interface


def test_vhid_is_required_as_in_ucarp() -> None:
    without_vhid = [a for a in BASE if a not in ("-v", "7")]
    assert "missing required options: --vhid" in error(*without_vhid)


# --- --control-socket, --control-group, --virtual-mac ----------------------------


def test_control_socket_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse(*BASE).control_socket == f"{run_directory()}/eth0-7.sock"
    assert parse(*BASE, "-i", "net0", "-v", "0x10").control_socket == (
        f"{run_directory()}/net0-16.sock"
    )
    assert parse(*BASE, "--control-socket", "/tmp/p.sock").control_socket == "/tmp/p.sock"
    assert parse(*BASE, "--control-socket=none").control_socket is None
    assert parse(*BASE, "--control-socket=NONE").control_socket is None
    monkeypatch.chdir(tmp_path)  # absolute: the daemon changes directory
    assert parse(*BASE, "--control-s", "p.sock").control_socket == str(tmp_path / "p.sock")
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n--control-socket=none\n")
    assert parse("-c", str(config)).control_socket is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--control-socket: the path is empty (none disables the control socket)"),
        ("/" + "x" * 107, "--control-socket: /xxxxxxxx"),
    ],
)
def test_bad_control_socket(value: str, message: str) -> None:
    assert error(*BASE, f"--control-socket={value}").startswith(message)


def test_control_group_option() -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    assert parse(*BASE).control_group is None
    assert parse(*BASE, f"--control-group={group}").control_group == group
    assert parse(*BASE, "--control-group", "0").control_group == "0"  # a number works too
    assert error(*BASE, "--control-group=no-such-group-x") == (
        "--control-group: no such group: 'no-such-group-x'"
    )


def test_virtual_mac_option() -> None:
    base = ["-i", "lo", "-s", "198.51.100.1", "-v", "5", "-p", "x", "-a", "198.51.100.2"]
    assert load.settings_from_args(base, check_machine=False).vhosts[0].mac == "interface"
    with_it = load.settings_from_args([*base, "--virtual-mac"], check_machine=False)
    assert with_it.vhosts[0].mac == "ucarp"
