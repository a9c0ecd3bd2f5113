"""The driver with fake adapters on a real event loop (short intervals, no root)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address

import pytest

from pycarp.core import auth, packet
from pycarp.core.actions import HostKey
from pycarp.core.config import VirtualHostConfig
from pycarp.core.node import HANDOVER_SLACK, Node
from pycarp.core.state import VirtualHost
from pycarp.platform.base import AddressError, InterfaceInfo
from pycarp.runtime.driver import Driver, Port
from pycarp.runtime.scripts import SerialJobs

MAC = bytes.fromhex("020000000001")
VIP = IPv4Address("198.51.100.200")
ME = IPv4Address("198.51.100.201")
PEER = IPv4Address("198.51.100.202")


class FakeReceiver:
    """A socketpair stands in for the raw socket, so the loop really waits on it."""

    def __init__(self) -> None:
        self.inside, self.outside = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.inside.setblocking(False)

    def fileno(self) -> int:
        return self.inside.fileno()

    def receive(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.inside.recv(2048))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.inside.close()
        self.outside.close()


class FakeSender:
    def __init__(self, fail: int = 0) -> None:
        self.frames: list[bytes] = []
        self.fail = fail

    def transmit(self, frame: packet.Frame) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError(100, "Network is down")
        self.frames.append(frame.encode())  # as the Linux packet socket writes it

    def close(self) -> None:
        pass

    def adverts(self) -> list[tuple[bytes, packet.IPv4Header, packet.Advertisement]]:
        out = []
        for frame in self.frames:
            if frame[12:14] == b"\x08\x00":
                header, payload = packet.parse_ipv4(frame[14:])
                out.append((frame[:6], header, packet.decode(payload)))
        return out

    def arps(self) -> list[bytes]:
        return [f for f in self.frames if f[12:14] == b"\x08\x06"]


class RecordingJobs(SerialJobs):
    """Real per-host job ordering; scripts are recorded instead of run."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[list[str]] = []

    def run(self, key: HostKey, argv: Sequence[str], *, timeout: float = 0) -> None:
        args = list(argv)

        async def record() -> None:
            self.scripts.append(args)

        self.submit(key, record)


class FakeAddresses:
    def __init__(self, log: list[str], *, failing_adds: int = 0) -> None:
        self.log = log
        self.failing_adds = failing_adds

    async def add(self, interface: str, networks: Sequence[tuple[IPv4Address, int]]) -> None:
        if self.failing_adds:
            self.failing_adds -= 1
            self.log.append("add failed")
            raise AddressError(f"{interface}: no such interface")
        self.log.append("add " + " ".join(f"{a}/{p}" for a, p in networks))

    async def remove(self, interface: str, networks: Sequence[tuple[IPv4Address, int]]) -> None:
        self.log.append("remove " + " ".join(f"{a}/{p}" for a, p in networks))

    async def present(self, interface: str) -> set[IPv4Address]:
        return set()

    async def close(self) -> None:
        pass


def config(**kw: object) -> VirtualHostConfig:
    base: dict[str, object] = dict(
        interface="eth0",
        srcip=ME,
        vhid=7,
        addresses=(VIP,),
        password=b"secret",
        advbase=0,
        advskew=13,  # ~50 ms: keeps the test short
        upscript="/bin/up",
        downscript="/bin/down",
    )
    base.update(kw)
    return VirtualHostConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    r = FakeReceiver()
    yield r
    r.close()


async def run_driver(
    cfg: VirtualHostConfig,
    receiver: FakeReceiver,
    sender: FakeSender,
    seconds: float,
    inject: list[tuple[float, bytes]] | None = None,
    addresses: FakeAddresses | None = None,
) -> tuple[Node, list[list[str]]]:
    node = Node([cfg], counter=lambda: 1 << 40)
    jobs = RecordingJobs()
    port = Port(InterfaceInfo("eth0", 2, MAC, True), {4: receiver}, sender)
    driver = Driver(node, {"eth0": port}, jobs, addresses=addresses)
    driver.start()
    loop = asyncio.get_running_loop()
    for at, data in inject or []:
        loop.call_later(at, receiver.outside.send, data)
    await asyncio.sleep(seconds)
    driver.stop()
    await jobs.wait(1.0)
    return node, jobs.scripts


def peer_advert(
    advbase: int,
    advskew: int,
    *,
    password: bytes = b"secret",
    vips: Sequence[IPv4Address] = (VIP,),
) -> bytes:
    advert = packet.Advertisement(
        vhid=7,
        advbase=advbase,
        advskew=advskew,
        counter=5,
        digest=auth.digest(password, 7, vips, 5),
    )
    return packet.encode_ipv4(PEER, IPv4Address("224.0.0.18"), advert.encode(), ident=1)


async def test_lone_node_becomes_master_and_advertises(receiver: FakeReceiver) -> None:
    sender = FakeSender()
    node, scripts = await run_driver(config(), receiver, sender, 0.6)
    assert node.hosts[HostKey("eth0", 7)].state.value == "MASTER"
    assert scripts[0] == ["/bin/down", "eth0", str(VIP)]
    assert scripts[1] == ["/bin/up", "eth0", str(VIP)]
    adverts = sender.adverts()
    assert len(adverts) >= 3
    dst, header, advert = adverts[0]
    assert dst == packet.multicast_mac(IPv4Address("224.0.0.18"))
    assert (header.src, header.dst, header.ttl) == (ME, IPv4Address("224.0.0.18"), 255)
    assert auth.verify(b"secret", 7, [VIP], advert.counter, advert.digest)
    arp = sender.arps()[0]
    assert arp[:6] == packet.BROADCAST_MAC and arp[6:12] == MAC
    # the first ARP plus the delayed one two advertisements later
    assert len(sender.arps()) == 2


async def test_nomcast_sends_ethernet_broadcast(receiver: FakeReceiver) -> None:
    sender = FakeSender()
    await run_driver(config(nomcast=True), receiver, sender, 0.4)
    dst, header, _ = sender.adverts()[0]
    assert dst == packet.BROADCAST_MAC
    assert header.dst == IPv4Address("224.0.0.18")


async def test_xparam_is_passed_to_scripts(receiver: FakeReceiver) -> None:
    _, scripts = await run_driver(
        config(xparam="extra"), receiver, sender=FakeSender(), seconds=0.3
    )
    assert scripts[-1] == ["/bin/up", "eth0", str(VIP), "extra"]


async def test_failing_sends_raise_the_advertised_skew(receiver: FakeReceiver) -> None:
    sender = FakeSender(fail=5)  # the first ARP, three adverts, the delayed ARP
    await run_driver(config(), receiver, sender, 0.8)
    assert sender.adverts(), "sending resumed after the failures"
    assert sender.adverts()[0][2].advskew == 240


async def test_preferred_master_makes_us_step_down(receiver: FakeReceiver) -> None:
    sender = FakeSender()
    # we become master after ~150 ms; a faster master (advbase 0, skew 1) then shows up
    inject = [(0.3 + i * 0.01, peer_advert(0, 1)) for i in range(20)]
    node, scripts = await run_driver(config(), receiver, sender, 0.45, inject)
    assert node.hosts[HostKey("eth0", 7)].state.value == "BACKUP"
    assert scripts[-1][0] == "/bin/down"


async def test_bad_digest_is_counted_not_obeyed(receiver: FakeReceiver) -> None:
    sender = FakeSender()
    inject = [(0.3, peer_advert(0, 1, password=b"wrong"))]
    node, _ = await run_driver(config(), receiver, sender, 0.4, inject)
    assert node.hosts[HostKey("eth0", 7)].state.value == "MASTER"
    assert sum(node.drops.values()) == 1


async def test_plumbing_adds_on_master_and_removes_on_backup_before_scripts(
    receiver: FakeReceiver,
) -> None:
    log: list[str] = []
    cfg = config(addresses=(VIP, IPv4Address("198.51.100.210")), prefixes=(24, 32), plumb=True)
    inject = [(0.3 + i * 0.01, peer_advert(0, 1, vips=cfg.addresses)) for i in range(20)]
    _, scripts = await run_driver(cfg, receiver, FakeSender(), 0.45, inject, FakeAddresses(log))
    assert log == ["add 198.51.100.200/24 198.51.100.210/32",
                   "remove 198.51.100.200/24 198.51.100.210/32"]  # fmt: skip
    # scripts run once per address, each after the plumbing it follows
    assert [s[0] for s in scripts] == ["/bin/down"] * 2 + ["/bin/up"] * 2 + ["/bin/down"] * 2


async def test_no_plumbing_by_default_when_scripts_are_given(receiver: FakeReceiver) -> None:
    log: list[str] = []
    await run_driver(config(), receiver, FakeSender(), 0.3, addresses=FakeAddresses(log))
    assert log == []


async def test_virtual_mac_is_the_advertisements_source(receiver: FakeReceiver) -> None:
    sender = FakeSender()
    await run_driver(config(mac="ucarp"), receiver, sender, 0.3)
    advert_frames = [f for f in sender.frames if f[12:14] == b"\x08\x00"]
    assert advert_frames and all(f[6:12] == bytes.fromhex("00005e000007") for f in advert_frames)
    assert all(f[6:12] == MAC for f in sender.arps())  # ARP keeps the NIC's MAC, as ucarp


async def test_failed_plumbing_demotes_until_a_retry_succeeds(
    receiver: FakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pycarp.core.fault.RETRY_FIRST", 0.2)
    log: list[str] = []
    sender = FakeSender()
    cfg = config(upscript=None, downscript=None)  # built-in plumbing only
    node, _ = await run_driver(
        cfg, receiver, sender, 0.9, addresses=FakeAddresses(log, failing_adds=2)
    )
    assert log == ["add failed", "add failed", f"add {VIP}/32"]  # retried after 0.2 s, then 0.4 s
    host = node.hosts[HostKey("eth0", 7)]
    assert host.state.value == "MASTER" and host.fault is None
    skews = [(a.advbase, a.advskew) for _, _, a in sender.adverts()]
    assert (255, 255) in skews  # demoted while the addresses were missing
    assert skews[-1] == (0, 13)  # and advertising normally again once they were in place


class Stuck(VirtualHost):
    """A host that never asks for its timer: only the node's deadline ends its hand-over."""

    def next_deadline(self) -> float | None:
        return None


async def test_the_hand_over_deadline_is_the_cores_and_the_one_timer_keeps_it(
    receiver: FakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node([], counter=lambda: 1)
    host = Stuck(config(), counter=1)
    node.insert(host)
    port = Port(InterfaceInfo("eth0", 2, MAC, True), {4: receiver}, FakeSender())
    driver = Driver(node, {"eth0": port}, RecordingJobs())
    driver.start()
    driver.step(host.on_timer(now=driver.now() + 1))  # MASTER now
    assert host.state.value == "MASTER"
    loop = asyncio.get_running_loop()
    started = loop.time()
    driver.step(node.shutdown(now=driver.now()))
    assert host.leaving
    give_up = node.next_deadline()
    assert give_up == pytest.approx(
        started + host.master_down_interval.total + HANDOVER_SLACK, abs=0.01
    )
    with caplog.at_level(logging.ERROR, logger="pycarp"):
        while not node.stopped and loop.time() < give_up + 1:
            await asyncio.sleep(0.05)
    driver.stop()
    assert node.stopped
    assert loop.time() == pytest.approx(give_up, abs=0.2)
    assert "hand-over did not finish in time: stopping now" in caplog.text


async def test_a_graceful_stop_ends_when_the_core_says(receiver: FakeReceiver) -> None:
    """A lone master waits out one master-down interval, then its down script runs."""
    node = Node([config(shutdown=True)], counter=lambda: 1)
    jobs = RecordingJobs()
    port = Port(InterfaceInfo("eth0", 2, MAC, True), {4: receiver}, FakeSender())
    driver = Driver(node, {"eth0": port}, jobs)
    driver.start()
    await asyncio.sleep(0.3)
    (host,) = node.hosts.values()
    assert host.state.value == "MASTER"
    loop = asyncio.get_running_loop()
    started = loop.time()
    driver.step(node.shutdown(now=driver.now()))
    while not node.stopped and loop.time() < started + 2:
        await asyncio.sleep(0.01)
    stopped = loop.time()
    driver.stop()
    await jobs.wait(1.0)
    assert stopped - started == pytest.approx(host.master_down_interval.total, abs=0.05)
    assert jobs.scripts[-1] == ["/bin/down", "eth0", str(VIP)]


async def test_advertisements_waiting_in_the_socket_come_before_a_master_down(
    receiver: FakeReceiver,
) -> None:
    """A backup whose loop was held up past master-down reads what waits before it acts.

    The timer's callback runs as the loop runs it once it is due, here at once,
    with the master's advertisement already in the socket.
    """
    cfg = config(advskew=100)  # master-down: 3 x 100/256 s, about 1.17 s
    node = Node([cfg], counter=lambda: 1)
    port = Port(InterfaceInfo("eth0", 2, MAC, True), {4: receiver}, FakeSender())
    driver = Driver(node, {"eth0": port}, RecordingJobs())
    driver.start()
    (host,) = node.hosts.values()
    deadline = node.next_deadline()
    assert deadline is not None
    counter = 5
    advert = packet.Advertisement(
        vhid=7, advbase=0, advskew=10, counter=counter,
        digest=auth.digest(b"secret", 7, [VIP], counter),
    )  # fmt: skip
    group = IPv4Address("224.0.0.18")
    time.sleep(max(0.0, deadline - driver.now()) + 0.01)  # the loop is held up
    receiver.outside.send(packet.encode_ipv4(PEER, group, advert.encode(), ident=1))
    driver._on_timer(deadline)  # what the loop calls next: the timer was due first
    driver.stop()
    assert host.state.value == "BACKUP", host.reason
    assert host.adverts_received == 1 and host.last_peer is not None
    assert host.last_peer.address == PEER
