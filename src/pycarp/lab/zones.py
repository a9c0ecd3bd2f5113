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

Layout, for a lab "lab": the bridges (one per nic_tag, "br-<tag>") live in the
namespace "pycarp-lab-br"; each zone is the namespace "pycarp-lab-<alias>"
with one veth per NIC (net0, net1...); each bridge also has a client
namespace "pycarp-lab-client-<tag>". SmartOS's anti-spoofing is nftables in
the bridge namespace (see _nft_rules). The state is /run/pycarp-lab/<lab>/:
state.json, each zone's control socket, log and optional config.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pycarp.client.commands import ControlError, request
from pycarp.lab.netns import (
    _TAG_RE,
    ALLOWED_NETWORKS,
    NETNS_DIR,
    OWNER_DIR,
    PREFIX,
    LabError,
    _delete_netns,
    _ip,
    _ip_binary,
    _list_netns,
    _netns_id,
    _owner_alive,
    _pids_in,
    _port_name,
    _signal_ns_processes,
    _start_time,
    run_in,
    spawn_in,
)
from pycarp.vmadm.manifest import ZoneManifest, check_together, load_manifest

__all__ = ["Client", "VipStatus", "Zone", "ZoneLab", "ZoneNic", "ZoneStatus", "rundir_of"]

STATE_FILE = "state.json"
CLIENT_IFNAME = "eth0"
FIRST_CLIENT_HOST = 10  # the client takes the first free address from .10 up
START_WAIT = 5.0  # seconds `run` waits for the daemon's control socket
_NFT_TABLE = "pycarp_lab"


def rundir_of(name: str) -> Path:
    return Path(OWNER_DIR) / name


def _check_name(name: str) -> None:
    if not _TAG_RE.fullmatch(name):
        raise LabError(f"lab name must match {_TAG_RE.pattern}, not {name!r}")


def _short(prefix: str, text: str) -> str:
    """An interface name (at most 15 bytes): prefix+text, hashed when too long."""
    name = f"{prefix}{text}"
    if len(name) <= 15:
        return name
    return f"{prefix}{text[:6]}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _stable_mac(*parts: str) -> str:
    """A locally administered unicast MAC that is the same for the same lab/zone/NIC."""
    digest = hashlib.sha1("/".join(parts).encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def _alive(pid: int, start: int | None) -> bool:
    """pid still names the (non-zombie) process that started at `start`."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X") and (start is None or _start_time(pid) == start)


def _reap(pid: int) -> None:
    """Collect our own child's exit status (a no-op for another process's child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not _alive(pid, start):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _nft(netns: str, script: str) -> None:
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        raise LabError("nftables `nft` not found (apt-get install nftables)")
    done = subprocess.run(
        [_ip_binary(), "netns", "exec", netns, nft, "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"nft failed in {netns}: {done.stderr.strip()}")


# --- what the state file holds ----------------------------------------------


@dataclass
class ZoneNic:
    name: str  # inside the zone: net0...
    nic_tag: str
    ip: str
    prefix: int
    gateway: str | None
    mac: str
    port: str  # the bridge-side veth, in the bridge namespace
    bridge: str
    allow_ip_spoofing: bool
    allow_mac_spoofing: bool
    primary: bool = False


@dataclass
class Zone:
    alias: str
    hostname: str
    netns: str
    nics: list[ZoneNic]
    control_socket: str
    log_file: str
    manifest: str = ""
    daemon: dict[str, Any] | None = None  # pid, start, args
    link_down: bool = False
    partitioned: bool = False

    @property
    def nic(self) -> ZoneNic:
        """The primary NIC (the manifest's "primary", else the first)."""
        return next((n for n in self.nics if n.primary), self.nics[0])

    @property
    def ip(self) -> str:
        return self.nic.ip

    @property
    def mac(self) -> str:
        return self.nic.mac

    def daemon_pid(self) -> int | None:
        """The pid of the pycarp the lab started here, None if it is not running."""
        if self.daemon is None or not _alive(self.daemon["pid"], self.daemon["start"]):
            return None
        return int(self.daemon["pid"])

    def addresses(self) -> list[str]:
        """Every IPv4 address in the zone ("a.b.c.d/len"), VIPs included."""
        out = _ip("-n", self.netns, "-j", "-4", "addr", "show").stdout
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(out or "[]")
            for a in link.get("addr_info", [])
            if a.get("family") == "inet" and link.get("ifname") != "lo"
        ]


@dataclass
class Client:
    """The client namespace on one bridge: a host that only uses the VIPs."""

    nic_tag: str
    netns: str
    ip: str
    prefix: int
    mac: str
    port: str
    bridge: str
    ifname: str = CLIENT_IFNAME
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def run(
        self, *argv: str, check: bool = True, timeout: float = 10.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the client's namespace and wait; text mode, output captured."""
        return run_in(self.netns, argv, check=check, timeout=timeout, input=input)

    def spawn(
        self,
        *argv: str,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start argv in the client's namespace, own session; down() kills it."""
        proc = spawn_in(self.netns, argv, stdout=stdout, stderr=stderr, env=env)
        self._procs.append(proc)
        return proc

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True if ip answers at least one of count echo requests."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", f"{timeout:g}", ip]
        try:
            done = self.run(*argv, check=False, timeout=count * (timeout + 0.2) + 5.0)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def neigh(self, ip: str) -> str | None:
        """The MAC the client's neighbour table has for ip (None: none, or unresolved)."""
        out = _ip("-n", self.netns, "-j", "neigh", "show", "to", ip).stdout
        for entry in json.loads(out or "[]"):
            mac = entry.get("lladdr")
            if mac and "FAILED" not in entry.get("state", []):
                return str(mac)
        return None

    def flush_neigh(self) -> None:
        """Forget learned MACs, so the next packet asks who has the address now."""
        _ip("-n", self.netns, "neigh", "flush", "dev", self.ifname, check=False)


@dataclass
class ZoneStatus:
    zone: str
    running: bool
    pid: int | None
    hosts: list[dict[str, Any]]  # `pycarp status --json`, one per vhid
    error: str | None = None  # why hosts is empty though running
    link_down: bool = False
    partitioned: bool = False

    @property
    def states(self) -> dict[int, str]:
        """vhid -> INIT/BACKUP/MASTER."""
        return {int(h["vhid"]): str(h["state"]) for h in self.hosts}


@dataclass
class VipStatus:
    vip: str
    vhid: int
    reachable: bool
    answered_by: str | None  # zone alias, or None
    mac: str | None  # what the client's neighbour table says
    masters: list[str]  # zones whose pycarp says MASTER for this vhid
    plumbed_on: list[str]  # zones that have the address
    problem: str | None = None  # one line: why unreachable

    def describe(self) -> str:
        if self.reachable:
            who = self.answered_by or f"unknown MAC {self.mac}"
            return f"{self.vip} (vhid {self.vhid}): reachable, answered by {who}"
        return f"{self.vip} (vhid {self.vhid}): {self.problem or 'unreachable'}"


# --- the lab ----------------------------------------------------------------


class ZoneLab:
    def __init__(self, name: str, state: dict[str, Any]) -> None:
        self.name = name
        self.rundir = rundir_of(name)
        self._state = state
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # daemons we started
        self._clients: dict[str, Client] = {}
        self._load_objects()

    # -- state -------------------------------------------------------------

    def _load_objects(self) -> None:
        self.bridge_netns: str = self._state["bridge_netns"]
        old: dict[str, Zone] = getattr(self, "zones", {})
        zones = {}
        for alias, z in self._state["zones"].items():
            zone = Zone(**{**z, "nics": [ZoneNic(**n) for n in z["nics"]]})
            if alias in old:  # Zone objects callers hold stay current
                old[alias].__dict__.update(zone.__dict__)
                zone = old[alias]
            zones[alias] = zone
        self.zones: dict[str, Zone] = zones
        for tag, c in self._state["clients"].items():
            if tag not in self._clients:
                self._clients[tag] = Client(**c)

    @property
    def clients(self) -> dict[str, Client]:
        return dict(self._clients)

    @property
    def client(self) -> Client:
        """The client of the first nic_tag (the only one in a one-network lab)."""
        return next(iter(self._clients.values()))

    def _save(self) -> None:
        zones = {}
        for alias, zone in self.zones.items():
            z = dict(zone.__dict__)
            z["nics"] = [dict(n.__dict__) for n in zone.nics]
            zones[alias] = z
        self._state["zones"] = zones
        _write_state(self.name, self._state)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Re-read the state under the lab's lock, let the block change it, save it."""
        with _locked(self.name):
            path = self.rundir / STATE_FILE
            if not path.exists():
                raise LabError(f"lab {self.name!r} is gone (no {path})")
            self._state = _read_state(self.name)
            self._load_objects()
            yield
            self._save()

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
        _check_name(name)
        specs = [m if isinstance(m, ZoneManifest) else load_manifest(m) for m in manifests]
        check_together(specs)
        if _owner_alive(name) or rundir_of(name).exists():
            raise LabError(f"lab {name!r} exists already (pycarp lab down --name {name})")
        leftovers = [n for n in _list_netns() if n.startswith(f"{PREFIX}{name}-")]
        if leftovers:
            raise LabError(
                f"namespaces of a lab {name!r} exist already ({', '.join(leftovers)});"
                f" pycarp lab down --name {name}"
            )
        state = _plan(name, specs)
        rundir_of(name).mkdir(parents=True, exist_ok=False)
        os.chmod(rundir_of(name), 0o700)
        _write_state(name, state)  # first, so `lab down` can undo a half-built lab
        lab = cls(name, state)
        try:
            lab._build()
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def load(cls, name: str = "lab") -> ZoneLab:
        """The lab called name, as built by ZoneLab.up in any process."""
        _check_name(name)
        if not (rundir_of(name) / STATE_FILE).exists():
            raise LabError(f"no lab {name!r} (pycarp lab up ... --name {name})")
        with _locked(name):
            return cls(name, _read_state(name))

    def _build(self) -> None:
        br = self.bridge_netns
        _make_netns(br)
        _ip("-n", br, "link", "set", "lo", "up")
        for tag, bridge in self._state["bridges"].items():
            # Snooping off: multicast (CARP adverts) floods, like a dumb switch.
            opts = ["type", "bridge", "mcast_snooping", "0", "stp_state", "0"]
            _ip("-n", br, "link", "add", bridge, *opts)
            _ip("-n", br, "link", "set", bridge, "up")
            client = self._clients[tag]
            self._plug(client.netns, client.ifname, client.mac, client.port, bridge)
            _ip("-n", client.netns, "addr", "add", f"{client.ip}/{client.prefix}", "dev", "eth0")
        for zone in self.zones.values():
            for nic in zone.nics:
                self._plug(zone.netns, nic.name, nic.mac, nic.port, nic.bridge)
                _ip("-n", zone.netns, "addr", "add", f"{nic.ip}/{nic.prefix}", "dev", nic.name)
            # SmartOS routes by the primary NIC's gateway; never one off the lab's ranges.
            if zone.nic.gateway is not None and _routable_gateway(zone.nic):
                _ip("-n", zone.netns, "route", "add", "default", "via", zone.nic.gateway)
        _nft(br, _nft_rules(list(self.zones.values())))

    def _plug(self, netns: str, ifname: str, mac: str, port: str, bridge: str) -> None:
        """netns's ifname, a veth whose peer `port` is a port of bridge."""
        if not os.path.exists(os.path.join(NETNS_DIR, netns)):
            _make_netns(netns)
            _ip("-n", netns, "link", "set", "lo", "up")
        # Made inside the namespace, peer straight into the bridge namespace:
        # nothing of the lab ever appears in the root namespace.
        peer = ["peer", "name", port, "netns", self.bridge_netns]
        _ip("-n", netns, "link", "add", ifname, "address", mac, "type", "veth", *peer)
        _ip("-n", self.bridge_netns, "link", "set", port, "master", bridge)
        _ip("-n", self.bridge_netns, "link", "set", port, "up")
        _ip("-n", netns, "link", "set", ifname, "up")

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
            argv = list(args) if args else self._default_args(alias)
            if not any(a == "--control-socket" or a.startswith("--control-socket=") for a in argv):
                argv.append(f"--control-socket={zone.control_socket}")
            pid = self._spawn(zone, argv)
        self._wait_started(alias, pid)
        return pid

    def _default_args(self, alias: str) -> list[str]:
        for ext in ("toml", "cfg"):
            path = self.rundir / f"{alias}.{ext}"
            if path.exists():
                return [f"--config={path}"]
        raise LabError(
            f"{alias}: no pycarp arguments and no {self.rundir}/{alias}.toml or .cfg"
            f" (pycarp lab run {alias} -- --interface=net0 ...)"
        )

    def _spawn(self, zone: Zone, argv: list[str]) -> int:
        """Start the daemon in the zone, with the zone's hostname in a UTS namespace of its own."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(zone.control_socket)  # stale socket of a crashed daemon
        log = open(zone.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            log.write(f"--- {time.strftime('%F %T')} pycarp {' '.join(argv)}\n".encode())
            log.flush()
            set_hostname = 'hostname "$0" && exec "$@"'
            cmd = [_ip_binary(), "netns", "exec", zone.netns, "unshare", "--uts", "--"]
            cmd += ["sh", "-c", set_hostname, zone.hostname, sys.executable, "-m", "pycarp"]
            proc = subprocess.Popen(
                [*cmd, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: outlives `pycarp lab run`
                cwd="/",
            )
        finally:
            log.close()
        self._procs[proc.pid] = proc
        zone.daemon = {"pid": proc.pid, "start": _start_time(proc.pid), "args": argv}
        return proc.pid

    def _wait_started(self, alias: str, pid: int) -> None:
        zone = self.zone(alias)
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if zone.daemon_pid() is None:
                raise LabError(f"{alias}: pycarp exited at once: {_last_line(zone.log_file)}")
            if os.path.exists(zone.control_socket):
                return
            time.sleep(0.05)
        if not _uses_socket(zone):
            return
        raise LabError(f"{alias}: pycarp (pid {pid}) did not open {zone.control_socket}")

    def _signal(self, zone: Zone, sig: int) -> tuple[int, int | None] | None:
        pid = zone.daemon_pid()
        if pid is None or zone.daemon is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return pid, zone.daemon["start"]

    def crash(self, alias: str) -> None:
        """A dying host: SIGKILL its pycarp and take its link down (no goodbye)."""
        with self._changing():
            zone = self.zone(alias)
            killed = self._signal(zone, signal.SIGKILL)
            if killed is not None:
                _wait_gone(*killed, timeout=5.0)
            for nic in zone.nics:
                _ip("-n", self.bridge_netns, "link", "set", nic.port, "down")
            zone.link_down = True

    def stop(self, alias: str, timeout: float = 10.0) -> bool:
        """SIGTERM: a graceful hand-over. True once it exited (waits at most timeout)."""
        with self._changing():
            killed = self._signal(self.zone(alias), signal.SIGTERM)
        return killed is None or _wait_gone(*killed, timeout=timeout)

    def restart(self, alias: str) -> int:
        """Link up if it was down, then pycarp again with the arguments of its last start."""
        with self._changing():
            zone = self.zone(alias)
            if zone.daemon is None:
                raise LabError(f"{alias}: pycarp was never started here (pycarp lab run {alias})")
            if zone.daemon_pid() is not None:
                raise LabError(f"{alias}: pycarp is still running (pid {zone.daemon_pid()})")
            for nic in zone.nics:
                _ip("-n", self.bridge_netns, "link", "set", nic.port, "up")
            zone.link_down = False
            pid = self._spawn(zone, list(zone.daemon["args"]))
        self._wait_started(alias, pid)
        return pid

    def partition(self, *aliases: str) -> None:
        """Take these zones' ports off their bridges (links stay up: a split network)."""
        with self._changing():
            for alias in aliases:
                zone = self.zone(alias)
                for nic in zone.nics:
                    _ip("-n", self.bridge_netns, "link", "set", nic.port, "nomaster")
                zone.partitioned = True

    def heal(self) -> None:
        """Put every port back on its bridge."""
        with self._changing():
            for zone in self.zones.values():
                for nic in zone.nics:
                    _ip("-n", self.bridge_netns, "link", "set", nic.port, "master", nic.bridge)
                zone.partitioned = False

    # -- looking -----------------------------------------------------------

    def status(self) -> list[ZoneStatus]:
        """Each zone's pycarp, as its control socket reports it."""
        with _locked(self.name):
            self._state = _read_state(self.name)
            self._load_objects()
        result = []
        for alias, zone in self.zones.items():
            pid = zone.daemon_pid()
            hosts: list[dict[str, Any]] = []
            error = None
            if pid is not None:
                try:
                    answer = request(zone.control_socket, {"command": "status"}, timeout=3.0)
                    hosts = list(answer.get("hosts", []))
                except ControlError as exc:
                    error = str(exc)
            result.append(
                ZoneStatus(
                    alias, pid is not None, pid, hosts, error, zone.link_down, zone.partitioned
                )
            )
        return result

    def reach(self, statuses: Sequence[ZoneStatus] | None = None) -> list[VipStatus]:
        """For each VIP of the running daemons: one ping from the client, who answered, why not."""
        statuses = list(statuses) if statuses is not None else self.status()
        vips: dict[str, int] = {}
        masters: dict[str, list[str]] = {}
        for st in statuses:
            for host in st.hosts:
                for addr in host.get("addresses", []):
                    vips.setdefault(addr, int(host["vhid"]))
                    if host.get("state") == "MASTER":
                        masters.setdefault(addr, []).append(st.zone)
        macs = {nic.mac: z.alias for z in self.zones.values() for nic in z.nics}
        plumbed = {alias: zone.addresses() for alias, zone in self.zones.items()}
        result = []
        for vip, vhid in vips.items():
            client = self._client_for(vip)
            on = [a for a, addrs in plumbed.items() if any(x.split("/")[0] == vip for x in addrs)]
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
                vs.problem = self._why_unreachable(vip, on)
            result.append(vs)
        return result

    def _client_for(self, vip: str) -> Client | None:
        addr = ipaddress.IPv4Address(vip)
        for client in self._clients.values():
            if addr in ipaddress.IPv4Network(f"{client.ip}/{client.prefix}", strict=False):
                return client
        return None

    def _why_unreachable(self, vip: str, plumbed_on: list[str]) -> str:
        if not plumbed_on:
            return "unreachable: no zone has it plumbed (no MASTER?)"
        addr = ipaddress.IPv4Address(vip)
        reasons = []
        for alias in plumbed_on:
            zone = self.zones[alias]
            nic = next(
                (
                    n
                    for n in zone.nics
                    if addr in ipaddress.IPv4Network(f"{n.ip}/{n.prefix}", strict=False)
                ),
                zone.nic,
            )
            if not nic.allow_ip_spoofing:
                reasons.append(
                    f"{alias}'s {nic.name} drops traffic from {vip} (allow_ip_spoofing is false)"
                )
            elif not nic.allow_mac_spoofing:
                reasons.append(
                    f"{alias}'s {nic.name} drops frames not from {nic.mac}"
                    " (allow_mac_spoofing is false)"
                )
            elif zone.link_down or zone.partitioned:
                reasons.append(
                    f"{alias} has it but is cut off"
                    f" ({'link down' if zone.link_down else 'partitioned'})"
                )
        if not reasons:
            return f"unreachable (plumbed on {', '.join(plumbed_on)})"
        return "unreachable: " + "; ".join(reasons)

    # -- tearing down ------------------------------------------------------

    def down(self) -> list[str]:
        """Kill every process, delete every namespace and the run directory. Idempotent."""
        for client in self._clients.values():
            for proc in client._procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        removed = ZoneLab.teardown(self.name, self._state)
        for proc in [*self._procs.values(), *(p for c in self._clients.values() for p in c._procs)]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
        return removed

    @staticmethod
    def teardown(name: str, state: dict[str, Any] | None = None) -> list[str]:
        """Remove a lab from its state file if any, and by its name prefix in any case.

        Returns the namespaces removed. Works after the creator was killed.
        """
        _check_name(name)
        with _locked(name):
            if state is None:
                with contextlib.suppress(LabError):  # missing or damaged: go by the prefix
                    state = _read_state(name)
            pids: list[tuple[int, int | None]] = []
            names: set[str] = {n for n in _list_netns() if n.startswith(f"{PREFIX}{name}-")}
            for zone in (state or {}).get("zones", {}).values():
                names.add(zone["netns"])
                d = zone.get("daemon")
                if d:
                    pids.append((d["pid"], d["start"]))
            for pid, start in pids:  # also a daemon that left its namespace somehow
                if _alive(pid, start):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            ids = {i for i in (_netns_id(n) for n in names) if i is not None}
            _signal_ns_processes(ids, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while _pids_in(ids) and time.monotonic() < deadline:
                for pid in _pids_in(ids):
                    _reap(pid)
                time.sleep(0.05)
            for pid, start in pids:
                _wait_gone(pid, start, timeout=2.0)
            bridge = f"{PREFIX}{name}-br"
            removed = [n for n in sorted(names, key=lambda n: n == bridge) if _delete_netns(n)]
            shutil.rmtree(rundir_of(name), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(_lock_path(name))
        return removed


# --- helpers ----------------------------------------------------------------


def _routable_gateway(nic: ZoneNic) -> bool:
    """Only a gateway inside the lab's ranges and on the NIC's subnet becomes a route."""
    if nic.gateway is None:
        return False
    gw = ipaddress.IPv4Address(nic.gateway)
    net = ipaddress.IPv4Network(f"{nic.ip}/{nic.prefix}", strict=False)
    return gw in net and any(gw in n for n in ALLOWED_NETWORKS)


def _make_netns(name: str) -> None:
    done = _ip("netns", "add", name, check=False)
    if done.returncode != 0:
        raise LabError(f"cannot create netns {name}: {done.stderr.strip()}")


def _plan(name: str, specs: Sequence[ZoneManifest]) -> dict[str, Any]:
    """The whole lab as a state dict: names, addresses, MACs. Nothing is created yet."""
    rundir = rundir_of(name)
    bridges: dict[str, str] = {}
    networks: dict[str, ipaddress.IPv4Network] = {}
    used: set[ipaddress.IPv4Address] = set()
    zones: dict[str, Any] = {}
    for m in specs:
        nics = []
        for n in m.nics:
            bridges.setdefault(n.nic_tag, _short("br-", n.nic_tag))
            networks.setdefault(n.nic_tag, n.network)
            used.add(n.ip)
            if n.gateway is not None:
                used.add(n.gateway)
            nics.append(
                {
                    "name": n.name,
                    "nic_tag": n.nic_tag,
                    "ip": str(n.ip),
                    "prefix": n.prefix,
                    "gateway": str(n.gateway) if n.gateway is not None else None,
                    "mac": n.mac or _stable_mac(name, m.alias, n.name),
                    "port": _port_name(f"{m.alias}-{n.name[3:]}"),
                    "bridge": bridges[n.nic_tag],
                    "allow_ip_spoofing": n.allow_ip_spoofing,
                    "allow_mac_spoofing": n.allow_mac_spoofing,
                    "primary": n is m.primary,
                }
            )
        zones[m.alias] = {
            "alias": m.alias,
            "hostname": m.hostname,
            "netns": f"{PREFIX}{name}-{m.alias}",
            "nics": nics,
            "control_socket": str(rundir / f"{m.alias}.sock"),
            "log_file": str(rundir / f"{m.alias}.log"),
            "manifest": os.path.abspath(m.source) if os.path.exists(m.source) else m.source,
            "daemon": None,
            "link_down": False,
            "partitioned": False,
        }
    clients = {}
    for tag, net in networks.items():
        hosts = (h for h in net.hosts() if int(h) - int(net.network_address) >= FIRST_CLIENT_HOST)
        ip = next((h for h in hosts if h not in used), None)
        if ip is None:
            raise LabError(f"no free address for the client on {net} (nic_tag {tag})")
        used.add(ip)
        clients[tag] = {
            "nic_tag": tag,
            "netns": f"{PREFIX}{name}-client-{tag}",
            "ip": str(ip),
            "prefix": net.prefixlen,
            "mac": _stable_mac(name, "client", tag),
            "port": _short("c-", tag),
            "bridge": bridges[tag],
        }
    return {
        "version": 1,
        "name": name,
        "bridge_netns": f"{PREFIX}{name}-br",
        "bridges": bridges,
        "clients": clients,
        "zones": zones,
    }


def _nft_rules(zones: list[Zone]) -> str:
    """SmartOS's NIC protection, on each zone's bridge port (frames *from* the zone).

    Without allow_mac_spoofing: only the NIC's own source MAC. Without
    allow_ip_spoofing: only the NIC's own source IPv4 address, and ARP only
    with the NIC's own address as sender (so no gratuitous ARP for a VIP).
    """
    lines = [
        f"table bridge {_NFT_TABLE} {{",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
    ]
    for zone in zones:
        for nic in zone.nics:
            port = f'iifname "{nic.port}"'
            if not nic.allow_mac_spoofing:
                lines.append(f"    {port} ether saddr != {nic.mac} counter drop")
            if not nic.allow_ip_spoofing:
                lines.append(f"    {port} ether type ip ip saddr != {nic.ip} counter drop")
                lines.append(f"    {port} ether type arp arp saddr ip != {nic.ip} counter drop")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _uses_socket(zone: Zone) -> bool:
    args = zone.daemon["args"] if zone.daemon else []
    return f"--control-socket={zone.control_socket}" in args


def _last_line(path: str) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(no output)"


def _lock_path(name: str) -> str:
    return os.path.join(OWNER_DIR, f"{name}.lock")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise changes to one lab between processes (flock, released on exit or death)."""
    os.makedirs(OWNER_DIR, exist_ok=True)
    with open(_lock_path(name), "a", encoding="ascii") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _read_state(name: str) -> dict[str, Any]:
    path = rundir_of(name) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise LabError(f"{path} is damaged; pycarp lab down --name {name}") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise LabError(f"{path} is not a state file of this pycarp; pycarp lab down --name {name}")
    return data


def _write_state(name: str, state: dict[str, Any]) -> None:
    path = rundir_of(name) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file
