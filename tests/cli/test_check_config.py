"""pycarp check-config FILE (and --check-config FILE): check, print a summary, exit."""

from __future__ import annotations

import grp
import os
import sys
from pathlib import Path

import pytest

from pycarp.cli import main as cli
from pycarp.platform.rundir import run_directory
from tests.config.config_helpers import BASE, GOOD_TOML, TOML, executable, write
from tests.config.toml_helpers import as_the_docs_host, doc_block


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


def test_control_group_in_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
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


def test_documented_check_config_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    as_the_docs_host(monkeypatch)
    path = tmp_path / "pycarp.toml"
    path.write_text(doc_block("toml"))
    console = doc_block("console").splitlines()
    assert console[0] == "$ pycarp --check-config /etc/pycarp/pycarp.toml"
    assert cli.main(["--check-config", str(path)]) == 0
    expected = "\n".join(console[1:]).replace("/etc/pycarp/pycarp.toml", str(path)) + "\n"
    assert capsys.readouterr().out == expected
