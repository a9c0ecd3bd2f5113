"""What the core asks the runtime to do, and the facts it reports.

Actions are imperative (SendAdvertisement); facts are past tense (StateChanged).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal, NamedTuple

from pycarp.core.errors import DropReason
from pycarp.core.packet import Advertisement


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


@dataclass(frozen=True)
class SendAdvertisement:
    key: HostKey
    advert: Advertisement


@dataclass(frozen=True)
class SendGratuitousArp:
    key: HostKey
    addresses: tuple[IPv4Address, ...]


@dataclass(frozen=True)
class RunScript:
    key: HostKey
    which: Literal["up", "down"]


@dataclass(frozen=True)
class AddAddresses:
    """Configure the virtual addresses (built-in plumbing); report with addresses_result()."""

    key: HostKey
    networks: tuple[tuple[IPv4Address, int], ...]  # (address, prefix length)


@dataclass(frozen=True)
class RemoveAddresses:
    """Unconfigure the virtual addresses (built-in plumbing)."""

    key: HostKey
    networks: tuple[tuple[IPv4Address, int], ...]


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


Action = (
    SendAdvertisement
    | SendGratuitousArp
    | AddAddresses
    | RemoveAddresses
    | RunScript
    | StateChanged
    | Notice
    | PacketDropped
)
