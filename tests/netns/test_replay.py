"""Replayed advertisements change nothing; real peers' counters are never taken for replays.

The digest covers the counter but not advbase/advskew nor the source
address: a captured advertisement, edited, is still authentic. Two pycarp
hosts with the default `replay = "on"` (`a` MASTER, `b` BACKUP) and an
attacker `c` on the same bridge that captures one of a's advertisements and
replays it (replay_sender.py):

- edited to 255/255 (a leaving master) from a's address: b stays BACKUP,
  still seeing a as its master;
- edited to advskew 0, from b's address: a stays MASTER (its own counter);
- unedited, once a is dead: b still takes over within the master-down
  interval and a margin.

And the peers that make counters their own ways: the real ucarp (a fresh
random counter each time) and a BSD-style master (the same counter every
time) are heard without a single replay drop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, Peer

pytestmark = pytest.mark.netns

VHID = 61
VIP = "198.51.100.60"
PASSWORD = "replay"
SENDER = Path(__file__).with_name("replay_sender.py")
ELECTION = 6.0  # a lone node: 3 s master-down plus a margin
SETTLE = 2.5  # for a fresh backup to hear a few advertisements
TAKEOVER = 3.0 + 20 / 256 + 2.0  # b's master-down interval, and a margin
REPLAYS = 5
REPLAY_REASONS = ("replay", "own-counter")


@dataclass
class Net:
    a: Host  # the master (advskew 10)
    b: Host  # the backup (advskew 20)
    c: Host  # the attacker, or a peer of another kind


@pytest.fixture
def net(lab: Lab) -> Iterator[Net]:
    yield Net(
        a=lab.add_host("a", "198.51.100.61"),
        b=lab.add_host("b", "198.51.100.62"),
        c=lab.add_host("c", "198.51.100.63"),
    )


def dropped(peer: Peer, reason: str) -> int:
    count = peer.host_status()["dropped"].get(reason, 0)
    assert isinstance(count, int)
    return count


def sender(host: Host, mode: str, *args: str, timeout: float = 20.0) -> str:
    done = host.run(sys.executable, str(SENDER), mode, *args, check=False, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def pycarp(daemons: Daemons, host: Host, advskew: int) -> Peer:
    return daemons.peer(host, "pycarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=advskew)


def pair(net: Net, daemons: Daemons) -> tuple[Peer, Peer]:
    """a MASTER, b BACKUP and having heard a for a while."""
    a = pycarp(daemons, net.a, 10).start()
    assert a.wait_master(ELECTION), a.describe()
    b = pycarp(daemons, net.b, 20).start()
    assert b.wait_backup(ELECTION), b.describe()
    time.sleep(SETTLE)
    return a, b


def test_replays_neither_demote_nor_hold_off(net: Net, daemons: Daemons) -> None:
    a, b = pair(net, daemons)
    advert = sender(net.c, "capture", "--source", net.a.ip)
    time.sleep(1.0)  # b has heard it too, and more since
    histories = a.state_history(), b.state_history()

    # (a) a's advertisement as a leaving master's, from a's address: b takes no notice.
    demoted = ("--advert", advert, "--advbase", "255", "--advskew", "255")
    sender(net.c, "send", "--source", net.a.ip, *demoted, "--count", str(REPLAYS),
           "--interval", "0.3")  # fmt: skip
    time.sleep(0.5)
    seen = b.host_status()
    assert seen["state"] == "BACKUP" and b.state_history() == histories[1], b.describe()
    assert (seen["master"], seen["master_advskew"]) == (net.a.ip, 10), seen
    assert dropped(b, "replay") >= REPLAYS, seen

    # (b) a's own advertisement as a better master's, from b's address: a stays MASTER.
    better = ("--advert", advert, "--advbase", "1", "--advskew", "0")
    sender(net.b, "send", "--source", net.b.ip, *better, "--count", str(REPLAYS),
           "--interval", "0.3")  # fmt: skip
    time.sleep(0.5)
    assert a.host_status()["state"] == "MASTER" and a.state_history() == histories[0], a.describe()
    assert dropped(a, "own-counter") >= REPLAYS, a.host_status()
    assert b.state_history() == histories[1], b.describe()

    # (c) a dies; its old advertisement replayed over and over does not hold b off.
    before = dropped(b, "replay")
    replaying = daemons.process(net.c, sys.executable, str(SENDER), "send", "--source",
                                net.a.ip, "--advert", advert, "--count", "40",
                                "--interval", "0.25")  # fmt: skip
    time.sleep(0.5)
    killed = time.monotonic()
    a.crash_host()
    assert b.wait_master(TAKEOVER), b.describe(f"{time.monotonic() - killed:.1f} s after")
    assert wait_until(lambda: dropped(b, "replay") > before, 2.0), b.host_status()
    replaying.kill()


def test_ucarps_random_counters_are_no_replays(net: Net, daemons: Daemons, ucarp_bin: str) -> None:
    ucarp = daemons.peer(net.a, "ucarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=10)
    ucarp.start()
    assert ucarp.wait_master(ELECTION), ucarp.describe()
    b = pycarp(daemons, net.b, 20).start()
    assert b.wait_backup(ELECTION), b.describe()
    time.sleep(8.0)
    seen = b.host_status()
    assert seen["state"] == "BACKUP" and seen["master"] == net.a.ip, b.describe()
    assert seen["adverts_received"] >= 6, seen
    assert not any(r in seen["dropped"] for r in REPLAY_REASONS), seen
    assert seen["constant_counter"] == [] and seen["conflict"] is None, seen


def test_a_constant_counter_master_is_heard_without_drops(net: Net, daemons: Daemons) -> None:
    bsd = daemons.process(net.c, sys.executable, str(SENDER), "constant", "--source", net.c.ip,
                          "--vhid", str(VHID), "--password", PASSWORD, "--address", VIP,
                          "--seconds", "30")  # fmt: skip
    b = pycarp(daemons, net.b, 20).start()
    assert b.wait_backup(ELECTION), b.describe()
    time.sleep(6.0)  # twice b's master-down interval
    seen = b.host_status()
    assert seen["state"] == "BACKUP" and seen["master"] == net.c.ip, b.describe(bsd.log())
    assert seen["adverts_received"] >= 5 and seen["dropped"] == {}, seen
    assert seen["constant_counter"] == [net.c.ip], seen
    assert b.log().count("repeats one counter") == 1, b.describe()
    bsd.kill()
    assert b.wait_master(TAKEOVER), b.describe()


def test_a_digest_conflict_is_shown_while_it_lasts(net: Net, daemons: Daemons) -> None:
    b = pycarp(daemons, net.b, 20).start()
    assert b.wait_master(ELECTION), b.describe()
    other = daemons.process(net.c, sys.executable, str(SENDER), "constant", "--source", net.c.ip,
                            "--vhid", str(VHID), "--password", "another", "--address", VIP,
                            "--seconds", "5")  # fmt: skip
    assert wait_until(lambda: b.host_status()["conflict"] is not None, 6.0), b.describe(other.log())
    conflict = b.host_status()["conflict"]
    assert conflict["source"] == net.c.ip and conflict["count"] >= 3, conflict
    assert b.log().count("keep failing the digest") == 1, b.describe()
    # ended 3 master-down intervals (some 9 s) after the last bad digest
    assert wait_until(lambda: b.host_status()["conflict"] is None, 5.0 + 12.0), b.host_status()
    assert b.log().count("digest conflict over") == 1, b.describe()
    assert b.host_status()["state"] == "MASTER"
