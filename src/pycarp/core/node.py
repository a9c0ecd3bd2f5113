"""A node: every virtual host of one process, and the checks on what arrives.

Received datagrams are checked in ucarp's order (own source, TTL, version,
vhid, group, checksum, digest; for a unicast host: source among its peers,
TTL at least min_ttl, instead of TTL 255 and the group), then against replays (replay.py), counted
when dropped, and handed to the one virtual host they are for. Bad digests
that keep coming are a conflict (conflict.py), logged when it begins and ends.

Hosts are indexed by interface and vhid, and their deadlines kept in a heap,
so that a packet or a timer costs the same with 255 hosts as with one. Change
hosts only through the Node: it reschedules a host after every call.

The Node owns one deadline of its own: a graceful stop gives up waiting for
the hand-overs HANDOVER_SLACK seconds after the longest master-down interval.
It also runs the health checks' schedule (health.py) and hands each host the
demote count of the groups it tracks whenever one changes.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from pycarp.core import packet, packet6, unicast, vrrp
from pycarp.core.actions import (
    Action,
    DemotionChanged,
    HandOverTimedOut,
    HostKey,
    Link,
    Notice,
    PacketDropped,
    State,
)
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import VirtualHostConfig
from pycarp.core.conflict import QUIET_INTERVALS, DigestConflict
from pycarp.core.errors import ConfigError, DropReason, PacketError
from pycarp.core.health import Health, host_demotion
from pycarp.core.packet import Address
from pycarp.core.replay import REPLAYED, ReplayGuard, constant_notice
from pycarp.core.state import VirtualHost

DEMOTION_FIELDS = ("track", "demotion", "penalty")  # a reload changes these in place
HANDOVER_SLACK = 1.0  # beyond the longest master-down interval, a stop never waits longer


class Node:
    def __init__(
        self,
        configs: Iterable[VirtualHostConfig],
        *,
        counter: Callable[[], int],
        checks: Iterable[CheckConfig] = (),
        groups: Iterable[str] = (),
    ) -> None:
        """`counter` gives each virtual host its initial counter (the runtime's random source)."""
        self.hosts: dict[HostKey, VirtualHost] = {}
        self.health = Health(checks, groups)
        self.drops: Counter[DropReason] = Counter()
        # drops before a packet is matched to a virtual host (TTL, version, length)
        self.interface_drops: dict[str, Counter[DropReason]] = {}
        self.host_drops: dict[HostKey, Counter[DropReason]] = {}
        self.guards: dict[HostKey, ReplayGuard] = {}
        self.conflicts: dict[HostKey, DigestConflict] = {}
        self.conflict_changes = 0  # digest conflicts begun or ended: when a summary is stale
        self._by_interface: dict[str, dict[int, VirtualHost]] = {}
        self._own_sources: dict[str, set[Address]] = {}
        self._heap: list[tuple[float, int, HostKey]] = []  # (deadline, tie-break, host)
        self._due: dict[HostKey, float | None] = {}  # each host's deadline in the heap
        self._order = itertools.count()
        self._give_up_at: float | None = None  # while stopping: when to stop waiting
        for config in configs:
            self.insert(VirtualHost(config, counter=counter()))
        self._check_tracks(h.config for h in self.hosts.values())

    @property
    def interfaces(self) -> set[str]:
        return set(self._by_interface)

    def next_deadline(self) -> float | None:
        """When on_timer() next needs to run: the earliest of every deadline, or None."""
        give_up = self._give_up_at
        if give_up is not None and self.stopped:
            give_up = self._give_up_at = None
        hosts: float | None = None
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            if self._due.get(key) == deadline:
                hosts = deadline
                break
            heapq.heappop(heap)  # superseded by a later entry for the same host
        due = [d for d in (hosts, give_up, self.health.next_deadline()) if d is not None]
        return min(due, default=None)

    def start(self, *, now: float, links: Callable[[str], Link]) -> list[Action]:
        """Start every host and check; `links` tells each interface's MAC and carrier.

        Checks that have not passed yet demote from the start (boot-time demotion).
        """
        actions: list[Action] = []
        for group in self.health.groups:
            if count := self.health.count(group):
                why = "checks have not passed yet" if self.health.members(group) else "set by hand"
                actions.append(DemotionChanged(group, 0, count, why, self._trackers(group)))
        for host in self.hosts.values():
            host.set_demotion(host_demotion(self.health, host.config.track), now=now)
            actions += self._call(host, host.start(now=now, link=links(host.key.interface)))
        for interface in self._by_interface:
            self._own_sources_changed(interface)  # the link-local addresses are known now
        return [*actions, *self.health.start(now=now)]

    def on_timer(self, *, now: float) -> list[Action]:
        due: list[VirtualHost] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._due.get(key) == deadline:
                self._due[key] = None
                due.append(self.hosts[key])
        actions: list[Action] = [*self.health.on_timer(now=now)]
        for host in due:
            actions += self._conflict_over(host.key, now)
            actions += self._call(host, host.on_timer(now=now))
        if self._give_up_at is not None and now >= self._give_up_at:
            self._give_up_at = None
            if not self.stopped:
                actions += [HandOverTimedOut(), *self.shutdown(now=now, graceful=False)]
        return actions

    def link_changed(self, interface: str, *, up: bool, now: float) -> list[Action]:
        actions: list[Action] = []
        for host in self._on(interface):
            actions += self._call(host, host.link_changed(up=up, now=now))
        return actions

    def force_backup(self, *, now: float, vhid: int | None = None) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            if vhid is None or host.key.vhid == vhid:
                actions += self._call(host, host.force_backup(now=now))
        return actions

    def promote(self, *, now: float, vhid: int | None = None) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            if vhid is None or host.key.vhid == vhid:
                actions += self._call(host, host.promote(now=now))
        return actions

    # -- health checks and demotion ------------------------------------

    def check_result(self, name: str, *, ok: bool, detail: str, now: float) -> list[Action]:
        """A run of check `name` (a RunCheck) ended: passed or not, and what it said."""
        check = self.health.checks.get(name)
        if check is None:
            return []  # gone with a reload
        group = check.config.demotes
        before = self.health.count(group)
        reported = self.health.result(name, ok, detail, now=now)
        if reported is None:
            return []
        why = f"check {name} is {reported.state}" if reported.changed else f"check {name}"
        return [reported, *self._demotion(group, before, why, now)]

    def demote(self, group: str, by: int, *, now: float) -> list[Action]:
        """`pycarp demote GROUP +N|-N`; ValueError for a group this process does not have."""
        before = self.health.count(group) if group in self.health.manual else 0
        self.health.adjust(group, by)
        return self._demotion(group, before, f"pycarp demote {by:+d}", now)

    def configure_health(
        self, checks: Iterable[CheckConfig], groups: Iterable[str], *, now: float
    ) -> list[Action]:
        """A reload's checks and groups: unchanged checks keep their state."""
        before = {group: self.health.count(group) for group in self.health.groups}
        self.health.configure(checks, groups)  # a host's track is checked by retune() and add()
        actions: list[Action] = []
        for group in sorted({*before, *self.health.groups}):
            actions += self._demotion(group, before.get(group, 0), "reloaded", now)
        return [*actions, *self.health.start(now=now)]

    def retune(self, config: VirtualHostConfig, *, now: float) -> list[Action] | None:
        """A reload's config for a host that differs only in how it is demoted, taken in place.

        None when more differs: then the host must be replaced (remove, add).
        """
        key = HostKey(config.interface, config.vhid)
        host = self.hosts[key]
        if replace(host.config, **{f: getattr(config, f) for f in DEMOTION_FIELDS}) != config:
            return None
        self._check_tracks([config])
        count = host_demotion(self.health, config.track)
        return self._call(host, host.set_demotion(count, now=now, config=config))

    def _demotion(self, group: str, before: int, why: str, now: float) -> list[Action]:
        after = self.health.count(group) if group in self.health.manual else 0
        if after == before:
            return []
        keys = self._trackers(group)
        actions: list[Action] = [DemotionChanged(group, before, after, why, keys)]
        for key in keys:
            host = self.hosts[key]
            count = host_demotion(self.health, host.config.track)
            actions += self._call(host, host.set_demotion(count, now=now))
        return actions

    def _trackers(self, group: str) -> tuple[HostKey, ...]:
        return tuple(k for k, h in self.hosts.items() if group in h.config.track)

    def _check_tracks(self, configs: Iterable[VirtualHostConfig]) -> None:
        """ConfigError for a host that tracks a group this node does not have."""
        known = set(self.health.groups)
        for c in configs:
            for group in c.track:
                if group not in known:
                    where = HostKey(c.interface, c.vhid)
                    raise ConfigError("track", f"{where} tracks {group!r}, which no check defines")

    def shutdown(self, *, now: float, graceful: bool = True) -> list[Action]:
        """Stop every host: a MASTER hands over first, unless not graceful.

        However the hand-overs go, a graceful stop ends HANDOVER_SLACK seconds
        after the longest master-down interval (on_timer() then stops the rest).
        """
        if not graceful:
            self._give_up_at = None
        elif self._give_up_at is None:
            longest = max((h.master_down_interval.total for h in self.hosts.values()), default=0)
            self._give_up_at = now + longest + HANDOVER_SLACK
        actions: list[Action] = []
        for host in self.hosts.values():
            actions += self._call(host, host.shutdown(now=now, graceful=graceful))
        return actions

    @property
    def stopped(self) -> bool:
        """Every host has finished stopping (handovers included)."""
        return all(h.state is State.INIT for h in self.hosts.values())

    def add(
        self, config: VirtualHostConfig, *, counter: int, now: float, link: Link
    ) -> list[Action]:
        """Start a new virtual host (a reload)."""
        host = VirtualHost(config, counter=counter)
        self._check_tracks([config])
        self.insert(host)
        host.set_demotion(host_demotion(self.health, config.track), now=now)
        actions = self._call(host, host.start(now=now, link=link))
        self._own_sources_changed(config.interface)
        return actions

    def remove(self, key: HostKey, *, now: float) -> list[Action]:
        """Stop a virtual host at once and forget it (a reload).

        The actions returned are its last, complete as every action is: the
        runtime carries them out without the host.
        """
        host = self.hosts.pop(key)
        self.host_drops.pop(key, None)
        self.guards.pop(key, None)
        self.conflicts.pop(key, None)
        self._due.pop(key, None)
        on_interface = self._by_interface[key.interface]
        del on_interface[key.vhid]
        if not on_interface:
            del self._by_interface[key.interface]
        self._own_sources_changed(key.interface)
        return host.shutdown(now=now, graceful=False)

    def send_result(self, key: HostKey, *, ok: bool, now: float, detail: str = "") -> list[Action]:
        host = self.hosts.get(key)
        if host is None:
            return []  # removed by a reload meanwhile
        return self._call(host, host.send_result(ok=ok, now=now, detail=detail))

    def addresses_result(
        self, key: HostKey, *, ok: bool, now: float, detail: str = ""
    ) -> list[Action]:
        """Whether an AddAddresses was carried out; `detail` says why not."""
        host = self.hosts.get(key)
        if host is None:
            return []
        return self._call(host, host.addresses_result(ok=ok, now=now, detail=detail))

    def receive(self, datagram: bytes, *, interface: str, now: float) -> list[Action]:
        """An IPv4 or IPv6 datagram of protocol 112 that arrived on `interface`."""
        source: Address | None = None
        key: HostKey | None = None
        actions: list[Action] = []
        try:
            source, destination, ttl, proto, payload = packet6.parse_ip(datagram)
            if proto != packet.PROTO_CARP or source in self._own_sources.get(interface, ()):
                return []  # not CARP, or our own advertisement looped back
            version = payload[0] >> 4 if len(payload) > 1 else None
            placed = version in (packet.VERSION, vrrp.VERSION)
            host = self._by_interface.get(interface, {}).get(payload[1]) if placed else None
            if host is not None and (
                source.version not in host.config.versions
                or version != (vrrp.VERSION if host.config.vrrp else packet.VERSION)
            ):
                return []  # a family or protocol this host does not speak, like another vhid
            if host is not None and host.config.unicast:
                key = host.key
                unicast.check_source(host.config, source, ttl)
            else:
                if ttl != packet.TTL:
                    raise PacketError(DropReason.BAD_TTL, f"TTL {ttl}, expected 255")
                if placed:
                    group = packet6.CARP_GROUP6 if source.version == 6 else None
                    if host is None or destination != (group or host.config.group):
                        # ucarp ignores other vhids and groups before the checksum,
                        # so neighbours (VRRPv2 shares protocol 112) are not drops.
                        return []
                    key = host.key
                    if host.config.vrrp:  # no digest, no counter: checked, it is heard
                        heard = vrrp.decode(payload, source, destination)
                        return self._call(host, host.receive(heard, source=source, now=now))
            advert = packet.decode(payload)  # short, bad version, type or checksum: raises
            assert host is not None  # decode() raised for whatever could not be placed
            if not host.signer.verify(advert.counter, advert.digest):
                actions += self._bad_digest(host.key, source, now)
                raise PacketError(
                    DropReason.BAD_DIGEST, "bad digest: check vhid, password and virtual address"
                )
            actions += self._conflict_over(host.key, now)
            guard = self.guards[host.key]
            replayed = guard.check(advert.counter, source, own=host.counter)
            if replayed is not None:
                raise PacketError(replayed, REPLAYED[replayed])
            if guard.flagged is not None:
                actions.append(Notice(host.key, constant_notice(guard.flagged)))
                guard.flagged = None
        except PacketError as exc:
            return [self._dropped(key, interface, exc.reason, source, str(exc)), *actions]
        return actions + self._call(host, host.receive(advert, source=source, now=now))

    def _on(self, interface: str) -> list[VirtualHost]:
        return list(self._by_interface.get(interface, {}).values())

    def insert(self, host: VirtualHost) -> None:
        """Take a virtual host that is not started yet (add() builds one from a config)."""
        key = host.key
        if key in self.hosts:
            raise ConfigError(None, f"vhid {key.vhid} is configured twice on {key.interface}")
        self.hosts[key] = host
        self.host_drops[key] = Counter()
        self.guards[key] = ReplayGuard(host.config.replay)
        quiet = QUIET_INTERVALS * host.master_down_interval.total
        self.conflicts[key] = DigestConflict(quiet)
        self._by_interface.setdefault(key.interface, {})[key.vhid] = host
        self._own_sources_changed(key.interface)

    def _own_sources_changed(self, interface: str) -> None:
        hosts = self._on(interface)
        own = {h.config.srcip for h in hosts} | {h.link_local for h in hosts}
        self._own_sources[interface] = {a for a in own if a is not None}

    def _call(self, host: VirtualHost, actions: list[Action]) -> list[Action]:
        """Reschedule `host` after one of its methods ran; pass its actions on."""
        key = host.key
        deadline = host.next_deadline()
        if deadline != self._due.get(key) and key in self.hosts:
            self._due[key] = deadline
            if deadline is not None:
                heapq.heappush(self._heap, (deadline, next(self._order), key))
        return actions

    def _bad_digest(self, key: HostKey, source: Address, now: float) -> list[Action]:
        return self._conflict_notice(key, self.conflicts[key].failed(source, now=now))

    def _conflict_over(self, key: HostKey, now: float) -> list[Action]:
        return self._conflict_notice(key, self.conflicts[key].expire(now=now))

    def _conflict_notice(self, key: HostKey, said: str | None) -> list[Action]:
        if said is None:
            return []
        self.conflict_changes += 1
        return [Notice(key, said)]

    def _dropped(
        self,
        key: HostKey | None,
        interface: str,
        reason: DropReason,
        source: Address | None,
        detail: str,
    ) -> PacketDropped:
        self.drops[reason] += 1
        if key is not None:
            self.host_drops[key][reason] += 1
        else:
            self.interface_drops.setdefault(interface, Counter())[reason] += 1
        return PacketDropped(key, reason, source, detail)
