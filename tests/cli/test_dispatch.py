"""The pycarp command: dispatch, the daemon's start and reload, and how errors are printed."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from pycarp.cli import main as cli
from pycarp.config.settings import DaemonSettings, SettingsLoader
from pycarp.core.errors import ConfigError
from tests.config.config_helpers import (
    BASE,
    GOOD_TOML,
    TOML,
    UCARP_OPTIONS,
    executable,
    parse,
    write,
)

# What each subcommand runs: module and function, imported only when it runs.
DISPATCH = {
    "demo": "pycarp.demo.command.main",
    "check-config": "_check_config_command",
    "status": "pycarp.client.commands.status_main",
    "stepdown": "pycarp.client.commands.stepdown_main",
    "reload": "pycarp.client.commands.reload_main",
    "promote": "pycarp.client.commands.promote_main",
    "demote": "pycarp.client.commands.demote_main",
    "events": "pycarp.client.events.events_main",
    "render": "pycarp.deploy.command.main",
    "check": "pycarp.vmadm.command.main",
    "lab": "pycarp.lab.command.main",
}


def test_the_subcommands_and_their_modules() -> None:
    assert {name: run.__name__ for name, run in cli.SUBCOMMANDS.items()} == DISPATCH


@pytest.mark.parametrize("name", sorted(set(DISPATCH) - {"check-config"}))
def test_each_subcommand_is_where_the_table_says(name: str) -> None:
    module, _, function = DISPATCH[name].rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def test_importing_the_cli_leaves_the_subcommands_and_the_daemon_alone() -> None:
    code = (
        "import sys, pycarp.cli.main; "
        "loaded = [m for m in ('pycarp.runtime.daemon', 'pycarp.demo.command', "
        "'pycarp.lab.command', 'pycarp.deploy.command', 'pycarp.vmadm.command') "
        "if m in sys.modules]; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


# --- errors: one line each on stderr, exit 2 ---------------------------------------

# One of each kind: scanning, a value, the machine, a file, the request.
BAD = [
    (["--advskew=300"], "--advskew: 300 is outside 0..255"),
    (["-b", "255", "-k", "255"], "--advbase/--advskew: 255/255 is reserved"),
    (["--interface=nope0"], "--interface: no such interface: 'nope0'"),
    (["--bogus"], "unknown option --bogus"),
    (["stray"], "unexpected argument 'stray'"),
    (["--no-machine-checks"], "--no-machine-checks: only with --check-config"),
    (["--config=/nonexistent/ucarp.cfg"], "--config: /nonexistent/ucarp.cfg: cannot read"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_value_is_one_line_and_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*BASE, *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"pycarp: error: {message}")
    assert err.endswith("\n") and err.count("\n") == 1


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


def test_parse_daemon_args_exits_like_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.parse_daemon_args([*BASE, "--advskew=300"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "pycarp: error: --advskew: 300 is outside 0..255\n"
    assert cli.parse_daemon_args(BASE).vhosts[0].vhid == 7


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


def test_help_lists_pycarp_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--control-socket=<path>", "--check-config=<file>", "--no-machine-checks"):
        assert option in out
    assert "check-config" in out.splitlines()[3]  # the subcommands' usage line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--version", "-V"):
        assert cli.main([flag]) == 0
        assert re.fullmatch(r"pycarp \S+\n", capsys.readouterr().out)


def test_subcommands_get_the_rest_of_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        seen.append(args)
        return 5

    fake_demo = types.ModuleType("pycarp.demo.command")
    fake_demo.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycarp.demo.command", fake_demo)
    assert cli.main(["demo", "--fast", "-v", "3"]) == 5
    assert seen == [["--fast", "-v", "3"]]


def test_daemon_gets_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[DaemonSettings] = []

    def fake_run(settings: DaemonSettings, *, reload: SettingsLoader) -> int:
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


# --- reload ------------------------------------------------------------------------


@pytest.fixture
def fake_daemon(monkeypatch: pytest.MonkeyPatch) -> list[tuple[DaemonSettings, SettingsLoader]]:
    runs: list[tuple[DaemonSettings, SettingsLoader]] = []

    def fake_run(settings: DaemonSettings, *, reload: SettingsLoader) -> int:
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
    fake_daemon: list[tuple[DaemonSettings, SettingsLoader]],
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
    fake_daemon: list[tuple[DaemonSettings, SettingsLoader]],
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
    tmp_path: Path, fake_daemon: list[tuple[DaemonSettings, SettingsLoader]]
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
