"""The namespace lab itself: connectivity, cable pulls, partitions, cleanup."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time

import pytest

from pycarp.lab import PREFIX, Lab, LabError, cleanup_stale
from pycarp.lab.netns import NETNS_DIR, _port_name

pytestmark = pytest.mark.netns


def _namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(prefix)]


def _operstate(host_run: subprocess.CompletedProcess[str]) -> str:
    return host_run.stdout.strip()


def _start_time(pid: int) -> str | None:
    """Start time of a live (not zombie) process, None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _wait_gone(pid: int, start: str, timeout: float = 5.0) -> bool:
    """True once pid no longer names the process that started at `start` (bounded)."""
    deadline = time.monotonic() + timeout
    while _start_time(pid) == start:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_two_hosts_ping_each_other(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")
    b = lab.add_host("b", "198.51.100.2", mac="02:00:5e:00:00:02")
    assert a.netns == f"{PREFIX}{lab.tag}-a"
    assert (a.ifname, a.ip, a.prefix, a.lab) == ("eth0", "198.51.100.1", 24, lab)
    assert lab.hosts == {"a": a, "b": b}
    assert a.addresses() == ["198.51.100.1/24"]
    assert b.mac() == "02:00:5e:00:00:02"
    assert a.ping(b.ip)
    assert b.ping(a.ip, count=2)
    assert not a.ping("198.51.100.3", timeout=0.3)  # nobody there


def test_bridge_lives_in_its_own_namespace(lab: Lab) -> None:
    a = lab.add_host("a", "203.0.113.1", prefix=28)
    assert lab.bridge_netns == f"{PREFIX}{lab.tag}-br"
    ports = subprocess.run(
        ["ip", "-n", lab.bridge_netns, "-o", "link", "show", "master", "br0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert a.port in ports
    bridge = subprocess.run(
        ["ip", "-n", lab.bridge_netns, "-d", "-j", "link", "show", "br0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(bridge)[0]["linkinfo"]["info_data"]["mcast_snooping"] == 0
    root_links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert a.port not in root_links


def test_link_down_clears_running_and_link_up_restores_it(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")
    b = lab.add_host("b", "198.51.100.2")
    operstate = ("cat", "/sys/class/net/eth0/operstate")
    assert _operstate(a.run(*operstate)) == "up"
    assert a.running()

    a.link_down()
    assert not a.running()
    # Carrier lost while admin up: "down" on recent kernels, "lowerlayerdown" on older.
    assert _operstate(a.run(*operstate)) in ("down", "lowerlayerdown")
    flags = int(a.run("cat", "/sys/class/net/eth0/flags").stdout, 16)
    assert flags & 0x1 and not flags & 0x40  # IFF_UP still set, IFF_RUNNING clear
    assert not a.ping(b.ip, timeout=0.3)

    a.link_up()
    assert a.running()
    assert _operstate(a.run(*operstate)) == "up"
    assert a.ping(b.ip)


def test_cut_partitions_but_keeps_carrier(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")
    b = lab.add_host("b", "198.51.100.2")
    a.cut()
    assert a.running()
    assert not a.ping(b.ip, timeout=0.3)
    a.uncut()
    assert a.ping(b.ip, count=3)  # at least one answer once the port is back


def test_close_after_an_exception_leaves_nothing() -> None:
    tag = secrets.token_hex(3)
    with pytest.raises(RuntimeError, match="test body failed"), Lab(tag) as lab:
        a = lab.add_host("a", "198.51.100.1")
        lab.add_host("b", "198.51.100.2")
        polite = a.spawn("sleep", "60")
        # Ignores SIGTERM and has a child: both need the SIGKILL of the group.
        stubborn = a.spawn(
            "sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait", stdout=subprocess.PIPE
        )
        assert stubborn.stdout is not None
        child = int(stubborn.stdout.readline())
        child_start = _start_time(child)
        assert child_start is not None
        raise RuntimeError("test body failed")
    assert _namespaces(f"{PREFIX}{tag}-") == []
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert child_start is not None
    assert _wait_gone(child, child_start)  # killed; reaping by init may take a moment
    lab.close()  # idempotent
    with pytest.raises(LabError):
        lab.add_host("c", "198.51.100.3")


def test_close_kills_a_process_that_left_its_session(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")
    # setsid escapes the process group: close() must still find it by namespace.
    proc = a.spawn("setsid", "-f", "sh", "-c", "echo $$; exec sleep 60", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    start = _start_time(pid)
    assert start is not None
    lab.close()
    assert _wait_gone(pid, start)
    assert _namespaces(f"{PREFIX}{lab.tag}-") == []


def test_add_host_refuses_foreign_addresses_and_duplicates(lab: Lab) -> None:
    lab.add_host("a", "198.51.100.1")
    with pytest.raises(ValueError, match=r"198\.51\.100\.0/24"):
        lab.add_host("x", "192.0.2.1")
    with pytest.raises(ValueError, match="already used"):
        lab.add_host("a", "198.51.100.2")
    with pytest.raises(ValueError, match="role"):
        lab.add_host("bad/role", "198.51.100.3")


def test_long_roles_get_short_unique_port_names(lab: Lab) -> None:
    long1, long2 = "a_rather_long_role_1", "a_rather_long_role_2"
    assert len(_port_name(long1)) <= 15
    assert _port_name(long1) != _port_name(long2)
    h1 = lab.add_host(long1, "198.51.100.1")
    h2 = lab.add_host(long2, "198.51.100.2")
    assert h1.ping(h2.ip)


def test_cleanup_stale_removes_leftovers_but_not_live_labs() -> None:
    tag = secrets.token_hex(3)
    prefix = f"{PREFIX}{tag}"
    leftover = [f"{prefix}-x", f"{prefix}-br"]
    stuck: subprocess.Popen[bytes] | None = None
    try:
        for name in leftover:
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
        # A process stuck in a leftover namespace goes with it.
        stuck = subprocess.Popen(
            ["ip", "netns", "exec", leftover[0], "sleep", "60"], start_new_session=True
        )
        with Lab() as live:
            assert sorted(cleanup_stale(prefix)) == sorted(leftover)
            assert stuck.wait(timeout=5) == -signal.SIGKILL
            # The live lab's namespaces are kept, even with a prefix that matches them.
            assert cleanup_stale(f"{PREFIX}{live.tag}") == []
            assert os.path.exists(os.path.join(NETNS_DIR, live.bridge_netns))
        assert _namespaces(prefix) == []
        assert cleanup_stale(prefix) == []
        with pytest.raises(ValueError, match="prefix"):
            cleanup_stale("other-")
    finally:
        for name in leftover:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if stuck is not None and stuck.poll() is None:
            stuck.kill()
            stuck.wait(timeout=5)
