"""End-to-end: Debian's ucarp stanzas run pycarp through `pycarp render ifupdown`'s hooks.

The hooks run as ifupdown runs them because ifupdown runs them: the real
`ifup` and `ifdown` (Debian's ifupdown 0.8) in a lab host, reading a test's
/etc/network/interfaces. They run in a mount namespace of their own where
the test's directories are bind-mounted on /etc/network (the interfaces
file, if-up.d/pycarp and if-down.d/pycarp, rendered there by `pycarp render
ifupdown --dir`) and /run/network (ifupdown's state), so the machine's own
are never read nor written. ifupdown gives the hooks the stanza's
environment (IF_ADDRESS, IF_UCARP_*, IFACE, MODE, PHASE...) itself; the
daemons the hooks start stay in that mount namespace, so the up and down
scripts of Debian's <interface>:ucarp way run the same ifupdown. Default
timers (advbase 1), as an operator's stanza has them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, Impl, Peer
from tests.netns.observe import (
    ask_status,
    control_socket_of,
    holds,
    neighbour_mac,
    probing,
    pycarp_cli,
)

pytestmark = pytest.mark.netns

PASSWORD = "secret"
A_IP, B_IP, CLIENT_IP = "198.51.100.51", "198.51.100.52", "198.51.100.50"
ELECTION = 7.0  # a lone pycarp: 3 s master-down and a margin
SETTLE = 1.5  # a fresh backup hears a few advertisements
# From `ifdown` to the peer's up script: ucarp reads its socket on a one-second tick.
TAKEOVER = {"pycarp": 1.0, "ucarp": 2.0}
# Longest run of unanswered 10 ms probes: as in test_handover.py, ucarp reads
# packets on a one-second tick, and the leaving master keeps the VIP meanwhile.
LOST_PROBES = {"pycarp": 10, "ucarp": 30}
# In the lab host: the test's directories on ifupdown's, then the command.
IN_MOUNTS = (
    'mkdir -p /run/network && mount --bind "$1" /etc/network && '
    'mount --bind "$2" /run/network && shift 2 && exec "$@"'
)


def vip_of(vid: int) -> str:
    return f"198.51.100.{100 + vid}"


def stanza(vid: int, address: str = A_IP, *extra: str) -> str:
    lines = [
        "iface eth0 inet static",
        f"    address {address}/24",
        f"    ucarp-vid {vid}",
        f"    ucarp-vip {vip_of(vid)}",
        f"    ucarp-password {PASSWORD}",
        *(f"    {line}" for line in extra),
    ]
    return "\n".join(lines) + "\n"


class Ifupdown:
    """ifup and ifdown on a lab host's eth0, with the test's /etc/network and /run/network."""

    def __init__(self, host: Host, top: Path) -> None:
        self.host = host
        self.etc = top / "etc-network"
        self.state = top / "run-network"
        for phase in ("pre-up", "up", "down", "post-down"):  # run-parts wants all four
            (self.etc / f"if-{phase}.d").mkdir(parents=True)
        self.state.mkdir()
        rendered = subprocess.run(
            [sys.executable, "-m", "pycarp", "render", "ifupdown", "--dir", str(self.etc)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr
        # ifup adds the stanzas' addresses itself
        host.run("ip", "addr", "flush", "dev", host.ifname)

    def write(self, *stanzas: str) -> None:
        (self.etc / "interfaces").write_text("\n".join(stanzas))

    def run(self, *command: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", IN_MOUNTS, "sh"]
        return self.host.run(
            *argv, str(self.etc), str(self.state), *command, check=False, timeout=timeout
        )

    def ifup(self) -> subprocess.CompletedProcess[str]:
        return self.run("ifup", self.host.ifname)

    def ifdown(self) -> subprocess.CompletedProcess[str]:
        return self.run("ifdown", self.host.ifname)

    def pidfile(self, vid: int) -> Path:
        return control_socket_of(self.host, vid).parent / f"ifupdown-eth0-{vid}.pid"

    def status(self, vid: int) -> dict[str, Any] | None:
        """vid's host in the status of the pycarp the hook started for it, if it answers."""
        hosts = ask_status(control_socket_of(self.host, vid))
        return hosts[0] if hosts else None

    def state_of(self, vid: int) -> str | None:
        found = self.status(vid)
        return None if found is None else str(found["state"])

    def labels(self) -> list[str]:
        """The `ip -o addr` lines of eth0 (address and label)."""
        return self.host.run("ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout.splitlines()

    def describe(self, *notes: object) -> str:
        listed = pycarp_cli(self.host, "status")
        return "\n".join(
            [*map(str, notes), f"status: {listed.stdout}{listed.stderr}", *self.labels()]
        )


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@pytest.fixture
def hosts(lab: Lab) -> tuple[Host, Host, Host]:
    return lab.add_host("a", A_IP), lab.add_host("b", B_IP), lab.add_host("c", CLIENT_IP)


def peer_of(daemons: Daemons, host: Host, impl: Impl, vid: int) -> Peer:
    """A backup on host b for vid: it never preempts, and a has the lower advskew."""
    peer = daemons.peer(host, impl, vhid=vid, password=PASSWORD, vip=vip_of(vid), advskew=100)
    return peer.start()


def test_two_stanzas_on_one_interface_run_two_pycarps_and_ifdown_hands_both_over(
    hosts: tuple[Host, Host, Host], daemons: Daemons, tmp_path: Path
) -> None:
    """vid 3 backed up by a pycarp, vid 4 by Debian's ucarp (both started directly on b)."""
    a, b, _ = hosts
    net = Ifupdown(a, tmp_path / "a")
    net.write(stanza(3), stanza(4, "198.51.100.61"))
    started = net.ifup()
    assert started.returncode == 0, started.stderr

    pids = {vid: int(net.pidfile(vid).read_text()) for vid in (3, 4)}
    assert pids[3] != pids[4] and all(map(alive, pids.values())), net.describe(pids)
    listed = pycarp_cli(a, "status").stdout.splitlines()
    assert [line.split()[:3] for line in listed[1:]] == [
        ["eth0-3", "eth0", "3"],
        ["eth0-4", "eth0", "4"],
    ], listed
    for vid in (3, 4):
        assert wait_until(lambda v=vid: net.state_of(v) == "MASTER", ELECTION), net.describe()
    # each stanza's own address is its source: a master names itself as the master
    assert [(net.status(v) or {}).get("master") for v in (3, 4)] == [A_IP, "198.51.100.61"]
    assert {f"{vip_of(3)}/32", f"{vip_of(4)}/32"} <= set(a.addresses()), net.describe()

    peers = {3: peer_of(daemons, b, "pycarp", 3), 4: peer_of(daemons, b, "ucarp", 4)}
    for peer in peers.values():
        assert peer.wait_backup(ELECTION), peer.describe()
    assert holds(lambda: not any(p.is_master() for p in peers.values()), SETTLE)

    began = time.time()
    stopped = net.ifdown()
    took = time.time() - began
    assert stopped.returncode == 0, stopped.stderr
    for peer in peers.values():
        assert peer.is_master(), peer.describe(net.describe())
    assert not any(map(alive, pids.values())), net.describe(pids)
    assert not net.pidfile(3).exists() and not net.pidfile(4).exists()
    assert not {f"{vip_of(3)}/32", f"{vip_of(4)}/32"} & set(a.addresses()), net.describe()
    assert pycarp_cli(a, "status", "--json").stdout.strip() in ("", "[]"), net.describe()
    # one hand-over after the other, each about as long as the peer takes to answer
    assert took < 2 * TAKEOVER["ucarp"] + 2.0, f"ifdown took {took:.1f} s"


@pytest.mark.parametrize("impl", ["pycarp", "ucarp"])
def test_ifdown_hands_over_to_the_peer_at_once(
    impl: Impl, hosts: tuple[Host, Host, Host], daemons: Daemons, tmp_path: Path
) -> None:
    """The README's stanza; the client pings the VIP throughout the `ifdown`."""
    a, b, client = hosts
    net = Ifupdown(a, tmp_path / "a")
    net.write(stanza(5))
    started = net.ifup()
    assert started.returncode == 0, started.stderr
    pid = int(net.pidfile(5).read_text())
    assert wait_until(lambda: net.state_of(5) == "MASTER", ELECTION), net.describe()
    peer = peer_of(daemons, b, impl, 5)
    assert peer.wait_backup(ELECTION), peer.describe()
    # a settled master: its delayed second gratuitous ARP is behind it (test_handover.py)
    assert wait_until(lambda: (net.status(5) or {}).get("adverts_sent", 0) >= 3, 5.0)

    with probing(client, vip_of(5), tmp_path / "ping.log") as probe:
        assert probe.wait_replies_after(0.0, 100, 5.0), probe.result().summary()
        assert neighbour_mac(client, vip_of(5)) == a.mac().lower()
        began = time.time()
        stopped = net.ifdown()
        ended = time.time()
        assert peer.wait_master(5.0), peer.describe()
        assert probe.wait_replies_after(time.time(), 100, 5.0), probe.result().summary()
    result = probe.result()
    took_over = next(t for t, call in peer.events() if call.startswith("up "))
    dump = f"{result.summary()}\n{peer.describe()}\n{net.describe()}"
    print(
        f"\nifdown, {impl} peer: takeover {took_over - began:.2f} s after ifdown began, "
        f"ifdown {ended - began:.2f} s; {result.summary()}"
    )
    assert stopped.returncode == 0, stopped.stderr
    assert took_over - began <= TAKEOVER[impl], dump
    assert result.longest_lost_run <= LOST_PROBES[impl], dump
    assert not alive(pid) and not net.pidfile(5).exists(), dump
    assert neighbour_mac(client, vip_of(5)) == b.mac().lower(), dump


def test_the_interface_ucarp_stanza_carries_the_vip_as_with_debians_ucarp(
    hosts: tuple[Host, Host, Host], tmp_path: Path
) -> None:
    """README.Debian's way: the VIP is the stanza eth0:ucarp, which the master brings up.

    The hooks are then the default up and down scripts (ifup and ifdown of
    eth0:ucarp, as /usr/share/ucarp/vip-up and vip-down).
    """
    a = hosts[0]
    net = Ifupdown(a, tmp_path / "a")
    alias = "\n".join(
        ["iface eth0:ucarp inet static", f"    address {vip_of(6)}", "    netmask 255.255.255.255"]
    )
    net.write(stanza(6, A_IP, "ucarp-master yes"), alias + "\n")
    started = net.ifup()
    assert started.returncode == 0, started.stderr
    pid = int(net.pidfile(6).read_text())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert "--preempt" in argv, argv  # ucarp-master yes
    assert f"--upscript={net.etc / 'if-up.d' / 'pycarp'}" in argv, argv
    assert f"--downscript={net.etc / 'if-down.d' / 'pycarp'}" in argv, argv

    def labelled() -> bool:
        return any(f"{vip_of(6)}/32" in line and "eth0:ucarp" in line for line in net.labels())

    assert wait_until(labelled, ELECTION), net.describe()
    assert (net.state / "ifstate.eth0:ucarp").read_text().strip() == "eth0:ucarp"

    stopped = net.ifdown()
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid), net.describe()
    assert not any(vip_of(6) in line for line in net.labels()), net.describe()
    assert (net.state / "ifstate.eth0:ucarp").read_text().strip() == ""


def test_a_bad_value_fails_ifup_with_pycarps_message_and_starts_nothing(
    hosts: tuple[Host, Host, Host], tmp_path: Path
) -> None:
    a = hosts[0]
    net = Ifupdown(a, tmp_path / "a")
    net.write(stanza(7, A_IP, "ucarp-advskew 300"))
    started = net.ifup()
    assert started.returncode != 0
    assert "pycarp: error: --advskew: 300 is outside 0..255" in started.stderr, started.stderr
    assert "if-up.d/pycarp: eth0: pycarp did not start for ucarp-vid 7" in started.stderr
    assert "Traceback" not in started.stderr
    assert not net.pidfile(7).exists()
    assert not control_socket_of(a, 7).exists()
    listed = pycarp_cli(a, "status", "--json")
    assert listed.stdout.strip() in ("", "[]"), listed
