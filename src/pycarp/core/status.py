"""Snapshots of the node's state: what `pycarp status` shows and the control API sends."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pycarp.core.actions import State
from pycarp.core.errors import DropReason
from pycarp.core.node import Node
from pycarp.core.state import VirtualHost


@dataclass(frozen=True)
class VirtualHostStatus:
    interface: str
    vhid: int
    state: str  # State value
    since: float | None  # monotonic seconds; the control API adds "for" (seconds ago)
    reason: str | None
    addresses: tuple[str, ...]
    advbase: int
    advskew: int  # as advertised now (raised while sends fail)
    master: str | None  # the master's address as last seen (ours when we are MASTER)
    master_advbase: int | None
    master_advskew: int | None
    master_seen: float | None
    adverts_sent: int
    adverts_received: int
    dropped: dict[str, int]  # DropReason value -> count

    def to_json(self, *, now: float) -> dict[str, Any]:
        out = asdict(self)
        out["for"] = None if self.since is None else round(now - self.since, 3)
        out["master_seen_ago"] = (
            None if self.master_seen is None else round(now - self.master_seen, 3)
        )
        out["addresses"] = list(self.addresses)
        del out["since"], out["master_seen"]
        return out


def host_status(host: VirtualHost, dropped: dict[DropReason, int]) -> VirtualHostStatus:
    c = host.config
    peer = host.last_peer
    master: str | None = None
    mbase: int | None = None
    mskew: int | None = None
    seen: float | None = None
    if host.state is State.MASTER:
        master, mbase, mskew = str(c.srcip), c.advbase, host.advskew
    elif peer is not None:
        master, mbase, mskew, seen = str(peer.address), peer.advbase, peer.advskew, peer.at
    return VirtualHostStatus(
        interface=c.interface,
        vhid=c.vhid,
        state=host.state.value,
        since=host.since,
        reason=host.reason.value if host.reason else None,
        addresses=tuple(str(a) for a in c.addresses),
        advbase=c.advbase,
        advskew=host.advskew,
        master=master,
        master_advbase=mbase,
        master_advskew=mskew,
        master_seen=seen,
        adverts_sent=host.adverts_sent,
        adverts_received=host.adverts_received,
        dropped={r.value: n for r, n in dropped.items() if n},
    )


def node_status(node: Node) -> list[VirtualHostStatus]:
    return [host_status(h, node.host_drops[k]) for k, h in node.hosts.items()]
