"""What a virtual host is and knows: its data and the queries on it.

core/state.py's VirtualHost, which owns every transition, is built on it;
nothing here changes a host's state.
"""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv6Address
from typing import NamedTuple

from pycarp.core import auth, timing, vrrp
from pycarp.core.actions import HostKey, Reason, SendAnnouncement, State
from pycarp.core.config import VirtualHostConfig
from pycarp.core.fault import NO_PEER_FAULT, PLUMBING_FAULT, Fault
from pycarp.core.outbound import Outbound
from pycarp.core.packet import COUNTER_MODULUS, Address, Advertisement
from pycarp.core.priority import Priority, advertised, vrrp_priority
from pycarp.core.sending import SendErrors
from pycarp.core.vrrp import VrrpAdvertisement


class PeerInfo(NamedTuple):  # made for every advertisement received: a cheap tuple
    """The last valid advertisement heard from another node."""

    address: Address
    advbase: int
    advskew: int
    at: float
    demote: int = 0
    priority: int | None = None  # VRRP: the priority and interval (centiseconds) heard
    interval: int | None = None

    @classmethod
    def of(cls, advert: Advertisement | VrrpAdvertisement, source: Address, at: float) -> PeerInfo:
        if isinstance(advert, VrrpAdvertisement):
            return cls(source, 0, 0, at, 0, advert.priority, advert.interval)
        return cls(source, advert.advbase, advert.advskew, at, advert.demote)


class HostState:
    """What one virtual host is and knows; VirtualHost (state.py) changes it."""

    def __init__(self, config: VirtualHostConfig, *, counter: int) -> None:
        """`counter`: the first advertisement's counter less one (a random draw)."""
        self.config = config
        self.key = HostKey(config.interface, config.vhid)
        self.state = State.INIT
        self.since: float | None = None
        self.reason: Reason | None = None
        self.last_peer: PeerInfo | None = None
        self.adverts_sent = 0
        self.adverts_received = 0
        self.transitions: Counter[tuple[State, Reason]] = Counter()
        self.demote = 0  # the demote count of the groups this host tracks
        self.promoted = False  # by `pycarp promote`, until it leaves MASTER
        self._master_total = 0.0  # seconds as MASTER before the current stretch
        self._counter = counter % COUNTER_MODULUS
        self._ident = self._counter >> 48  # the IP identification: fixed, random per host
        self._out: Outbound | None = None  # made at start, when the interface's MAC is known
        self.link_local: IPv6Address | None = None  # the IPv6 source, known at start too
        self._deadline: float | None = None
        self._delayed_arp = -1
        self._link_up = True
        self._send_errors = SendErrors()
        self._leave_by: float | None = None  # while handing over: when to stop at the latest
        self._plumbing = Fault(PLUMBING_FAULT)
        self.no_peer = Fault(NO_PEER_FAULT)  # unicast: none of the peers can be sent to
        c = config
        self._master_down = timing.master_down_interval(c.advbase, c.advskew, c.deadratio)
        # VRRP: the master's interval, learnt from its advertisements (Master_Adver_Interval)
        self.master_interval = c.advert_int / 100
        self._lower_since: float | None = None  # VRRP: since when a lower master is heard
        self._master_leaving = False  # VRRP: the deadline is a leaving master's skew time
        self.signer = auth.Signer(c.password, c.vhid, c.addresses)

    # -- queries ---------------------------------------------------------

    def _master_down_threshold(self) -> timing.Interval:
        # ucarp compares a leaving master against deadratio*advbase plus the
        # skew we currently advertise with.
        c = self.config
        return timing.master_down_interval(c.advbase, self.advskew, c.deadratio)

    def _master_down_at(self, now: float) -> float:
        return now + self.master_down_interval.total

    def _arp(self) -> SendAnnouncement:
        return self._sends.announcement()

    @property
    def _sends(self) -> Outbound:
        """What this host's actions say; only a started host has any."""
        if self._out is None:
            raise RuntimeError(f"{self.key}: not started")
        return self._out

    def own_address(self, version: int) -> Address:
        """Our source address in IP `version`: srcip, or the interface's link-local one."""
        own = self.config.srcip if version == 4 else self.link_local
        if own is None:  # the config has srcip with IPv4, the runtime a link-local with IPv6
            raise ValueError(f"{self.key}: no IPv{version} source address")
        return own

    def breaks_ties(self, source: Address) -> bool:
        """Whether `source`'s family settles equal intervals: IPv4 when the host has it.

        A mixed host hears each peer twice (IPv4 and IPv6); two families
        could order two hosts differently, and both would yield.
        """
        return source.version == self.config.versions[0]

    def next_deadline(self) -> float | None:
        """When on_timer() next needs to run; None while nothing is due."""
        due = (self._deadline, self._plumbing.retry_at, self.no_peer.retry_at)
        return min((d for d in due if d is not None), default=None)

    @property
    def fault(self) -> str | None:
        """Why the virtual addresses could not be configured; None when they could."""
        return self._plumbing.fault

    @property
    def priority(self) -> Priority:
        """What we advertise now: 255/255 while leaving or faulted."""
        leaving = self._leave_by is not None or self._plumbing.fault is not None
        return self._priority(leaving or self.no_peer.fault is not None)

    @property
    def advertised(self) -> tuple[int, int]:
        """(advbase, advskew) as advertised now."""
        return self.priority[:2]

    @property
    def advskew(self) -> int:
        """The skew we advertise and compare with, leaving aside: demoted, promoted, suppressed."""
        return self._priority(False).advskew

    @property
    def vrrp_priority(self) -> int:
        """The VRRP priority advertised now: 0 while leaving or faulted."""
        leaving = self._leave_by is not None or self._plumbing.fault is not None
        return self._vrrp(leaving or self.no_peer.fault is not None)

    def vrrp_advert(self) -> VrrpAdvertisement:
        """The VRRP advertisement this host sends now."""
        c = self.config
        return VrrpAdvertisement(c.vhid, self.vrrp_priority, c.advert_int, c.addresses)

    @property
    def advertising(self) -> str:
        """What the host advertises now, in words: "advskew 240, demote 0", "priority 100"."""
        if self.config.vrrp:
            return f"priority {self.vrrp_priority}"
        mine = self.priority
        return f"advskew {mine.advskew}, demote {mine.demote}"

    @property
    def rank(self) -> int:
        """The VRRP priority elections and the skew time use, leaving aside."""
        return self._vrrp(False)

    def _vrrp(self, leaving: bool) -> int:
        return vrrp_priority(
            self.config,
            leaving=leaving,
            promoted=self.promoted,
            demote=self.demote,
            suppressed=self._send_errors.suppressed,
        )

    def _priority(self, leaving: bool) -> Priority:
        return advertised(
            self.config,
            leaving=leaving,
            promoted=self.promoted,
            demote=self.demote,
            suppressed=self._send_errors.suppressed,
        )

    @property
    def held(self) -> bool:
        """Demoted in stepdown mode: BACKUP and silent, taking over from nobody."""
        return bool(self.demote) and self.config.demotion == "stepdown" and not self.promoted

    @property
    def silent(self) -> bool:
        """BACKUP and silent, taking over from nobody: held, or no peer can be reached."""
        return self.held or self.no_peer.fault is not None

    def master_seconds(self, now: float) -> float:
        """Time spent as MASTER, the current stretch included."""
        current = now - self.since if self.state is State.MASTER and self.since else 0.0
        return self._master_total + current

    @property
    def advert_interval(self) -> timing.Interval:
        if self.config.vrrp:
            return timing.seconds(self.config.advert_int / 100)
        return timing.advert_interval(self.config.advbase, self.advskew)

    @property
    def master_down_interval(self) -> timing.Interval:
        if self.config.vrrp:  # with the master's interval and our priority now
            down = vrrp.master_down_interval(self.rank, self.master_interval, self.config.deadratio)
            return timing.seconds(down)
        return self._master_down  # the config is frozen: computed once

    @property
    def counter(self) -> int:
        """The counter of the last advertisement sent (before the first: one less)."""
        return self._counter

    @property
    def link_up(self) -> bool:
        return self._link_up
