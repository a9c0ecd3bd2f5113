"""The namespace lab itself: connectivity, cable pulls, partitions, cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time

import pytest

from pycarp.lab import PREFIX, Lab, LabError, cleanup_stale, iproute
from pycarp.lab.iproute import NETNS_DIR
from pycarp.lab.names import port_name

pytestmark = pytest.mark.netns


def _ip(*args: str) -> str:
    """What iproute2 itself says: the lab is checked with a tool other than its own."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _namespaces(prefix: str) -> list[str]:
    return [
        line.split()[0] for line in _ip("netns", "list").splitlines() if line.startswith(prefix)
    ]


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
    assert a.port in _ip("-n", lab.bridge_netns, "-o", "link", "show", "master", "br0")
    bridge = json.loads(_ip("-n", lab.bridge_netns, "-d", "-j", "link", "show", "br0"))
    info = bridge[0]["linkinfo"]["info_data"]
    assert info["mcast_snooping"] == 0 and info["stp_state"] == 0
    assert a.port not in _ip("-o", "link", "show")
    [eth0] = json.loads(_ip("-n", a.netns, "-j", "-4", "addr", "show", "dev", "eth0"))
    [inet] = eth0["addr_info"]
    assert (inet["local"], inet["prefixlen"], inet.get("broadcast")) == ("203.0.113.1", 28, None)
    [lo] = json.loads(_ip("-n", a.netns, "-j", "link", "show", "lo"))
    assert "UP" in lo["flags"]


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
    assert len(port_name(long1)) <= 15
    assert port_name(long1) != port_name(long2)
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


def test_netlink_neighbours_routes_addresses_and_errors(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")
    b = lab.add_host("b", "198.51.100.2", mac="02:00:5e:00:00:02")
    assert a.ping(b.ip)
    assert iproute.neighbour_mac(a.netns, b.ip) == "02:00:5e:00:00:02"
    iproute.flush_neighbours(a.netns, a.ifname)
    assert iproute.neighbour_mac(a.netns, b.ip) is None
    iproute.add_default_route(a.netns, "198.51.100.254")
    assert "default via 198.51.100.254 dev eth0" in _ip("-n", a.netns, "route")
    iproute.add_address(a.netns, a.ifname, "203.0.113.9", 32)
    assert iproute.ipv4_addresses(a.netns) == ["198.51.100.1/24", "203.0.113.9/32"]  # no lo
    with pytest.raises(LabError, match=f"^{a.netns}: no eth9$"):
        iproute.add_address(a.netns, "eth9", "203.0.113.10", 32)
    with pytest.raises(
        LabError, match=r"add default route via 198\.51\.100\.254 failed: File exists"
    ):
        iproute.add_default_route(a.netns, "198.51.100.254")
    with pytest.raises(iproute.NetnsExists):
        iproute.create_netns(a.netns)
    assert a.ping(b.ip)  # the refused create left a's namespace alone


def test_netlink_calls_work_inside_a_running_event_loop(lab: Lab) -> None:
    a = lab.add_host("a", "198.51.100.1")

    async def look() -> tuple[list[str], bool]:
        return a.addresses(), a.running()

    assert asyncio.run(look()) == (["198.51.100.1/24"], True)


def test_a_leftover_namespace_is_refused_and_kept() -> None:
    tag = secrets.token_hex(3)
    leftover = f"{PREFIX}{tag}-br"
    _ip("netns", "add", leftover)
    try:
        with pytest.raises(LabError, match=r"exists already \(leftover\? see .*cleanup_stale\)"):
            Lab(tag)
        assert _namespaces(leftover) == [leftover]  # not the failed lab's to delete
    finally:
        subprocess.run(["ip", "netns", "del", leftover], capture_output=True, check=False)
    assert cleanup_stale(f"{PREFIX}{tag}") == []
