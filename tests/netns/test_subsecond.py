"""End-to-end: sub-second CARP (advbase 0), realtime scheduling, no takeover on one loss.

advskew 26 and 27 with advbase 0: advertisements every 26/256 s (about 100
ms) from the master, a master-down interval of three of the backup's own
intervals (3 x 27/256 s, about 316 ms; ucarp's formula would be one
interval). The daemons run SCHED_RR (the suite runs as root) with memory
locked, their worker threads and scripts normally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pycarp.lab import Host, Lab
from tests.netns.daemons import Daemons, TomlDaemon, VHost
from tests.netns.observe import status_json

pytestmark = pytest.mark.netns

VHID = 1
VIP = "198.51.100.100/24"
ELECTION = 5.0
HEARD = 3.0
SCHED_RR, SCHED_OTHER = 2, 0
MASTER_DOWN = 3 * 27 / 256  # the backup's: about 0.316 s
TAKEOVER = 1.5  # from the crash: master-down, and the margin of status polls
HOG_SECONDS = 20.0


def fast(advskew: int, *extra: str) -> VHost:
    return VHost(VHID, (VIP,), advskew=advskew, extra=("advbase = 0", *extra))


def policies(pid: int) -> dict[int, int]:
    """Each thread's scheduling policy (field 41 of /proc/PID/task/TID/stat)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[int(tid)] = int(fields[41 - 3])
    return out


def locked_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        (line,) = [ln for ln in f if ln.startswith("VmLck:")]
    return int(line.split()[1])


def capabilities(pid: int) -> set[str]:
    """The effective capabilities of the process (its main thread)."""
    names = {12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW", 14: "CAP_IPC_LOCK"}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        (line,) = [ln for ln in f if ln.startswith("CapEff:")]
    mask = int(line.split()[1], 16)
    return {names.get(bit, str(bit)) for bit in range(64) if mask >> bit & 1}


def pair(lab: Lab, daemons: Daemons) -> tuple[Host, Host, TomlDaemon, TomlDaemon]:
    a_host = lab.add_host("a", "198.51.100.11")
    b_host = lab.add_host("b", "198.51.100.12")
    a = daemons.toml(a_host, [fast(26)]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [fast(27)]).start()
    b.wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["master"] == a_host.ip, HEARD)
    return a_host, b_host, a, b


def hogs(host: Host, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Two busy loops (one per core of the rig), each ending by itself after `seconds`."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [host.spawn(sys.executable, "-c", code) for _ in range(2)]


def scheduling(daemon: TomlDaemon) -> str:
    """What `pycarp status --json` says of the daemon's scheduling."""
    (ours,) = [d for d in status_json(daemon.host) if d["pid"] == daemon.pid]
    return str(ours["scheduling"])


def transitions(daemon: TomlDaemon) -> dict[str, dict[str, int]]:
    return dict(daemon.status()[VHID]["transitions"])


def test_a_sub_second_pair_holds_under_load_and_fails_over_within_the_bound(
    lab: Lab, daemons: Daemons
) -> None:
    a_host, b_host, a, b = pair(lab, daemons)
    dump = daemons.describe
    for daemon in (a, b):
        assert scheduling(daemon) == "SCHED_RR priority 10, memory locked"
        host = daemon.status()[VHID]
        assert host["master_down_rule"] == "intervals", host
    assert b.status()[VHID]["master_down"] == pytest.approx(MASTER_DOWN, abs=1e-5)
    assert a.pid is not None and policies(a.pid)[a.pid] == SCHED_RR
    assert locked_kib(a.pid) > 0
    assert capabilities(a.pid) == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK"}

    before_a, before_b = transitions(a), transitions(b)
    busy = hogs(a_host, HOG_SECONDS) + hogs(b_host, HOG_SECONDS)
    for hog in busy:
        hog.wait(HOG_SECONDS + 5.0)
    # Both cores busy for 20 s, adverts every ~100 ms: not one takeover either way.
    assert transitions(a) == before_a and transitions(b) == before_b, dump()
    assert b.status()[VHID]["adverts_received"] >= HOG_SECONDS / 0.2, dump()

    a.kill()  # SIGKILL and the port down: a dying host
    a_host.link_down()
    died = time.monotonic()
    took = b.wait_state(VHID, "MASTER", TAKEOVER + 1.0)
    assert time.monotonic() - died <= TAKEOVER, (time.monotonic() - died, took)
    assert took["reason"] == "no advertisement within the master-down interval", took


def test_one_lost_advertisement_is_not_a_takeover(lab: Lab, daemons: Daemons) -> None:
    """The master stalls for 150 ms (one or two adverts missed) five times: nothing moves.

    A stall of a second (three master-down intervals) is a takeover: the
    control that shows a stall is seen at all.
    """
    _, _, a, b = pair(lab, daemons)
    before = transitions(b)
    for _ in range(5):
        a.signal(signal.SIGSTOP)
        time.sleep(0.15)
        a.signal(signal.SIGCONT)
        time.sleep(0.5)
    assert transitions(b) == before, daemons.describe()
    assert b.status()[VHID]["state"] == "BACKUP"
    a.signal(signal.SIGSTOP)
    try:
        b.wait_state(VHID, "MASTER", 2.0)
    finally:
        a.signal(signal.SIGCONT)


def test_worker_threads_run_normally_and_realtime_can_be_turned_off(
    lab: Lab, daemons: Daemons
) -> None:
    _, _, a, _ = pair(lab, daemons)
    assert a.reload().returncode == 0  # reads the file in a worker thread
    assert a.pid is not None
    threads = policies(a.pid)
    assert threads[a.pid] == SCHED_RR and len(threads) >= 2, threads
    assert all(p == SCHED_OTHER for tid, p in threads.items() if tid != a.pid), threads
    other = VHost(2, ("198.51.100.102/24",), advskew=20, extra=("advbase = 0",))
    c_host = lab.add_host("c", "198.51.100.13")
    off = daemons.toml(c_host, [other], head='realtime = "off"').start()
    off.wait_state(2, "MASTER", ELECTION)
    assert scheduling(off) == "normal"
    assert off.pid is not None and set(policies(off.pid).values()) == {SCHED_OTHER}
