"""pycarp render systemd: the unit and the template unit, checked by systemd-analyze."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.render_helpers import PYCARP, rendered


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    return parser


def analyze_verify(path: Path) -> subprocess.CompletedProcess[str]:
    """systemd's own check of every directive (needs Debian's systemd package)."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install -y systemd"
    return subprocess.run(
        [tool, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )


def fake_program(tmp_path: Path) -> Path:
    """An executable to name in ExecStart: verify wants the program to exist."""
    program = tmp_path / "pycarp"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_systemd_unit_directives(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(["systemd", "--pycarp", PYCARP, "--config", "/etc/pycarp/x.toml"], capsys)
    parsed = unit(text)
    assert parsed.sections() == ["Unit", "Service", "Install"]
    assert dict(parsed["Unit"]) == {
        "Description": "pycarp CARP virtual IP daemon",
        "Documentation": "man:ucarp(8)",
        "Wants": "network-online.target",
        "After": "network-online.target",
    }
    caps = "CAP_NET_RAW CAP_NET_ADMIN"
    service = dict(parsed["Service"])
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": f"{PYCARP} --config /etc/pycarp/x.toml --control-socket "
        "/run/pycarp/pycarp.sock",
        "ExecReload": f"{PYCARP} reload --control-socket /run/pycarp/pycarp.sock",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "60s",
        "WatchdogSec": "10s",
        "Restart": "on-failure",
        "User": "pycarp",
        "Group": "pycarp",
        "AmbientCapabilities": caps,
        "CapabilityBoundingSet": caps,
        "NoNewPrivileges": "yes",
        "RuntimeDirectory": "pycarp",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert dict(parsed["Install"]) == {"WantedBy": "multi-user.target"}


def test_systemd_user_and_relative_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = rendered(["systemd", "--pycarp", PYCARP, "--config", "my file.cfg", "--user", "carp"],
                    capsys)  # fmt: skip
    service = unit(text)["Service"]
    assert service["User"] == service["Group"] == "carp"
    assert service["ExecStart"].startswith(f'{PYCARP} --config "{tmp_path}/my file.cfg" ')


def test_systemd_analyze_verify(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """systemd's own check of every directive (needs Debian's systemd package)."""
    path = tmp_path / "pycarp.service"
    path.write_text(rendered(["systemd", "--pycarp", str(fake_program(tmp_path))], capsys))
    result = analyze_verify(path)
    assert result.returncode == 0, result.stderr
    assert str(path) not in result.stderr, result.stderr  # no warning about the unit


def test_verify_notices_a_bad_directive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The check above is not vacuous: systemd-analyze verify does object here."""
    path = tmp_path / "pycarp.service"
    text = rendered(["systemd", "--pycarp", "/bin/true"], capsys)
    path.write_text(text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    result = analyze_verify(path)
    assert "NoNewPrivilege" in result.stderr


def test_systemd_template_unit(capsys: pytest.CaptureFixture[str]) -> None:
    """pycarp@NAME reads /etc/pycarp/NAME.conf (either form) and has the socket NAME.sock."""
    text = rendered(["systemd", "--template", "--pycarp", PYCARP], capsys)
    assert text.startswith("# Rendered by 'pycarp render systemd --template'.\n")
    assert "systemctl enable --now pycarp@NAME for each /etc/pycarp/NAME.conf" in text
    parsed = unit(text)
    assert parsed["Unit"]["Description"] == "pycarp CARP virtual IP daemon (%i)"
    service = parsed["Service"]
    assert service["ExecStart"] == (
        f"{PYCARP} --config /etc/pycarp/%i.conf --control-socket /run/pycarp/%i.sock"
    )
    assert service["ExecReload"] == f"{PYCARP} reload --control-socket /run/pycarp/%i.sock"
    # the instances share /run/pycarp: one stopping must not remove the others' sockets
    assert (service["RuntimeDirectory"], service["RuntimeDirectoryPreserve"]) == ("pycarp", "yes")
    assert service["RuntimeDirectoryMode"] == "0755"
    assert service["Type"] == "notify" and service["User"] == "pycarp"
    toml = rendered(["systemd", "--template", "--pycarp", PYCARP, "--config", "/etc/c/%i.toml"],
                    capsys)  # fmt: skip
    assert unit(toml)["Service"]["ExecStart"].startswith(f"{PYCARP} --config /etc/c/%i.toml ")


def test_systemd_a_percent_in_a_path_is_not_a_specifier(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = rendered(["systemd", "--pycarp", PYCARP, "--config", "/etc/pycarp/100%.toml"], capsys)
    assert unit(text)["Service"]["ExecStart"].startswith(
        f"{PYCARP} --config /etc/pycarp/100%%.toml "
    )


@pytest.mark.parametrize("name", ["pycarp@.service", "pycarp@vip1.service"])
def test_systemd_analyze_verify_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    """systemd's check of the template, and of an instance of it (%i expanded)."""
    path = tmp_path / name
    path.write_text(
        rendered(["systemd", "--template", "--pycarp", str(fake_program(tmp_path))], capsys)
    )
    result = analyze_verify(path)
    assert result.returncode == 0, result.stderr
    assert str(path) not in result.stderr, result.stderr
