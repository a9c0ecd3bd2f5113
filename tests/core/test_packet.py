"""The wire format: golden packets from ucarp, a table both ways, and hostile input."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycarp.core import auth, packet
from pycarp.core.actions import HostKey, PacketDropped
from pycarp.core.errors import DropReason, PacketError
from pycarp.core.ipv4 import Ipv4Wire
from pycarp.core.node import Node
from pycarp.core.packet import Advertisement
from tests.helpers import datagram, links, make_config, rfc1071

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors"


# -- the captures --------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    """What tests/data/vectors/README.md says about each file."""

    file: str
    count: int
    vhid: int
    password: bytes
    vip: IPv4Address
    sender: IPv4Address
    advbase: int
    advskew: int
    nomcast: bool


CAPTURES = [
    Capture(
        "single-vhid1.pcap", 5, 1, b"secret",
        IPv4Address("192.0.2.50"), IPv4Address("192.0.2.1"), 1, 0, False,
    ),
    Capture(
        "pair-vhid42.pcap", 8, 42, b"love",
        IPv4Address("198.51.100.50"), IPv4Address("198.51.100.11"), 1, 10, False,
    ),
    Capture(
        "nomcast-vhid200.pcap", 3, 200, b"0123456789abcdefghi",
        IPv4Address("198.51.100.60"), IPv4Address("198.51.100.11"), 2, 255, True,
    ),
]  # fmt: skip


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """(timestamp, frame) for each record of a classic pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path}: not a microsecond pcap file")
    _, _, _, _, _, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    assert linktype == 1, "EN10MB"
    records, offset = [], 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        assert incl == orig, "no truncated captures"
        records.append((sec + usec / 1e6, data[offset : offset + incl]))
        offset += incl
    return records


def frames(capture: Capture) -> list[tuple[float, bytes]]:
    return read_pcap(VECTORS / capture.file)


ALL_FRAMES = [
    pytest.param(c, i, frame, id=f"{c.file}#{i}")
    for c in CAPTURES
    for i, (_, frame) in enumerate(frames(c))
]


def test_each_capture_has_the_documented_number_of_packets() -> None:
    assert [len(frames(c)) for c in CAPTURES] == [c.count for c in CAPTURES]


@pytest.mark.parametrize(("capture", "index", "frame"), ALL_FRAMES)
def test_ethernet_framing_as_ucarp_sends_it(capture: Capture, index: int, frame: bytes) -> None:
    dst, src, ethertype = frame[:6], frame[6:12], int.from_bytes(frame[12:14], "big")
    assert ethertype == packet.ETHERTYPE_IP
    assert src == bytes([0, 0, 0x5E, 0, 0, capture.vhid])
    expected = (
        packet.BROADCAST_MAC if capture.nomcast else packet.multicast_mac(IPv4Address("224.0.0.18"))
    )
    assert dst == expected
    assert len(frame) == 14 + 20 + 36


@pytest.mark.parametrize(("capture", "index", "frame"), ALL_FRAMES)
def test_golden_capture_decodes_verifies_and_reencodes(
    capture: Capture, index: int, frame: bytes
) -> None:
    ip = frame[14:]
    assert packet.checksum(ip[:20]) == 0, "IP header checksum"
    assert packet.checksum(ip[20:56]) == 0, "CARP checksum"

    header, payload = packet.parse_ipv4(ip)
    assert header.src == capture.sender
    assert header.dst == IPv4Address("224.0.0.18")  # even in --nomcast mode
    assert (header.ttl, header.proto, header.header_len, header.total_len) == (255, 112, 20, 56)
    assert ip[1] == packet.TOS_LOWDELAY
    assert int.from_bytes(ip[6:8], "big") == 0x4000  # DF, no fragment offset

    advert = packet.decode(payload)
    assert (advert.vhid, advert.advbase, advert.advskew) == (
        capture.vhid, capture.advbase, capture.advskew,
    )  # fmt: skip
    assert (advert.version, advert.type, advert.authlen, advert.demote) == (2, 1, 7, 0)
    assert auth.verify(capture.password, capture.vhid, [capture.vip], advert.counter, advert.digest)
    assert not auth.verify(
        capture.password + b"x", capture.vhid, [capture.vip], advert.counter, advert.digest
    )

    assert advert.encode() == payload
    # The same datagram rebuilt by our encoder, apart from ucarp's random IP id.
    ident = int.from_bytes(ip[4:6], "big")
    assert packet.encode_ipv4(header.src, header.dst, advert.encode(), ident=ident) == ip


@pytest.mark.parametrize(("capture", "index", "frame"), ALL_FRAMES)
def test_golden_capture_is_accepted_by_a_node(capture: Capture, index: int, frame: bytes) -> None:
    config = make_config(
        vhid=capture.vhid,
        password=capture.password,
        addresses=(capture.vip,),
        srcip=IPv4Address(int(capture.sender) + 1),
        advbase=capture.advbase,
        advskew=capture.advskew,
        nomcast=capture.nomcast,
    )
    node = Node([config], counter=lambda: 0)
    node.start(now=0.0, links=links)
    actions = node.receive(frame[14:], interface="eth0", now=0.5)
    assert not [a for a in actions if isinstance(a, PacketDropped)]
    host = node.hosts[HostKey(config.interface, config.vhid)]
    assert host.adverts_received == 1
    assert host.last_peer is not None and host.last_peer.address == capture.sender
    assert sum(node.drops.values()) == 0


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.file for c in CAPTURES])
def test_our_advertisement_frames_are_ucarps(capture: Capture) -> None:
    """The core's frame, with ucarp's MAC and IP id, is the captured one byte for byte."""
    captured = frames(capture)[0][1]
    config = make_config(
        vhid=capture.vhid,
        password=capture.password,
        addresses=(capture.vip,),
        srcip=capture.sender,
        advbase=capture.advbase,
        advskew=capture.advskew,
        nomcast=capture.nomcast,
        mac="ucarp",
    )
    ident = int.from_bytes(captured[18:20], "big")
    wire = Ipv4Wire(config, mac=bytes(6), link_local=None, ident=ident)
    frame = wire.frame(packet.decode(captured[34:]).encode())
    assert frame.encode() == captured


def test_ucarp_master_counters_are_not_sequential() -> None:
    """README: a master that never heard a peer draws a random counter per advert."""
    counters = [packet.decode(f[34:]).counter for _, f in frames(CAPTURES[0])]
    assert len(set(counters)) == len(counters)
    assert any(b != a + 1 for a, b in itertools.pairwise(counters))


def test_capture_timing_matches_the_advertised_interval() -> None:
    for capture in CAPTURES:
        times = [t for t, _ in frames(capture)]
        interval = capture.advbase + capture.advskew / 256
        for a, b in itertools.pairwise(times):
            assert b - a == pytest.approx(interval, abs=0.01)


# -- a golden table, both ways ------------------------------------------


def _first_carp(capture: Capture) -> bytes:
    return frames(capture)[0][1][34:]


GOLDEN = [
    pytest.param(
        Advertisement(vhid=1, advbase=1, advskew=0, counter=0, digest=bytes(20)),
        "2101 0007 0001 def6 0000000000000000" + "00" * 20,
        id="defaults-zero",
    ),
    pytest.param(
        Advertisement(
            vhid=255, advbase=255, advskew=254, counter=2**64 - 1, digest=b"\xff" * 20
        ),
        "21ff fe07 00ff def9 ffffffffffffffff" + "ff" * 20,
        id="all-high",
    ),
    pytest.param(
        Advertisement(
            vhid=7, advbase=3, advskew=100, counter=0x0102030405060708,
            digest=bytes(range(20)), demote=5,
        ),
        "2107 6407 0503 0b76 0102030405060708 000102030405060708090a0b0c0d0e0f10111213",
        id="openbsd-demote",
    ),
    pytest.param(
        Advertisement(vhid=42, advbase=0, advskew=255, counter=1, digest=b"\xaa" * 20),
        "212a ff07 0000 3522 0000000000000001" + "aa" * 20,
        id="advbase-0",
    ),
    pytest.param(
        Advertisement(
            vhid=1, advbase=1, advskew=0, counter=0x1B91A74D94BD9A66,
            digest=bytes.fromhex("6d1beec21b25d5198c630fd1d884547d268e30e7"),
        ),
        "2101 0007 0001 802a 1b91a74d94bd9a66 6d1beec21b25d5198c630fd1d884547d268e30e7",
        id="ucarp-single-vhid1",
    ),
    pytest.param(
        Advertisement(
            vhid=200, advbase=2, advskew=255, counter=0xC5BF1C9719B9AA25,
            digest=bytes.fromhex("e2dbb06a2173fb7f28a816ccc5f1249c50d6dcf0"),
        ),
        "21c8 ff07 0002 30f5 c5bf1c9719b9aa25 e2dbb06a2173fb7f28a816ccc5f1249c50d6dcf0",
        id="ucarp-nomcast-vhid200",
    ),
]  # fmt: skip


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


WIRE = {str(p.id): _hex(str(p.values[1])) for p in GOLDEN}


@pytest.mark.parametrize(("advert", "wire"), GOLDEN)
def test_golden_encode(advert: Advertisement, wire: str) -> None:
    assert advert.encode() == _hex(wire)


@pytest.mark.parametrize(("advert", "wire"), GOLDEN)
def test_golden_decode(advert: Advertisement, wire: str) -> None:
    assert packet.decode(_hex(wire)) == advert


def test_golden_rows_from_captures_match_the_files() -> None:
    assert _first_carp(CAPTURES[0]) == WIRE["ucarp-single-vhid1"]
    assert _first_carp(CAPTURES[2]) == WIRE["ucarp-nomcast-vhid200"]


def test_decode_ignores_bytes_after_the_header() -> None:
    wire = WIRE["defaults-zero"]
    assert packet.decode(wire + b"trailing junk") == packet.decode(wire)


BASE = WIRE["openbsd-demote"]


@pytest.mark.parametrize("length", range(packet.CARP_LEN))
def test_every_truncation_is_too_short(length: int) -> None:
    with pytest.raises(PacketError) as info:
        packet.decode(BASE[:length])
    assert info.value.reason is DropReason.TOO_SHORT


def _patched(data: bytes, offset: int, value: int, *, fix_checksum: bool = True) -> bytes:
    out = bytearray(data)
    out[offset] = value
    if fix_checksum:
        out[6:8] = b"\0\0"
        out[6:8] = packet.checksum(bytes(out)).to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize("version", [0, 1, 3, 15])
def test_bad_version(version: int) -> None:
    with pytest.raises(PacketError) as info:
        packet.decode(_patched(BASE, 0, version << 4 | 1))
    assert info.value.reason is DropReason.BAD_VERSION


@pytest.mark.parametrize("kind", [0, 2, 15])
def test_bad_type(kind: int) -> None:
    with pytest.raises(PacketError) as info:
        packet.decode(_patched(BASE, 0, 0x20 | kind))
    assert info.value.reason is DropReason.BAD_TYPE


@pytest.mark.parametrize("offset", [1, 2, 5, 6, 7, 8, 15, 16, 35])
def test_bad_checksum(offset: int) -> None:
    corrupt = _patched(BASE, offset, BASE[offset] ^ 0x01, fix_checksum=False)
    with pytest.raises(PacketError) as info:
        packet.decode(corrupt)
    assert info.value.reason is DropReason.BAD_CHECKSUM


def test_checksum_known_values() -> None:
    assert packet.checksum(b"") == 0xFFFF
    assert packet.checksum(b"\x00\x01") == 0xFFFE
    assert packet.checksum(b"\x01") == packet.checksum(b"\x01\x00")  # odd length pads
    # RFC 1071's worked example: the sum of these words is 0xddf2.
    assert packet.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    # A header with its checksum in place sums to zero.
    assert packet.checksum(BASE) == 0


@given(st.binary(max_size=120) | st.sampled_from([b"\xff\xff" * 18, b"\x00" * 36, b"\xff\xff"]))
def test_checksum_is_rfc_1071s(data: bytes) -> None:
    assert packet.checksum(data) == rfc1071(data)


# -- IPv4 ---------------------------------------------------------------

SRC, DST = IPv4Address("192.0.2.2"), IPv4Address("224.0.0.18")


def test_encode_ipv4_fields() -> None:
    payload = BASE
    ip = packet.encode_ipv4(SRC, DST, payload, ident=0x12345)
    assert len(ip) == 56
    assert ip[0] == 0x45
    assert ip[1] == 0x10  # TOS low delay
    assert int.from_bytes(ip[2:4], "big") == 56
    assert int.from_bytes(ip[4:6], "big") == 0x2345  # the id wraps to 16 bits
    assert int.from_bytes(ip[6:8], "big") == 0x4000  # DF
    assert ip[8] == 255
    assert ip[9] == 112
    assert packet.checksum(ip[:20]) == 0
    assert ip[12:16] == SRC.packed and ip[16:20] == DST.packed
    assert ip[20:] == payload
    assert packet.encode_ipv4(SRC, DST, payload, ident=1, ttl=1)[8] == 1


def test_parse_ipv4_round_trip() -> None:
    ip = packet.encode_ipv4(SRC, DST, BASE, ident=7)
    header, payload = packet.parse_ipv4(ip)
    assert header == packet.IPv4Header(SRC, DST, 255, 112, 20, 56)
    assert payload == BASE


def test_parse_ipv4_skips_options() -> None:
    ip = bytearray(packet.encode_ipv4(SRC, DST, BASE, ident=7))
    ip[0] = 0x46  # IHL 6: one word of options
    ip = ip[:20] + b"\x01\x01\x01\x00" + ip[20:]
    header, payload = packet.parse_ipv4(bytes(ip))
    assert header.header_len == 24
    assert payload == BASE


def test_parse_ipv4_trusts_the_buffer_not_total_length() -> None:
    ip = bytearray(packet.encode_ipv4(SRC, DST, BASE, ident=7))
    ip[2:4] = (9999).to_bytes(2, "big")
    header, payload = packet.parse_ipv4(bytes(ip))
    assert header.total_len == 9999
    assert payload == BASE


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DropReason.TOO_SHORT),
        (b"\x45" + bytes(18), DropReason.TOO_SHORT),
        (b"\x65" + bytes(19), DropReason.NOT_IPV4),
        (b"\x05" + bytes(19), DropReason.NOT_IPV4),
        (b"\x44" + bytes(19), DropReason.BAD_LENGTH),  # IHL below 5
        (b"\x40" + bytes(19), DropReason.BAD_LENGTH),
        (b"\x46" + bytes(19), DropReason.BAD_LENGTH),  # IHL past the end of the buffer
        (b"\x4f" + bytes(55), DropReason.BAD_LENGTH),
    ],
)
def test_parse_ipv4_errors(data: bytes, reason: DropReason) -> None:
    with pytest.raises(PacketError) as info:
        packet.parse_ipv4(data)
    assert info.value.reason is reason


# -- Ethernet -----------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "mac"),
    [
        ("224.0.0.18", "01005e000012"),
        ("239.255.255.255", "01005e7fffff"),
        ("224.128.0.1", "01005e000001"),  # the 24th bit is dropped (RFC 1112)
        ("225.1.2.3", "01005e010203"),
    ],
)
def test_multicast_mac(group: str, mac: str) -> None:
    assert packet.multicast_mac(IPv4Address(group)) == bytes.fromhex(mac)


def test_ethernet_frame() -> None:
    frame = packet.ethernet(b"\x01" * 6, b"\x02" * 6, 0x0800, b"payload")
    assert frame == b"\x01" * 6 + b"\x02" * 6 + b"\x08\x00payload"


def test_gratuitous_arp() -> None:
    mac = bytes.fromhex("020000000001")
    vip = IPv4Address("192.0.2.50")
    arp = packet.gratuitous_arp(mac, vip)
    assert (arp.destination, arp.source, arp.ethertype) == (b"\xff" * 6, mac, 0x0806)
    frame = arp.encode()
    assert len(frame) == 14 + 28
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12] == mac
    assert frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)  # a request
    sha, spa, tha, tpa = frame[22:28], frame[28:32], frame[32:38], frame[38:42]
    assert (sha, spa, tha, tpa) == (mac, vip.packed, mac, vip.packed)


# -- property tests -------------------------------------------------------

adverts = st.builds(
    Advertisement,
    vhid=st.integers(0, 255),
    advbase=st.integers(0, 255),
    advskew=st.integers(0, 255),
    counter=st.integers(0, 2**64 - 1),
    digest=st.binary(min_size=20, max_size=20),
    demote=st.integers(0, 255),
    authlen=st.integers(0, 255),
    version=st.just(packet.VERSION),  # decode() refuses the others
    type=st.just(packet.TYPE_ADVERTISEMENT),
)


@given(adverts)
def test_round_trip(advert: Advertisement) -> None:
    wire = advert.encode()
    assert len(wire) == packet.CARP_LEN
    assert packet.checksum(wire) == 0
    assert packet.decode(wire) == advert


@given(st.binary(max_size=80))
def test_decode_raises_only_packet_error(data: bytes) -> None:
    try:
        advert = packet.decode(data)
    except PacketError as exc:
        assert isinstance(exc.reason, DropReason)
    else:
        assert advert.encode() == data[:36]


@given(st.binary(max_size=80))
def test_parse_ipv4_raises_only_packet_error(data: bytes) -> None:
    try:
        header, payload = packet.parse_ipv4(data)
    except PacketError as exc:
        assert isinstance(exc.reason, DropReason)
    else:
        assert header.header_len + len(payload) == len(data)


def _receiving_node() -> Node:
    node = Node([make_config(), make_config(vhid=2, password=b"")], counter=lambda: 0)
    node.start(now=0.0, links=links)
    return node


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid datagrams with a few bytes flipped or the tail cut, and plain noise."""
    good = datagram(
        Advertisement(
            vhid=1, advbase=1, advskew=0, counter=5,
            digest=auth.digest(b"secret", 1, [IPv4Address("192.0.2.50")], 5),
        )
    )  # fmt: skip
    flipped = st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=4)
    return st.one_of(
        st.binary(max_size=100),
        st.builds(lambda edits: _apply_edits(good, edits), flipped),
        st.integers(0, len(good)).map(lambda n: good[:n]),
    )


def _apply_edits(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for offset, value in edits:
        out[offset] = value
    return bytes(out)


@given(_mutations(), st.sampled_from(["eth0", "eth1"]))
def test_node_receive_never_raises(data: bytes, interface: str) -> None:
    node = _receiving_node()
    actions = node.receive(data, interface=interface, now=1.0)
    assert isinstance(actions, list)
    drops = [a for a in actions if isinstance(a, PacketDropped)]
    assert sum(node.drops.values()) == len(drops)
