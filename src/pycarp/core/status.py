"""Snapshots of the node's state: what `pycarp status` shows and the control API sends."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pycarp.core import timing
from pycarp.core.actions import State
from pycarp.core.conflict import DigestConflict
from pycarp.core.errors import DropReason
from pycarp.core.health import Check
from pycarp.core.node import Node
from pycarp.core.replay import ReplayGuard
from pycarp.core.state import VirtualHost


@dataclass(frozen=True)
class VirtualHostStatus:
    interface: str
    vhid: int
    state: str  # State value
    since: float | None  # monotonic seconds; the control API adds "for" (seconds ago)
    reason: str | None
    addresses: tuple[str, ...]
    advbase: int  # as advertised now (255 while leaving or demoted by a fault)
    advskew: int  # as advertised now (raised while sends fail, 255 while leaving or demoted)
    master: str | None  # the master's address as last seen (ours when we are MASTER)
    master_advbase: int | None
    master_advskew: int | None
    master_seen: float | None
    adverts_sent: int
    adverts_received: int
    dropped: dict[str, int]  # DropReason value -> count
    fault: str | None  # why the virtual addresses could not be configured (then demoted)
    conflict: tuple[str, float, int] | None = None  # bad digests: (source, since, count)
    constant_counter: tuple[str, ...] = ()  # senders exempt from the replay check
    demote: int = 0  # the demote byte advertised now
    demoted: bool = False
    promoted: bool = False
    track: tuple[str, ...] = ()
    demotion: str = "penalty"
    penalty: int = 0
    master_demote: int | None = None  # the master's demote byte as last seen
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)  # state -> reason -> n
    master_seconds: float = 0.0
    peers: tuple[str, ...] = ()  # a unicast host's peers
    min_ttl: int = 1
    master_down: float = 0.0  # seconds: the master-down interval
    master_down_rule: str = "ucarp"  # its formula (timing.master_down_rule)
    protocol: str = "carp"
    mac: str = "interface"  # where the host's frames come from (VirtualHostConfig.mac)
    # VRRP: the priority advertised now, the master's as last heard, and the intervals (s)
    priority: int | None = None
    master_priority: int | None = None
    advert_int: float | None = None
    master_advert_int: float | None = None

    def to_json(self, *, now: float) -> dict[str, Any]:
        # Not asdict(): it deep-copies every field, costly with 255 hosts polled often.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["dropped"] = dict(self.dropped)
        out["for"] = None if self.since is None else round(now - self.since, 3)
        out["master_seen_ago"] = (
            None if self.master_seen is None else round(now - self.master_seen, 3)
        )
        out["addresses"] = list(self.addresses)
        out["track"] = list(self.track)
        out["peers"] = list(self.peers)
        out["transitions"] = {state: dict(n) for state, n in self.transitions.items()}
        out["master_seconds"] = round(self.master_seconds, 3)
        out["master_down"] = round(self.master_down, 6)
        out["constant_counter"] = list(self.constant_counter)
        out["conflict"] = None
        if self.conflict is not None:
            source, since, count = self.conflict
            out["conflict"] = {"source": source, "for": round(now - since, 3), "count": count}
        del out["since"], out["master_seen"]
        return out


def host_status(
    host: VirtualHost,
    dropped: dict[DropReason, int],
    guard: ReplayGuard | None = None,
    conflict: DigestConflict | None = None,
    *,
    now: float = 0.0,
) -> VirtualHostStatus:
    c = host.config
    peer = host.last_peer
    mine = host.priority
    master: str | None = None
    mbase: int | None = None
    mskew: int | None = None
    mdemote: int | None = None
    seen: float | None = None
    if host.state is State.MASTER:
        own = host.own_address(c.versions[0])  # the address it settles ties with
        master, mbase, mskew, mdemote = str(own), mine.advbase, mine.advskew, mine.demote
    elif peer is not None:
        master, mbase, mskew, seen = str(peer.address), peer.advbase, peer.advskew, peer.at
        mdemote = peer.demote
    if c.vrrp:  # CARP's fields: a VRRP master advertises a priority (master_priority)
        mbase = mskew = mdemote = None
    transitions: dict[str, dict[str, int]] = {}
    for (state, reason), count in sorted(host.transitions.items(), key=lambda i: i[0][0].value):
        transitions.setdefault(state.value, {})[reason.code] = count
    return VirtualHostStatus(
        interface=c.interface,
        vhid=c.vhid,
        state=host.state.value,
        since=host.since,
        reason=host.reason.value if host.reason else None,
        addresses=tuple(str(a) for a in c.addresses),
        advbase=mine.advbase,
        advskew=mine.advskew,
        master=master,
        master_advbase=mbase,
        master_advskew=mskew,
        master_seen=seen,
        adverts_sent=host.adverts_sent,
        adverts_received=host.adverts_received,
        dropped={r.value: n for r, n in dropped.items() if n},
        fault=host.fault or _no_peer(host),
        conflict=None if conflict is None else conflict.shown(),
        constant_counter=tuple(str(a) for a in guard.constant_senders) if guard else (),
        demote=mine.demote,
        demoted=bool(host.demote) and not host.promoted,
        promoted=host.promoted,
        track=c.track,
        demotion=c.demotion,
        penalty=c.penalty,
        master_demote=mdemote,
        transitions=transitions,
        master_seconds=host.master_seconds(now),
        peers=tuple(str(p) for p in c.peers),
        min_ttl=c.min_ttl,
        master_down=host.master_down_interval.total,
        master_down_rule=timing.master_down_rule(c.advbase, c.protocol),
        protocol=c.protocol,
        mac=c.mac,
        **_vrrp(host),
    )


def _vrrp(host: VirtualHost) -> dict[str, Any]:
    """The VRRP fields of a host's status (None for a CARP host)."""
    if not host.config.vrrp:
        return {}
    peer = host.last_peer
    master = host.vrrp_priority if host.state is State.MASTER else None
    master_int = host.config.advert_int / 100 if master is not None else None
    if master is None and peer is not None and peer.interval is not None:
        master, master_int = peer.priority, peer.interval / 100
    return {
        "priority": host.vrrp_priority,
        "master_priority": master,
        "advert_int": host.config.advert_int / 100,
        "master_advert_int": master_int,
    }


def _no_peer(host: VirtualHost) -> str | None:
    why = host.no_peer.fault
    return None if why is None else f"no peer can be reached ({why}): BACKUP until one can"


def node_status(node: Node, *, now: float = 0.0) -> list[VirtualHostStatus]:
    return [
        host_status(h, node.host_drops[k], node.guards[k], node.conflicts[k], now=now)
        for k, h in node.hosts.items()
    ]


def _ago(now: float, when: float | None) -> float | None:
    return None if when is None else round(now - when, 3)


def check_status(check: Check, *, now: float) -> dict[str, Any]:
    c = check.config
    return {
        "name": c.name,
        "type": c.type,
        "group": c.demotes,
        "state": check.state.value,
        "ok": check.last_ok,
        "detail": check.detail,
        "passes": check.passes,
        "fails": check.fails,
        "results": {"ok": check.results[True], "failed": check.results[False]},
        "last_ago": _ago(now, check.last_at),
        "for": _ago(now, check.since),
    }


def group_status(node: Node, group: str) -> dict[str, Any]:
    """A demotion group: its count, why, and who tracks it (also `pycarp demote`'s answer)."""
    health = node.health
    return {
        "name": group,
        "count": health.count(group),
        "failing": [c.config.name for c in health.members(group) if c.demoting],
        "manual": health.manual[group],
        "hosts": [str(k) for k, h in node.hosts.items() if group in h.config.track],
    }


def document(node: Node, *, now: float) -> dict[str, Any]:
    """The whole status of a node, as the control socket's `status` answers it."""
    return {
        "hosts": [s.to_json(now=now) for s in node_status(node, now=now)],
        "interfaces": {
            name: {"dropped": {r.value: n for r, n in drops.items() if n}}
            for name, drops in sorted(node.interface_drops.items())
        },
        "checks": [check_status(c, now=now) for c in node.health.checks.values()],
        "groups": [group_status(node, g) for g in node.health.groups],
    }
