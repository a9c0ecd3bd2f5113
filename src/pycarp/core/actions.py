"""What the core asks the runtime to do, the facts it reports, and the types both share.

Actions are imperative (SendAdvertisement); facts are past tense (StateChanged).
An action is complete: the runtime carries it out by its fields alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Literal, NamedTuple

from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import SCRIPT_TIMEOUT
from pycarp.core.errors import DropReason
from pycarp.core.packet import Address, Advertisement, Frame, gratuitous_arp
from pycarp.core.packet6 import neighbour_advertisement
from pycarp.core.vrrp import VrrpAdvertisement

Network = tuple[Address, int]
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
    PREEMPT_PRIORITY = "preempting a master of lower priority"
    OWNER = "the address owner (priority 255)"

    @property
    def code(self) -> str:
        """A short name for labels and counters: ``master_down``."""
        return self.name.lower()


class Link(NamedTuple):
    """What the core needs to know of an interface: its hardware address and carrier."""

    mac: bytes  # 6 bytes
    up: bool = True  # IFF_RUNNING: up with carrier
    link_local: IPv6Address | None = None  # the source of IPv6 advertisements; None: no IPv6


# Each action carries all its runtime needs to carry it out: no config lookups there.


@dataclass(frozen=True)
class SendAdvertisement:
    """Send each frame out of key.interface; its payload is the advertisement's IP datagram.

    One frame per address family the host advertises in (IPv4, IPv6), each
    with a counter of its own; the rest of what they say is the same.
    """

    key: HostKey
    advert: Advertisement | VrrpAdvertisement  # what the first datagram says
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class SendUnicast:
    """Send each datagram to its peer, routed by the kernel (a unicast host's advertisement).

    To an IPv4 peer the whole datagram; to an IPv6 one the CARP message (the
    kernel writes IPv6 headers), a link-local peer scoped to key.interface.
    """

    key: HostKey
    # what the first family's datagrams say (each family: its counter)
    advert: Advertisement | VrrpAdvertisement
    datagrams: tuple[tuple[Address, bytes], ...]  # (peer, what is sent to it)


@dataclass(frozen=True)
class SendAnnouncement:
    """Announce the addresses out of key.interface, from `mac`: a gratuitous ARP for
    each IPv4 one, an unsolicited neighbour advertisement (override) for each IPv6 one."""

    key: HostKey
    mac: bytes
    addresses: tuple[Address, ...]
    link_local: IPv6Address | None = None  # the neighbour advertisements' source

    @property
    def frames(self) -> list[Frame]:
        frames = []
        for address in self.addresses:
            if isinstance(address, IPv4Address):
                frames.append(gratuitous_arp(self.mac, address))
            elif self.link_local is not None:
                frames.append(neighbour_advertisement(self.mac, self.link_local, address))
        return frames


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

    Report the outcome with addresses_result(). With `mac` (a virtual MAC:
    VRRP's, or BSD CARP's), they go on a macvlan of key.interface with that
    MAC, made if need be, so that ARP and ND answer from it.
    """

    key: HostKey
    networks: tuple[Network, ...]
    mac: bytes | None = None


@dataclass(frozen=True)
class RemoveAddresses:
    """Unconfigure the networks on key.interface (built-in plumbing).

    With `mac`, they are on its macvlan (see AddAddresses), which goes with them.
    """

    key: HostKey
    networks: tuple[Network, ...]
    mac: bytes | None = None


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
    source: Address | None
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
    | SendAnnouncement
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
