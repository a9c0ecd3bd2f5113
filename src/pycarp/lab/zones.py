"""A lab of SmartOS-like zones built from `vmadm` manifests (needs root, iproute2, nft).

Stable API (used by `pycarp lab` and `pycarp demo`)::

    lab = ZoneLab.up(["zoneA.json", "zoneB.json"], name="lab")  # or ZoneManifest objects
    lab = ZoneLab.load("lab")             # the same lab from another process
    lab.name, lab.rundir, lab.bridge_netns
    lab.zones["zoneA"]                    # Zone: alias, hostname, netns, ip, mac, nic, nics,
                                          #   control_socket, log_file, daemon_pid()
    lab.client                            # the first nic_tag's Client: run, spawn, ping, neigh
    lab.clients["admin"]                  # the Client of each nic_tag
    lab.run("zoneA", ["--interface=net0", ...]) -> int   # pid; [] = <rundir>/zoneA.toml|.cfg
    lab.crash("zoneA")                    # SIGKILL + link down
    lab.stop("zoneA", timeout=10.0) -> bool   # SIGTERM, True if it exited in time
    lab.restart("zoneA") -> int           # link up, same args again
    lab.partition("zoneA", ...); lab.heal()
    lab.status() -> list[ZoneStatus]      # per zone: running?, per vhid state
    lab.reach() -> list[VipStatus]        # per VIP: client reaches it? which zone? why not?
    lab.down()                            # also ZoneLab.teardown(name) without a state file

The parts: zoneplan (names, addresses, MACs from the manifests), zonestate
(Zone, ZoneNic, Client, the state file, the lock), zonebuild (namespaces,
bridges, veths; teardown), nft (spoofing protection), zonedaemons (pycarp in
a zone), zonestatus (what status and reach report).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pycarp.lab import iproute, zonebuild
from pycarp.lab.errors import LabError
from pycarp.lab.owners import owner_alive
from pycarp.lab.processes import wait_gone
from pycarp.lab.zonebuild import KILL_WAIT
from pycarp.lab.zonedaemons import (
    default_args,
    signal_daemon,
    spawn_daemon,
    wait_started,
    with_control_socket,
)
from pycarp.lab.zoneplan import plan
from pycarp.lab.zonestate import (
    STATE_FILE,
    Client,
    Zone,
    ZoneNic,
    check_name,
    clients_of,
    locked,
    read_state,
    rundir_of,
    write_state,
    zones_of,
    zones_state,
)
from pycarp.lab.zonestatus import (
    VipStatus,
    ZoneStatus,
    client_for,
    plumbed_on,
    vips_of,
    why_unreachable,
    zone_status,
)
from pycarp.vmadm.manifest import ZoneManifest, check_together, load_manifest

# The zone lab's whole interface, wherever each name is defined.
__all__ = ["Client", "VipStatus", "Zone", "ZoneLab", "ZoneNic", "ZoneStatus", "rundir_of"]


class ZoneLab:
    def __init__(self, name: str, state: dict[str, Any]) -> None:
        self.name = name
        self.rundir = rundir_of(name)
        self._state = state
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # daemons we started
        self._clients: dict[str, Client] = {}
        self.zones: dict[str, Zone] = {}
        self._load_objects()

    # -- state -------------------------------------------------------------

    def _load_objects(self) -> None:
        self.bridge_netns: str = self._state["bridge_netns"]
        zones = zones_of(self._state)
        for alias, zone in zones.items():
            if alias in self.zones:  # Zone objects callers hold stay current
                self.zones[alias].__dict__.update(zone.__dict__)
                zones[alias] = self.zones[alias]
        self.zones = zones
        for tag, client in clients_of(self._state).items():
            self._clients.setdefault(tag, client)

    @property
    def clients(self) -> dict[str, Client]:
        return dict(self._clients)

    @property
    def client(self) -> Client:
        """The client of the first nic_tag (the only one in a one-network lab)."""
        return next(iter(self._clients.values()))

    def _reload(self) -> None:
        self._state = read_state(self.name)
        self._load_objects()

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Re-read the state under the lab's lock, let the block change it, save it."""
        with locked(self.name):
            path = self.rundir / STATE_FILE
            if not path.exists():
                raise LabError(f"lab {self.name!r} is gone (no {path})")
            self._reload()
            yield
            self._state["zones"] = zones_state(self.zones)
            write_state(self.name, self._state)

    def zone(self, alias: str) -> Zone:
        try:
            return self.zones[alias]
        except KeyError:
            known = ", ".join(self.zones) or "none"
            raise LabError(f"lab {self.name!r} has no zone {alias!r} (zones: {known})") from None

    # -- building ----------------------------------------------------------

    @classmethod
    def up(cls, manifests: Sequence[str | Path | ZoneManifest], name: str = "lab") -> ZoneLab:
        """Build the lab; on any failure everything made so far is removed again."""
        check_name(name)
        specs = [m if isinstance(m, ZoneManifest) else load_manifest(m) for m in manifests]
        check_together(specs)
        if owner_alive(name) or rundir_of(name).exists():
            raise LabError(f"lab {name!r} exists already (pycarp lab down --name {name})")
        leftovers = zonebuild.lab_namespaces(name)
        if leftovers:
            raise LabError(
                f"namespaces of a lab {name!r} exist already ({', '.join(leftovers)});"
                f" pycarp lab down --name {name}"
            )
        state = plan(name, specs)
        rundir_of(name).mkdir(parents=True, exist_ok=False)
        os.chmod(rundir_of(name), 0o700)
        write_state(name, state)  # first, so `lab down` can undo a half-built lab
        lab = cls(name, state)
        try:
            zonebuild.build(lab.bridge_netns, state["bridges"], lab._clients, lab.zones)
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def load(cls, name: str = "lab") -> ZoneLab:
        """The lab called name, as built by ZoneLab.up in any process."""
        check_name(name)
        if not (rundir_of(name) / STATE_FILE).exists():
            raise LabError(f"no lab {name!r} (pycarp lab up ... --name {name})")
        with locked(name):
            return cls(name, read_state(name))

    # -- daemons -----------------------------------------------------------

    def run(self, alias: str, args: Sequence[str] = ()) -> int:
        """Start pycarp in the zone (detached); returns its pid.

        With no args, <rundir>/<alias>.toml or .cfg is the config. Unless args
        set it, --control-socket is the zone's. LabError if it exits at once.
        """
        with self._changing():
            zone = self.zone(alias)
            if zone.daemon_pid() is not None:
                raise LabError(f"{alias}: pycarp is already running (pid {zone.daemon_pid()})")
            argv = list(args) if args else default_args(self.rundir, alias)
            pid = self._spawn(zone, with_control_socket(argv, zone.control_socket))
        wait_started(self.zone(alias), pid)
        return pid

    def _spawn(self, zone: Zone, argv: list[str]) -> int:
        proc = spawn_daemon(zone, argv)
        self._procs[proc.pid] = proc
        return proc.pid

    def _set_ports(self, zone: Zone, up: bool) -> None:
        for nic in zone.nics:
            iproute.set_link_up(self.bridge_netns, nic.port, up)
        zone.link_down = not up

    def crash(self, alias: str) -> None:
        """A dying host: SIGKILL its pycarp and take its link down (no goodbye)."""
        with self._changing():
            zone = self.zone(alias)
            killed = signal_daemon(zone, signal.SIGKILL)
            if killed is not None:
                wait_gone(*killed, timeout=KILL_WAIT)
            self._set_ports(zone, False)

    def stop(self, alias: str, timeout: float = 10.0) -> bool:
        """SIGTERM: a graceful hand-over. True once it exited (waits at most timeout)."""
        with self._changing():
            killed = signal_daemon(self.zone(alias), signal.SIGTERM)
        return killed is None or wait_gone(*killed, timeout=timeout)

    def restart(self, alias: str) -> int:
        """Link up if it was down, then pycarp again with the arguments of its last start."""
        with self._changing():
            zone = self.zone(alias)
            if zone.daemon is None:
                raise LabError(f"{alias}: pycarp was never started here (pycarp lab run {alias})")
            if zone.daemon_pid() is not None:
                raise LabError(f"{alias}: pycarp is still running (pid {zone.daemon_pid()})")
            self._set_ports(zone, True)
            pid = self._spawn(zone, list(zone.daemon["args"]))
        wait_started(self.zone(alias), pid)
        return pid

    def partition(self, *aliases: str) -> None:
        """Take these zones' ports off their bridges (links stay up: a split network)."""
        with self._changing():
            for alias in aliases:
                zone = self.zone(alias)
                for nic in zone.nics:
                    iproute.set_master(self.bridge_netns, nic.port, None)
                zone.partitioned = True

    def heal(self) -> None:
        """Put every port back on its bridge."""
        with self._changing():
            for zone in self.zones.values():
                for nic in zone.nics:
                    iproute.set_master(self.bridge_netns, nic.port, nic.bridge)
                zone.partitioned = False

    # -- looking -----------------------------------------------------------

    def status(self) -> list[ZoneStatus]:
        """Each zone's pycarp, as its control socket reports it."""
        with locked(self.name):
            self._reload()
        return [zone_status(zone) for zone in self.zones.values()]

    def reach(self, statuses: Sequence[ZoneStatus] | None = None) -> list[VipStatus]:
        """For each VIP of the running daemons: one ping from the client, who answered, why not."""
        statuses = list(statuses) if statuses is not None else self.status()
        vips, masters = vips_of(statuses)
        macs = {nic.mac: z.alias for z in self.zones.values() for nic in z.nics}
        addresses = {alias: zone.addresses() for alias, zone in self.zones.items()}
        result = []
        for vip, vhid in vips.items():
            client = client_for(vip, self._clients.values())
            on = plumbed_on(vip, addresses)
            if client is None:
                problem = "no client: the VIP is on none of the lab's networks"
                result.append(VipStatus(vip, vhid, False, None, None, [], on, problem))
                continue
            client.flush_neigh()  # ask afresh: a stale entry would name the old master
            ok = client.ping(vip, count=1, timeout=1.0)
            mac = client.neigh(vip)
            who = macs.get(mac) if mac else None
            vs = VipStatus(vip, vhid, ok, who if ok else None, mac, masters.get(vip, []), on)
            if not ok:
                vs.problem = why_unreachable(vip, on, self.zones)
            result.append(vs)
        return result

    # -- tearing down ------------------------------------------------------

    def down(self) -> list[str]:
        """Kill every process, delete every namespace and the run directory. Idempotent."""
        spawned = [p for c in self._clients.values() for p in c.procs]
        for proc in spawned:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        removed = ZoneLab.teardown(self.name, self._state)
        for proc in [*self._procs.values(), *spawned]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
        return removed

    @staticmethod
    def teardown(name: str, state: dict[str, Any] | None = None) -> list[str]:
        """Remove a lab from its state file if any, and by its name prefix in any case.

        Returns the namespaces removed. Works after the creator was killed.
        """
        return zonebuild.teardown(name, state)
