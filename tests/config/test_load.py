"""Loading: a command line and the config files it names, or one file (pycarp check)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.config import load, machine
from pycarp.config.tomlfile import ConfigErrors
from pycarp.core.errors import ConfigError
from pycarp.platform.rundir import run_directory
from tests.config.config_helpers import BASE, GOOD_TOML, TOML, error, fields, parse, write

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "smartos" / "ucarp.cfg"


# --- options files -----------------------------------------------------------


@pytest.fixture
def no_script_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference file names SmartOS paths that do not exist here."""
    monkeypatch.setattr(machine, "check_script", lambda path, field: path)


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
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n" + text)
    err = error("--config", str(config))
    where = f"{tmp_path}/ucarp.cfg:{line} (ucarp options)"
    assert err.startswith(f"{where}: {message}"), err


def test_a_value_given_on_the_command_line_has_no_file_prefix(tmp_path: Path) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")
    assert error("-c", str(config), "--advskew=300") == "--advskew: 300 is outside 0..255"


def test_missing_options_file(tmp_path: Path) -> None:
    err = error("--config", str(tmp_path / "absent.cfg"))
    assert err.startswith(f"--config: {tmp_path}/absent.cfg: cannot read")


def test_mode_options_cannot_go_in_an_options_file(tmp_path: Path) -> None:
    config = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n--no-machine-checks\n")
    assert "ucarp.cfg:2 (ucarp options): --no-machine-checks: cannot be used inside" in (
        error("--check-config", str(config))
    )


# --- TOML config files -----------------------------------------------------------


@pytest.mark.parametrize("name", ["pycarp.toml", "pycarp.TOML", "pycarp.cfg", "pycarp.conf", "p"])
def test_a_toml_file_is_known_by_name_or_content(tmp_path: Path, name: str) -> None:
    settings = parse("--config", str(write(tmp_path / name, GOOD_TOML)))
    assert [(v.vhid, v.advskew) for v in settings.vhosts] == [(7, 0), (8, 30)]
    assert settings.vhosts[0].prefixes == (24,)
    assert settings.facility == "local1"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.toml", "--vhid=1\n", load.TOML_FORMAT),  # the name wins
        ("a.cfg", "# comment\n\n  --vhid=1\n", load.UCARP_FORMAT),
        ("a.conf", "-P\n", load.UCARP_FORMAT),
        ("a", "# only comments\n", load.UCARP_FORMAT),
        ("a", "", load.UCARP_FORMAT),
        ("a.cfg", "# comment\n[defaults]\n", load.TOML_FORMAT),
        ("a.conf", "vhid = 1\n", load.TOML_FORMAT),
    ],
)
def test_detect_format(name: str, text: str, expected: str) -> None:
    assert load.detect_format(name, text.encode()) == expected


@pytest.mark.parametrize(
    ("name", "text", "prefix"),
    [
        ("pycarp.cfg", TOML, "pycarp.cfg (TOML): vhost[1] (vhid 8): advskew: 300 is outside"),
        ("pycarp.toml", TOML, "pycarp.toml (TOML): vhost[1] (vhid 8): advskew: 300 is outside"),
        ("ucarp.conf", "--advskew=300\n", "ucarp.conf:1 (ucarp options): --advskew: 300 is"),
    ],
)
def test_errors_say_which_format_was_assumed(
    tmp_path: Path, name: str, text: str, prefix: str
) -> None:
    config = write(tmp_path / name, text)
    extra = [] if name.endswith(("toml", ".cfg")) else BASE
    assert error(*extra, "--config", str(config)).startswith(f"{tmp_path}/{prefix}")


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
    tmp_path: Path, extra: list[str], refused: str
) -> None:
    config = write(tmp_path / "p.toml", GOOD_TOML)
    assert error("-c", str(config), *extra) == (
        f"{refused}: cannot be used with {config} (TOML); set per-host "
        "options in the file (only --facility, --debug, --daemonize, --control-socket and "
        "--control-group may be given with it)"
    )


def test_a_toml_file_goes_alone(tmp_path: Path) -> None:
    config = write(tmp_path / "p.toml", GOOD_TOML)
    other = write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")
    assert error("-c", str(other), "-c", str(config)) == (
        f"{config} (TOML): a TOML file cannot be combined with another config file ({other})"
    )


def test_missing_toml_file(tmp_path: Path) -> None:
    err = error("--config", str(tmp_path / "absent.toml"))
    assert err == f"--config: {tmp_path}/absent.toml: cannot read: " + ("No such file or directory")


# --- one file, as `pycarp check` loads it ----------------------------------------


def test_load_file_either_format(tmp_path: Path) -> None:
    kind, settings = load.load_file(str(write(tmp_path / "p.toml", GOOD_TOML)))
    assert kind == load.TOML_FORMAT == "TOML"
    assert [vhost.vhid for vhost in settings.vhosts] == [7, 8]
    kind, settings = load.load_file(str(write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n")))
    assert kind == load.UCARP_FORMAT == "ucarp options"
    assert settings == parse(*BASE)


def test_load_file_for_another_host(tmp_path: Path) -> None:
    text = " ".join([*BASE, "-i", "other0", "-o", "/nonexistent/pw"]) + "\n"
    config = str(write(tmp_path / "ucarp.cfg", text))
    _, settings = load.load_file(config, check_machine=False)
    assert (settings.vhosts[0].interface, settings.vhosts[0].password) == ("other0", b"")
    with pytest.raises(
        ConfigError, match=r"ucarp\.cfg:1 \(ucarp options\): --passfile: cannot read"
    ):
        load.load_file(config)


def test_load_file_errors_name_the_file_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load.load_file("absent.cfg")
    assert str(caught.value) == "absent.cfg: cannot read: No such file or directory"
    write(tmp_path / "p.toml", TOML + "[[vhost]]\nvhid = 7\naddresses = ['10.0.0.9']\n")
    with pytest.raises(ConfigErrors) as errors:
        load.load_file("p.toml")
    assert str(errors.value).splitlines() == [
        "p.toml (TOML): vhost[1] (vhid 8): advskew: 300 is outside 0..255",
        "p.toml (TOML): vhost[2] (vhid 7): vhid: 7 on eth0 is already used by vhost[0] (vhid 7)",
    ]
    write(tmp_path / "ucarp.cfg", " ".join(BASE) + "\n-h\n")
    with pytest.raises(ConfigError) as caught:
        load.load_file("ucarp.cfg")
    assert str(caught.value) == (
        "ucarp.cfg:2 (ucarp options): --help: cannot be used inside an options file"
    )
