"""Node: the checks on received datagrams, demux, drop counters, deadlines."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pycarp.core import auth, packet
from pycarp.core.actions import (
    HandOverTimedOut,
    HostKey,
    Link,
    PacketDropped,
    Reason,
    RemoveAddresses,
    RunScript,
    SendAdvertisement,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError, DropReason
from pycarp.core.node import HANDOVER_SLACK, Node
from pycarp.core.packet import Advertisement
from pycarp.core.state import VirtualHost
from tests.helpers import (
    LINK,
    MAC,
    datagram,
    links,
    make_advert,
    make_config,
    of_type,
    scripted,
)

OURS = IPv4Address("192.0.2.1")
PEER = IPv4Address("192.0.2.2")
V1 = make_config(vhid=1, password=b"one", addresses=("192.0.2.51",))
V2 = make_config(vhid=2, password=b"two", addresses=("192.0.2.52",), advskew=50)
V1_ETH1 = make_config(
    interface="eth1", vhid=1, srcip="198.51.100.1", password=b"one", addresses=("192.0.2.51",)
)


def _corrupt(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    out[offset] = value
    return bytes(out)


GOOD = datagram(make_advert(V1))


def started(*configs: VirtualHostConfig) -> Node:
    node = Node(configs or (V1, V2), counter=lambda: 0)
    node.start(now=0.0, links=links)
    return node


def received(node: Node, key: tuple[str, int]) -> int:
    return node.hosts[HostKey(*key)].adverts_received


def test_demux_by_vhid() -> None:
    node = started()
    assert node.receive(datagram(make_advert(V2)), interface="eth0", now=1.0) == []
    assert (received(node, ("eth0", 1)), received(node, ("eth0", 2))) == (0, 1)
    assert node.hosts[HostKey("eth0", 2)].next_deadline() == pytest.approx(1 + 3 + 50 / 256)
    node.receive(datagram(make_advert(V1)), interface="eth0", now=1.0)
    assert (received(node, ("eth0", 1)), received(node, ("eth0", 2))) == (1, 1)


def test_demux_by_interface() -> None:
    node = started(V1, V1_ETH1)
    node.receive(datagram(make_advert(V1)), interface="eth1", now=1.0)
    assert (received(node, ("eth0", 1)), received(node, ("eth1", 1))) == (0, 1)
    assert node.interfaces == {"eth0", "eth1"}


def test_unknown_interface_is_ignored() -> None:
    node = started()
    assert node.receive(datagram(make_advert(V1)), interface="eth9", now=1.0) == []
    assert received(node, ("eth0", 1)) == 0


@pytest.mark.parametrize(
    "data",
    [
        datagram(make_advert(make_config(vhid=3))),  # a vhid we do not serve
        datagram(make_advert(V1), dst="224.0.0.19"),  # our vhid in another group
        _corrupt(GOOD, 9, 17),  # UDP, not CARP
    ],
    ids=["other-vhid", "other-group", "not-carp"],
)  # fmt: skip
def test_not_ours_is_ignored_without_counting(data: bytes) -> None:
    node = started()
    assert node.receive(data, interface="eth0", now=1.0) == []
    assert sum(node.drops.values()) == 0
    assert all(received(node, k) == 0 for k in node.hosts)


def test_own_source_is_ignored_before_any_check() -> None:
    node = started()
    bad = datagram(make_advert(V1, digest=bytes(20)), src=OURS, ttl=1)
    assert node.receive(bad, interface="eth0", now=1.0) == []
    assert node.receive(datagram(make_advert(V1), src=OURS), interface="eth0", now=1.0) == []
    assert sum(node.drops.values()) == 0 and received(node, ("eth0", 1)) == 0


def test_own_source_means_the_srcip_of_a_host_on_that_interface() -> None:
    node = started(V1, V1_ETH1)
    # eth1's srcip arriving on eth0 is a peer as far as eth0 is concerned.
    node.receive(datagram(make_advert(V1), src="198.51.100.1"), interface="eth0", now=1.0)
    assert received(node, ("eth0", 1)) == 1


def _with_version(version: int) -> bytes:
    """V1's advertisement claiming another version, with a correct checksum."""
    raw = bytearray(make_advert(V1).encode())
    raw[0] = version << 4 | 1
    raw[6:8] = b"\0\0"
    raw[6:8] = packet.checksum(bytes(raw)).to_bytes(2, "big")
    return bytes(raw)


@pytest.mark.parametrize(
    ("data", "reason", "per_host"),
    [
        (datagram(make_advert(V1), ttl=254), DropReason.BAD_TTL, False),
        (datagram(make_advert(V1), ttl=1), DropReason.BAD_TTL, False),
        (datagram(_with_version(4)), DropReason.BAD_VERSION, False),
        (_corrupt(GOOD, 20 + 2, 0x77), DropReason.BAD_CHECKSUM, True),  # advskew, sum stale
        (datagram(make_advert(V1).encode()[:30]), DropReason.TOO_SHORT, True),
        (datagram(make_advert(V1, digest=bytes(20))), DropReason.BAD_DIGEST, True),
        (datagram(make_advert(make_config(vhid=1, password=b"wrong"))),
         DropReason.BAD_DIGEST, True),
        (datagram(make_advert(make_config(vhid=1, password=b"one", addresses=("192.0.2.99",)))),
         DropReason.BAD_DIGEST, True),
    ],
    ids=["ttl-254", "ttl-1", "version", "checksum", "short", "digest", "password", "vip"],
)  # fmt: skip
def test_bad_packets_are_counted(data: bytes, reason: DropReason, per_host: bool) -> None:
    node = started()
    actions = node.receive(data, interface="eth0", now=1.0)
    key = HostKey("eth0", 1) if per_host else None
    assert len(actions) == 1
    (drop,) = actions
    assert isinstance(drop, PacketDropped)
    assert (drop.key, drop.reason, drop.source) == (key, reason, PEER)
    assert drop.detail
    assert node.drops == {reason: 1}
    expected_host = {reason: 1} if per_host else {}
    assert node.host_drops[HostKey("eth0", 1)] == expected_host
    assert node.host_drops[HostKey("eth0", 2)] == {}
    assert received(node, ("eth0", 1)) == 0
    # The master-down timer was not re-armed by the bad packet.
    assert node.hosts[HostKey("eth0", 1)].next_deadline() == 3.0


def test_drops_accumulate() -> None:
    node = started()
    for _ in range(3):
        node.receive(datagram(make_advert(V1, digest=bytes(20))), interface="eth0", now=1.0)
    node.receive(datagram(make_advert(V1), ttl=64), interface="eth0", now=1.0)
    assert node.drops == {DropReason.BAD_DIGEST: 3, DropReason.BAD_TTL: 1}
    assert node.host_drops[HostKey("eth0", 1)] == {DropReason.BAD_DIGEST: 3}


def test_unparseable_ip_is_dropped_without_a_source() -> None:
    node = started()
    (drop,) = node.receive(b"\x45\x00", interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped)
    assert (drop.key, drop.reason, drop.source) == (None, DropReason.TOO_SHORT, None)


def test_checks_run_in_ucarp_order() -> None:
    # Bad TTL and bad version: TTL is checked first.
    node = started()
    (drop,) = node.receive(datagram(_with_version(4), ttl=64), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_TTL
    # Bad version and bad checksum: version first.
    raw = bytearray(make_advert(V1).encode())
    raw[0] = 0x41
    (drop,) = node.receive(datagram(bytes(raw)), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_VERSION


def test_vrrp3_on_a_carp_vhid_is_another_protocol_not_a_drop() -> None:
    """keepalived on the same number is a neighbour, as another vhid is."""
    node = started()
    assert node.receive(datagram(_with_version(3)), interface="eth0", now=1.0) == []
    assert node.drops == {}


def test_a_valid_advert_drives_the_state_machine() -> None:
    node = started()
    lazy = make_advert(V1, advbase=255, advskew=255)
    actions = node.receive(datagram(lazy), interface="eth0", now=1.0)
    assert node.hosts[HostKey("eth0", 1)].state is State.MASTER
    assert node.hosts[HostKey("eth0", 2)].state is State.BACKUP
    assert actions and all(a.key == HostKey("eth0", 1) for a in actions)


def test_openbsd_demote_field_is_accepted() -> None:
    node = started()
    advert = make_advert(V1, demote=3)
    node.receive(datagram(advert), interface="eth0", now=1.0)
    assert received(node, ("eth0", 1)) == 1


def test_next_deadline_is_the_earliest() -> None:
    node = Node([V1, V2], counter=lambda: 0)
    assert node.next_deadline() is None
    node.start(now=0.0, links=links)
    assert node.next_deadline() == 3.0  # V1: 3.0; V2: 3 + 50/256
    node.on_timer(now=3.0)
    # V1 is master (next advert at 4.0); V2 still waits for its master-down.
    assert node.hosts[HostKey("eth0", 1)].state is State.MASTER
    assert node.next_deadline() == pytest.approx(3 + 50 / 256)
    node.on_timer(now=3 + 50 / 256)
    assert node.next_deadline() == 4.0
    node.shutdown(now=5.0, graceful=False)
    assert node.next_deadline() is None


def test_each_host_draws_its_own_counter() -> None:
    draws = iter([100, 200])
    node = Node([V1, V2], counter=lambda: next(draws))
    node.start(now=0.0, links=links)
    actions = node.on_timer(now=10.0)
    counters = {a.key.vhid: a.advert.counter for a in of_type(actions, SendAdvertisement)}
    assert counters == {1: 101, 2: 201}


def test_duplicate_vhid_on_one_interface_is_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        Node([V1, make_config(vhid=1, password=b"other")], counter=lambda: 0)
    Node([V1, V1_ETH1], counter=lambda: 0)  # the same vhid on two interfaces is fine


def test_link_changes_reach_only_that_interface() -> None:
    node = started(V1, V1_ETH1)
    node.link_changed("eth1", up=False, now=1.0)
    assert node.hosts[HostKey("eth0", 1)].link_up
    assert not node.hosts[HostKey("eth1", 1)].link_up
    assert node.next_deadline() == 3.0


def test_start_asks_for_each_interface_link() -> None:
    node = Node([V1, V1_ETH1], counter=lambda: 0)
    node.start(now=0.0, links=lambda name: Link(MAC, up=name == "eth0"))
    assert node.hosts[HostKey("eth0", 1)].next_deadline() == 3.0
    assert node.hosts[HostKey("eth1", 1)].next_deadline() is None


def test_force_backup_by_vhid() -> None:
    node = started()
    node.on_timer(now=10.0)  # both masters
    assert node.force_backup(now=11.0, vhid=2)
    states = {k.vhid: h.state for k, h in node.hosts.items()}
    assert states == {1: State.MASTER, 2: State.BACKUP}
    node.force_backup(now=11.0)
    assert {h.state for h in node.hosts.values()} == {State.BACKUP}


def test_send_result_goes_to_its_host() -> None:
    node = started()
    for _ in range(3):
        node.send_result(HostKey("eth0", 2), ok=False, now=1.0)
    assert node.hosts[HostKey("eth0", 2)].advskew == 240
    assert node.hosts[HostKey("eth0", 1)].advskew == 0


def test_digest_covers_all_addresses_of_a_host() -> None:
    multi = make_config(vhid=5, addresses=("192.0.2.61", "192.0.2.60"))
    node = started(multi)
    good = Advertisement(
        vhid=5,
        advbase=1,
        advskew=0,
        counter=9,
        digest=auth.digest(multi.password, 5, sorted(multi.addresses), 9),
    )
    assert node.receive(datagram(good), interface="eth0", now=1.0) == []
    assert received(node, ("eth0", 5)) == 1


def test_host_key_reads_well_in_logs() -> None:
    assert str(HostKey("eth0", 7)) == "eth0/vhid 7"


@pytest.mark.parametrize(
    "payload",
    [
        _corrupt(make_advert(make_config(vhid=3)).encode(), 2, 0x77),  # bad checksum
        _corrupt(make_advert(make_config(vhid=3)).encode(), 0, 0x22),  # type 2
        # A VRRPv2 advertisement (also version 2, type 1, protocol 112, 224.0.0.18)
        # for VRID 9 with six addresses: its first 36 bytes are no valid CARP header.
        bytes.fromhex("2109 6406 0101 0000") + bytes(range(24)) + bytes(8),
    ],
    ids=["checksum", "type", "vrrp"],
)
def test_other_vhids_are_ignored_before_the_checksum(payload: bytes) -> None:
    """ucarp: TTL, version, then vhid and group, and only then the checksum."""
    node = started()
    assert node.receive(datagram(payload), interface="eth0", now=1.0) == []
    assert sum(node.drops.values()) == 0


def test_other_groups_are_ignored_before_the_checksum() -> None:
    node = started()
    bad = _corrupt(make_advert(V1).encode(), 2, 0x77)
    assert node.receive(datagram(bad, dst="224.0.0.19"), interface="eth0", now=1.0) == []
    assert sum(node.drops.values()) == 0


def test_checksum_drops_for_our_vhid_are_counted_per_host() -> None:
    node = started()
    bad = _corrupt(make_advert(V1).encode(), 2, 0x77)
    (drop,) = node.receive(datagram(bad), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_CHECKSUM
    assert drop.key == HostKey("eth0", 1)
    assert node.host_drops[HostKey("eth0", 1)] == {DropReason.BAD_CHECKSUM: 1}


# -- reload: add and remove hosts --------------------------------------------


def test_add_starts_a_host_and_refuses_a_duplicate() -> None:
    node = started(V1)
    actions = node.add(V2, counter=9, now=1.0, link=LINK)
    assert node.hosts[HostKey("eth0", 2)].state is State.BACKUP
    assert actions and all(a.key == HostKey("eth0", 2) for a in actions)
    with pytest.raises(ConfigError):
        node.add(V2, counter=9, now=1.0, link=LINK)


def test_remove_stops_a_master_at_once_with_complete_final_actions() -> None:
    removed = scripted(
        vhid=1, password=b"one", addresses=("192.0.2.51",), plumb=True, shutdown=True
    )
    node = started(removed, V2)
    key = HostKey("eth0", 1)
    host = node.hosts[key]
    node.on_timer(now=host.next_deadline() or 0.0)
    assert host.state is State.MASTER
    actions = node.remove(key, now=10.0)
    assert key not in node.hosts and key not in node.host_drops
    assert [a.new for a in of_type(actions, StateChanged)] == [State.INIT]
    # What is left to do says all the runtime needs: the host is gone from the node.
    address = IPv4Address("192.0.2.51")
    assert of_type(actions, RemoveAddresses) == [RemoveAddresses(key, ((address, 32),))]
    (down,) = of_type(actions, RunScript)
    assert (down.which, down.commands) == ("down", ((removed.downscript, "eth0", str(address)),))
    assert node.send_result(key, ok=False, now=10.0) == []  # late outcomes are dropped
    assert node.addresses_result(key, ok=True, now=10.0) == []
    assert node.stopped is False  # V2 still runs


# -- graceful stop: the hand-over's deadline is the node's ---------------------


def test_graceful_stop_gives_up_on_the_hand_over_one_second_after_master_down() -> None:
    node = started(V1, V2)
    node.on_timer(now=10.0)  # both masters
    leaving = node.shutdown(now=11.0)
    assert not of_type(leaving, StateChanged)  # both hand over first
    longest = max(h.master_down_interval.total for h in node.hosts.values())
    assert longest == pytest.approx(3 + 50 / 256)
    give_up = 11.0 + longest + HANDOVER_SLACK
    # Each host stops by itself after its master-down interval; the node's own
    # deadline comes after them and is gone once every host has stopped.
    while (deadline := node.next_deadline()) is not None and not node.stopped:
        assert deadline < give_up
        assert not of_type(node.on_timer(now=deadline), HandOverTimedOut)
    assert node.stopped and node.next_deadline() is None


class Stuck(VirtualHost):
    """A host that never asks for its timer, so its hand-over never ends by itself."""

    def next_deadline(self) -> float | None:
        return None


def test_a_hand_over_that_does_not_end_is_cut_short_by_the_node() -> None:
    node = Node([], counter=lambda: 0)
    host = Stuck(V1, counter=0)
    node.insert(host)
    node.start(now=0.0, links=links)
    host.on_timer(now=10.0)
    assert host.state is State.MASTER
    assert node.shutdown(now=11.0) and host.leaving
    give_up = 11.0 + host.master_down_interval.total + HANDOVER_SLACK
    assert node.next_deadline() == pytest.approx(give_up)  # the node's own, the only one
    assert node.on_timer(now=give_up - 0.001) == []
    actions = node.on_timer(now=give_up)
    assert isinstance(actions[0], HandOverTimedOut)
    assert of_type(actions, StateChanged) == [
        StateChanged(host.key, State.MASTER, State.INIT, Reason.SHUTDOWN)
    ]
    assert node.stopped and node.next_deadline() is None


def test_a_hard_stop_leaves_no_hand_over_deadline() -> None:
    node = started(V1)
    node.on_timer(now=10.0)
    node.shutdown(now=11.0)
    assert node.next_deadline() is not None
    node.shutdown(now=11.5, graceful=False)
    assert node.stopped and node.next_deadline() is None
