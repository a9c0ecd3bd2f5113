"""Fuzzing the receive path: whatever arrives is dropped with a reason, ignored or accepted.

Decoding raises nothing but PacketError; Node.receive raises nothing at all
(a PacketError becomes a PacketDropped). A valid datagram with any one byte
changed gets the one outcome its offset allows, the same on every node.
The budget is fixed: `max_examples` per target, no per-example deadline (a
loaded machine must not turn a slow example into a failure).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycarp.core import packet
from pycarp.core.actions import Notice, PacketDropped
from pycarp.core.errors import DropReason, PacketError
from pycarp.core.node import Node
from tests.helpers import datagram, links, make_advert, make_config

FUZZ = settings(max_examples=400, deadline=None)
V1 = make_config(vhid=1, password=b"one", addresses=("192.0.2.51",))
V2 = make_config(vhid=2, password=b"two", addresses=("192.0.2.52",), advskew=50)
GOOD = datagram(make_advert(V1))  # from 192.0.2.2 to 224.0.0.18, for V1
IP = packet.IP_HEADER_LEN

Outcome = tuple[
    str, DropReason | None
]  # ("dropped", reason), ("accepted", None), ("ignored", None)


def outcome(data: bytes) -> Outcome:
    """What a freshly started node (V1, V2 on eth0) does with data."""
    node = Node((V1, V2), counter=lambda: 0)
    node.start(now=0.0, links=links)
    actions = node.receive(data, interface="eth0", now=1.0)
    drops = [a for a in actions if isinstance(a, PacketDropped)]
    if drops:  # one drop, and perhaps a notice about what keeps coming
        assert len(drops) == 1 and isinstance(drops[0].reason, DropReason), actions
        assert all(isinstance(a, (PacketDropped, Notice)) for a in actions), actions
        return ("dropped", drops[0].reason)
    received = sum(h.adverts_received for h in node.hosts.values())
    return ("accepted", None) if received else ("ignored", None)


def decoders_only_raise_packet_error(data: bytes) -> None:
    for decode in (packet.parse_ipv4, packet.decode):
        try:
            decode(data)
        except PacketError as exc:
            assert isinstance(exc.reason, DropReason)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_packet_error(data: bytes) -> None:
    decoders_only_raise_packet_error(data)
    outcome(data)  # raises nothing


@FUZZ
@given(st.binary(max_size=120), st.integers(0, 255), st.sampled_from(["224.0.0.18", "192.0.2.9"]))
def test_random_carp_payloads_only_raise_packet_error(payload: bytes, ttl: int, dst: str) -> None:
    """Random bytes behind a valid IP header, so that they reach the CARP checks."""
    data = datagram(payload, dst=dst, ttl=ttl)
    decoders_only_raise_packet_error(payload)
    assert outcome(data)[0] != "accepted"


def edited(data: bytes, edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> bytes:
    out = bytearray(data)
    for offset, value in edits:
        out[offset % len(out)] = value
    return bytes(out[:cut]) + tail


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, len(GOOD))),
    st.binary(max_size=40),
)
def test_mutated_datagrams_have_one_outcome(
    edits: list[tuple[int, int]], cut: int | None, tail: bytes
) -> None:
    data = edited(GOOD, edits, cut, tail)
    decoders_only_raise_packet_error(data)
    assert outcome(data) == outcome(data)


def dropped(reason: DropReason) -> set[Outcome]:
    return {("dropped", reason)}


ACCEPTED = {("accepted", None)}
IGNORED = {("ignored", None)}
SHIFTED = {("dropped", r) for r in DropReason}  # a new IP header length: anything but accepted


def allowed(offset: int, value: int) -> set[Outcome]:
    """The outcomes of GOOD with byte `offset` set to `value` (not its own)."""
    old = GOOD[offset]
    if offset == 0:  # version and header length
        if value >> 4 == 6:  # read as IPv6: a garbage header, never accepted
            return SHIFTED | IGNORED
        return dropped(DropReason.NOT_IPV4) if value >> 4 != 4 else SHIFTED | IGNORED
    if offset == 8:
        return dropped(DropReason.BAD_TTL)
    if offset == 9:  # another protocol
        return IGNORED
    if 12 <= offset < 16:  # another source: taken as a peer, or as our own advert
        return ACCEPTED | IGNORED
    if 16 <= offset < 20:  # another destination: not our group
        return IGNORED
    if offset < IP:  # TOS, length, id, fragment, checksum: the kernel's business
        return ACCEPTED
    if offset == IP:  # CARP version and type
        if value >> 4 == 3:  # VRRPv3 on the same number: another protocol, not ours
            return IGNORED
        if value >> 4 != old >> 4:
            return dropped(DropReason.BAD_VERSION)
        return dropped(DropReason.BAD_TYPE)
    if offset == IP + 1:  # another vhid: not ours, or V2's (then its checksum fails)
        return IGNORED | dropped(DropReason.BAD_CHECKSUM)
    return dropped(DropReason.BAD_CHECKSUM)  # a one-byte change never keeps the sum


@pytest.mark.parametrize("offset", range(len(GOOD)))
def test_every_single_byte_change_has_its_outcome(offset: int) -> None:
    """Exhaustive: every offset, every other value of its byte, on two nodes each."""
    for value in range(256):
        if value == GOOD[offset]:
            continue
        data = edited(GOOD, [(offset, value)], None, b"")
        first = outcome(data)
        assert first == outcome(data), (offset, value)
        assert first in allowed(offset, value), (offset, value, first)


def test_the_unchanged_datagram_is_accepted() -> None:
    assert outcome(GOOD) == ("accepted", None)
    assert outcome(GOOD + bytes(50)) == ("accepted", None)  # ucarp ignores what follows
