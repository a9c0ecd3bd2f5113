"""A hostile neighbour for test_flood.py: garbage CARP to 224.0.0.18, as fast as it can.

Run it inside a lab namespace only (the test spawns it in its attacker host):

    python flood_sender.py --interface eth0 --source 198.51.100.89 --vhid 80 \
        --password secret --address 198.51.100.80 --seconds 10 --limit 3000000

It writes whole Ethernet frames with an AF_PACKET socket, so that nothing
in its own kernel fixes up lengths or checksums, round-robin over a pool of
frames of each kind (built once: the loop only sends), until `--seconds` or
`--limit` frames; flat out, or `--rate` frames a second. `--tail-after S`
sends one more frame of each kind S seconds after the start: a drop logged
once at the start is then reported again with how many were kept quiet. It
prints one JSON object: frames sent per kind, errors, seconds, rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from pycarp.core import auth, packet
from pycarp.core.packet import Advertisement

GROUP = IPv4Address("224.0.0.18")  # the only destination, whatever the kind
POOL = 64  # frames of each kind


class Forge:
    """Builds the datagrams of each kind for one virtual host."""

    def __init__(self, source: IPv4Address, vhid: int, password: bytes, vip: IPv4Address) -> None:
        self.source, self.vhid = source, vhid
        self.signer = auth.Signer(password, vhid, [vip])
        self.rng = random.Random(vhid)

    def ip(self, payload: bytes, *, ttl: int = packet.TTL, options: bytes = b"",
           total: int | None = None, first: int | None = None) -> bytes:  # fmt: skip
        """An IPv4 datagram, its header checksum right whatever else is wrong."""
        hlen = packet.IP_HEADER_LEN + len(options)
        vihl = 0x40 | hlen // 4 if first is None else first
        length = hlen + len(payload) if total is None else total
        ident = self.rng.randrange(0x10000)
        fields = (vihl, packet.TOS_LOWDELAY, length, ident, 0x4000, ttl, packet.PROTO_CARP, 0)
        head = struct.pack("!BBHHHBBH4s4s", *fields, self.source.packed, GROUP.packed) + options
        return head[:10] + packet.checksum(head).to_bytes(2, "big") + head[12:] + payload

    def advert(self, *, signed: bool = True, **fields: int) -> bytes:
        """A CARP header, correctly signed or with random bytes as digest."""
        counter = self.rng.getrandbits(64)
        digest = self.signer.digest(counter) if signed else self.rng.randbytes(20)
        values = {"vhid": self.vhid, "advbase": 1, "advskew": 0} | fields
        return Advertisement(counter=counter, digest=digest, **values).encode()

    def corrupt_checksum(self) -> bytes:
        body = bytearray(self.advert())
        body[6] ^= 0xFF
        return self.ip(bytes(body))

    def spoofed(self) -> bytes:
        """A datagram of any kind but from a made-up neighbour, 198.51.100.100 to .199."""
        real, self.source = self.source, IPv4Address(f"198.51.100.{self.rng.randrange(100, 200)}")
        try:
            return self.rng.choice(list(self.kinds().values()))()
        finally:
            self.source = real

    def kinds(self, *, spoof: bool = False) -> dict[str, Callable[[], bytes]]:
        """Kind -> a maker of one datagram; the kind says what is wrong with it."""
        rng = self.rng
        spoofed = {"spoofed": self.spoofed} if spoof else {}
        return spoofed | {
            "ttl": lambda: self.ip(self.advert(), ttl=rng.choice((1, 64, 128, 254))),
            "version": lambda: self.ip(self.advert(version=rng.choice((0, 1, 3, 15)))),
            "type": lambda: self.ip(self.advert(type=rng.choice((0, 2, 15)))),
            "checksum": self.corrupt_checksum,
            "digest": lambda: self.ip(self.advert(signed=False)),
            "authlen": lambda: self.ip(self.advert(signed=False, authlen=rng.choice((0, 1, 255)))),
            "truncated": lambda: self.ip(self.advert()[: rng.randrange(2, packet.CARP_LEN)]),
            # The IP length field says less than was sent: the receiver's kernel trims.
            "ip-length": lambda: self.ip(self.advert(), total=packet.IP_HEADER_LEN + 20),
            # IP options (NOPs) and 100 bytes after the CARP header, unsigned.
            "oversized": lambda: self.ip(
                self.advert(signed=False) + rng.randbytes(100),
                options=b"\x01" * 4 * rng.randrange(1, 11),
            ),
            "random": lambda: self.ip(rng.randbytes(rng.randrange(0, 80))),
            # Not IPv4, or a header length under 20: the receiver's kernel drops these.
            "bad-ip": lambda: self.ip(self.advert(), first=rng.choice((0x45 ^ 0x30, 0x44, 0x42))),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--interface", required=True)
    parser.add_argument("--source", type=IPv4Address, required=True)
    parser.add_argument("--vhid", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--address", type=IPv4Address, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit", type=int, default=3_000_000)
    parser.add_argument("--tail-after", type=float, default=None)
    parser.add_argument("--spoof", action="store_true", help="add frames from made-up sources")
    parser.add_argument("--rate", type=float, default=None, help="frames a second (none: flat out)")
    args = parser.parse_args()
    forge = Forge(args.source, args.vhid, args.password.encode(), args.address)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((args.interface, 0))
    mac = sock.getsockname()[4]
    head = packet.multicast_mac(GROUP) + mac + packet.ETHERTYPE_IP.to_bytes(2, "big")
    pools = {
        kind: [head + make() for _ in range(POOL)]
        for kind, make in forge.kinds(spoof=args.spoof).items()
    }
    # Interleaved: every kind keeps arriving throughout the flood.
    order = [(kind, frames[i]) for i in range(POOL) for kind, frames in pools.items()]
    sent = dict.fromkeys(pools, 0)
    errors = 0
    start = time.monotonic()
    deadline = start + args.seconds
    total = 0
    while total < args.limit and time.monotonic() < deadline:
        if args.rate is not None:  # paced: this round's frames are due at total / rate
            time.sleep(max(0.0, start + total / args.rate - time.monotonic()))
        for kind, frame in order:
            try:
                sock.send(frame)
            except OSError:  # ENOBUFS under load: count it, go on
                errors += 1
                continue
            sent[kind] += 1
        total += len(order)
    elapsed = time.monotonic() - start
    if args.tail_after is not None:
        time.sleep(max(0.0, start + args.tail_after - time.monotonic()))
        for kind, frames in pools.items():
            sock.send(frames[0])
            sent[kind] += 1
    report = {"sent": sent, "errors": errors, "seconds": round(elapsed, 3),
              "rate": round(sum(sent.values()) / elapsed), "pid": os.getpid()}  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
