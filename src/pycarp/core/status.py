"""Snapshots of the node's state: what `pycarp status` shows and the control API sends."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pycarp.core.actions import State
from pycarp.core.conflict import DigestConflict
from pycarp.core.errors import DropReason
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

    def to_json(self, *, now: float) -> dict[str, Any]:
        # Not asdict(): it deep-copies every field, costly with 255 hosts polled often.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["dropped"] = dict(self.dropped)
        out["for"] = None if self.since is None else round(now - self.since, 3)
        out["master_seen_ago"] = (
            None if self.master_seen is None else round(now - self.master_seen, 3)
        )
        out["addresses"] = list(self.addresses)
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
) -> VirtualHostStatus:
    c = host.config
    peer = host.last_peer
    master: str | None = None
    mbase: int | None = None
    mskew: int | None = None
    seen: float | None = None
    if host.state is State.MASTER:
        master, (mbase, mskew) = str(c.srcip), host.advertised
    elif peer is not None:
        master, mbase, mskew, seen = str(peer.address), peer.advbase, peer.advskew, peer.at
    return VirtualHostStatus(
        interface=c.interface,
        vhid=c.vhid,
        state=host.state.value,
        since=host.since,
        reason=host.reason.value if host.reason else None,
        addresses=tuple(str(a) for a in c.addresses),
        advbase=host.advertised[0],
        advskew=host.advertised[1],
        master=master,
        master_advbase=mbase,
        master_advskew=mskew,
        master_seen=seen,
        adverts_sent=host.adverts_sent,
        adverts_received=host.adverts_received,
        dropped={r.value: n for r, n in dropped.items() if n},
        fault=host.fault,
        conflict=None if conflict is None else conflict.shown(),
        constant_counter=tuple(str(a) for a in guard.constant_senders) if guard else (),
    )


def node_status(node: Node) -> list[VirtualHostStatus]:
    return [
        host_status(h, node.host_drops[k], node.guards[k], node.conflicts[k])
        for k, h in node.hosts.items()
    ]
