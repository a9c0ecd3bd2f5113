"""The state machine of one virtual host: every MASTER/BACKUP decision is here.

Theory of operation (ucarp 1.5.2 semantics):

- start: INIT -> BACKUP (down script, except in neutral mode) and arm the
  master-down timer.
- BACKUP, valid advertisement: with preempt and a sender that advertises less
  often than we would, take over; if the sender advertises less often than
  our master-down interval (a leaving master sends 255/255), take over; else
  re-arm the master-down timer.
- BACKUP, master-down timer: become MASTER (up script, gratuitous ARP, an
  advertisement at once, a second ARP two advertisements later).
- MASTER, valid advertisement from a preferred sender (shorter interval, or
  equal and a lower address in ucarp's byte order): one more advertisement,
  then BACKUP. From a worse sender: re-assert with a gratuitous ARP now and
  another two advertisements later.
- MASTER, advertisement timer: advertise.
- Link without carrier: BACKUP and silent until it returns (unless
  ignoreifstate). Step-down: BACKUP, then wait three seconds more than the
  master-down interval before taking over again.
- Built-in plumbing: a MASTER asks for its addresses (AddAddresses) and a
  host leaving MASTER gives them back. While they cannot be configured the
  host is faulted: it advertises and competes as a leaving master (255/255),
  which every ucarp and BSD backup takes over from at once, preempt or not,
  and retries with backoff (plumbing.py) until the addresses are in place.
  The fault stays until an add succeeds, so a faulted BACKUP neither
  preempts nor takes over from a leaving master.

Who wins an election is election.py's rule; what the actions say (frames,
commands, networks) is outbound.py's. Nothing here reads a clock, a socket or
a random source: every input carries `now` (seconds, monotonic) and every
method returns the actions to perform.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import NamedTuple

from pycarp.core import auth, election, timing
from pycarp.core.actions import (
    Action,
    HostKey,
    Link,
    Notice,
    Reason,
    SendGratuitousArp,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.outbound import Outbound
from pycarp.core.packet import COUNTER_MODULUS, Advertisement
from pycarp.core.plumbing import Plumbing
from pycarp.core.sending import SendErrors

# A step-down holds off for this long before listening for a master as usual (ucarp's sleep(3)).
STEPDOWN_HOLD = 3.0
DELAYED_ARP_ADVERTS = 2
LEAVING = 255  # advbase and advskew of a master that is leaving


class PeerInfo(NamedTuple):  # made for every advertisement received: a cheap tuple
    """The last valid advertisement heard from another node."""

    address: IPv4Address
    advbase: int
    advskew: int
    at: float


class VirtualHost:
    """One CARP virtual host (one vhid on one interface)."""

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
        self._counter = counter % COUNTER_MODULUS
        self._ident = self._counter >> 48  # the IP identification: fixed, random per host
        self._out: Outbound | None = None  # made at start, when the interface's MAC is known
        self._deadline: float | None = None
        self._delayed_arp = -1
        self._link_up = True
        self._send_errors = SendErrors()
        self._leave_by: float | None = None  # while handing over: when to stop at the latest
        self._plumbing = Plumbing()
        c = config
        self._master_down = timing.master_down_interval(c.advbase, c.advskew, c.deadratio)
        self.signer = auth.Signer(c.password, c.vhid, c.addresses)

    # -- queries ---------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When on_timer() next needs to run; None while nothing is due."""
        retry_at = self._plumbing.retry_at
        if retry_at is None:
            return self._deadline
        if self._deadline is None:
            return retry_at
        return min(self._deadline, retry_at)

    @property
    def fault(self) -> str | None:
        """Why the virtual addresses could not be configured; None when they could."""
        return self._plumbing.fault

    @property
    def advertised(self) -> tuple[int, int]:
        """(advbase, advskew) as advertised now: 255/255 while leaving or faulted."""
        if self._leave_by is not None or self._plumbing.fault is not None:
            return LEAVING, LEAVING
        return self.config.advbase, self.advskew

    @property
    def advskew(self) -> int:
        """The skew we advertise and compare with: raised while sends fail."""
        if self._send_errors.suppressed:
            return max(self.config.advskew, timing.SUPPRESSED_ADVSKEW)
        return self.config.advskew

    @property
    def advert_interval(self) -> timing.Interval:
        return timing.advert_interval(self.config.advbase, self.advskew)

    @property
    def master_down_interval(self) -> timing.Interval:
        return self._master_down  # the config is frozen: computed once

    @property
    def counter(self) -> int:
        """The counter of the last advertisement sent (before the first: one less)."""
        return self._counter

    @property
    def link_up(self) -> bool:
        return self._link_up

    # -- inputs ----------------------------------------------------------

    def start(self, *, now: float, link: Link) -> list[Action]:
        """Begin on the interface `link` describes."""
        if self.state is not State.INIT:
            return []
        self._out = Outbound(self.config, mac=link.mac, ident=self._ident)
        self._link_up = link.up or self.config.ignoreifstate
        actions = self._set_state(State.BACKUP, Reason.STARTED, now=now)
        self._deadline = self._master_down_at(now) if self._link_up else None
        return actions

    def receive(self, advert: Advertisement, *, source: IPv4Address, now: float) -> list[Action]:
        """A valid (authenticated) advertisement for our vhid from another node."""
        if self.state is State.INIT or not self._link_up:
            return []
        self.adverts_received += 1
        self.last_peer = PeerInfo(source, advert.advbase, advert.advskew, now)
        if self._leave_by is not None:
            return self._stop(now=now)  # the new master is there: break now
        theirs = timing.advert_interval(advert.advbase, advert.advskew)
        ours = timing.advert_interval(*self.advertised)
        if self.state is State.MASTER:
            if election.master_yields(ours, theirs, self.config.srcip, source):
                # One more advertisement so the new master knows to re-assert.
                actions = self._advertise(now=now)
                actions += self._set_state(State.BACKUP, Reason.PREFERRED_MASTER, now=now)
                self._deadline = self._master_down_at(now)
                return actions
            self._delayed_arp = DELAYED_ARP_ADVERTS
            return [
                Notice(self.key, f"non-preferred master {source} advertising: re-asserting"),
                self._arp(),
            ]
        reason = election.backup_takes_over(
            ours,
            theirs,
            self._master_down_threshold(),
            preempt=self.config.preempt,
            faulted=self._plumbing.fault is not None,
        )
        if reason is not None:
            return self._become_master(reason, now=now)
        self._deadline = self._master_down_at(now)
        return []

    def on_timer(self, *, now: float) -> list[Action]:
        actions: list[Action] = []
        if self._plumbing.due(now) and self.state is State.MASTER and self._leave_by is None:
            actions += self._sends.add_addresses()
        if self._deadline is None or now < self._deadline:
            return actions  # early or stale wake-ups are harmless
        if self._leave_by is not None and now >= self._leave_by:
            return actions + self._stop(now=now)
        if self.state is State.BACKUP:
            return actions + self._become_master(Reason.MASTER_DOWN, now=now)
        if self.state is State.MASTER:
            return actions + self._advertise(now=now)
        return actions

    def link_changed(self, *, up: bool, now: float) -> list[Action]:
        if self.config.ignoreifstate or up == self._link_up:
            return []
        self._link_up = up
        if self.state is State.INIT:
            return []
        if up:
            self._deadline = self._master_down_at(now)
            return [Notice(self.key, "carrier is back: listening for a master")]
        if self._leave_by is not None:
            return self._stop(now=now)
        self._deadline = None
        actions: list[Action] = [Notice(self.key, "no carrier: silent until it returns")]
        return actions + self._set_state(State.BACKUP, Reason.LINK_DOWN, now=now)

    def force_backup(self, *, now: float) -> list[Action]:
        """Step down (SIGUSR2): BACKUP now, a master again only if nobody else is."""
        if self.state is not State.MASTER or self._leave_by is not None:
            return []
        actions = self._set_state(State.BACKUP, Reason.FORCED, now=now)
        self._deadline = self._master_down_at(now + STEPDOWN_HOLD)
        return actions

    def shutdown(self, *, now: float, graceful: bool = True) -> list[Action]:
        """Stop. A MASTER first hands over (make-before-break), unless not graceful.

        Leaving, it advertises 255/255 (the signal BSD CARP sends and ucarp
        backups take over on at once) and keeps its addresses until it hears
        the new master, or one master-down interval has passed. Backups are
        silent, so not having heard one says nothing about whether one is
        there: a lone master, too, waits out the interval rather than risk an
        outage. Then it stops: with `shutdown` configured a host that was not
        BACKUP runs its down script.
        """
        if self.state is State.INIT:
            return []
        if not (graceful and self.state is State.MASTER and self._link_up):
            return self._stop(now=now)
        if self._leave_by is not None:
            return []  # already leaving
        self._leave_by = now + self.master_down_interval.total
        actions: list[Action] = [
            Notice(
                self.key,
                "leaving: advertising 255/255, keeping the addresses until a new master advertises",
            )
        ]
        return actions + self._advertise(now=now)

    @property
    def leaving(self) -> bool:
        return self._leave_by is not None

    def _stop(self, *, now: float) -> list[Action]:
        """Stop at once; the actions say all that is left to do (also for a removed host)."""
        actions: list[Action] = [StateChanged(self.key, self.state, State.INIT, Reason.SHUTDOWN)]
        if self.state is State.MASTER:
            actions += self._sends.remove_addresses()
        if self.config.shutdown and self.state is not State.BACKUP:
            actions += self._sends.script("down")
        self._enter(State.INIT, Reason.SHUTDOWN, now=now)
        self._deadline = self._leave_by = None
        self._plumbing.cancel()
        return actions

    def addresses_result(self, *, ok: bool, now: float, detail: str = "") -> list[Action]:
        """The runtime reports whether an AddAddresses succeeded (`detail`: why not)."""
        master = self.state is State.MASTER and self._leave_by is None
        if ok:
            if not self._plumbing.succeeded():
                return []
            actions: list[Action] = [
                Notice(self.key, "virtual addresses configured: advertising normally again")
            ]
            if master:
                actions.append(self._arp())
                actions += self._advertise(now=now)
            return actions
        first = self._plumbing.failed(detail, now=now, retry=master)
        if not master:
            return [Notice(self.key, f"could not configure the virtual addresses: {detail}")]
        if not first:
            return []  # said once per episode
        actions = [
            Notice(
                self.key,
                f"could not configure the virtual addresses: {detail}; advertising as a "
                "leaving master (255/255) so that a peer takes over, and retrying",
            )
        ]
        return actions + self._advertise(now=now)

    def send_result(self, *, ok: bool, now: float) -> list[Action]:
        """The runtime reports whether an advertisement left the machine."""
        if ok:
            if self._send_errors.succeeded():
                return [Notice(self.key, "advertisements succeed again: normal advskew")]
            return []
        if not self._send_errors.failed():
            return []
        actions: list[Action] = [
            Notice(self.key, "advertisements keep failing: advertising with advskew 240")
        ]
        if self.state is State.MASTER:
            # ucarp's carp_send_ad_all: announce the weaker skew at once.
            actions += self._advertise(now=now)
        return actions

    # -- internals -------------------------------------------------------

    def _master_down_threshold(self) -> timing.Interval:
        # ucarp compares a leaving master against deadratio*advbase plus the
        # skew we currently advertise with.
        c = self.config
        return timing.master_down_interval(c.advbase, self.advskew, c.deadratio)

    def _master_down_at(self, now: float) -> float:
        return now + self.master_down_interval.total

    def _become_master(self, reason: Reason, *, now: float) -> list[Action]:
        self._plumbing.restart()
        actions = self._set_state(State.MASTER, reason, now=now)
        actions.append(self._arp())
        actions += self._advertise(now=now)
        self._delayed_arp = DELAYED_ARP_ADVERTS
        return actions

    def _advertise(self, *, now: float) -> list[Action]:
        self._counter = (self._counter + 1) % COUNTER_MODULUS
        c = self.config
        advbase, advskew = self.advertised
        advert = Advertisement(
            vhid=c.vhid,
            advbase=advbase,
            advskew=advskew,
            counter=self._counter,
            digest=self.signer.digest(self._counter),
        )
        self.adverts_sent += 1
        actions: list[Action] = [self._sends.advertisement(advert)]
        if self._delayed_arp > 0:
            self._delayed_arp -= 1
        if self._delayed_arp == 0:
            # Not while leaving: a stale ARP could pull clients back from the new master.
            if self.state is State.MASTER and self._leave_by is None:
                actions.append(self._arp())
            self._delayed_arp = -1
        self._deadline = now + self.advert_interval.total
        if self._leave_by is not None:
            # Repeat the leaving advertisement (a backup may miss one) until it is time to stop.
            self._deadline = min(self._deadline, self._leave_by)
        return actions

    def _arp(self) -> SendGratuitousArp:
        return self._sends.announcement()

    @property
    def _sends(self) -> Outbound:
        """What this host's actions say; only a started host has any."""
        if self._out is None:
            raise RuntimeError(f"{self.key}: not started")
        return self._out

    def _set_state(self, new: State, reason: Reason, *, now: float) -> list[Action]:
        old = self.state
        if new is old:
            return []
        self._enter(new, reason, now=now)
        actions: list[Action] = [StateChanged(self.key, old, new, reason)]
        sends = self._sends
        if new is State.MASTER:
            actions += sends.add_addresses()
            actions += sends.script("up")
            return actions
        self._plumbing.cancel()
        if old is State.MASTER:
            actions += sends.remove_addresses()
        if not (old is State.INIT and self.config.neutral):
            actions += sends.script("down")
        return actions

    def _enter(self, new: State, reason: Reason, *, now: float) -> None:
        self.state, self.reason, self.since = new, reason, now
