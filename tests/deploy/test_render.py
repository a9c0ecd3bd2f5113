"""pycarp render: an SMF manifest valid against the DTD, a systemd unit, up/down scripts."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pycarp.deploy import render

DTD = Path(__file__).resolve().parents[1] / "data" / "service_bundle.dtd.1"
PYCARP = "/opt/local/bin/pycarp"


def rendered(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert render.main(argv) == 0
    out: str = capsys.readouterr().out
    return out


# --- SMF ----------------------------------------------------------------------


def xmllint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("xmllint")
    assert tool, "xmllint is missing: apt-get install -y libxml2-utils"
    return subprocess.run(
        [tool, "--noout", "--nonet", "--dtdvalid", str(DTD), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--instance", "zoneA=/opt/local/etc/ucarp.cfg"],
        ["--fmri", "svc:/site/carp", "--instance", "web", "--instance", "db=/etc/db.toml"],
        ["--config", "/opt/local/etc/a&b <x>.cfg", "--user", "carp"],
    ],
)
def test_smf_manifest_is_valid(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "pycarp.xml"
    manifest.write_text(rendered(["smf", "--pycarp", PYCARP, *argv], capsys))
    result = xmllint(manifest)
    assert result.returncode == 0, result.stderr
    assert "validity error" not in result.stderr
    assert manifest.read_text().splitlines()[1].startswith("<!DOCTYPE service_bundle SYSTEM")


def test_smf_manifest_content(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(
        ["smf", "--pycarp", PYCARP, "--instance", "zoneA=/opt/local/etc/ucarp.cfg"], capsys
    )
    service = ET.fromstring(text).find("service")
    assert service is not None and service.get("name") == "network/pycarp"
    fmris = {e.get("value") for e in service.iter("service_fmri")}
    assert fmris == {"svc:/milestone/network:default", "svc:/system/filesystem/local:default"}
    methods = {e.get("name"): e for e in service.findall("exec_method")}
    start = methods["start"].get("exec")
    assert start == (
        f"{PYCARP} --config %{{config/file}} --control-socket %{{config/control_socket}}"
    )
    assert "--daemonize" not in start  # foreground, so duration is child
    assert methods["stop"].get("exec") == ":kill"
    assert int(methods["stop"].get("timeout_seconds", "0")) >= 30
    assert methods["refresh"].get("exec") == (
        f"{PYCARP} reload --control-socket %{{config/control_socket}}"
    )
    duration = service.find("property_group[@name='startd']/propval[@name='duration']")
    assert duration is not None and duration.get("value") == "child"
    credential = service.find("method_context/method_credential")
    assert credential is not None
    assert credential.get("privileges") == "basic,net_rawaccess,sys_ip_config"
    assert credential.get("user") == "root"
    (instance,) = service.findall("instance")
    assert instance.get("name") == "zoneA" and instance.get("enabled") == "false"
    values = {p.get("name"): p.get("value") for p in instance.iter("propval")}
    assert values == {
        "file": "/opt/local/etc/ucarp.cfg",
        "control_socket": "/var/run/pycarp/zoneA.sock",
    }
    common = service.find("template/common_name/loctext")
    assert common is not None and "pycarp" in (common.text or "")


def test_smf_instances_default_to_config(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(["smf", "--pycarp", PYCARP, "--config", "/etc/c.toml"], capsys)
    instance = ET.fromstring(text).find("service/instance")
    assert instance is not None and instance.get("name") == "default"
    file = instance.find("property_group/propval[@name='file']")
    assert file is not None and file.get("value") == "/etc/c.toml"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--instance", "a", "--instance", "a=/x"], "'a' is used twice"),
        (["--instance", "a", "--instance", "b"], "is used twice; give distinct config files"),
        (["--instance", "1bad"], "not an SMF instance name"),
        (["--fmri", "bad name"], "not a service name"),
        (["--pycarp", "pycarp"], "must be an absolute path"),
        (["--user", "a b"], "not a user name"),
    ],
)
def test_smf_bad_arguments(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["smf", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pycarp render: error: ") and error in err


# --- systemd ---------------------------------------------------------------------


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    return parser


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
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install -y systemd"
    program = tmp_path / "pycarp"  # verify wants ExecStart's program to exist
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    path = tmp_path / "pycarp.service"
    path.write_text(rendered(["systemd", "--pycarp", str(program)], capsys))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert str(path) not in result.stderr, result.stderr  # no warning about the unit


def test_verify_notices_a_bad_directive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The check above is not vacuous: systemd-analyze verify does object here."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install -y systemd"
    path = tmp_path / "pycarp.service"
    text = rendered(["systemd", "--pycarp", "/bin/true"], capsys)
    path.write_text(text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
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


def test_systemd_template_needs_the_instance_in_the_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert render.main(["systemd", "--template", "--config", "/etc/pycarp/a.conf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pycarp render: error: --config: '/etc/pycarp/a.conf' has no %i")
    assert err.count("\n") == 1


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
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install -y systemd"
    program = tmp_path / "pycarp"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    path = tmp_path / name
    path.write_text(rendered(["systemd", "--template", "--pycarp", str(program)], capsys))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert str(path) not in result.stderr, result.stderr


# --- scripts ------------------------------------------------------------------------

FAKE_IFCONFIG = """#!/bin/sh
echo "ifconfig $*" >> "$CALLS"
if [ "$1" = "-a4" ]; then cat "$STATE"; fi
"""

FAKE_IP = """#!/bin/sh
echo "ip $*" >> "$CALLS"
case "$*" in *" show "*) cat "$STATE" ;; esac
"""

ILLUMOS_WITH_VIP = """\
lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1
        inet 127.0.0.1 netmask ff000000
net0: flags=40001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,L3PROTECT> mtu 1500 index 2
        inet 198.51.100.201 netmask ffffff00 broadcast 198.51.100.255
net0:2: flags=40001000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,L3PROTECT> mtu 1500 index 2
        inet 198.51.100.200 netmask ffffffff broadcast 198.51.100.200
"""
ILLUMOS_WITHOUT_VIP = "\n".join(ILLUMOS_WITH_VIP.splitlines()[:4]) + "\n"
LINUX_WITH_VIP = "2: eth0    inet 198.51.100.200/32 scope global eth0\\n valid_lft forever\n"


@pytest.fixture
def scripts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "scripts"
    directory.mkdir()
    return directory


def write(os_name: str, directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["scripts", "--os", os_name, "--dir", str(directory)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"wrote {directory / name}" for name in render.SCRIPT_NAMES]


@pytest.mark.parametrize("os_name", ["illumos", "linux"])
def test_scripts_are_written_0755_and_parse(
    os_name: str, scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(os_name, scripts_dir, capsys)
    for name in render.SCRIPT_NAMES:
        path = scripts_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert path.read_text().startswith("#!/bin/sh\n")
        result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert render.main(["scripts", "--os", os_name, "--dir", str(scripts_dir)]) == 2
    assert "already exists (--force replaces it)" in capsys.readouterr().err
    assert render.main(["scripts", "--os", os_name, "--dir", str(scripts_dir), "--force"]) == 0


def test_scripts_printed(capsys: pytest.CaptureFixture[str]) -> None:
    text = rendered(["scripts", "--os", "linux"], capsys)
    assert "# ===== vip-up.sh =====\n#!/bin/sh\n" in text
    assert "# ===== vip-down.sh =====\n#!/bin/sh\n" in text


def run_script(
    script: Path, tool: str, fake: str, state: str, tmp_path: Path, *args: str
) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / tool).write_text(fake)
    (bin_dir / tool).chmod(0o755)
    calls, state_file = tmp_path / "calls", tmp_path / "state"
    calls.write_text("")
    state_file.write_text(state)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "STATE": str(state_file),
    }
    result = subprocess.run([str(script), *args], env=env, capture_output=True, text=True)
    return result.returncode, calls.read_text().splitlines()


ILLUMOS_CASES = [
    ("vip-up.sh", ILLUMOS_WITHOUT_VIP,
     ["ifconfig -a4", "ifconfig net0 addif 198.51.100.200/32 up"]),
    ("vip-up.sh", ILLUMOS_WITH_VIP, ["ifconfig -a4"]),
    ("vip-down.sh", ILLUMOS_WITH_VIP,
     ["ifconfig -a4", "ifconfig net0:2 down", "ifconfig net0:2 unplumb"]),
    ("vip-down.sh", ILLUMOS_WITHOUT_VIP, ["ifconfig -a4"]),
]  # fmt: skip


def test_illumos_down_refuses_the_physical_address(
    scripts_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write("illumos", scripts_dir, capsys)
    code, made = run_script(scripts_dir / "vip-down.sh", "ifconfig", FAKE_IFCONFIG,
                            ILLUMOS_WITH_VIP, tmp_path, "net0", "198.51.100.201")  # fmt: skip
    assert (code, made) == (1, ["ifconfig -a4"])


LINUX_CASES = [
    ("vip-up.sh", "", ["ip -4 addr replace 198.51.100.200/32 dev eth0"]),
    ("vip-down.sh", LINUX_WITH_VIP,
     ["ip -4 -o addr show dev eth0 to 198.51.100.200/32",
      "ip -4 addr del 198.51.100.200/32 dev eth0"]),
    ("vip-down.sh", "", ["ip -4 -o addr show dev eth0 to 198.51.100.200/32"]),
]  # fmt: skip


SCRIPT_CASES = [
    pytest.param("illumos", "ifconfig", FAKE_IFCONFIG, ("net0", "198.51.100.200", "xp"), *case,
                 id=f"illumos-{case[0]}-{i}")
    for i, case in enumerate(ILLUMOS_CASES)
] + [
    pytest.param("linux", "ip", FAKE_IP, ("eth0", "198.51.100.200"), *case,
                 id=f"linux-{case[0]}-{i}")
    for i, case in enumerate(LINUX_CASES)
]  # fmt: skip


@pytest.mark.parametrize(
    ("os_name", "tool", "fake", "args", "name", "state", "calls"), SCRIPT_CASES
)
def test_scripts_with_a_fake_tool(
    os_name: str,
    tool: str,
    fake: str,
    args: tuple[str, ...],
    name: str,
    state: str,
    calls: list[str],
    scripts_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(os_name, scripts_dir, capsys)
    code, made = run_script(scripts_dir / name, tool, fake, state, tmp_path, *args)
    assert (code, made) == (0, calls)


@pytest.mark.parametrize("os_name", ["illumos", "linux"])
def test_scripts_need_two_arguments(
    os_name: str, scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(os_name, scripts_dir, capsys)
    for name in render.SCRIPT_NAMES:
        result = subprocess.run([str(scripts_dir / name), "eth0"], capture_output=True, text=True)
        assert result.returncode == 2
        assert "usage:" in result.stderr and "<interface> <vip> [xparam]" in result.stderr


def test_unknown_os_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["scripts", "--os", "hpux"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'hpux'" in err


@pytest.mark.netns
def test_linux_scripts_for_real_in_a_namespace(
    scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Up twice, down twice, on lo of a fresh network namespace: idempotent both ways."""
    assert os.geteuid() == 0, "needs root (network namespaces)"
    assert shutil.which("ip"), "needs iproute2: apt-get install -y iproute2"
    write("linux", scripts_dir, capsys)
    up, down = (scripts_dir / name for name in render.SCRIPT_NAMES)
    namespace = f"pycarp-render-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        inside = ["ip", "netns", "exec", namespace]

        def addresses() -> str:
            shown = subprocess.run([*inside, "ip", "-4", "-o", "addr", "show", "dev", "lo"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            return shown.stdout

        for script in (up, up):
            subprocess.run([*inside, str(script), "lo", "10.99.0.1"], check=True)
        assert "10.99.0.1/32" in addresses()
        for script in (down, down):
            subprocess.run([*inside, str(script), "lo", "10.99.0.1"], check=True)
        assert "10.99.0.1" not in addresses()
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
