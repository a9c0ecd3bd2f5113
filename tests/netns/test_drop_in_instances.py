"""Several pycarp processes on one host, started like ucarp ones: no --control-socket.

The usual way to float several addresses with ucarp is one process per
address. pycarp's drop-in command lines get a control socket each by
default (<run dir>/eth0-<vhid>.sock, the run directory per network
namespace), so they run side by side, `pycarp status` lists them all, and
only a second process for the same interface and vhid is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, Impl, Peer, VHost
from tests.netns.observe import (
    control_socket_of,
    holds,
    neighbour_mac,
    pycarp_cli,
    status_json,
)

pytestmark = pytest.mark.netns

PASSWORD = "instances"
ELECTION = 6.0  # a lone node: 3 s master-down plus a margin
TAKEOVER = 6.0  # a backup after the master went silent, or at once after a hand-over
SETTLE = 1.5  # for a fresh backup to hear at least one advertisement
VHIDS = (51, 52, 53)


def vip_of(vhid: int) -> str:
    return f"198.51.100.{100 + vhid}"


def crash(peer: Peer) -> None:
    """SIGKILL one daemon of a host that keeps running its others.

    The host stays up (its other daemons must not notice), so the VIP the
    dead one left plumbed is removed by hand, as the host's death would.
    """
    peer.kill()
    peer.unplumb()


def reaches(client: Host, vip: str, host: Host, timeout: float = 10.0) -> bool:
    """The client's pings of vip are answered, from host's MAC."""

    def answered_by_host() -> bool:
        answered = client.ping(vip, count=1, timeout=1.0)
        return answered and neighbour_mac(client, vip) == host.mac().lower()

    return wait_until(answered_by_host, timeout)


@dataclass
class Pair:
    """The three vhids: pycarp on host a, ucarp on host b, a client on c."""

    a: Host
    b: Host
    client: Host
    daemons: Daemons

    def start(self, host: Host, impl: Impl, vhid: int, advskew: int) -> Peer:
        # --shutdown: a graceful stop removes the VIP (the down script).
        peer = self.daemons.peer(host, impl, vhid=vhid, password=PASSWORD, vip=vip_of(vhid),
                                 advskew=advskew, shutdown=True)  # fmt: skip
        return peer.start()

    def dump(self) -> str:
        return self.daemons.describe()


@pytest.fixture
def pair(lab: Lab, daemons: Daemons) -> Pair:
    return Pair(
        a=lab.add_host("a", "198.51.100.41"),
        b=lab.add_host("b", "198.51.100.42"),
        client=lab.add_host("c", "198.51.100.40"),
        daemons=daemons,
    )


def test_three_drop_in_pycarps_against_three_ucarps(pair: Pair) -> None:
    """One pycarp per vhid on a, one ucarp per vhid on b; crashes and stops, one at a time."""
    pycarps = {vhid: pair.start(pair.a, "pycarp", vhid, advskew=0) for vhid in VHIDS}
    for peer in pycarps.values():
        assert peer.wait_master(ELECTION), pair.dump()
    ucarps = {vhid: pair.start(pair.b, "ucarp", vhid, advskew=50) for vhid in VHIDS}
    for peer in ucarps.values():
        assert peer.wait_backup(ELECTION), pair.dump()
    assert holds(lambda: all(p.is_master() for p in pycarps.values()), SETTLE), pair.dump()
    for vhid in VHIDS:
        assert reaches(pair.client, vip_of(vhid), pair.a), pair.dump()

    # `pycarp status` on a, without --control-socket, lists the three daemons.
    daemons = status_json(pair.a)
    assert [(d["socket"], d["pid"]) for d in daemons] == [
        (str(control_socket_of(pair.a, vhid)), pycarps[vhid].pid) for vhid in VHIDS
    ], daemons
    table = pycarp_cli(pair.a, "status").stdout.splitlines()
    assert [line.split()[:4] for line in table[1:]] == [
        [f"eth0-{vhid}", "eth0", str(vhid), "MASTER"] for vhid in VHIDS
    ], table

    def others_unmoved(vhid: int) -> bool:
        """The daemons of the other vhids keep their state whatever happens to vhid's."""
        return all(pycarps[v].is_master() and not ucarps[v].is_master() for v in VHIDS if v != vhid)

    # Each vhid in turn: its pycarp master crashes (51, 53) or stops (52); ucarp takes
    # over; pycarp comes back as BACKUP; then ucarp stops (51, 53) or crashes (52), and
    # pycarp takes over again. The other vhids' daemons never move.
    for vhid in VHIDS:
        first_crash = vhid != 52
        if first_crash:
            crash(pycarps[vhid])
        else:
            assert pycarps[vhid].terminate(timeout=10) == 0, pair.dump()
        assert ucarps[vhid].wait_master(TAKEOVER), pair.dump()
        assert reaches(pair.client, vip_of(vhid), pair.b), pair.dump()
        assert others_unmoved(vhid), pair.dump()

        # The dead daemon is gone from `pycarp status`; a crash left its socket, skipped.
        listed = [d["socket"] for d in status_json(pair.a)]
        assert str(control_socket_of(pair.a, vhid)) not in listed, listed

        again = pair.start(pair.a, "pycarp", vhid, advskew=0)
        assert again.wait_backup(ELECTION), pair.dump()
        assert holds(lambda p=again: not p.is_master(), SETTLE), pair.dump()  # no preempt
        if first_crash:
            assert ucarps[vhid].terminate() is not None, pair.dump()
            assert ucarps[vhid].wait_backup(5), pair.dump()  # its down script (-z) ran
        else:
            crash(ucarps[vhid])
        assert again.wait_master(TAKEOVER), pair.dump()
        assert reaches(pair.client, vip_of(vhid), pair.a), pair.dump()
        assert others_unmoved(vhid), pair.dump()
        pycarps[vhid] = again
        ucarps[vhid] = pair.start(pair.b, "ucarp", vhid, advskew=50)
        assert ucarps[vhid].wait_backup(ELECTION), pair.dump()

    assert [d["pid"] for d in status_json(pair.a)] == [pycarps[v].pid for v in VHIDS]


def test_the_same_interface_and_vhid_in_two_namespaces(lab: Lab, daemons: Daemons) -> None:
    """Two hosts of one lab (one filesystem) run eth0/vhid 61 with default sockets."""
    hosts = [lab.add_host("d", "198.51.100.43"), lab.add_host("e", "198.51.100.44")]
    peers = [
        daemons.peer(h, "pycarp", vhid=61, password=PASSWORD, vip=vip_of(61)).start(wait=False)
        for h in hosts
    ]
    sockets = [control_socket_of(h, 61) for h in hosts]
    assert sockets[0] != sockets[1] and all(s.name == "eth0-61.sock" for s in sockets)

    def one_master_one_backup() -> bool:
        masters = [p.is_master() for p in peers]
        return all(p.alive() for p in peers) and sorted(masters) == [False, True]

    assert wait_until(one_master_one_backup, ELECTION + 2), daemons.describe()
    assert holds(one_master_one_backup, SETTLE)
    for host, peer, path in zip(hosts, peers, sockets, strict=True):
        assert [(d["socket"], d["pid"]) for d in status_json(host)] == [(str(path), peer.pid)]


def test_a_second_process_for_the_same_vhid_is_refused_naming_the_first(
    lab: Lab, daemons: Daemons
) -> None:
    host = lab.add_host("f", "198.51.100.45")
    first = daemons.peer(host, "pycarp", vhid=71, password=PASSWORD, vip=vip_of(71)).start()
    path = control_socket_of(host, 71)
    assert wait_until(lambda: pycarp_cli(host, "status").returncode == 0, 10), first.describe()
    refusal = (
        f"cannot start: another pycarp (pid {first.pid}) is running eth0/vhid 71 "
        f"on control socket {path}"
    )

    # The same command line again, even with --daemonize: refused in the foreground.
    started = time.monotonic()
    second = host.run(*first.argv, "--daemonize", check=False, timeout=30)
    assert second.returncode == 1, (second.stdout, second.stderr)
    assert refusal in second.stderr, second.stderr
    assert time.monotonic() - started < 10

    # A TOML file with that vhid among others: refused too, naming the same process.
    vhosts = [VHost(72, ("198.51.100.172/32",)), VHost(71, ("198.51.100.173/32",))]
    toml = daemons.toml(host, vhosts).start(wait=False)
    assert toml.wait(timeout=20) == 1, toml.describe()
    assert refusal in toml.log(), toml.describe()

    # The first one goes on, alone in `pycarp status`.
    assert first.alive(), first.describe()
    assert [(d["socket"], d["pid"]) for d in status_json(host)] == [(str(path), first.pid)]
