"""A replaying neighbour for test_replay.py: captures advertisements and sends them again.

Run it inside a lab namespace only (the test runs it in a lab host):

    python replay_sender.py capture --interface eth0 --source 198.51.100.61 --timeout 5
    python replay_sender.py send --interface eth0 --source 198.51.100.61 \
        --advert HEX [--advbase 255 --advskew 255] --count 5 --interval 0.5
    python replay_sender.py constant --interface eth0 --source 198.51.100.63 --vhid 61 \
        --password secret --address 198.51.100.60 --seconds 8

`capture` prints the CARP header (hex) of the next advertisement from
`--source`. `send` sends one, its advbase/advskew edited if asked (the
checksum redone, the digest kept: it does not cover them), from `--source`
whatever the host's own address, as a whole Ethernet frame so that no
kernel fixes anything up. `constant` plays a BSD master: a correctly signed
advertisement every second, always with the same counter.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time
from ipaddress import IPv4Address

from pycarp.core import auth, packet
from pycarp.core.packet import Advertisement

GROUP = IPv4Address("224.0.0.18")
CONSTANT = 0x0123456789ABCDEF  # the "replay cookie" of the fake BSD master


def capture(interface: str, source: IPv4Address, timeout: float) -> bytes:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, packet.PROTO_CARP)
    index = socket.if_nametoindex(interface)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    GROUP.packed + bytes(4) + struct.pack("@i", index))  # fmt: skip
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        header, payload = packet.parse_ipv4(sock.recv(2048))
        if header.src == source:
            return payload[: packet.CARP_LEN]
    raise SystemExit(f"no advertisement from {source} within {timeout} s")


def sender(interface: str) -> tuple[socket.socket, bytes]:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((interface, 0))
    head = packet.multicast_mac(GROUP) + sock.getsockname()[4]
    return sock, head + packet.ETHERTYPE_IP.to_bytes(2, "big")


def frame(head: bytes, source: IPv4Address, advert: Advertisement) -> bytes:
    return head + packet.encode_ipv4(source, GROUP, advert.encode(), ident=0x4242)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("mode", choices=("capture", "send", "constant"))
    parser.add_argument("--interface", default="eth0")
    parser.add_argument("--source", type=IPv4Address, required=True)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--advert", help="send: the CARP header, in hex")
    parser.add_argument("--advbase", type=int)
    parser.add_argument("--advskew", type=int)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--vhid", type=int)
    parser.add_argument("--password", default="")
    parser.add_argument("--address", type=IPv4Address)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "capture":
        print(capture(args.interface, args.source, args.timeout).hex(), flush=True)
        return
    sock, head = sender(args.interface)
    if args.mode == "send":
        advert = packet.decode(bytes.fromhex(args.advert))
        edits = {k: v for k in ("advbase", "advskew") if (v := getattr(args, k)) is not None}
        data = frame(head, args.source, advert._replace(**edits))
        for _ in range(args.count):
            sock.send(data)
            time.sleep(args.interval)
        return
    digest = auth.digest(args.password.encode(), args.vhid, [args.address], CONSTANT)
    advert = Advertisement(vhid=args.vhid, advbase=1, advskew=0, counter=CONSTANT, digest=digest)
    data = frame(head, args.source, advert)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        sock.send(data)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
