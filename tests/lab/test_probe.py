"""The probers: `ping -D` output parsed, the raw-socket prober's packets and lines, and both
probing a lab host for real (netns)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.lab import Lab
from pycarp.lab.probe import (
    PROBE_TIMEOUT,
    PingProbe,
    Prober,
    echo_reply_of,
    echo_request,
    longest_silence_ms,
    ping_replies,
    ping_sent,
    probe_results,
)
from pycarp.lab.timeline import Timeline
from pycarp.lab.wait import wait_until

PING = """PING 198.51.100.2 (198.51.100.2) 56(84) bytes of data.
[1700000000.100000] 64 bytes from 198.51.100.2: icmp_seq=1 ttl=64 time=0.050 ms
[1700000000.110000] 64 bytes from 198.51.100.2: icmp_seq=2 ttl=64 time=0.050 ms
[1700000000.120000] no answer yet for icmp_seq=3
[1700000000.930000] 64 bytes from 198.51.100.2: icmp_seq=4 ttl=64 time=0.050 ms
[1700000000.930100] 64 bytes from 198.51.100.2: icmp_seq=4 ttl=64 time=0.090 ms (DUP!)
[1700000000.940000] 64 bytes from 198.51.100.2: icmp_seq=5 ttl=64 time=0.050 ms

--- 198.51.100.2 ping statistics ---
6 packets transmitted, 4 received, +1 duplicates, 33.3333% packet loss, time 840ms
"""


def test_ping_replies_in_order_duplicates_included() -> None:
    assert ping_replies(PING) == [
        (1, 1700000000.1),
        (2, 1700000000.11),
        (4, 1700000000.93),
        (4, 1700000000.9301),
        (5, 1700000000.94),
    ]
    assert ping_sent(PING) == 6


def test_probe_results_counts_what_ping_sent() -> None:
    sent, stamps = probe_results(PING)
    assert sent == 6 and len(stamps) == 5
    assert longest_silence_ms(stamps) == pytest.approx(820.0)


def test_probe_results_before_the_summary() -> None:
    head = "\n".join(PING.splitlines()[:3])  # ping killed before it summed up
    assert ping_sent(head) is None
    assert probe_results(head) == (2, [1700000000.1, 1700000000.11])


def test_longest_silence_needs_two_replies() -> None:
    assert longest_silence_ms([]) == float("inf")
    assert longest_silence_ms([5.0]) == float("inf")
    assert longest_silence_ms([1.0, 1.01, 1.5, 1.52]) == pytest.approx(490.0)


def fold_checksum(data: bytes) -> int:
    """RFC 1071 the textbook way: what the demo computed before it used the core's."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


@pytest.mark.parametrize(
    ("ident", "seq", "payload"),
    [(0x1234, 0, struct.pack("!d", 12345.678)), (0xFFFF, 65535, b"\xff" * 8), (1, 7, b"odd")],
)
def test_echo_request_is_a_valid_icmp_echo(ident: int, seq: int, payload: bytes) -> None:
    packet = echo_request(ident, seq, payload)
    assert packet[0] == 8 and packet[1] == 0
    assert struct.unpack("!HH", packet[4:8]) == (ident, seq) and packet[8:] == payload
    assert fold_checksum(packet) == 0
    zeroed = packet[:2] + b"\0\0" + packet[4:]
    assert struct.unpack("!H", packet[2:4])[0] == fold_checksum(zeroed)


def frame(kind: int, ident: int, seq: int, source: str, proto: int = 1) -> bytes:
    """An Ethernet frame carrying an IPv4 ICMP message from source."""
    ethernet = bytes.fromhex("020000000001") + bytes.fromhex("020000000002") + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, proto, 0,
                     socket.inet_aton(source), socket.inet_aton("198.51.100.10"))  # fmt: skip
    return ethernet + ip + struct.pack("!BBHHH", kind, 0, 0, ident, seq)


def test_echo_reply_of_matches_only_the_targets_reply_to_us() -> None:
    target = socket.inet_aton("198.51.100.200")
    assert echo_reply_of(frame(0, 77, 5, "198.51.100.200"), target, 77) == 5
    assert echo_reply_of(frame(8, 77, 5, "198.51.100.200"), target, 77) is None  # a request
    assert echo_reply_of(frame(0, 78, 5, "198.51.100.200"), target, 77) is None  # not ours
    assert echo_reply_of(frame(0, 77, 5, "198.51.100.201"), target, 77) is None  # not the VIP
    assert echo_reply_of(frame(0, 77, 5, "198.51.100.200", proto=17), target, 77) is None
    assert echo_reply_of(frame(0, 77, 5, "198.51.100.200")[:30], target, 77) is None
    assert echo_reply_of(b"", target, 77) is None


def test_prober_lines_go_into_the_timeline() -> None:
    tl = Timeline(clock=lambda: 0.0, t0=0.0)
    prober = Prober(tl, None, {"02:00:00:00:00:0a": "zoneA"}, "198.51.100.200", 0.02)
    for line in ("0 10.00 02:00:00:00:00:0a\n", "1 10.02 -\n", "2 10.04 02:00:00:00:00:0b\n",
                 "garbage\n", ""):  # fmt: skip
        prober.take(line)
    assert [(p.t, p.ok, p.zone) for p in tl.probes] == [
        (10.0, True, "zoneA"),
        (10.02, False, None),
        (10.04, True, "02:00:00:00:00:0b"),  # a MAC that names no zone stands for itself
    ]
    assert prober.answered_by("zoneA", 9.9) and not prober.answered_by("zoneA", 10.0)
    assert not prober.answered_by("zoneB", 0.0)
    prober.stop()  # never started: nothing to stop


# --- for real, between two lab hosts ---------------------------------------------


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("probing for real needs root (network namespaces)", pytrace=False)
    with Lab() as the_lab:
        the_lab.add_host("client", "198.51.100.10")
        the_lab.add_host("server", "198.51.100.20")
        yield the_lab


@pytest.mark.netns
def test_prober_names_who_answered_and_notes_what_is_lost(lab: Lab) -> None:
    client, server = lab.hosts["client"], lab.hosts["server"]
    tl = Timeline()
    prober = Prober(tl, client, {server.mac(): "server"}, server.ip, 0.01)
    prober.start(30)
    try:
        assert wait_until(lambda: len(tl.probes) == 30, 10.0), tl.probes
    finally:
        prober.stop()
    assert {(p.ok, p.zone) for p in tl.probes} == {(True, "server")}
    assert prober.answered_by("server", tl.t0)

    server.link_down()
    tl = Timeline()
    prober = Prober(tl, client, {server.mac(): "server"}, server.ip, 0.01)
    prober.start(5)
    try:
        assert wait_until(lambda: len(tl.probes) == 5, 5 * 0.01 + PROBE_TIMEOUT + 5.0)
    finally:
        prober.stop()
    assert {(p.ok, p.zone) for p in tl.probes} == {(False, None)}


@pytest.mark.netns
def test_ping_probe_runs_until_stopped(lab: Lab, tmp_path: Path) -> None:
    client, server = lab.hosts["client"], lab.hosts["server"]
    probe = PingProbe(client, server.ip, tmp_path / "ping.out", interval=0.01, count=1000).start()
    assert wait_until(lambda: len(ping_replies(probe.output())) >= 20, 10.0), probe.output()
    output = probe.stop()
    sent, stamps = probe_results(output)
    assert ping_sent(output) == sent and 20 <= len(stamps) <= sent < 1000
    assert longest_silence_ms(stamps) < 500
