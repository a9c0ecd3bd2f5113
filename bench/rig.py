"""The bench's namespace rig: a lab of cells, each a segment with two daemon hosts and a client.

A Cell runs one case (a kind of daemon with a timing) on its own bridge, so
that CARP and VRRP, which share IP protocol 112 and its multicast group,
never hear each other. The daemons of a cell are configured alike on both
hosts: whichever started first is the master, a restarted one stays backup,
so each failover trial restarts the fallen host as the new backup and the
roles alternate. The client probes the VIP and captures the advertisements.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.kinds import Group, Timing, interval, make_group, master_down
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until

LAB_TAG = "bench"  # namespaces pycarp-bench<4 hex>-br, pycarp-bench<4 hex>-a1...
VIP_NET = "203.0.113.0/24"  # every VIP but vhid 255's: on the clients' link
START_WAIT = 15.0  # seconds for a daemon to reach its first state
MAX_CELLS = 40


class Unsettled(RuntimeError):
    """A pair that does not keep one master and one backup (ucarp with advbase 0)."""


@dataclass
class Cell:
    """One case on its own segment: hosts a and b run the daemons, the client looks."""

    index: int
    kind: str
    timing: Timing
    a: Host
    b: Host
    client: Host
    top: Path
    vhid: int = 1
    groups: dict[str, Group] = field(default_factory=dict)  # host role -> its running group
    _runs: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.timing.name}"

    @property
    def interval(self) -> float:
        return interval(self.kind, self.timing)

    @property
    def fresh(self) -> bool:
        """ucarp with advbase 0 flaps between equals (its master-down is one interval): each
        trial then starts a fresh pair, the backup at advskew + 1, as ucarp users run it."""
        return self.kind == "ucarp" and self.timing.advbase == 0

    @property
    def backup_timing(self) -> Timing:
        if self.fresh:
            return dataclasses.replace(self.timing, advskew=self.timing.advskew + 1)
        return self.timing

    @property
    def bound(self) -> float:
        """The protocol's master-down interval of the backup."""
        return master_down(self.kind, self.backup_timing)

    def host(self, role: str) -> Host:
        return self.a if role == self.a.role else self.b

    def peer(self, role: str) -> str:
        return self.b.role if role == self.a.role else self.a.role

    def start(self, role: str, timing: Timing | None = None) -> Group:
        """A fresh group on host `role` (work directory of its own); not waited for."""
        timing = timing or self.timing
        workdir = (
            self.top / f"{self.index}-{self.kind}-{self.timing.name}-{role}-{next(self._runs)}"
        )
        group = make_group(self.kind, self.host(role), [self.vhid], timing, workdir)
        self.groups[role] = group
        group.start()
        return group

    def wait_state(self, role: str, state: str, timeout: float = START_WAIT) -> bool:
        group = self.groups[role]
        return wait_until(lambda: group.problem(state) is None or not group.alive(), timeout) and (
            group.problem(state) is None
        )

    def master_role(self) -> str | None:
        """The host whose group is MASTER while the other's (if running) is BACKUP."""
        states = {r: g.states().get(self.vhid) for r, g in self.groups.items() if g.alive()}
        masters = [r for r, s in states.items() if s == "MASTER"]
        if len(masters) != 1:
            return None
        others = [s for r, s in states.items() if r != masters[0]]
        return masters[0] if all(s == "BACKUP" for s in others) else None

    def has_vip(self, role: str) -> bool:
        group = self.groups.get(role)
        return group is not None and bool(group.plumbed())

    def pair_up(self) -> str:
        """Both daemons running, one MASTER and one BACKUP that heard it; the master's role."""
        if self.a.role not in self.groups or not self.groups[self.a.role].alive():
            self.close_role(self.a.role)
            self.start(self.a.role)
            if not self.wait_state(self.a.role, "MASTER", START_WAIT + self.bound):
                raise RuntimeError(f"{self.name}: a lone daemon did not become MASTER: "
                                   f"{self.groups[self.a.role].log_tail()}")  # fmt: skip
        master = self.master_role() or self.a.role
        backup = self.peer(master)
        if backup not in self.groups or not self.groups[backup].alive():
            self.rejoin(backup)
        return self.settled(master)

    def rejoin(self, role: str) -> None:
        """Start `role` again (after a crash or stop) and wait until it is BACKUP."""
        self.close_role(role)
        self.host(role).link_up()
        self.start(role, self.backup_timing)
        if not self.wait_state(role, "BACKUP"):
            raise Unsettled(f"{self.name}: restarted {role} did not become BACKUP: "
                               f"{self.groups[role].log_tail()}")  # fmt: skip

    def settled(self, master: str, timeout: float = 5.0) -> str:
        """Wait (bounded) until `master` is MASTER with the VIP and its peer BACKUP."""
        ok = wait_until(lambda: self.master_role() == master and self.has_vip(master), timeout)
        if not ok:
            raise Unsettled(f"{self.name}: not settled with {master} as master: {self.states()}")
        return master

    def states(self) -> dict[str, str | None]:
        """Host role -> its daemon's state ("gone" for one that exited)."""
        return {
            r: g.states().get(self.vhid) if g.alive() else "gone" for r, g in self.groups.items()
        }

    def close_role(self, role: str) -> None:
        group = self.groups.pop(role, None)
        if group is not None:
            group.close()

    def close(self) -> None:
        for role in list(self.groups):
            self.close_role(role)
        for host in (self.a, self.b):
            host.link_up(wait=False)


class Rig:
    """The lab and its cells; cells are made on demand and closed with the rig."""

    def __init__(self, lab: Lab, top: Path) -> None:
        self.lab = lab
        self.top = top
        self.cells: list[Cell] = []
        self._hosts: list[tuple[Host, Host, Host]] = []  # per segment, reused by later cells

    def _segment_hosts(self, i: int) -> tuple[Host, Host, Host]:
        while len(self._hosts) <= i:
            n = len(self._hosts) + 1
            if n > MAX_CELLS:
                raise RuntimeError("too many cells")
            base = 4 * n  # hosts .4n (a), .4n+1 (b), .4n+2 (client): never a VIP
            hosts = tuple(
                self.lab.add_host(f"{role}{n}", f"198.51.100.{base + k}", segment=f"br{n}")
                for k, role in enumerate(("a", "b", "c"))
            )
            client = hosts[2]
            client.run("ip", "route", "add", VIP_NET, "dev", client.ifname)
            self._hosts.append((hosts[0], hosts[1], hosts[2]))
        return self._hosts[i]

    def cells_for(self, cases: list[tuple[str, Timing]]) -> list[Cell]:
        """A cell per (kind, timing) case, on segments 1..n (closing the cells before)."""
        self.close_cells()
        for i, (kind, timing) in enumerate(cases):
            a, b, client = self._segment_hosts(i)
            self.cells.append(Cell(i + 1, kind, timing, a, b, client, self.top))
        return list(self.cells)

    def close_cells(self) -> None:
        for cell in self.cells:
            cell.close()
        self.cells = []


def pause(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
