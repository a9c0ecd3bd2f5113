"""The driver sends a unicast host's advertisement to each peer through the routed socket."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address

from pycarp.core import packet
from pycarp.core.actions import State
from pycarp.core.node import Node
from pycarp.platform.base import InterfaceInfo
from pycarp.runtime.driver import Driver, Port
from tests.runtime.test_driver import MAC, FakeReceiver, FakeSender, RecordingJobs, config

PEERS = (IPv4Address("198.51.100.224"), IPv4Address("203.0.113.7"))


class FakeRouted:
    """A UnicastSender; fails for the addresses in `unreachable`."""

    def __init__(self, unreachable: tuple[IPv4Address, ...] = ()) -> None:
        self.unreachable = unreachable
        self.sent: list[tuple[IPv4Address, bytes]] = []

    def send_to(self, datagram: bytes, address: IPv4Address) -> None:
        if address in self.unreachable:
            raise OSError(113, "No route to host")
        self.sent.append((address, datagram))

    def close(self) -> None:
        pass


async def run(routed: FakeRouted, seconds: float = 0.4) -> tuple[Node, FakeSender]:
    node = Node(
        [config(peers=PEERS, upscript=None, downscript=None, plumb=False)], counter=lambda: 0
    )
    receiver, sender = FakeReceiver(), FakeSender()
    try:
        port = Port(InterfaceInfo("eth0", 2, MAC, True), {4: receiver}, sender)
        driver = Driver(node, {"eth0": port}, RecordingJobs())
        driver.unicast = routed
        driver.start()
        await asyncio.sleep(seconds)
        driver.stop()
    finally:
        receiver.close()
    return node, sender


async def test_each_advertisement_goes_to_every_peer_and_none_to_the_group() -> None:
    routed = FakeRouted()
    node, sender = await run(routed)
    host = next(iter(node.hosts.values()))
    assert host.state is State.MASTER and sender.adverts() == []
    assert {address for address, _ in routed.sent} == set(PEERS)
    for address, raw in routed.sent:
        assert packet.parse_ipv4(raw)[0].dst == address
    assert host.advskew == 13  # sent: no send errors counted


async def test_one_peer_unreachable_is_not_a_failed_advertisement() -> None:
    routed = FakeRouted(unreachable=PEERS[:1])
    node, _ = await run(routed)
    host = next(iter(node.hosts.values()))
    assert {address for address, _ in routed.sent} == {PEERS[1]}
    assert host.advskew == 13


async def test_no_peer_reachable_holds_the_host_backup() -> None:
    routed = FakeRouted(unreachable=PEERS)
    node, _ = await run(routed, seconds=1.0)
    host = next(iter(node.hosts.values()))
    assert routed.sent == [] and host.state is State.BACKUP and host.silent
    assert host.no_peer.fault == "198.51.100.224: No route to host; 203.0.113.7: No route to host"
