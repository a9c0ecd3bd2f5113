"""A hostile neighbour floods the link with garbage CARP: all is dropped, counted, logged briefly.

Two pycarp hosts with ucarp's defaults (`a` MASTER, `b` BACKUP) and an
attacker on the same lab bridge, which runs flood_sender.py for 10 s: wrong
TTL (with valid digests), version, type, checksum, digest, authlen, lengths,
IP options and trailing bytes, random bytes, broken IP headers, all to
224.0.0.18 and for the pair's vhid.

At a rate the daemons keep up with, nothing changes at all. Flat out (some
300 000 frames a second from one Python process, some from made-up sources,
198.51.100.100 to .199, against a per-source log limit) the backup's socket
overflows and a's advertisements are lost with the garbage: b may take over
for a moment (a flood of the segment is a denial of service, for any
CARP), but a stays MASTER and on time, both stay up and answer, and b is
BACKUP again once the flood ends.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab import Host, Lab
from tests.netns.daemons import Daemons, Peer
from tests.netns.observe import Tcpdump, text_of

pytestmark = pytest.mark.netns

VIP = "198.51.100.80"
VHID = 80
PASSWORD = "flood"
SENDER = Path(__file__).with_name("flood_sender.py")
FLOOD = 10.0  # seconds of flood
TAIL = 11.0  # one more frame of each kind then: past the drop log's 10 s interval
ABSORBED = 5000  # frames a second: a few % of a CPU for each daemon
# Reasons counted for the virtual host (the packet names its vhid and group);
# TTL and version are checked before the vhid, as ucarp does, so they are
# counted for the daemon as a whole (Node.drops), which status does not show:
# the test finds them in the log instead.
HOST_REASONS = {"type", "checksum", "digest", "length"}
NODE_DETAILS = ("expected 255", "expected 2")  # TTL, version
MAX_DROP_LINES = 20
# The master's adverts as the backup sees them. Median within 10 ms of
# advbase: a scheduling delay is a one-off, a drift moves the median. Max
# within 50 ms: a loop starved by the flood would show as 64-datagram batches
# piling up (hundreds of ms); 50 ms leaves room for this 2-CPU machine
# running other tests at the same time.
MEDIAN_SLACK = 0.010
MAX_SLACK = 0.050


def advert_times(capture: Tcpdump, source: str, start: float, end: float) -> list[float]:
    """Wall-clock times of source's advertisements between start and end."""
    stamps = []
    for line in capture.lines():
        when, _, rest = line.partition(" ")
        if f" {source} > 224.0.0.18:" in rest and start <= float(when) <= end:
            stamps.append(float(when))
    return stamps


@dataclass
class Flood:
    """What one flood left behind: the pair before and after, the sender's report, the wire."""

    a: Peer
    b: Peer
    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    during: list[tuple[dict[str, Any], dict[str, Any]]]  # (a, b) status polled mid-flood
    history: dict[str, list[str]]
    report: dict[str, Any]
    adverts: list[float]  # a's advertisements during the flood, as b's tcpdump saw them

    def context(self) -> str:
        return (
            f"flood: {self.report}\nduring: {self.during}\n{self.a.describe()}\n{self.b.describe()}"
        )


def pair(lab: Lab, daemons: Daemons) -> tuple[Peer, Peer, Host]:
    """`a` MASTER, `b` BACKUP (both with ucarp's defaults), and the attacker's host."""
    a_host = lab.add_host("a", "198.51.100.81")
    b_host = lab.add_host("b", "198.51.100.82")
    attacker = lab.add_host("attacker", "198.51.100.89")
    a = daemons.peer(a_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP).start()
    assert a.wait_master(6), a.describe()
    b = daemons.peer(b_host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP).start()
    assert b.wait_backup(3), b.describe()
    return a, b, attacker


def flood(
    lab: Lab, daemons: Daemons, tmp_path: Path, rate: int | None, *, spoof: bool = False
) -> Flood:
    """Set up the pair, flood it for FLOOD s (rate frames a second; None: flat out)."""
    a, b, attacker = pair(lab, daemons)
    before = {"a": a.host_status(), "b": b.host_status()}
    history = {"a": a.state_history(), "b": b.state_history()}
    expression = f"ip proto 112 and src host {a.host.ip}"
    capture = Tcpdump(b.host, tmp_path / "adverts.txt", expression, count=200).start(limit=60)
    argv = [
        sys.executable, str(SENDER), f"--interface={attacker.ifname}", f"--source={attacker.ip}",
        f"--vhid={VHID}", f"--password={PASSWORD}", f"--address={VIP}", f"--seconds={FLOOD}",
        f"--tail-after={TAIL}", *([] if rate is None else [f"--rate={rate}"]),
        *(["--spoof"] if spoof else []),
    ]  # fmt: skip
    out = tmp_path / "flood.json"
    start = time.time()
    with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        sender = attacker.spawn(*argv, stdout=stdout, stderr=stderr)
    during = []
    for _ in range(3):  # the control sockets answer while the flood goes on
        time.sleep(FLOOD / 4)
        during.append((a.host_status(), b.host_status()))
    try:
        sender.wait(timeout=TAIL + 20)
    except subprocess.TimeoutExpired:
        sender.kill()
        sender.wait(timeout=5)
    time.sleep(1.5)  # the daemons read what is queued; one more advert is captured
    capture.stop()
    assert sender.returncode == 0, text_of(out.with_suffix(".err"))
    adverts = advert_times(capture, a.host.ip, start, start + FLOOD)
    after = {"a": a.host_status(), "b": b.host_status()}
    report = json.loads(text_of(out))
    return Flood(a, b, before, after, during, history, report, adverts)


def check_master_unmoved(f: Flood) -> None:
    """a is up and MASTER as before, and advertised on time."""
    assert f.a.alive() and f.b.alive(), f.context()
    old, new = f.before["a"], f.after["a"]
    assert new["state"] == "MASTER" and new["reason"] == old["reason"], f.context()
    assert new["for"] >= old["for"] + FLOOD, f.context()  # no transition meanwhile
    assert f.a.state_history() == f.history["a"], f.context()
    assert all(s["state"] == "MASTER" for s, _ in f.during), f.context()
    gaps = [t1 - t0 for t0, t1 in itertools.pairwise(f.adverts)]
    assert len(gaps) >= FLOOD - 2, (f.adverts, f.context())
    assert abs(statistics.median(gaps) - 1.0) <= MEDIAN_SLACK, (gaps, f.report)
    assert max(abs(g - 1.0) for g in gaps) <= MAX_SLACK, (gaps, f.report)


def check_drops(f: Flood, *, spoofed: bool = False) -> None:
    """Every reason sent is counted (status, or the log for node-wide ones); the log is brief."""
    for role, peer in (("a", f.a), ("b", f.b)):
        dropped = f.after[role]["dropped"]
        assert {r for r, n in dropped.items() if n > 0} >= HOST_REASONS, (role, f.context())
        lines = [line for line in peer.log().splitlines() if "dropped packet" in line]
        assert len(lines) < MAX_DROP_LINES, (role, lines)
        if spoofed:  # too many sources for a line each: the rest is summed up
            assert any("packets not logged" in line for line in lines), (role, lines)
            continue
        for detail in NODE_DETAILS:
            assert any(detail in line for line in lines), (role, detail, lines)
        assert any("more since the last report" in line for line in lines), (role, lines)


def test_a_flood_the_daemons_keep_up_with_changes_nothing(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    f = flood(lab, daemons, tmp_path, ABSORBED)
    check_master_unmoved(f)
    check_drops(f)
    old, new = f.before["b"], f.after["b"]
    assert new["state"] == "BACKUP" and new["reason"] == old["reason"], f.context()
    assert new["for"] >= old["for"] + FLOOD, f.context()
    assert f.b.state_history() == f.history["b"], f.context()
    assert new["master"] == f.a.host.ip, f.context()
    # Not one forged advertisement was taken: the master heard none.
    assert f.after["a"]["adverts_received"] == f.before["a"]["adverts_received"], f.context()
    assert all(s["state"] == "BACKUP" for _, s in f.during), f.context()


def test_a_spoofed_flood_flat_out_leaves_the_master_master(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    f = flood(lab, daemons, tmp_path, None, spoof=True)
    check_master_unmoved(f)
    check_drops(f, spoofed=True)
    # b may have lost enough of a's adverts to take over for a while; it is BACKUP again.
    f.b.wait_backup(5)
    assert f.b.state_history()[-1].startswith("down "), f.context()
    assert f.b.host_status()["master"] == f.a.host.ip, f.context()
