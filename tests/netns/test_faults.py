"""Faults, end to end, with the defaults an operator gets (issue 10).

A partition and its heal, an interface set down inside the master's own
namespace, a master SIGKILLed with its address plumbed and restarted, ARP
requests for the address seen by backups, and wall-clock steps on the backup.
The winner of every election here is `a` (advskew 0; `b` has 50), so the
host that must end up MASTER is always known.
"""

from __future__ import annotations

import glob
import os
import select
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemon, Daemons, Peer, TomlDaemon, VHost
from tests.netns.observe import holds, neighbour_mac, ping_within, vip_entries

pytestmark = pytest.mark.netns

VHID = 90
VIP = "198.51.100.90"
PASSWORD = "faults"
VHOSTS = [VHost(VHID, (f"{VIP}/32",))]
ELECTION = 6.0  # seconds: a fresh host listens 3 s, then takes over
TAKEOVER = 6.0  # seconds: b's master-down interval is 3 + 50/256 s
# After a heal the winner's next advertisement (every 1 s) makes the loser yield, and the
# loser's last advertisement makes the winner re-announce: one interval, plus 0.5 s of
# margin for the bridge, the scripts and this test's polling.
HEAL = 1.5
STABLE = 4.0  # seconds: longer than a master-down interval
ETH_P_ARP = 0x0806


def hosts(lab: Lab) -> tuple[Host, Host, Host]:
    """client, a (the winner), b."""
    ips = ("198.51.100.10", "198.51.100.11", "198.51.100.12")
    client, a, b = (lab.add_host(r, ip) for r, ip in zip(("client", "a", "b"), ips, strict=True))
    return client, a, b


def pycarp_pair(
    daemons: Daemons, a: Host, b: Host, *, faked_as: tuple[Path, bool] | None = None
) -> tuple[TomlDaemon, TomlDaemon]:
    """pycarp (TOML, built-in plumbing) on a as MASTER and on b as its BACKUP.

    faked_as: (offset file, monotonic too) to run b under libfaketime (see faked()).
    """
    first = daemons.toml(a, VHOSTS, password=PASSWORD).start()
    first.wait_state(VHID, "MASTER", ELECTION)
    second = daemons.toml(b, [VHost(VHID, (f"{VIP}/32",), advskew=50)], password=PASSWORD)
    if faked_as is not None:
        faked(second, faked_as[0], monotonic=faked_as[1])
    second.start().wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["master"] == a.ip, 3.0)
    return first, second


def is_master(daemon: Daemon) -> bool:
    """pycarp with a TOML file: its status; ucarp or a drop-in: its last script call."""
    if isinstance(daemon, TomlDaemon):
        hosts = daemon.try_status() or []
        return any(h["vhid"] == VHID and h["state"] == "MASTER" for h in hosts)
    assert isinstance(daemon, Peer)
    return daemon.is_master()


def vip_on(host: Host) -> bool:
    return bool(vip_entries(host, [f"{VIP}/32"]))


def only_a(a: Daemon, b: Daemon) -> bool:
    """a is MASTER with the address, b is not MASTER and has no address."""
    return is_master(a) and not is_master(b) and vip_on(a.host) and not vip_on(b.host)


def only_b(a: Daemon, b: Daemon) -> bool:
    return only_a(b, a)


def arp_repliers(client: Host, ip: str, *, tries: int = 5, wait: float = 0.3) -> list[str]:
    """The sender MAC of every ARP reply for ip to `tries` broadcast requests from the client.

    A raw AF_PACKET socket in the client's namespace, so that the kernel's
    neighbour cache (which keeps only one answer) hides nothing.
    """
    mac = bytes.fromhex(client.mac().replace(":", ""))
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)  # Ethernet, IPv4, request
    request = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp
    request += mac + socket.inet_aton(client.ip) + b"\0" * 6 + socket.inet_aton(ip)
    replies: list[str] = []
    with client.enter():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    with sock:
        sock.bind((client.ifname, ETH_P_ARP))
        for _ in range(tries):
            sock.send(request)
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                frame = sock.recv(128)
                op, sender = struct.unpack("!H", frame[20:22])[0], frame[28:32]
                if op == 2 and sender == socket.inet_aton(ip):
                    replies.append(frame[22:28].hex(":"))
    return replies


# --- 1. partition and heal ---------------------------------------------------------------


@pytest.mark.parametrize("loser_impl", ["pycarp", "ucarp"])
def test_after_a_partition_heals_one_master_holds_the_address_and_the_client_follows(
    lab: Lab, daemons: Daemons, loser_impl: str
) -> None:
    client, a_host, b_host = hosts(lab)
    a = daemons.toml(a_host, VHOSTS, password=PASSWORD).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b: Daemon
    if loser_impl == "pycarp":
        b = daemons.toml(b_host, [VHost(VHID, (f"{VIP}/32",), advskew=50)], password=PASSWORD)
    else:  # the real ucarp, plumbing by its scripts
        b = daemons.peer(b_host, "ucarp", vhid=VHID, password=PASSWORD, vip=VIP, advskew=50)
    b.start()
    assert holds(lambda: not is_master(b), 4.0), b.describe()
    assert ping_within(client, VIP), daemons.describe()
    assert neighbour_mac(client, VIP) == a_host.mac().lower(), daemons.describe()

    a_host.cut()  # a keeps its carrier but hears nobody, and nobody hears it
    assert wait_until(lambda: is_master(b), TAKEOVER), b.describe()
    assert is_master(a) and vip_on(a_host) and vip_on(b_host), daemons.describe()
    assert ping_within(client, VIP), daemons.describe()  # now b answers
    assert neighbour_mac(client, VIP) == b_host.mac().lower(), daemons.describe()

    healed_at = time.monotonic()
    a_host.uncut()

    def settled() -> bool:
        return only_a(a, b) and neighbour_mac(client, VIP) == a_host.mac().lower()

    settled_in_time = wait_until(settled, HEAL, interval=0.01)
    took = time.monotonic() - healed_at
    assert settled_in_time, f"not settled {took:.2f} s after the heal\n{daemons.describe()}"
    assert holds(settled, STABLE), daemons.describe()
    assert set(arp_repliers(client, VIP)) == {a_host.mac().lower()}, daemons.describe()
    assert ping_within(client, VIP), daemons.describe()


# --- 2. the interface set down in the master's namespace ---------------------------------


def test_an_interface_set_down_hands_over_and_one_master_remains_after_it_is_up(
    lab: Lab, daemons: Daemons
) -> None:
    client, a_host, b_host = hosts(lab)
    a, b = pycarp_pair(daemons, a_host, b_host)

    a_host.run("ip", "link", "set", "dev", a_host.ifname, "down")
    a.wait_state(VHID, "BACKUP", 3.0)
    b.wait_state(VHID, "MASTER", TAKEOVER)
    assert wait_until(lambda: not vip_on(a_host) and vip_on(b_host), 3.0), daemons.describe()
    assert "no carrier" in a.log(), a.describe()
    assert ping_within(client, VIP), daemons.describe()

    a_host.run("ip", "link", "set", "dev", a_host.ifname, "up")
    a_host.wait_running(True)
    # a (no preempt) hears b within its master-down interval and stays BACKUP.
    assert holds(lambda: only_b(a, b), STABLE), daemons.describe()
    assert a.status()[VHID]["master"] == b_host.ip, a.describe()
    assert ping_within(client, VIP), daemons.describe()


# --- 3. SIGKILL with the address plumbed, and a restart -----------------------------------


def test_a_master_killed_with_its_address_plumbed_restarts_clean(
    lab: Lab, daemons: Daemons
) -> None:
    client, a_host, b_host = hosts(lab)
    a, b = pycarp_pair(daemons, a_host, b_host)
    assert wait_until(lambda: vip_on(a_host), 3.0), a.describe()

    a.kill()  # no hand-over, no cleanup: the address stays on a, and its link is up
    b.wait_state(VHID, "MASTER", TAKEOVER)
    assert vip_on(a_host) and vip_on(b_host), daemons.describe()

    a.start()  # the same file and control socket (a stale one, now)
    a.wait_state(VHID, "BACKUP", 3.0)
    assert not vip_on(a_host), a.describe()
    assert "already configured while not MASTER" in a.log(), a.describe()
    assert holds(lambda: only_b(a, b), STABLE), daemons.describe()
    assert set(arp_repliers(client, VIP)) == {b_host.mac().lower()}, daemons.describe()


# --- 4. a backup never answers ARP for the address ---------------------------------------


def test_only_the_master_answers_arp_for_the_address(lab: Lab, daemons: Daemons) -> None:
    client, a_host, b_host = hosts(lab)
    pycarp_pair(daemons, a_host, b_host)
    replies = arp_repliers(client, VIP, tries=10)
    assert len(replies) >= 10 and set(replies) == {a_host.mac().lower()}, replies
    assert arp_repliers(client, b_host.ip, tries=1) == [b_host.mac().lower()]  # the probe works


# --- 5. clock steps on the backup ----------------------------------------------------------

# (what the offset file says, the same in seconds) for each step, in order.
STEPS = [("+1h", 3600), ("-1h", -3600), ("+1d", 86400), ("+0", 0)]


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    found += sorted(glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is not installed (apt-get install faketime)", pytrace=False)
    return found[0]


def faked(daemon: TomlDaemon, offsets: Path, *, monotonic: bool) -> None:
    """Run daemon under libfaketime, its clock offset read from the file at every call."""
    offsets.write_text("+0\n")
    daemon.env = dict(
        daemon.env or os.environ,
        LD_PRELOAD=libfaketime(),
        FAKETIME_TIMESTAMP_FILE=str(offsets),
        FAKETIME_NO_CACHE="1",  # a changed file takes effect at once
    )
    if not monotonic:
        daemon.env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"


def step(offsets: Path, offset: str) -> None:
    """Move the faked clock to offset from the real one (atomically: never half a file)."""
    tmp = offsets.with_suffix(".tmp")
    tmp.write_text(offset + "\n")
    tmp.replace(offsets)


def logs_at(daemon: TomlDaemon, shift: int) -> bool:
    """Whether the daemon's log stamps show a wall clock `shift` seconds off the real one."""
    seen = len(daemon.log())
    hours = {time.strftime("%Y-%m-%dT%H", time.localtime(time.time() + shift + d)) for d in (-5, 5)}
    daemon.signal(signal.SIGUSR1)  # one "<state> on eth0 id 90 ..." line, stamped
    return wait_until(
        lambda: any(
            line[:13] in hours and " on eth0 id " in line
            for line in daemon.log()[seen:].splitlines()
        ),
        3.0,
    )


def test_wall_clock_steps_on_the_backup_cause_no_takeover(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    """CLOCK_REALTIME only: libfaketime shifts time(), gettimeofday() and
    clock_gettime(CLOCK_REALTIME) of the backup's process, and leaves
    CLOCK_MONOTONIC (which every pycarp timer uses) alone. A time namespace
    cannot do this: it offsets the monotonic and boot-time clocks only. The
    stamps of the backup's log show that each step reached it. (libfaketime
    0.9.10 in this mode breaks clock_nanosleep, so Python's time.sleep();
    the daemon never calls it.)
    """
    _, a_host, b_host = hosts(lab)
    offsets = tmp_path / "faketime"
    a, b = pycarp_pair(daemons, a_host, b_host, faked_as=(offsets, False))

    for offset, shift in STEPS:
        step(offsets, offset)
        assert logs_at(b, shift), f"{offset}: the step did not reach the daemon\n{b.describe()}"
        assert holds(lambda: only_a(a, b), STABLE), f"after {offset}\n{daemons.describe()}"
    assert "MASTER" not in b.log(), b.describe()  # it never even claimed the address
    assert a.status()[VHID]["for"] > len(STEPS) * STABLE, a.describe()


def test_a_monotonic_step_forward_fires_the_backups_timers_at_once(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    """What libfaketime's default (it also shifts CLOCK_MONOTONIC) does.

    A monotonic clock never steps on a real machine; this records what
    happens if one did. A step forward makes every timer due: the backup's
    master-down timer fires at its next wake-up (unless an advertisement is
    handled first), it claims MASTER, hears the preferred master within an
    advertisement interval and is BACKUP again; the master never yields. (A
    step back would postpone the backup's timers by the step.)
    """
    _, a_host, b_host = hosts(lab)
    offsets = tmp_path / "faketime"
    a, b = pycarp_pair(daemons, a_host, b_host, faked_as=(offsets, True))

    step(offsets, "+1h")
    # SIGUSR1 wakes its event loop: every timer is due then, whatever else is ready.
    assert logs_at(b, 3600), f"the step did not reach the daemon\n{b.describe()}"
    assert holds(lambda: is_master(a), STABLE), daemons.describe()
    b.wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["master"] == a_host.ip, 3.0)
    assert not vip_on(b_host), b.describe()
    assert b.log().count("BACKUP -> MASTER") <= 1, b.describe()  # one claim at most
    assert "MASTER -> BACKUP" not in a.log(), a.describe()
