"""pycarp's own runtime behaviour in namespaces: carrier, signals, slow scripts, daemonizing."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, Peer

pytestmark = pytest.mark.netns

VIP = "198.51.100.70"
VHID = 70
PASSWORD = "runtime"


def short_options(host: Host) -> list[str]:
    """pycarp for eth0/vhid 70 and the VIP, with ucarp's short options."""
    return [sys.executable, "-m", "pycarp", "-i", "eth0", "-s", host.ip, "-v", str(VHID),
            "-p", PASSWORD, "-a", VIP]  # fmt: skip


def pair(lab: Lab, daemons: Daemons) -> tuple[Peer, Peer]:
    """Two pycarp hosts: `a` master, `b` backup (b starts once a is master)."""
    a_host = lab.add_host("a", "198.51.100.71")
    b_host = lab.add_host("b", "198.51.100.72")
    a = daemons.peer(a_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP).start()
    assert a.wait_master(6), a.describe()
    b = daemons.peer(b_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=50).start()
    assert b.wait_backup(3), b.describe()
    return a, b


def test_carrier_loss_makes_the_master_backup_and_silent(lab: Lab, daemons: Daemons) -> None:
    a, b = pair(lab, daemons)
    a.host.link_down()
    assert a.wait_backup(3), a.describe()
    assert b.wait_master(6), b.describe()
    assert "lost its carrier" in a.log()
    a.host.link_up()
    time.sleep(4)  # more than a master-down interval: a hears b and stays BACKUP
    assert not a.is_master(), a.describe()
    assert b.is_master(), b.describe()


def test_sigusr2_steps_down_and_the_backup_takes_over(lab: Lab, daemons: Daemons) -> None:
    a, b = pair(lab, daemons)
    a.signal(signal.SIGUSR2)
    assert a.wait_backup(3), a.describe()
    assert "step-down requested" in a.log()
    assert b.wait_master(6), b.describe()
    time.sleep(4)  # a's hold-off ends, it hears b: it stays BACKUP
    assert not a.is_master(), a.describe()


def test_sigusr1_logs_the_state(lab: Lab, daemons: Daemons) -> None:
    a, _ = pair(lab, daemons)
    a.signal(signal.SIGUSR1)
    assert a.wait_log("MASTER on eth0 id 70", 3), a.describe()


def test_sigterm_without_shutdown_runs_no_script(lab: Lab, daemons: Daemons) -> None:
    a, _ = pair(lab, daemons)
    history = a.state_history()
    assert a.terminate() == 0, a.describe()
    assert a.state_history() == history


def test_a_slow_up_script_does_not_delay_advertisements(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    """ucarp sends nothing while its up script runs; pycarp keeps advertising."""
    slow = tmp_path / "slow-up.sh"
    marker = tmp_path / "slow-up.done"
    slow.write_text(f"#!/bin/sh\nsleep 8\ntouch {marker}\n")
    slow.chmod(0o755)
    a_host = lab.add_host("a", "198.51.100.71")
    b_host = lab.add_host("b", "198.51.100.72")
    a = daemons.peer(a_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP,
                     extra=[f"--upscript={slow}"]).start(wait=False)  # fmt: skip
    assert a.wait_log("BACKUP -> MASTER", 6), a.describe()
    b = daemons.peer(b_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=50).start()
    # For 6 s (twice b's master-down interval) a's script is still sleeping.
    assert not b.wait_master(6), b.describe()
    assert not marker.exists()
    assert "BACKUP -> MASTER" not in b.log(), b.describe()


def test_daemonize_detaches_and_keeps_working(lab: Lab, daemons: Daemons, tmp_path: Path) -> None:
    host = lab.add_host("a", "198.51.100.71")
    record = tmp_path / "up.log"
    up = tmp_path / "up.sh"
    up.write_text(f'#!/bin/sh\necho "$1 $2" >> {record}\n')
    up.chmod(0o755)
    argv = [*short_options(host), f"--upscript={up}", "--facility=none", "--daemonize"]
    launcher = daemons.process(host, *argv)
    assert launcher.wait(timeout=10) == 0, launcher.describe()  # the foreground returns at once
    assert wait_until(record.exists, 8), launcher.describe()
    # Lab.close() ends the detached daemon: it is a process in the lab's namespace.
    assert record.read_text().split() == ["eth0", VIP]


def test_systemd_notifications(lab: Lab, daemons: Daemons, tmp_path: Path) -> None:
    """READY=1 once running, STATUS on transitions, STOPPING=1, WATCHDOG=1 keepalives."""
    import socket

    host = lab.add_host("a", "198.51.100.71")
    notify = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(8)
    try:
        env = dict(os.environ, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="1000000")
        daemon = daemons.process(host, *short_options(host), "--facility=none", env=env)
        got: list[str] = []
        deadline = time.monotonic() + 10
        while not any("MASTER" in m for m in got) and time.monotonic() < deadline:
            got.append(listener.recv(4096).decode())
        assert got[0].startswith("READY=1\nSTATUS=eth0/vhid 70 BACKUP"), got
        assert "STATUS=eth0/vhid 70 MASTER" in got, got
        assert "WATCHDOG=1" in got, got
        daemon.signal(signal.SIGTERM)
        while not any(m.startswith("STOPPING=1") for m in got) and time.monotonic() < deadline:
            got.append(listener.recv(4096).decode())
        assert any(m.startswith("STOPPING=1") for m in got), got
        assert daemon.wait(timeout=8) == 0, daemon.describe()
    finally:
        listener.close()
