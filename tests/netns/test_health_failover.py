"""End-to-end: health checks move the VIP, demotion groups, the demote byte, boot-time demotion.

Each check is a command check, `/usr/bin/test -e <workdir>/healthy`, so a
test fails or heals it by removing or creating one file. Checks run every
second and need two results in a row (rise 2, fall 2), so a failure is seen
within fall x interval = 2 s; advbase 1 and deadratio 3 make the master-down
interval 3 s. Everything else is an operator's default (control socket,
timers, plumbing).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pycarp.client.request import request
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, Peer, TomlDaemon, VHost

pytestmark = pytest.mark.netns

INTERVAL, FALL, RISE = 1.0, 2, 2
MASTER_DOWN = 3.0
MOVES = FALL * INTERVAL + MASTER_DOWN + 1.0  # the bound the issue sets for a failing check
ELECTION = 7.0  # a lone host becomes MASTER: 3 s master-down and a margin
HEALS = RISE * INTERVAL + 3.0  # a check passing again, and the next advertisement


def check_table(workdir: Path, name: str = "web", group: str | None = None) -> str:
    lines = [
        "[[check]]",
        f'name = "{name}"',
        'type = "command"',
        f'command = ["/usr/bin/test", "-e", "{workdir / name}.healthy"]',
        f"interval = {INTERVAL}",
        "timeout = 1",
        f"rise = {RISE}",
        f"fall = {FALL}",
    ]
    if group:
        lines.append(f'group = "{group}"')
    return "\n".join(lines) + "\n"


def healthy(daemon: TomlDaemon, ok: bool, name: str = "web") -> None:
    flag = daemon.workdir / f"{name}.healthy"
    if ok:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def tracking(vhid: int, vip: str, advskew: int, preempt: bool, **extra: str) -> VHost:
    lines = ['track = ["web"]', *(f"{k} = {v}" for k, v in extra.items())]
    return VHost(vhid, (f"{vip}/24",), advskew=advskew, preempt=preempt, extra=tuple(lines))


def pair(
    lab: Lab, daemons: Daemons, *, preempt: bool, vhids: tuple[int, ...] = (1,)
) -> tuple[TomlDaemon, TomlDaemon]:
    """A (advskew 0) and B (advskew 100), each tracking its own check "web", both healthy."""
    made = []
    for role, last, skew in (("a", 11, 0), ("b", 12, 100)):
        host = lab.add_host(role, f"198.51.100.{last}")
        vhosts = [tracking(v, f"198.51.100.{100 + v}", skew, preempt) for v in vhids]
        daemon = daemons.toml(host, vhosts, tail=check_table)
        daemon.workdir.mkdir(parents=True, exist_ok=True)
        healthy(daemon, True)
        made.append(daemon)
    a, b = made
    a.start()
    for vhid in vhids:
        a.wait_state(vhid, "MASTER", ELECTION + RISE * INTERVAL)
    b.start()
    for vhid in vhids:
        b.wait_host(vhid, lambda h: h["state"] == "BACKUP" and h["master"] == a.host.ip, 5.0)
    b.wait_host(vhids[0], lambda h: h["demote"] == 0, RISE * INTERVAL + 3.0)  # B passed too
    return a, b


def vip_on(host: Host, vip: str) -> bool:
    return any(a.startswith(f"{vip}/") for a in host.addresses())


@pytest.mark.parametrize("preempt", [True, False])
def test_a_failing_check_moves_the_vip_and_back_only_with_preempt(
    lab: Lab, daemons: Daemons, preempt: bool
) -> None:
    a, b = pair(lab, daemons, preempt=preempt)
    failed_at = time.monotonic()
    healthy(a, False)
    took = b.wait_state(1, "MASTER", MOVES + 2.0)
    moved = time.monotonic() - failed_at
    assert moved <= MOVES, f"{moved:.1f} s\n{a.describe()}\n{b.describe()}"
    assert took["reason"] == "the master is more demoted than this host"
    left = a.wait_state(1, "BACKUP", 2.0)
    assert left["demote"] == 1 and left["demoted"], left
    assert wait_until(lambda: vip_on(b.host, "198.51.100.101"), 3.0), b.describe()
    assert not vip_on(a.host, "198.51.100.101"), a.describe()
    healthy(a, True)
    if preempt:
        back = a.wait_state(1, "MASTER", HEALS + 2.0)
        assert back["reason"] == "preempting a master that advertises less often"
        b.wait_state(1, "BACKUP", 3.0)
    else:
        a.wait_host(1, lambda h: h["demote"] == 0, HEALS)
        time.sleep(3.0)  # advertisements heard meanwhile must not move it
        assert a.status()[1]["state"] == "BACKUP" and b.status()[1]["state"] == "MASTER"


def test_one_group_demotes_two_virtual_hosts(lab: Lab, daemons: Daemons) -> None:
    a, b = pair(lab, daemons, preempt=False, vhids=(1, 2))
    healthy(a, False)
    for vhid in (1, 2):
        b.wait_state(vhid, "MASTER", MOVES + 2.0)
    status = a.try_status() or []
    assert [h["demote"] for h in status] == [1, 1], status
    assert wait_until(
        lambda: vip_on(b.host, "198.51.100.101") and vip_on(b.host, "198.51.100.102"), 3.0
    ), b.describe()


def test_boot_time_demotion_keeps_a_fresh_host_from_winning(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host = lab.add_host("a", "198.51.100.11"), lab.add_host("b", "198.51.100.12")
    b = daemons.toml(b_host, [tracking(1, "198.51.100.101", 100, True)], tail=check_table)
    b.workdir.mkdir(parents=True, exist_ok=True)
    healthy(b, True)
    b.start()
    b.wait_host(1, lambda h: h["state"] == "MASTER" and h["demote"] == 0, ELECTION + RISE + 2.0)
    # A prefers itself (advskew 0, preempt) but its service is not up yet.
    a = daemons.toml(a_host, [tracking(1, "198.51.100.101", 0, True)], tail=check_table)
    a.start()
    a.wait_host(1, lambda h: h["state"] == "BACKUP" and h["master"] == b_host.ip, 5.0)
    time.sleep(MASTER_DOWN + 2.0)  # preempt would have taken over within a second
    seen = a.status()[1]
    assert seen["state"] == "BACKUP" and seen["demote"] == 1, seen
    assert b.status()[1]["state"] == "MASTER"
    healthy(a, True)
    a.wait_state(1, "MASTER", HEALS + 2.0)
    b.wait_state(1, "BACKUP", 3.0)


@pytest.mark.parametrize("preempt", [False, True])
def test_ucarp_ignores_the_demote_byte_and_heeds_the_penalty(
    lab: Lab, daemons: Daemons, preempt: bool
) -> None:
    """ucarp reads no demote byte: without preempt it stays BACKUP under a demoted master
    (harmless: nothing flaps); with preempt it takes over once the penalty makes it faster."""
    a_host, b_host = lab.add_host("a", "198.51.100.11"), lab.add_host("b", "198.51.100.12")
    vip = "198.51.100.101"
    a = daemons.toml(a_host, [tracking(1, vip, 0, False, penalty="100")], tail=check_table)
    a.workdir.mkdir(parents=True, exist_ok=True)
    a.password = "ucarp-peer"
    a.write_config()
    healthy(a, True)
    a.start()
    a.wait_state(1, "MASTER", ELECTION + RISE * INTERVAL)
    ucarp: Peer = daemons.peer(
        b_host, "ucarp", vhid=1, password="ucarp-peer", vip=vip, advskew=50, preempt=preempt
    )
    ucarp.start()
    assert ucarp.wait_backup(5.0), ucarp.describe()
    healthy(a, False)
    a.wait_host(1, lambda h: h["demote"] == 1, FALL * INTERVAL + 2.0)
    if not preempt:
        time.sleep(MASTER_DOWN + 1.0)
        seen = a.status()[1]
        assert seen["state"] == "MASTER" and seen["advskew"] == 100, seen
        assert not ucarp.is_master(), ucarp.describe()
        assert ucarp.alive(), ucarp.describe()
        return
    # ucarp preempts a master advertising 1/100 with its own 1/50; A, more demoted, yields.
    assert ucarp.wait_master(MOVES), ucarp.describe(a.describe())
    seen = a.wait_state(1, "BACKUP", 3.0)
    assert seen["master"] == b_host.ip and seen["master_demote"] == 0, seen
    assert ucarp.alive() and "error" not in ucarp.log().lower(), ucarp.describe()


def test_a_hung_check_is_killed_at_its_timeout_and_never_piles_up(
    lab: Lab, daemons: Daemons
) -> None:
    """A check that never ends is killed each time; the advertisements go on meanwhile.

    Its group demotes vhid 1; B watches vhid 2, which tracks nothing, from the same daemon.
    """
    a_host, b_host = lab.add_host("a", "198.51.100.11"), lab.add_host("b", "198.51.100.12")
    hung = (
        '[[check]]\nname = "web"\ntype = "command"\n'
        'command = ["/bin/sleep", "60"]\ninterval = 0.5\ntimeout = 1\n'
    )
    watched = VHost(2, ("198.51.100.102/24",))
    a = daemons.toml(a_host, [tracking(1, "198.51.100.101", 0, False), watched], tail=hung)
    a.start()
    a.wait_state(2, "MASTER", ELECTION)
    b = daemons.toml(b_host, [VHost(2, ("198.51.100.102/24",), advskew=200)])
    b.start()
    failed_before = a_status_checks(a)[0]["results"]
    started = time.monotonic()
    most = 0
    while time.monotonic() - started < 6.0:  # bounded: 6 s of samples
        sleepers = [p for p in children(a.pid) if "sleep" in p]
        most = max(most, len(sleepers))
        seen = b.status()[2]
        assert seen["state"] == "BACKUP", seen  # a is still MASTER, never silent
        assert seen["master_seen_ago"] is None or seen["master_seen_ago"] < 1.6, seen
        time.sleep(0.2)
    assert most <= 1, most  # one run at a time
    check = next(iter(a_status_checks(a)))
    assert check["detail"] == "timed out after 1 s" and check["state"] == "failing", check
    elapsed = time.monotonic() - started
    runs = check["results"]["failed"] - failed_before["failed"]
    assert elapsed / 1.0 - 2 <= runs <= elapsed / 1.0 + 1, check  # one per timeout, no more


def children(pid: int | None) -> list[str]:
    """The command lines of the processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def a_status_checks(daemon: TomlDaemon) -> list[dict[str, Any]]:
    answer = request(str(daemon.control_socket), {"command": "status"}, timeout=2.0)
    checks = answer.get("checks")
    assert answer.get("ok") and isinstance(checks, list), answer
    return checks


def test_a_reload_adds_and_removes_checks(lab: Lab, daemons: Daemons) -> None:
    """Checks come and go with a reload; the host follows without a restart."""
    host = lab.add_host("a", "198.51.100.11")
    plain = VHost(1, ("198.51.100.101/24",))
    a = daemons.toml(host, [plain])
    a.start()
    a.wait_state(1, "MASTER", ELECTION)
    since = a.status()[1]["for"]
    a.tail = check_table(a.workdir)  # the check's file does not exist: it fails
    a.write_config([VHost(1, ("198.51.100.101/24",), extra=('track = ["web"]',))])
    done = a.reload()
    assert done.returncode == 0 and "changed  eth0/vhid 1" in done.stdout, done
    seen = a.wait_host(1, lambda h: h["demote"] == 1, FALL * INTERVAL + 2.0)
    assert seen["state"] == "MASTER" and seen["advskew"] == 100, seen  # alone: still MASTER
    assert seen["for"] > since, seen  # taken in place: not restarted, no outage
    assert [c["name"] for c in a_status_checks(a)] == ["web"]
    healthy(a, True)
    a.wait_host(1, lambda h: h["demote"] == 0 and h["advskew"] == 0, HEALS)
    a.tail = ""
    a.write_config([plain])
    assert a.reload().returncode == 0
    assert a_status_checks(a) == []
    after = a.status()[1]
    assert after["state"] == "MASTER" and after["for"] > seen["for"], after  # still not restarted
