"""The state machine of one virtual host: every MASTER/BACKUP decision is here.

Its theory of operation (ucarp 1.5.2's, with pycarp's faults, demotion and
promotion) is in docs/architecture.md, "The state machine".

Who wins an election is election.py's rule; what the actions say (frames,
commands, networks) is outbound.py's. Nothing here reads a clock, a socket or
a random source: every input carries `now` (seconds, monotonic) and every
method returns the actions to perform.
"""

from __future__ import annotations

from pycarp.core import election, timing, vrrp
from pycarp.core.actions import (
    Action,
    Link,
    Notice,
    Reason,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.hoststate import HostState, PeerInfo
from pycarp.core.outbound import Outbound
from pycarp.core.packet import COUNTER_MODULUS, Address, Advertisement
from pycarp.core.vrrp import BackupHears, MasterHears, VrrpAdvertisement

# A step-down holds off for this long before listening for a master as usual (ucarp's sleep(3)).
STEPDOWN_HOLD = 3.0
DELAYED_ARP_ADVERTS = 2


class VirtualHost(HostState):
    """One CARP virtual host (one vhid on one interface): its inputs and transitions."""

    # -- inputs ----------------------------------------------------------

    def start(self, *, now: float, link: Link) -> list[Action]:
        """Begin on the interface `link` describes."""
        if self.state is not State.INIT:
            return []
        self.link_local = link.link_local
        self._out = Outbound(
            self.config, mac=link.mac, ident=self._ident, link_local=link.link_local
        )
        self._link_up = link.up or self.config.ignoreifstate
        actions = self._set_state(State.BACKUP, Reason.STARTED, now=now)
        listening = self._link_up and not self.silent
        self._deadline = self._master_down_at(now) if listening else None
        if listening and self.config.vrrp and self.rank == vrrp.OWNER:
            actions += self._become_master(Reason.OWNER, now=now)  # RFC 5798 6.4.1
        return actions

    def receive(
        self, advert: Advertisement | VrrpAdvertisement, *, source: Address, now: float
    ) -> list[Action]:
        """A valid (authenticated) advertisement for our vhid from another node."""
        if self.state is State.INIT or not self._link_up:
            return []
        self.adverts_received += 1
        self.last_peer = PeerInfo.of(advert, source, now)
        if self._leave_by is not None:
            return self._stop(now=now)  # the new master is there: break now
        if self.silent:
            return []
        if isinstance(advert, VrrpAdvertisement):
            return self._hear_vrrp(advert, source, now=now)
        theirs = timing.advert_interval(advert.advbase, advert.advskew)
        mine = self.priority
        ours = timing.advert_interval(mine.advbase, mine.advskew)
        if self.state is State.MASTER:
            if theirs == ours and advert.demote == mine.demote and not self.breaks_ties(source):
                return []  # a mixed host's IPv4 advertisements settle the tie, never both
            yields = election.master_yields(
                ours,
                theirs,
                self.own_address(source.version),
                source,
                demote=mine.demote,
                their_demote=advert.demote,
            )
            if yields:
                # One more advertisement so the new master knows to re-assert.
                actions = self._advertise(now=now)
                actions += self._set_state(State.BACKUP, Reason.PREFERRED_MASTER, now=now)
                self._deadline = None if self.silent else self._master_down_at(now)
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
            demote=mine.demote,
            their_demote=advert.demote,
        )
        if reason is not None:
            return self._become_master(reason, now=now)
        self._deadline = self._master_down_at(now)
        return []

    def _no_peer(self, detail: str, *, now: float) -> list[Action]:
        """Advertisements keep reaching no peer: BACKUP and silent, trying again with backoff."""
        self.no_peer.failed(detail, now=now)
        self._deadline = None
        said = f"no peer can be reached ({detail}): BACKUP and silent, trying again"
        actions: list[Action] = [Notice(self.key, said)]
        return actions + self._set_state(State.BACKUP, Reason.NO_PEER, now=now)

    def on_timer(self, *, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.no_peer.due(now) and self.state is State.BACKUP and self._link_up:
            actions += self._advertise(now=now)  # a probe, as a leaving master: 255/255
            self._deadline = None
        if self._plumbing.due(now) and self.state is State.MASTER and self._leave_by is None:
            actions += self._sends.add_addresses()
        if self._deadline is None or now < self._deadline:
            return actions  # early or stale wake-ups are harmless
        if self._leave_by is not None and now >= self._leave_by:
            return actions + self._stop(now=now)
        if self.state is State.BACKUP:
            why = Reason.MASTER_LEAVING if self._master_leaving else Reason.MASTER_DOWN
            return actions + self._become_master(why, now=now)
        if self.state is State.MASTER:
            return actions + self._advertise(now=now, scheduled=self._deadline)
        return actions

    def link_changed(self, *, up: bool, now: float) -> list[Action]:
        if self.config.ignoreifstate or up == self._link_up:
            return []
        self._link_up = up
        if self.state is State.INIT:
            return []
        if up:
            self._deadline = None if self.silent else self._master_down_at(now)
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
        # VRRP: priority 0 first, so a backup takes over after its skew time (RFC 5798's hand-over)
        leaving = self.vrrp_advert()._replace(priority=vrrp.LEAVING) if self.config.vrrp else None
        actions: list[Action] = [self._sends.advertisement([leaving])] if leaving else []
        actions += self._set_state(State.BACKUP, Reason.FORCED, now=now)
        self._deadline = None if self.silent else self._master_down_at(now + STEPDOWN_HOLD)
        return actions

    def promote(self, *, now: float) -> list[Action]:
        """MASTER now (`pycarp promote`), advertising advskew 0 and demote 0 while it lasts.

        A peer that still wins the election (a shorter interval) takes over as usual.
        """
        if self.state is not State.BACKUP or self._leave_by is not None or not self._link_up:
            return []
        self.promoted = True
        return self._become_master(Reason.PROMOTED, now=now)

    def set_demotion(
        self, count: int, *, now: float, config: VirtualHostConfig | None = None
    ) -> list[Action]:
        """The groups this host tracks now count `count` reasons to demote it.

        `config`, from a reload, differs from ours only in how we are demoted
        (track, demotion, penalty): it is taken in place, without a restart.
        """
        before = (self.held, self.priority, self.vrrp_priority)
        was_held, self.demote = self.held, count
        if config is not None:
            self.config = config
        if (self.held, self.priority, self.vrrp_priority) == before:
            return []
        if self.state is State.INIT or self._leave_by is not None:
            return []
        if self.held and not was_held:
            self._deadline = None
            actions: list[Action] = [
                Notice(self.key, f"demoted ({count}): BACKUP and silent until no longer demoted")
            ]
            return actions + self._set_state(State.BACKUP, Reason.DEMOTED, now=now)
        if was_held and not self.held:
            if self._link_up and not self.silent:
                self._deadline = self._master_down_at(now)
            return [Notice(self.key, "no longer demoted: listening for a master")]
        if self.state is State.MASTER:
            said = f"demote count {count}: advertising {self.advertising}"
            return [Notice(self.key, said), *self._advertise(now=now)]
        return []

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
        signal = "priority 0" if self.config.vrrp else "255/255"
        said = f"leaving: advertising {signal}, keeping the addresses until a new master advertises"
        return [Notice(self.key, said), *self._advertise(now=now)]

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

    def send_result(self, *, ok: bool, now: float, detail: str = "") -> list[Action]:
        """The runtime reports whether an advertisement left the machine.

        For a unicast host, not ok means it reached none of its peers (`detail`: why).
        """
        if ok:
            actions: list[Action] = []
            if self.no_peer.succeeded():
                actions.append(Notice(self.key, "a peer can be reached again: listening"))
                if self.state is State.BACKUP and self._link_up and not self.held:
                    self._deadline = self._master_down_at(now)
            if self._send_errors.succeeded():
                actions.append(Notice(self.key, "advertisements succeed again: normal advskew"))
            return actions
        if self.no_peer.fault is not None:
            self.no_peer.failed(detail, now=now)  # still none: try again later
            return []
        if self.config.unicast:  # not one peer reached: nobody could hear this master
            return self._no_peer(detail, now=now)
        if not self._send_errors.failed():
            return []
        said = [Notice(self.key, f"advertisements keep failing: advertising {self.advertising}")]
        if self.state is State.MASTER:
            # ucarp's carp_send_ad_all: announce the weaker skew at once.
            return [*said, *self._advertise(now=now)]
        return list(said)

    # -- internals -------------------------------------------------------

    def _hear_vrrp(self, advert: VrrpAdvertisement, source: Address, *, now: float) -> list[Action]:
        """RFC 5798 6.4.2 and 6.4.3, with pycarp's faults and make-before-break."""
        theirs = advert.priority
        if self.state is State.MASTER:
            own = self.own_address(source.version)
            if vrrp.master_hears(self.vrrp_priority, theirs, own, source) is MasterHears.YIELD:
                self.master_interval = advert.interval / 100
                actions = self._set_state(State.BACKUP, Reason.PREFERRED_MASTER, now=now)
                self._deadline = None if self.silent else self._master_down_at(now)
                return actions
            if theirs == vrrp.LEAVING:
                return self._advertise(now=now)
            self._delayed_arp = DELAYED_ARP_ADVERTS
            said = f"master {source} (priority {theirs}, ours {self.vrrp_priority}): re-asserting"
            return [Notice(self.key, said), self._arp(), *self._advertise(now=now)]
        heard = vrrp.backup_hears(self.rank, theirs, preempt=self.config.preempt)
        if self._plumbing.fault is not None:  # faulted: it neither preempts nor takes over
            heard = BackupHears.LISTEN
        if heard is BackupHears.SKEW:
            skew = now + vrrp.skew_time(self.rank, self.master_interval)
            self._deadline = skew if self._deadline is None else min(self._deadline, skew)
            self._master_leaving = True
            return []
        since = self._lower_since if self._lower_since is not None else now
        self._lower_since = since if heard is BackupHears.PREEMPT else None
        if heard is BackupHears.PREEMPT and now >= since + self.config.preempt_delay:
            return self._become_master(Reason.PREEMPT_PRIORITY, now=now)
        self.master_interval = advert.interval / 100
        self._master_leaving = False
        self._deadline = self._master_down_at(now)
        return []

    def _become_master(self, reason: Reason, *, now: float) -> list[Action]:
        self._plumbing.restart()
        actions = self._set_state(State.MASTER, reason, now=now)
        actions.append(self._arp())
        actions += self._advertise(now=now)
        self._delayed_arp = DELAYED_ARP_ADVERTS
        return actions

    def _advertise(self, *, now: float, scheduled: float | None = None) -> list[Action]:
        """Advertise now; `scheduled`: when this one was due (the periodic timer's)."""
        mine = self.priority
        c = self.config
        adverts: list[Advertisement | VrrpAdvertisement] = [self.vrrp_advert()] if c.vrrp else []
        # One per family, each with a counter of its own (OpenBSD's): a counter is heard once.
        for _ in () if c.vrrp else c.versions:
            self._counter = (self._counter + 1) % COUNTER_MODULUS
            advert = Advertisement(
                vhid=self.config.vhid,
                advbase=mine.advbase,
                advskew=mine.advskew,
                counter=self._counter,
                digest=self.signer.digest(self._counter),
                demote=mine.demote,
            )
            adverts.append(advert)
        self.adverts_sent += len(adverts)
        actions: list[Action] = [self._sends.advertisement(adverts)]
        if self._delayed_arp > 0:
            self._delayed_arp -= 1
        if self._delayed_arp == 0:
            # Not while leaving: a stale ARP could pull clients back from the new master.
            if self.state is State.MASTER and self._leave_by is None:
                actions.append(self._arp())
            self._delayed_arp = -1
        interval = self.advert_interval.total
        # The next one is due an interval after this one was due, not after the
        # (late) wake-up: lateness never adds up. A whole interval late starts afresh.
        start = now
        if scheduled is not None and now - scheduled < interval:
            start = scheduled
        self._deadline = start + interval
        if self._leave_by is not None:
            # Repeat the leaving advertisement (a backup may miss one) until it is time to stop.
            self._deadline = min(self._deadline, self._leave_by)
        return actions

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
        if self.state is State.MASTER and self.since is not None:
            self._master_total += now - self.since
        if new is not State.MASTER:
            self.promoted = False
        self._lower_since, self._master_leaving = None, False
        self.transitions[new, reason] += 1
        self.state, self.reason, self.since = new, reason, now
