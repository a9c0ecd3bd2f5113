"""The command line: parity with ucarp's options, and clear errors for bad values."""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
import sys
import types
from dataclasses import asdict
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pycarp.cli import main as cli
from pycarp.config.settings import DaemonSettings
from pycarp.core.errors import ConfigError
from pycarp.platform.rundir import run_directory

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "smartos" / "ucarp.cfg"
FAKE_INTERFACES = {"eth0", "net0"}
REAL_INTERFACE_EXISTS = cli.interface_exists  # before the autouse fixture replaces it

# A minimal valid ucarp command line; cases append to it (the last option wins).
BASE = ["-i", "eth0", "-s", "10.0.0.1", "-v", "7", "-p", "secret", "-a", "10.0.0.100"]

# (long name, short letter) of every option of ucarp 1.5.2 (its --help and ucarp_p.h).
UCARP_OPTIONS = [
    ("interface", "i"), ("srcip", "s"), ("mcast", "m"), ("vhid", "v"), ("pass", "p"),
    ("passfile", "o"), ("preempt", "P"), ("neutral", "n"), ("addr", "a"), ("help", "h"),
    ("advbase", "b"), ("advskew", "k"), ("upscript", "u"), ("downscript", "d"),
    ("deadratio", "r"), ("debug", "D"), ("shutdown", "z"), ("daemonize", "B"),
    ("ignoreifstate", "S"), ("nomcast", "M"), ("facility", "f"), ("xparam", "x"),
]  # fmt: skip


@pytest.fixture(autouse=True)
def fake_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' interfaces exist whatever machine runs them."""
    monkeypatch.setattr(cli, "interface_exists", lambda name: name in FAKE_INTERFACES)


def parse(*args: str) -> DaemonSettings:
    return cli.settings_from_args(list(args))


def fields(settings: DaemonSettings) -> dict[str, Any]:
    """The vhost's fields and the process settings, in one flat dict."""
    (vhost,) = settings.vhosts
    return {**asdict(vhost), **{k: v for k, v in asdict(settings).items() if k != "vhosts"}}


def executable(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return path


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
        "virtual_mac": False,
        "facility": "daemon",
        "debug": False,
        "daemonize": False,
        # one process per VIP, as ucarp: a socket each (the directory: test_rundir.py)
        "control_socket": f"{run_directory()}/eth0-7.sock",
        "control_group": None,
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
    settings = cli.settings_from_args(
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
    with pytest.raises(cli.InfoRequested, match="pycarp"):
        parse(*BASE, "--ve")


# --- bad values: one line on stderr naming the option, exit 2 ---------------

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
    (["--bogus"], "unknown option --bogus"),
    (["--bogus=1"], "unknown option --bogus"),
    (["-q"], "unknown option -q"),
    (["-Pq"], "unknown option -q"),
    (["--pas=x"], "ambiguous option --pas (could be --pass, --passfile)"),
    (["--d"], "ambiguous option --d (could be --daemonize, --deadratio, --debug, --downscript)"),
    (["--preempt=yes"], "--preempt takes no value"),
    (["--vhid"], "--vhid needs a value"),
    (["-v"], "-v needs a value"),
    (["stray"], "unexpected argument 'stray'"),
    (["--", "stray"], "unexpected argument 'stray'"),
    (["-"], "unexpected argument '-'"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(e) or "''" for e, _ in BAD])
def test_bad_value_is_one_line_and_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*BASE, *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"pycarp: error: {message}")
    assert err.endswith("\n") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [("missing", "does not exist"), ("not-executable", "is not executable")],
)
def test_bad_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str
) -> None:
    script = tmp_path / "up.sh"
    if kind == "not-executable":
        executable(script, mode=0o644)
    assert cli.main([*BASE, "-u", str(script)]) == 2
    assert f"--upscript: {script} {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"\n", "the password is empty"),
        (b"x" * 25 + b"\n", "25 bytes; at most 19"),
    ],
)
def test_bad_passfile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    passfile = tmp_path / "pw"
    if content is not None:
        passfile.write_bytes(content)
    assert cli.main([*BASE, "--passfile", str(passfile)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pycarp: error: --passfile: ")
    assert message in err


def test_missing_required_options_are_all_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    for label in ("--interface", "--srcip", "--vhid", "--pass", "--addr"):
        assert label in err
    assert "does not pick one" in err  # ucarp would guess an interface


def test_vhid_is_required_as_in_ucarp(capsys: pytest.CaptureFixture[str]) -> None:
    without_vhid = [a for a in BASE if a not in ("-v", "7")]
    assert cli.main(without_vhid) == 2
    assert "missing required options: --vhid" in capsys.readouterr().err


def test_parse_daemon_args_exits_like_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.parse_daemon_args([*BASE, "--advskew=300"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "pycarp: error: --advskew: 300 is outside 0..255\n"
    assert cli.parse_daemon_args(BASE).vhosts[0].vhid == 7


def test_real_interface_check() -> None:
    assert REAL_INTERFACE_EXISTS("lo")
    assert not REAL_INTERFACE_EXISTS("no-such-if0")
    assert not REAL_INTERFACE_EXISTS("x" * 40)
    assert not REAL_INTERFACE_EXISTS("a\0b")


# --- options files -----------------------------------------------------------


@pytest.fixture
def no_script_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference file names SmartOS paths that do not exist here."""
    monkeypatch.setattr(cli, "check_script", lambda path: path)


@pytest.mark.usefixtures("no_script_check")
def test_reference_options_file() -> None:
    for flag in ("--config", "-c", "--conf"):
        got = fields(parse(flag, str(REFERENCE)))
        assert got == {
            **fields(parse(*BASE)),
            "interface": "net0",
            "srcip": IPv4Address("198.51.100.201"),
            "vhid": 101,
            "password": b"changeme",
            "addresses": (IPv4Address("198.51.100.200"),),
            "upscript": "/opt/local/etc/vip-up.sh",
            "downscript": "/opt/local/etc/vip-down.sh",
            "shutdown": True,
            "control_socket": f"{run_directory()}/net0-101.sock",
        }


@pytest.mark.usefixtures("no_script_check")
def test_command_line_overrides_the_file_wherever_it_is() -> None:
    after = parse(f"--config={REFERENCE}", "--srcip=198.51.100.202", "-P")
    before = parse("--srcip=198.51.100.202", "-P", f"--config={REFERENCE}")
    for settings in (after, before):
        vhost = settings.vhosts[0]
        assert vhost.srcip == IPv4Address("198.51.100.202")
        assert vhost.preempt and vhost.shutdown  # flags from either side are set
        assert vhost.vhid == 101


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_options_file_continuations_comments_and_quotes(tmp_path: Path) -> None:
    config = write(
        tmp_path / "ucarp.cfg",
        "# zone A\n"
        "--interface=eth0 --srcip=10.0.0.1 \\\n"
        "  --vhid 0x2a  # hex, as strtoul reads it\n"
        "\n"
        "--pass 'pa ss#1' \\\n"
        '  --addr="10.0.0.100" --xparam "two words"\n'
        "-Pz\n",
    )
    vhost = parse("--config", str(config)).vhosts[0]
    assert (vhost.vhid, vhost.password, vhost.xparam) == (42, b"pa ss#1", "two words")
    assert vhost.preempt and vhost.shutdown


def test_several_files_are_read_in_order(tmp_path: Path) -> None:
    first = write(tmp_path / "a.cfg", " ".join(BASE) + " --advskew=10\n")
    second = write(tmp_path / "b.cfg", "--advskew=20\n")
    assert parse("-c", str(first), "-c", str(second)).vhosts[0].advskew == 20


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # line 1 of each file holds BASE
        ("\n--foo\n", 3, "unknown option --foo"),
        ("--advskew=300\n", 2, "--advskew: 300 is outside 0..255"),
        ("--vhid=1 \\\n  --vhid=0\n", 3, "--vhid: 0 is outside 1..255"),
        ("--pass='abc\n", 2, "unterminated quote"),
        ("-z -P\n--vhid\n", 3, "--vhid needs a value"),  # not taken from argv
        ("stray\n", 2, "unexpected argument 'stray'"),
        ("--config=other.cfg\n", 2, "--config: cannot be used inside an options file"),
        # the core names --srcip for this clash, so the line is --srcip's
        ("--addr=10.0.0.1\n", 1, "--srcip: 10.0.0.1 is also a virtual address"),
        ("--interface=nope0\n", 2, "--interface: no such interface"),
        ("-P --facility=klingon\n", 2, "--facility: 'klingon' is not a syslog"),
    ],
)
def test_errors_in_a_file_name_file_line_and_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n" + text)
    assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    where = f"{tmp_path}/ucarp.cfg:{line} (ucarp options)"
    assert err.startswith(f"pycarp: error: {where}: {message}"), err
    assert err.count("\n") == 1


def test_a_value_given_on_the_command_line_has_no_file_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")
    assert cli.main(["-c", str(config), "--advskew=300"]) == 2
    assert capsys.readouterr().err == "pycarp: error: --advskew: 300 is outside 0..255\n"


def test_missing_options_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(tmp_path / "absent.cfg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pycarp: error: --config: {tmp_path}/absent.cfg: cannot read")


# --- help, version, dispatch -------------------------------------------------


def test_help_lists_every_option_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--help", "-h", "--he"):
        assert cli.main([flag]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        for long, short in [*UCARP_OPTIONS, ("mcastip", "m"), ("config", "c"), ("version", "V")]:
            assert re.search(rf"--{long}\b.*\(-{short}\b", out), long


def test_help_wins_over_later_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-h", "--bogus"]) == 0
    assert "--interface" in capsys.readouterr().out


def test_every_option_of_the_installed_ucarp_is_known() -> None:
    ucarp = shutil.which("ucarp") or shutil.which("ucarp", path="/usr/sbin:/sbin")
    assert ucarp, "ucarp is not installed (apt-get install ucarp)"
    text = subprocess.run([ucarp, "--help"], capture_output=True, text=True, check=False).stdout
    listed = re.findall(r"^--(\w+)(?:=<[^>]*>)? \(-(\w)", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(UCARP_OPTIONS)
    for long, short in listed:
        assert cli._BY_LONG[long] is cli._BY_SHORT[short]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--version", "-V"):
        assert cli.main([flag]) == 0
        assert re.fullmatch(r"pycarp \S+\n", capsys.readouterr().out)


def test_subcommands_get_the_rest_of_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        seen.append(args)
        return 5

    fake_demo = types.ModuleType("pycarp.demo.main")
    fake_demo.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycarp.demo.main", fake_demo)
    assert cli.main(["demo", "--fast", "-v", "3"]) == 5
    assert seen == [["--fast", "-v", "3"]]


def test_daemon_gets_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[DaemonSettings] = []

    def fake_run(settings: DaemonSettings, *, reload: cli.SettingsLoader) -> int:
        seen.append(settings)
        assert reload() == settings  # nothing changed in between
        return 0

    fake_daemon = types.ModuleType("pycarp.runtime.daemon")
    fake_daemon.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycarp.runtime.daemon", fake_daemon)
    assert cli.main([*BASE, "-B", "-f", "local1"]) == 0
    assert seen == [parse(*BASE, "-B", "-f", "local1")]


def test_main_reads_sys_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["pycarp", "--version"])
    assert cli.main() == 0
    assert capsys.readouterr().out.startswith("pycarp ")


# --- TOML config files -----------------------------------------------------------

TOML = """\
# two virtual hosts
facility = "local1"

[defaults]
interface = "eth0"
srcip = "10.0.0.1"
password = "secret"

[[vhost]]
vhid = 7
addresses = ["10.0.0.100/24"]

[[vhost]]
vhid = 8
addresses = ["10.0.0.101"]
advskew = 300
"""
GOOD_TOML = TOML.replace("advskew = 300", "advskew = 30")


@pytest.mark.parametrize("name", ["pycarp.toml", "pycarp.TOML", "pycarp.cfg", "pycarp.conf", "p"])
def test_a_toml_file_is_known_by_name_or_content(tmp_path: Path, name: str) -> None:
    settings = parse("--config", str(write(tmp_path / name, GOOD_TOML)))
    assert [(v.vhid, v.advskew) for v in settings.vhosts] == [(7, 0), (8, 30)]
    assert settings.vhosts[0].prefixes == (24,)
    assert settings.facility == "local1"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.toml", "--vhid=1\n", cli.TOML_FORMAT),  # the name wins
        ("a.cfg", "# comment\n\n  --vhid=1\n", cli.UCARP_FORMAT),
        ("a.conf", "-P\n", cli.UCARP_FORMAT),
        ("a", "# only comments\n", cli.UCARP_FORMAT),
        ("a", "", cli.UCARP_FORMAT),
        ("a.cfg", "# comment\n[defaults]\n", cli.TOML_FORMAT),
        ("a.conf", "vhid = 1\n", cli.TOML_FORMAT),
    ],
)
def test_detect_format(name: str, text: str, expected: str) -> None:
    assert cli.detect_format(name, text.encode()) == expected


@pytest.mark.parametrize(
    ("name", "text", "prefix"),
    [
        ("pycarp.cfg", TOML, "pycarp.cfg (TOML): vhost[1] (vhid 8): advskew: 300 is outside"),
        ("pycarp.toml", TOML, "pycarp.toml (TOML): vhost[1] (vhid 8): advskew: 300 is outside"),
        ("ucarp.conf", "--advskew=300\n", "ucarp.conf:1 (ucarp options): --advskew: 300 is"),
    ],
)
def test_errors_say_which_format_was_assumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, prefix: str
) -> None:
    config = write(tmp_path / name, text)
    extra = [] if name.endswith(("toml", ".cfg")) else BASE
    assert cli.main([*extra, "--config", str(config)]) == 2
    assert capsys.readouterr().err.startswith(f"pycarp: error: {tmp_path}/{prefix}")


def test_every_toml_problem_is_printed_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "p.toml", TOML + "[[vhost]]\nvhid = 7\naddresses = ['10.0.0.9']\n")
    assert cli.main(["-c", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"pycarp: error: {config} (TOML): vhost[1] (vhid 8): advskew: 300 is outside 0..255",
        f"pycarp: error: {config} (TOML): vhost[2] (vhid 7): vhid: 7 on eth0 is already used "
        "by vhost[0] (vhid 7)",
    ]


def test_process_options_override_the_toml_file(tmp_path: Path) -> None:
    config = str(write(tmp_path / "p.toml", GOOD_TOML))
    settings = parse(
        "-f", "none", "-D", "--daemonize", "--control-socket=/run/x.sock", "-c", config
    )
    assert (settings.facility, settings.debug, settings.daemonize) == ("none", True, True)
    assert settings.control_socket == "/run/x.sock"
    assert settings.vhosts == parse("-c", config).vhosts


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        (["--vhid=9"], "--vhid"),
        (["-P", "--addr", "10.0.0.5", "-P"], "--preempt, --addr"),
        (["--pass=x"], "--pass"),
    ],
)
def test_per_host_options_cannot_go_with_a_toml_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], refused: str
) -> None:
    config = write(tmp_path / "p.toml", GOOD_TOML)
    assert cli.main(["-c", str(config), *extra]) == 2
    assert capsys.readouterr().err == (
        f"pycarp: error: {refused}: cannot be used with {config} (TOML); set per-host "
        "options in the file (only --facility, --debug, --daemonize, --control-socket and "
        "--control-group may be given with it)\n"
    )


def test_a_toml_file_goes_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "p.toml", GOOD_TOML)
    other = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")
    assert cli.main(["-c", str(other), "-c", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"pycarp: error: {config} (TOML): a TOML file cannot be combined with another "
        f"config file ({other})\n"
    )


def test_missing_toml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err
    assert err == f"pycarp: error: --config: {tmp_path}/absent.toml: cannot read: " + (
        "No such file or directory\n"
    )


# --- --control-socket ------------------------------------------------------------


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
def test_bad_control_socket(capsys: pytest.CaptureFixture[str], value: str, message: str) -> None:
    assert cli.main([*BASE, f"--control-socket={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pycarp: error: {message}") and err.count("\n") == 1


def test_control_group_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    assert parse(*BASE).control_group is None
    assert parse(*BASE, f"--control-group={group}").control_group == group
    assert parse(*BASE, "--control-group", "0").control_group == "0"  # a number works too
    assert cli.main([*BASE, "--control-group=no-such-group-x"]) == 2
    assert capsys.readouterr().err == (
        "pycarp: error: --control-group: no such group: 'no-such-group-x'\n"
    )
    # with a TOML file, and in check-config's summary
    config = write(tmp_path / "p.toml", GOOD_TOML)
    assert cli.main(["check-config", str(config), f"--control-group={group}"]) == 0
    assert f"control socket {run_directory()}/pycarp.sock (mode 0660, group {group})" in (
        capsys.readouterr().out
    )
    # a file for another host: its groups are not this machine's
    argv = ["check-config", str(config), "--control-group=no-such-group-x", "--no-machine-checks"]
    assert cli.main(argv) == 0


# --- --check-config ----------------------------------------------------------------


def test_check_config_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    up = executable(tmp_path / "up.sh")
    text = GOOD_TOML + f'upscript = "{up}"\npreempt = true\n'
    config = write(tmp_path / "p.toml", "control_socket = 'none'\n" + text)
    for argv in (["--check-config", str(config)], ["check-config", str(config)]):
        assert cli.main(argv) == 0
        out, err = capsys.readouterr()
        assert err == ""
        assert out == (
            f"{config} (TOML): OK, 2 virtual hosts\n"
            "process: facility local1; control socket none\n"
            "eth0 vhid 7: 10.0.0.100/24; advbase 1 advskew 0; pycarp plumbs the addresses\n"
            f"eth0 vhid 8: 10.0.0.101/32; advbase 1 advskew 30 preempt; upscript {up}\n"
        )


def test_check_config_ucarp_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")
    assert cli.main(["check-config", str(config), "-k", "5", "-D", "-B"]) == 0
    assert capsys.readouterr().out == (
        f"{config} (ucarp options): OK, 1 virtual host\n"
        f"process: facility daemon; control socket {run_directory()}/eth0-7.sock; debug; "
        "daemonize\n"
        "eth0 vhid 7: 10.0.0.100/32; advbase 1 advskew 5; pycarp plumbs the addresses\n"
    )


def test_check_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "p.toml", TOML)
    for argv in (["--check-config", str(config)], ["check-config", str(config)]):
        assert cli.main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"pycarp: error: {config} (TOML): vhost[1] (vhid 8): advskew")


def test_check_config_does_not_start_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pycarp.runtime.daemon", None)  # importing it would fail
    assert cli.main(["--check-config", str(write(tmp_path / "p.toml", GOOD_TOML))]) == 0


def test_no_machine_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD_TOML.replace("eth0", "other0") + "upscript = '/nonexistent/up.sh'\n"
    text = text.replace('password = "secret"', 'password_file = "/nonexistent/pw"')
    config = write(tmp_path / "p.toml", text)
    assert cli.main(["check-config", str(config)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 3  # interface, script, passfile
    assert cli.main(["check-config", "--no-machine-checks", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{config} (TOML): OK, 2 virtual hosts (interfaces, scripts and")
    # the same for ucarp options
    argv = [*BASE, "-i", "other0", "-o", "/nonexistent/pw", "-u", "/nonexistent/up.sh"]
    options = write(tmp_path / "ucarp.cfg", " ".join(argv) + "\n")
    assert cli.main(["--check-config", str(options), "--no-mach"]) == 0
    assert "other0 vhid 7" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check-config"], "check-config: give exactly one config file (found none)"),
        (["check-config", "a", "b"], "check-config: give exactly one config file (found 'a', 'b')"),
        ([*BASE, "--no-machine-checks"], "--no-machine-checks: only with --check-config"),
        (["--check-config"], "--check-config needs a value"),
    ],
)
def test_check_config_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith(f"pycarp: error: {message}")


def test_mode_options_cannot_go_in_an_options_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n--no-machine-checks\n")
    assert cli.main(["--check-config", str(config)]) == 2
    assert "ucarp.cfg:2 (ucarp options): --no-machine-checks: cannot be used inside" in (
        capsys.readouterr().err
    )


# --- reload ------------------------------------------------------------------------


@pytest.fixture
def fake_daemon(monkeypatch: pytest.MonkeyPatch) -> list[tuple[DaemonSettings, cli.SettingsLoader]]:
    runs: list[tuple[DaemonSettings, cli.SettingsLoader]] = []

    def fake_run(settings: DaemonSettings, *, reload: cli.SettingsLoader) -> int:
        runs.append((settings, reload))
        return 0

    fake = types.ModuleType("pycarp.runtime.daemon")
    fake.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycarp.runtime.daemon", fake)
    return runs


@pytest.mark.parametrize("name", ["p.toml", "ucarp.cfg"])
def test_reload_reads_the_same_sources_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_daemon: list[tuple[DaemonSettings, cli.SettingsLoader]],
    name: str,
) -> None:
    first, second = (
        (GOOD_TOML, GOOD_TOML.replace("advskew = 30", "advskew = 40"))
        if name.endswith("toml")
        else (" ".join(BASE) + "\n", " ".join(BASE) + " --advskew=40\n")
    )
    write(tmp_path / name, first)
    executable(tmp_path / "up.sh")
    monkeypatch.chdir(tmp_path)  # relative paths, then a daemon that moved to /
    assert cli.main(["-c", name, "--control-socket", "p.sock", "-D"]) == 0
    ((settings, reload),) = fake_daemon
    monkeypatch.chdir("/")
    assert reload() == settings
    write(tmp_path / name, second)
    again = reload()
    assert again.vhosts[-1].advskew == 40
    assert (again.debug, again.control_socket) == (True, str(tmp_path / "p.sock"))


def test_reload_resolves_paths_inside_an_options_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_daemon: list[tuple[DaemonSettings, cli.SettingsLoader]],
) -> None:
    executable(tmp_path / "up.sh")
    (tmp_path / "pw").write_text("fromfile\n")
    write(tmp_path / "ucarp.cfg", " ".join(BASE) + " --passfile=pw --upscript=up.sh\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["-c", "ucarp.cfg"]) == 0
    ((settings, reload),) = fake_daemon
    monkeypatch.chdir("/")
    assert reload() == settings
    assert settings.vhosts[0].upscript == str(tmp_path / "up.sh")
    assert settings.vhosts[0].password == b"fromfile"


def test_reload_of_a_bad_file_raises_config_error(
    tmp_path: Path, fake_daemon: list[tuple[DaemonSettings, cli.SettingsLoader]]
) -> None:
    config = write(tmp_path / "p.toml", GOOD_TOML)
    assert cli.main(["-c", str(config)]) == 0
    ((_, reload),) = fake_daemon
    write(tmp_path / "p.toml", TOML)
    with pytest.raises(ConfigError, match=r"p\.toml \(TOML\): vhost\[1\] \(vhid 8\): advskew"):
        reload()
    config.unlink()
    with pytest.raises(ConfigError, match=r"^--config: .*p\.toml: cannot read"):
        reload()


def test_help_lists_pycarp_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--control-socket=<path>", "--check-config=<file>", "--no-machine-checks"):
        assert option in out
    assert "check-config" in out.splitlines()[3]  # the subcommands' usage line


def test_virtual_mac_option() -> None:
    base = ["-i", "lo", "-s", "198.51.100.1", "-v", "5", "-p", "x", "-a", "198.51.100.2"]
    assert not cli.settings_from_args(base, check_machine=False).vhosts[0].virtual_mac
    with_it = cli.settings_from_args([*base, "--virtual-mac"], check_machine=False)
    assert with_it.vhosts[0].virtual_mac
