"""End-to-end tests of pycarp's multi-host features, in network namespaces.

Several virtual hosts in one process (TOML config), built-in address
plumbing, the status the control socket reports, and reload (the graceful
hand-over, measured from a client, is test_handover.py's). daemons.py runs
the daemons, observe.py has the client's ping probe, an address monitor and
tcpdump.

Timing, with advbase 1 and deadratio 3: a lone host becomes MASTER 3 s
(+ advskew/256) after it starts; a backup takes over one master-down
interval after the last advertisement it heard. Waits allow about twice that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pycarp.client.request import ControlError, request
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost, all_vips
from tests.netns.observe import (
    neighbour_mac,
    ping_within,
    vip_entries,
)

pytestmark = pytest.mark.netns

ELECTION = 7.0  # a lone host: 3 s master-down (+ skew) and a margin
TAKEOVER = 7.0  # a backup once the master is gone or stepped down
HEARD = 3.0  # a fresh backup hears the master, which advertises every second
PLUMBED = 3.0  # built-in plumbing runs in the background: give it a moment

STARTED = "started"
MASTER_DOWN = "no advertisement within the master-down interval"
LEAVING = "the master advertises too rarely to stay master"
PREEMPT = "preempting a master that advertises less often"
PREFERRED = "a preferred master advertised"
FORCED = "step-down requested"


def hosts(lab: Lab, *roles: str) -> list[Host]:
    """Lab hosts client=.10, a=.11, b=.12, c=.13, d=.14 on 198.51.100.0/24."""
    last = {"client": 10, "a": 11, "b": 12, "c": 13, "d": 14}
    return [lab.add_host(role, f"198.51.100.{last[role]}") for role in roles]


def backup_of(vhosts: list[VHost], advskew: int = 100) -> list[VHost]:
    return [replace(vh, advskew=advskew) for vh in vhosts]


def wait_vips(host: Host, vips: list[str], present: bool, timeout: float = PLUMBED) -> bool:
    """Wait until every one of vips is (present) or none is (not present) on host."""
    want = set(vips) if present else set()
    return wait_until(lambda: vip_entries(host, vips) == want, timeout)


# --- 1. several vhids in one process; a dying host -----------------------------------

THREE = [
    VHost(1, ("198.51.100.101/24", "203.0.113.101/24")),
    VHost(2, ("198.51.100.102/32",)),
    VHost(3, ("198.51.100.103/28",)),
]


def test_one_process_three_vhids_and_a_dying_master(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host, client = hosts(lab, "a", "b", "client")
    # The client reaches the 203.0.113.0/24 VIP on the link, as the masters do.
    client.run("ip", "addr", "add", "203.0.113.10/24", "dev", client.ifname)
    vips = all_vips(THREE)
    a = daemons.toml(a_host, THREE).start()
    a.wait_all("MASTER", ELECTION)
    b = daemons.toml(b_host, backup_of(THREE)).start()
    for vh in THREE:
        b.wait_host(vh.vhid, lambda h: h["state"] == "BACKUP" and h["master"] == a_host.ip, HEARD)

    dump = daemons.describe

    # `ip -j addr` in each namespace: all four, with their prefix lengths, on A only.
    assert wait_vips(a_host, vips, True), dump()
    assert vip_entries(b_host, vips) == set(), dump()
    assert all(h["state"] == "MASTER" for h in a.status().values()), dump()
    for vip in vips:
        ip = vip.split("/")[0]
        assert ping_within(client, ip, each=0.5), f"{vip}\n{dump()}"
        assert neighbour_mac(client, ip) == a_host.mac().lower(), dump()

    a.kill()  # SIGKILL, and the host goes silent: a dying host
    a_host.link_down()
    took = b.wait_all("MASTER", TAKEOVER)
    assert {h["reason"] for h in took.values()} == {MASTER_DOWN}, took
    assert wait_vips(b_host, vips, True), dump()
    # The client follows: each VIP answers, from B's MAC (B's gratuitous ARPs).
    for vip in vips:
        ip = vip.split("/")[0]
        assert ping_within(client, ip, each=0.5), f"{vip}\n{dump()}"
        assert neighbour_mac(client, ip) == b_host.mac().lower(), f"{vip}\n{dump()}"


# --- 2. plumbing follows a step-down and a graceful stop ------------------------------

TWO = [
    VHost(1, ("198.51.100.101/24", "198.51.100.111/32")),
    VHost(2, ("198.51.100.102/24",)),
]


def test_plumbing_follows_stepdown_and_graceful_stop(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host = hosts(lab, "a", "b")
    one, two = (list(vh.addresses) for vh in TWO)
    a = daemons.toml(a_host, TWO).start()
    a.wait_all("MASTER", ELECTION)
    b = daemons.toml(b_host, backup_of(TWO)).start()
    for vh in TWO:
        b.wait_host(vh.vhid, lambda h: h["master"] == a_host.ip, HEARD)

    dump = daemons.describe

    assert wait_vips(a_host, one + two, True), dump()
    assert vip_entries(b_host, one + two) == set(), dump()

    done = a.stepdown(1)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "eth0/vhid 1: stepped down to BACKUP"
    assert wait_vips(a_host, one, False), dump()  # gone at once from the old master...
    assert vip_entries(a_host, two) == set(two), dump()  # ...and only vhid 1's
    b.wait_state(1, "MASTER", TAKEOVER)
    assert wait_vips(b_host, one, True), dump()  # ...and on the new one
    assert vip_entries(b_host, two) == set(), dump()

    # Nothing left to step down for vhid 1; an unknown vhid is an error.
    again = a.stepdown(1)
    assert (again.returncode, again.stdout.strip()) == (
        0,
        "nothing to do: no virtual host with vhid 1 was MASTER",
    ), again
    unknown = a.stepdown(9)
    assert unknown.returncode == 1 and "no virtual host with vhid 9" in unknown.stderr, unknown

    assert a.terminate() == 0, dump()
    assert vip_entries(a_host, one + two) == set(), dump()  # removed before the exit
    took = b.wait_state(2, "MASTER", TAKEOVER)
    assert took["reason"] == LEAVING, took  # a leaving pycarp is taken over from at once
    assert wait_vips(b_host, one + two, True), dump()
    log = a.log()
    assert "eth0/vhid 1: removed 198.51.100.101/24, 198.51.100.111/32" in log, log
    assert "eth0/vhid 2: removed 198.51.100.102/24" in log, log


# --- 3. stale addresses -------------------------------------------------------------------


def test_a_stale_address_is_removed_at_start(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host = hosts(lab, "a", "b")
    vhosts = [VHost(1, ("198.51.100.101/24", "198.51.100.111/32"))]
    a = daemons.toml(a_host, vhosts).start()
    a.wait_state(1, "MASTER", ELECTION)
    # Left behind on B, e.g. by a pycarp that was SIGKILLed as master.
    b_host.run("ip", "addr", "add", "198.51.100.111/32", "dev", b_host.ifname)
    assert "198.51.100.111/32" in b_host.addresses()

    b = daemons.toml(b_host, backup_of(vhosts)).start()
    assert wait_vips(b_host, all_vips(vhosts), False), b.describe()
    b.wait_host(1, lambda h: h["state"] == "BACKUP" and h["master"] == a_host.ip, HEARD)
    assert (
        "eth0/vhid 1: 198.51.100.111 already configured while not MASTER "
        "(left by an earlier run?): removing"
    ) in b.log(), b.describe()
    assert vip_entries(a_host, all_vips(vhosts)) == set(all_vips(vhosts)), a.describe()


# --- 5. status follows every transition ----------------------------------------------

STATUS_VHID = 5
STATUS_VIP = "198.51.100.105"


def test_status_reflects_every_transition(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host, c_host, d_host = hosts(lab, "a", "b", "c", "d")
    base = VHost(STATUS_VHID, (f"{STATUS_VIP}/24",))
    a = daemons.toml(a_host, [base])
    b = daemons.toml(b_host, [replace(base, advskew=100)])
    c = daemons.toml(c_host, [replace(base, advskew=50, preempt=True)])

    def at(d: TomlDaemon, cond: Callable[[dict[str, Any]], bool], t: float) -> dict[str, Any]:
        return d.wait_host(STATUS_VHID, cond, t)

    # Start: BACKUP, "started", no master heard; through `pycarp status --json` too.
    a.start()
    (first,) = a.status_cli()
    assert first["state"] == "BACKUP" and first["reason"] == STARTED, first
    assert (first["interface"], first["vhid"], first["addresses"]) == (
        "eth0",
        STATUS_VHID,
        [STATUS_VIP],
    ), first
    assert (first["advbase"], first["advskew"]) == (1, 0), first
    assert first["master"] is None and first["master_seen_ago"] is None, first
    assert (first["adverts_sent"], first["adverts_received"], first["dropped"]) == (0, 0, {})
    assert 0 <= first["for"] < 3.0, first

    # Takeover: nobody else advertises.
    st = at(a, lambda h: h["state"] == "MASTER", ELECTION)
    assert "master-down" in st["reason"], st
    assert (st["master"], st["master_advbase"], st["master_advskew"]) == (a_host.ip, 1, 0), st
    assert st["master_seen_ago"] is None and st["adverts_sent"] >= 1, st
    sent = st["adverts_sent"]
    assert isinstance(sent, int)
    grown = at(a, lambda h: h["adverts_sent"] >= sent + 2, 3.5)
    assert grown["for"] > st["for"], (st, grown)

    # A wrong password on the same vhid, from a third host (the real ucarp).
    daemons.peer(d_host, "ucarp", vhid=STATUS_VHID, password="wrong", vip=STATUS_VIP).start()

    # A backup joins: started, then it hears A.
    b.start()
    st = at(b, lambda h: h["state"] == "BACKUP", 1.0)
    assert st["reason"] == STARTED and (st["advbase"], st["advskew"]) == (1, 100), st
    st = at(b, lambda h: h["master"] == a_host.ip, HEARD)
    assert (st["state"], st["master_advbase"], st["master_advskew"]) == ("BACKUP", 1, 0), st
    assert st["master_seen_ago"] is not None and 0 <= st["master_seen_ago"] < 1.5, st
    received = st["adverts_received"]
    assert isinstance(received, int) and received >= 1, st
    st = at(b, lambda h: h["adverts_received"] >= received + 2, 3.5)
    assert st["adverts_sent"] == 0 and st["state"] == "BACKUP", st

    # Step-down: A BACKUP at once; B takes over after its master-down interval.
    done = a.stepdown(STATUS_VHID)
    assert done.returncode == 0, done.stderr
    st = a.status()[STATUS_VHID]
    assert (st["state"], st["reason"]) == ("BACKUP", FORCED), st
    st = at(b, lambda h: h["state"] == "MASTER", TAKEOVER)
    assert "master-down" in st["reason"], st
    assert (st["master"], st["master_advbase"], st["master_advskew"]) == (b_host.ip, 1, 100), st
    st = at(a, lambda h: h["master"] == b_host.ip, HEARD)
    assert (st["state"], st["reason"], st["master_advskew"]) == ("BACKUP", FORCED, 100), st
    a_received = st["adverts_received"]
    assert isinstance(a_received, int)
    at(a, lambda h: h["adverts_received"] > a_received, 3.0)

    # Preemption: C (advskew 50, preempt) takes over from B at B's next advertisement.
    c.start()
    st = at(c, lambda h: h["state"] == "MASTER", HEARD + 1.0)
    assert st["reason"] == PREEMPT, st
    assert (st["master"], st["advskew"], st["master_advskew"]) == (c_host.ip, 50, 50), st
    st = at(b, lambda h: h["state"] == "BACKUP", HEARD)
    assert st["reason"] == PREFERRED, st
    st = at(b, lambda h: h["master"] == c_host.ip, HEARD)
    assert st["master_advskew"] == 50 and st["adverts_sent"] >= 1, st
    st = at(a, lambda h: h["master"] == c_host.ip, HEARD)
    assert (st["state"], st["master_advskew"]) == ("BACKUP", 50), st

    # The wrong password: every pycarp counts the intruder's adverts as "digest" drops.
    for d in (a, b, c):
        st = at(d, lambda h: h["dropped"].get("digest", 0) >= 1, ELECTION)
        assert set(st["dropped"]) == {"digest"}, st
    seen = a.status()[STATUS_VHID]["dropped"]["digest"]
    at(a, lambda h: h["dropped"]["digest"] > seen, 3.0)
    assert "bad digest" in a.log(), daemons.describe()


def test_status_answers_from_the_first_moment(lab: Lab, daemons: Daemons) -> None:
    """Asked while the daemon is still starting (removing a stale address), status
    answers with the hosts (INIT or BACKUP), not an internal error."""
    (a_host,) = hosts(lab, "a")
    vhosts = [VHost(1, ("198.51.100.101/24",)), VHost(2, ("198.51.100.102/32",))]
    a_host.run("ip", "addr", "add", "198.51.100.102/32", "dev", a_host.ifname)
    a = daemons.toml(a_host, vhosts)
    a.start(wait=False)
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10.0
    # As fast as the socket allows, until the hosts are started (bounded in time and count).
    while time.monotonic() < deadline and len(answers) < 5000:
        try:
            answer = request(str(a.control_socket), {"command": "status"}, timeout=2.0)
        except ControlError:
            time.sleep(0.001)  # not listening yet
            continue
        answers.append(answer)
        listed = answer.get("hosts") or []
        if answer.get("ok") and listed and all(h["state"] == "BACKUP" for h in listed):
            break
    errors = [x for x in answers if not x.get("ok")]
    print(f"\n{len(answers)} status answers during the start, {len(errors)} errors {errors[:1]}")
    assert answers and answers[-1].get("ok"), f"{answers[-3:]}\n{a.describe()}"
    assert not errors, f"{errors[:3]}\n{a.describe()}"
    for answer in answers:
        assert {h["state"] for h in answer["hosts"]} <= {"INIT", "BACKUP"}, answer


# --- 6. reload -----------------------------------------------------------------------------


def test_reload_adds_and_removes_vhids_and_keeps_the_others(lab: Lab, daemons: Daemons) -> None:
    (a_host,) = hosts(lab, "a")
    one = VHost(1, ("198.51.100.101/24",))
    two = VHost(2, ("198.51.100.102/32",))
    three = VHost(3, ("198.51.100.103/24",))
    a = daemons.toml(a_host, [one, two]).start()
    a.wait_all("MASTER", ELECTION)
    assert wait_vips(a_host, all_vips([one, two]), True), a.describe()

    def snapshot() -> tuple[dict[int, dict[str, Any]], dict[int, float]]:
        """The status, and when each host entered its state on our monotonic clock
        (the daemon's `for` is measured on the same CLOCK_MONOTONIC)."""
        hosts = a.status()
        now = time.monotonic()
        return hosts, {vhid: now - float(h["for"]) for vhid, h in hosts.items()}

    before, since_before = snapshot()
    a.write_config([two, three])
    done = a.reload()
    assert done.returncode == 0, f"{done.stderr}\n{a.describe()}"
    assert done.stdout.splitlines() == [
        "reloaded: 1 added, 1 removed, 0 changed, 1 unchanged",
        "  added    eth0/vhid 3",
        "  removed  eth0/vhid 1",
    ], done.stdout

    after, since_after = snapshot()
    assert sorted(after) == [2, 3], after
    assert (after[3]["state"], after[3]["reason"]) == ("BACKUP", STARTED), after[3]
    # vhid 2 was not restarted: same state, same since, counters carry on.
    assert (after[2]["state"], after[2]["reason"]) == ("MASTER", before[2]["reason"]), after[2]
    assert abs(since_after[2] - since_before[2]) < 0.3, (before[2], after[2])
    assert after[2]["adverts_sent"] >= before[2]["adverts_sent"], (before[2], after[2])
    assert wait_vips(a_host, list(one.addresses), False), a.describe()
    assert vip_entries(a_host, list(two.addresses)) == set(two.addresses), a.describe()

    st = a.wait_state(3, "MASTER", ELECTION)
    assert st["reason"] == MASTER_DOWN, st
    assert wait_vips(a_host, list(three.addresses), True), a.describe()
    later, since_later = snapshot()
    assert later[2]["state"] == "MASTER", later[2]
    assert abs(since_later[2] - since_before[2]) < 0.3, (before[2], later[2])
    assert later[2]["for"] > after[2]["for"] + 2.0, (after[2], later[2])
    assert later[2]["adverts_sent"] >= after[2]["adverts_sent"] + 2, (after[2], later[2])

    # A bad file: an error, and nothing changes.
    good, since_good = snapshot()
    a.config_path.write_text(a.config_path.read_text() + "\n[[vhost]\nvhid = 4\n")
    bad = a.reload()
    assert bad.returncode == 1, bad
    assert "pycarp reload: error:" in bad.stderr and "syntax error" in bad.stderr, bad.stderr
    assert "pycarp.toml" in bad.stderr, bad.stderr
    now, since_now = snapshot()
    assert sorted(now) == [2, 3], now
    for vhid in (2, 3):
        assert (now[vhid]["state"], now[vhid]["reason"]) == ("MASTER", MASTER_DOWN), now[vhid]
        assert abs(since_now[vhid] - since_good[vhid]) < 0.3, (good[vhid], now[vhid])
        assert now[vhid]["adverts_sent"] >= good[vhid]["adverts_sent"], (good[vhid], now[vhid])
    assert vip_entries(a_host, all_vips([one, two, three])) == set(all_vips([two, three]))
    assert a.alive(), a.describe()
