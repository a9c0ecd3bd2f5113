"""What the core asks the runtime to do, the facts it reports, and the types both share.

Actions are imperative (SendAdvertisement); facts are past tense (StateChanged).
An action is complete: the runtime carries it out by its fields alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal, NamedTuple

from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import SCRIPT_TIMEOUT
from pycarp.core.errors import DropReason
from pycarp.core.packet import Advertisement, Frame, gratuitous_arp

Network = tuple[IPv4Address, int]
"""A virtual address with its prefix length, as plumbing configures it."""


class HostKey(NamedTuple):
    """A virtual host is one vhid on one interface."""

    interface: str
    vhid: int

    def __str__(self) -> str:
        return f"{self.interface}/vhid {self.vhid}"


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


class Reason(enum.Enum):
    """Why a transition happened; the value is what logs and status say."""

    STARTED = "started"
    MASTER_DOWN = "no advertisement within the master-down interval"
    PREEMPT = "preempting a master that advertises less often"
    MASTER_LEAVING = "the master advertises too rarely to stay master"
    PREFERRED_MASTER = "a preferred master advertised"
    LINK_DOWN = "the interface lost its carrier"
    FORCED = "step-down requested"
    SHUTDOWN = "shutting down"
    PROMOTED = "promotion requested"
    DEMOTED = "demoted by a failing check (stepdown mode)"
    PEER_DEMOTED = "the master is more demoted than this host"
    NO_PEER = "no peer can be reached"

    @property
    def code(self) -> str:
        """A short name for labels and counters: ``master_down``."""
        return self.name.lower()


class Link(NamedTuple):
    """What the core needs to know of an interface: its hardware address and carrier."""

    mac: bytes  # 6 bytes
    up: bool = True  # IFF_RUNNING: up with carrier


# Each action carries all its runtime needs to carry it out: no config lookups there.


@dataclass(frozen=True)
class SendAdvertisement:
    """Send `frame` out of key.interface; its payload is the advertisement's IP datagram."""

    key: HostKey
    advert: Advertisement  # what the datagram says
    frame: Frame


@dataclass(frozen=True)
class SendUnicast:
    """Send each datagram to its peer, routed by the kernel (a unicast host's advertisement)."""

    key: HostKey
    advert: Advertisement  # what every datagram says
    datagrams: tuple[tuple[IPv4Address, bytes], ...]  # (peer, its whole IP datagram)


@dataclass(frozen=True)
class SendGratuitousArp:
    """Announce the addresses out of key.interface: one gratuitous ARP each, from `mac`."""

    key: HostKey
    mac: bytes
    addresses: tuple[IPv4Address, ...]

    @property
    def frames(self) -> list[Frame]:
        return [gratuitous_arp(self.mac, address) for address in self.addresses]


@dataclass(frozen=True)
class RunScript:
    """Run the up or down script: each command (an argv) in turn, as the host's next jobs."""

    key: HostKey
    which: Literal["up", "down"]
    commands: tuple[tuple[str, ...], ...]  # ucarp's `script <interface> <vip> [xparam]`, per vip
    timeout: float = SCRIPT_TIMEOUT  # seconds each may run before its process group is killed


@dataclass(frozen=True)
class AddAddresses:
    """Configure the networks on key.interface (built-in plumbing).

    Report the outcome with addresses_result().
    """

    key: HostKey
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class RemoveAddresses:
    """Unconfigure the networks on key.interface (built-in plumbing)."""

    key: HostKey
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class StateChanged:
    key: HostKey
    old: State
    new: State
    reason: Reason


@dataclass(frozen=True)
class Notice:
    """Something an operator should see in the log; no action needed."""

    key: HostKey
    message: str


@dataclass(frozen=True)
class PacketDropped:
    key: HostKey | None  # None when the packet could not be matched to a virtual host
    reason: DropReason
    source: IPv4Address | None
    detail: str


@dataclass(frozen=True)
class RunCheck:
    """Run one health check (never two runs of one check at once), killed at its timeout.

    Report the outcome with Node.check_result().
    """

    check: CheckConfig


@dataclass(frozen=True)
class CheckReported:
    """A check's result came in: what it said, and the check's state after it."""

    name: str
    ok: bool
    detail: str  # why it failed ("exit status 1"), or what passed
    state: str  # "starting", "healthy" or "failing"
    changed: bool  # this result changed the state


@dataclass(frozen=True)
class DemotionChanged:
    """A demotion group's count changed; `hosts` are the virtual hosts that track it."""

    group: str
    old: int
    new: int
    why: str  # "check web is failing", "pycarp demote +1"
    hosts: tuple[HostKey, ...]


@dataclass(frozen=True)
class HandOverTimedOut:
    """The hand-over at a graceful stop took too long: every host stops now."""


Action = (
    SendAdvertisement
    | SendUnicast
    | SendGratuitousArp
    | AddAddresses
    | RemoveAddresses
    | RunScript
    | StateChanged
    | Notice
    | PacketDropped
    | RunCheck
    | CheckReported
    | DemotionChanged
    | HandOverTimedOut
)
