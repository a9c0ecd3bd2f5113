"""pycarp render scripts: up/down scripts written 0755, run against fake ifconfig and ip."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pycarp.deploy.command import main
from pycarp.deploy.scripts import SCRIPT_NAMES
from tests.deploy.render_helpers import rendered

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
    assert main(["scripts", "--os", os_name, "--dir", str(directory)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"wrote {directory / name}" for name in SCRIPT_NAMES]


@pytest.fixture(params=["illumos", "linux"])
def written(
    request: pytest.FixtureRequest, scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, list[Path]]:
    """The scripts of each OS, written by `render scripts --dir`: (os, paths)."""
    os_name: str = request.param
    write(os_name, scripts_dir, capsys)
    return os_name, [scripts_dir / name for name in SCRIPT_NAMES]


def test_scripts_are_written_0755_and_parse(
    written: tuple[str, list[Path]], scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os_name, paths = written
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert path.read_text().startswith("#!/bin/sh\n")
        result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert main(["scripts", "--os", os_name, "--dir", str(scripts_dir)]) == 2
    assert "already exists (--force replaces it)" in capsys.readouterr().err
    assert main(["scripts", "--os", os_name, "--dir", str(scripts_dir), "--force"]) == 0


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


def test_scripts_need_two_arguments(written: tuple[str, list[Path]]) -> None:
    for path in written[1]:
        result = subprocess.run([str(path), "eth0"], capture_output=True, text=True)
        assert result.returncode == 2
        assert "usage:" in result.stderr and "<interface> <vip> [xparam]" in result.stderr


@pytest.mark.netns
def test_linux_scripts_for_real_in_a_namespace(
    scripts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Up twice, down twice, on lo of a fresh network namespace: idempotent both ways."""
    assert os.geteuid() == 0, "needs root (network namespaces)"
    assert shutil.which("ip"), "needs iproute2: apt-get install -y iproute2"
    write("linux", scripts_dir, capsys)
    up, down = (scripts_dir / name for name in SCRIPT_NAMES)
    namespace = f"pycarp-render-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        inside = ["ip", "netns", "exec", namespace]

        def addresses() -> str:
            shown = subprocess.run([*inside, "ip", "-4", "-o", "addr", "show", "dev", "lo"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            return shown.stdout

        for script in (up, up):
            subprocess.run([*inside, str(script), "lo", "198.51.100.1"], check=True)
        assert "198.51.100.1/32" in addresses()
        for script in (down, down):
            subprocess.run([*inside, str(script), "lo", "198.51.100.1"], check=True)
        assert "198.51.100.1" not in addresses()
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
