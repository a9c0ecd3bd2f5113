"""VRRPv3 (RFC 5798, updated by RFC 9568): its message, its election and its timers.

The message shares CARP's protocol number, groups and TTL rule; its checksum
covers the IP pseudo-header as well, in both families. There is no
authentication (RFC 5798, 9.2). Priorities: 255 for the address owner, 1-254
for backups, 0 for a master that is leaving. Intervals are centiseconds.

The state machine (state.py) asks the two election functions here what a
host does with an advertisement it hears; they decide, it acts.
"""

from __future__ import annotations

import enum
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from pycarp.core.errors import DropReason, PacketError
from pycarp.core.packet import PROTO_CARP, Address, checksum

VERSION = 3
TYPE_ADVERTISEMENT = 1
OWNER = 255  # the priority of the router that owns the addresses
LEAVING = 0  # the priority of a master that stops
MAX_INTERVAL = 4095  # centiseconds: 12 bits
HEADER_LEN = 8
_HEADER = struct.Struct("!BBBBHH")


class VrrpAdvertisement(NamedTuple):  # a tuple: one is made for every packet received
    """A VRRPv3 advertisement as on the wire (the checksum is derived)."""

    vrid: int
    priority: int
    interval: int  # Max Adver Int, centiseconds
    addresses: tuple[Address, ...]

    def encode(self, source: Address, destination: Address) -> bytes:
        """The message, its checksum over the pseudo-header of `source` -> `destination`."""
        fields = ((VERSION << 4) | TYPE_ADVERTISEMENT, self.vrid, self.priority)
        head = _HEADER.pack(*fields, len(self.addresses), self.interval & 0x0FFF, 0)
        body = head + b"".join(a.packed for a in self.addresses)
        total = checksum(pseudo_header(source, destination, len(body)) + body)
        return body[:6] + total.to_bytes(2, "big") + body[8:]


def pseudo_header(source: Address, destination: Address, length: int) -> bytes:
    """RFC 5798 5.2.8: IPv4's (RFC 768 style) or IPv6's (RFC 8200 8.1) pseudo-header."""
    if isinstance(source, IPv6Address):
        return source.packed + destination.packed + struct.pack("!I3xB", length, PROTO_CARP)
    return source.packed + destination.packed + struct.pack("!xBH", PROTO_CARP, length)


def decode(data: bytes, source: Address, destination: Address) -> VrrpAdvertisement:
    """Parse and check a VRRPv3 message that came from `source` to `destination`."""
    if len(data) < HEADER_LEN:
        raise PacketError(DropReason.TOO_SHORT, f"{len(data)} bytes, a VRRP header has 8")
    vt, vrid, priority, count, interval, _ = _HEADER.unpack_from(data)
    version, kind = vt >> 4, vt & 0x0F
    if version != VERSION:
        raise PacketError(DropReason.BAD_VERSION, f"version {version}, expected {VERSION}")
    if kind != TYPE_ADVERTISEMENT:
        raise PacketError(DropReason.BAD_TYPE, f"type {kind}, expected {TYPE_ADVERTISEMENT}")
    size = 16 if isinstance(source, IPv6Address) else 4
    length = HEADER_LEN + count * size
    if len(data) < length:
        said = f"{len(data)} bytes, {count} addresses need {length}"
        raise PacketError(DropReason.BAD_LENGTH, said)
    body = data[:length]
    if checksum(pseudo_header(source, destination, length) + body) != 0:
        raise PacketError(DropReason.BAD_CHECKSUM, "bad VRRP checksum")
    if interval & 0x0FFF == 0:  # its master-down interval would be 0: a takeover per advert
        raise PacketError(DropReason.BAD_INTERVAL, "advertisement interval 0")
    kind_of = IPv6Address if size == 16 else IPv4Address
    addresses = tuple(kind_of(body[i : i + size]) for i in range(HEADER_LEN, length, size))
    return VrrpAdvertisement(vrid, priority, interval & 0x0FFF, addresses)


def skew_time(priority: int, interval: float) -> float:
    """Seconds: (256 - priority) x interval / 256 (RFC 5798 6.1)."""
    return (256 - priority) * interval / 256


def master_down_interval(priority: int, interval: float, deadratio: int = 3) -> float:
    """Seconds: deadratio (the RFC's 3) master intervals and the skew time."""
    return deadratio * interval + skew_time(priority, interval)


def primary_order(address: Address) -> int:
    """The RFC compares primary addresses as unsigned integers, the higher one winning."""
    return int(address)


class MasterHears(enum.Enum):
    YIELD = "yield"  # a better master: BACKUP now
    ANSWER = "answer"  # advertise at once (a leaving master, or a worse one to override)


class BackupHears(enum.Enum):
    LISTEN = "listen"  # a master we accept: wait a master-down interval again
    SKEW = "skew"  # the master is leaving: take over after the skew time
    PREEMPT = "preempt"  # a master of lower priority and we preempt: take over


def master_hears(mine: int, theirs: int, own: Address, source: Address) -> MasterHears:
    """RFC 5798 6.4.3: a master yields to a higher priority, or an equal one from a
    higher primary address; otherwise it advertises at once, so that the other
    master (or the backups, for a leaving one) hears it without waiting."""
    if theirs != LEAVING and (
        theirs > mine or (theirs == mine and primary_order(source) > primary_order(own))
    ):
        return MasterHears.YIELD
    return MasterHears.ANSWER


def backup_hears(mine: int, theirs: int, *, preempt: bool) -> BackupHears:
    """RFC 5798 6.4.2. Where the RFC lets a lower-priority master's master-down timer run
    out before preempting, pycarp preempts at once: the same outcome, sooner. The
    address owner preempts whatever `preempt` says (RFC 5798 6.1)."""
    if theirs == LEAVING:
        return BackupHears.SKEW
    if (preempt or mine == OWNER) and theirs < mine:
        return BackupHears.PREEMPT
    return BackupHears.LISTEN


def virtual_mac(vrid: int, version: int) -> bytes:
    """The virtual router MAC (RFC 5798 7.3): 00:00:5e:00:01:<vrid>, :02:<vrid> for IPv6."""
    return bytes((0, 0, 0x5E, 0, 1 if version == 4 else 2, vrid))
