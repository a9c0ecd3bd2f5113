"""pycarp as an unprivileged user holding only CAP_NET_RAW and CAP_NET_ADMIN.

The daemon needs raw sockets (NET_RAW) and address changes (NET_ADMIN), and
nothing else: no root, no scripts, built-in plumbing, a control socket in a
directory the user owns. Without NET_RAW it must refuse to start with one
clear line, not a traceback.

The interpreter must be reachable by `nobody`. When the venv's python sits
under a directory nobody cannot enter (pyenv under /root here), the test runs
the system python3 of the same minor version with the venv's packages and the
source tree on PYTHONPATH, which exercises the same code.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pycarp
from pycarp.client.request import request
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemon, Daemons, TomlDaemon, VHost

pytestmark = pytest.mark.netns

VIP = "198.51.100.80"
VHID = 80
PASSWORD = "capable"
USER, GROUP = "nobody", "nogroup"
WAIT = 8.0  # seconds: several master-down intervals at advbase 1
SRC_DIR = str(Path(pycarp.__file__).resolve().parents[1])
NET_CAPS = (1 << 12) | (1 << 13)  # CAP_NET_ADMIN | CAP_NET_RAW


def _setpriv(caps: str) -> list[str]:
    """setpriv argv: become USER with exactly `caps` (e.g. "+net_raw,+net_admin")."""
    sets = f"-all,{caps}" if caps else "-all"
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={USER}",
        f"--regid={GROUP}",
        "--clear-groups",
        f"--inh-caps={sets}",
        f"--ambient-caps={sets}",
        f"--bounding-set={sets}",
    ]


def _nobody_can_run(python: str) -> bool:
    probe = subprocess.run(
        [*_setpriv(""), python, "-c", "import pycarp, pyroute2"],
        capture_output=True,
        timeout=30,
        check=False,
        cwd="/",
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def python_env() -> tuple[str, dict[str, str]]:
    """(interpreter, environment) with which USER can run pycarp."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    if _nobody_can_run(sys.executable):
        return sys.executable, env
    system = f"/usr/bin/python3.{sys.version_info.minor}"
    env["PYTHONPATH"] = f"{SRC_DIR}:{sysconfig.get_paths()['purelib']}"
    probe = subprocess.run(
        [*_setpriv(""), system, "-c", "import pycarp, pyroute2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
        cwd="/",
    )
    if probe.returncode != 0:
        pytest.fail(
            f"{USER} can run neither {sys.executable} nor {system} with pycarp: "
            f"{probe.stderr.strip()}",
            pytrace=False,
        )
    return system, env


@pytest.fixture
def rundir() -> Iterator[Path]:
    """A directory USER owns (pytest's tmp_path is root-only), removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="pycarp-caps-"))
    try:
        top.chmod(0o755)
        entry = pwd.getpwnam(USER)
        os.chown(top, entry.pw_uid, entry.pw_gid)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _start_unprivileged(
    daemons: Daemons, host: Host, caps: str, python_env: tuple[str, dict[str, str]], rundir: Path
) -> Daemon:
    """pycarp as USER with caps, built-in plumbing, its control socket in rundir."""
    python, env = python_env
    argv = [
        *_setpriv(caps),
        python,
        "-m",
        "pycarp",
        *("-i", host.ifname, "-s", host.ip, "-v", str(VHID), "-p", PASSWORD, "-a", VIP),
        f"--control-socket={rundir / 'control.sock'}",
        "--facility=none",
    ]
    return daemons.process(host, *argv, env=env)


def test_master_with_only_net_raw_and_net_admin(
    lab: Lab, daemons: Daemons, python_env: tuple[str, dict[str, str]], rundir: Path
) -> None:
    a = lab.add_host("a", "198.51.100.81")
    b = lab.add_host("b", "198.51.100.82")
    client = lab.add_host("c", "198.51.100.83")
    daemon = _start_unprivileged(daemons, a, "+net_raw,+net_admin", python_env, rundir)
    describe = daemon.describe

    assert daemon.wait_log("-> MASTER", WAIT), describe()
    # Built-in plumbing: the VIP is on a's eth0, put there by the unprivileged daemon.
    assert wait_until(lambda: f"{VIP}/32" in a.addresses(), 3), (a.addresses(), describe())
    # Really the unprivileged user with just the two capabilities.
    status = Path(f"/proc/{daemon.pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == str(pwd.getpwnam(USER).pw_uid)
    for name in ("CapEff", "CapPrm", "CapBnd"):
        assert int(fields[name], 16) == NET_CAPS, (name, fields[name])

    # Its advertisements keep a root pycarp with a higher skew BACKUP.
    peer = daemons.peer(b, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=50).start()
    assert peer.wait_backup(4), peer.describe()
    time.sleep(4)  # past b's master-down interval
    assert not peer.is_master(), peer.describe()
    assert daemon.alive(), describe()
    assert client.ping(VIP, count=3), describe()

    # The control socket the unprivileged daemon made answers root, and its own user.
    sock = f"--control-socket={rundir / 'control.sock'}"
    python, env = python_env
    as_root = [sys.executable, "-m", "pycarp", "status", "--json", sock]
    as_user = [*_setpriv(""), python, "-m", "pycarp", "status", "--json", sock]
    for argv, run_env in ((as_root, None), (as_user, env)):
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, env=run_env, check=False, cwd="/"
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr, describe())
        text = json.dumps(json.loads(done.stdout))
        assert "MASTER" in text, text


def test_without_net_raw_it_fails_with_one_clear_line(
    lab: Lab, daemons: Daemons, python_env: tuple[str, dict[str, str]], rundir: Path
) -> None:
    a = lab.add_host("a", "198.51.100.81")
    daemon = _start_unprivileged(daemons, a, "+net_admin", python_env, rundir)
    code = daemon.wait(timeout=15)
    if code is None:
        pytest.fail(f"still running without CAP_NET_RAW:\n{daemon.log()}", pytrace=False)
    said = daemon.log().strip()
    assert code != 0, said
    assert "Traceback" not in said, said
    assert len(said.splitlines()) == 1, said
    # The kernel's EPERM from socket(SOCK_RAW) is what reaches the user.
    assert "cannot start" in said and "needs CAP_NET_RAW" in said, said


def _capabilities(pid: int | None) -> dict[str, int]:
    return _capabilities_of(Path(f"/proc/{pid}/status"))


def test_a_root_daemon_keeps_only_the_two_and_still_plumbs_and_fails_over(
    lab: Lab, daemons: Daemons
) -> None:
    a = lab.add_host("a", "198.51.100.84")
    b = lab.add_host("b", "198.51.100.85")
    argv = [sys.executable, "-m", "pycarp", "--debug", "--facility=none"]
    argv += ["-i", a.ifname, "-s", a.ip, "-v", str(VHID), "-p", PASSWORD, "-a", VIP]
    daemon = daemons.process(a, *argv)
    describe = daemon.describe
    assert daemon.wait_log("-> MASTER", WAIT), describe()
    assert wait_until(lambda: f"{VIP}/32" in a.addresses(), 3), (a.addresses(), describe())
    caps = _capabilities(daemon.pid)
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == (NET_CAPS,) * 3, caps
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, caps
    said = "capabilities: kept CAP_NET_ADMIN, CAP_NET_RAW; bounding set cut to CAP_NET_ADMIN"
    assert said in daemon.log() and "keep theirs" not in daemon.log(), describe()

    # Dropped, it still hands over (taking its address off) and takes over (putting it back).
    peer = daemons.peer(b, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=50).start()
    assert peer.wait_backup(WAIT), peer.describe()
    daemon.signal(signal.SIGUSR2)  # stepdown: a goes BACKUP, b takes over
    assert peer.wait_master(WAIT), (peer.describe(), describe())
    assert wait_until(lambda: f"{VIP}/32" not in a.addresses(), 3), (a.addresses(), describe())
    peer.crash_host()
    b.link_up()
    assert wait_until(lambda: f"{VIP}/32" in a.addresses(), WAIT), (a.addresses(), describe())
    assert "Traceback" not in daemon.log(), describe()


def test_scripts_of_a_root_daemon_keep_roots_capabilities(lab: Lab, daemons: Daemons) -> None:
    """With scripts the bounding set stays whole: scripts run as root, as with ucarp."""
    a = lab.add_host("a", "198.51.100.86")
    peer = daemons.peer(a, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, extra=["--debug"])
    up = peer.workdir / "up.sh"
    shebang, _, rest = up.read_text().partition("\n")
    spy = f"grep Cap /proc/$$/status > {peer.workdir / 'script-caps'}\n"
    up.write_text(f"{shebang}\n{spy}{rest}")
    peer.start()
    assert peer.wait_master(WAIT), peer.describe()
    daemon_caps = _capabilities(peer.pid)
    assert (daemon_caps["CapEff"], daemon_caps["CapPrm"]) == (NET_CAPS, NET_CAPS), daemon_caps
    assert daemon_caps["CapBnd"] & ~NET_CAPS, daemon_caps  # left whole
    lines = (peer.workdir / "script-caps").read_text().splitlines()
    script = {k: int(v, 16) for k, v in (line.split(":\t") for line in lines)}
    assert script["CapEff"] == daemon_caps["CapBnd"], script
    assert f"{VIP}/32" in a.addresses(), peer.describe()  # the script plumbed it


def test_no_thread_of_a_root_daemon_keeps_more_than_the_two(lab: Lab, daemons: Daemons) -> None:
    """Capabilities are per thread: none made before the drop may keep root's.

    A stale control socket makes the start probe it in a worker thread, an
    HTTP check runs in worker threads, and the metrics endpoint is served.
    """
    host = lab.add_host("a", "198.51.100.86")
    check = (
        f'[[check]]\nname = "web"\ntype = "http"\nurl = "http://{host.ip}:8080/"\ninterval = 0.5\n'
    )
    daemon = daemons.toml(
        host,
        [VHost(VHID, (f"{VIP}/24",), extra=('track = ["web"]',))],
        head=f'metrics = "{host.ip}:9406"\nmetrics_public = true\ndebug = true',
        tail=check,
    )
    daemon.control_socket.parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(daemon.control_socket))  # left behind, as by a daemon that was killed
    stale.close()
    daemon.start()
    assert "removing stale control socket" in daemon.log(), daemon.describe()

    def failures() -> int:
        return int(request_status(daemon)["checks"][0]["results"]["failed"])

    assert wait_until(lambda: failures() >= 2, WAIT), daemon.describe()  # ran, in worker threads
    assert daemon.status()[VHID]["demote"] == 1
    tasks = sorted(Path(f"/proc/{daemon.pid}/task").iterdir())
    for task in tasks:
        caps = _capabilities_of(task / "status")
        assert (caps["CapEff"], caps["CapPrm"]) == (NET_CAPS, NET_CAPS), (task.name, caps)
    assert "keep theirs" not in daemon.log(), daemon.describe()


def _capabilities_of(path: Path) -> dict[str, int]:
    fields = dict(line.split(":\t", 1) for line in path.read_text().splitlines() if ":\t" in line)
    return {name: int(value, 16) for name, value in fields.items() if name.startswith("Cap")}


def request_status(daemon: TomlDaemon) -> dict[str, Any]:
    answer = request(str(daemon.control_socket), {"command": "status"}, timeout=2.0)
    assert answer.get("ok"), answer
    return answer
