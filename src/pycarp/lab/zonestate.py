"""What a zone lab is made of (Zone, ZoneNic, Client), its state file and its lock.

The state is OWNER_DIR/<lab>/state.json: while it exists the lab's name is
owned (pycarp.lab.owners), so a Lab refuses it and cleanup_stale() leaves its
namespaces alone. Changes are serialised between processes with the flock of
OWNER_DIR/<lab>.lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pycarp.lab import iproute
from pycarp.lab.errors import LabError
from pycarp.lab.names import TAG_RE
from pycarp.lab.nsexec import InNamespace
from pycarp.lab.owners import STATE_FILE, owner_path
from pycarp.lab.processes import alive

__all__ = [
    "CLIENT_IFNAME",
    "STATE_FILE",
    "STATE_VERSION",
    "Client",
    "Zone",
    "ZoneNic",
    "check_name",
    "clients_of",
    "lock_path",
    "locked",
    "read_state",
    "rundir_of",
    "write_state",
    "zones_of",
    "zones_state",
]

CLIENT_IFNAME = "eth0"
STATE_VERSION = 1


def rundir_of(name: str) -> Path:
    return Path(owner_path(name))


def check_name(name: str) -> None:
    if not TAG_RE.fullmatch(name):
        raise LabError(f"lab name must match {TAG_RE.pattern}, not {name!r}")


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
        if self.daemon is None or not alive(self.daemon["pid"], self.daemon["start"]):
            return None
        return int(self.daemon["pid"])

    def addresses(self) -> list[str]:
        """Every IPv4 address in the zone ("a.b.c.d/len"), VIPs included."""
        return iproute.ipv4_addresses(self.netns)


@dataclass
class Client(InNamespace):
    """The client namespace on one bridge: a host that only uses the VIPs."""

    nic_tag: str
    netns: str
    ip: str
    prefix: int
    mac: str
    port: str
    bridge: str
    ifname: str = CLIENT_IFNAME
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def spawned(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)  # down() kills it

    def neigh(self, ip: str) -> str | None:
        """The MAC the client's neighbour table has for ip (None: none, or unresolved)."""
        return iproute.neighbour_mac(self.netns, ip)

    def flush_neigh(self) -> None:
        """Forget learned MACs, so the next packet asks who has the address now."""
        with contextlib.suppress(LabError):
            iproute.flush_neighbours(self.netns, self.ifname)


# --- the state dict and the objects -------------------------------------------


def zones_of(state: dict[str, Any]) -> dict[str, Zone]:
    """The state's zones as objects, by alias, in manifest order."""
    return {
        alias: Zone(**{**z, "nics": [ZoneNic(**n) for n in z["nics"]]})
        for alias, z in state["zones"].items()
    }


def clients_of(state: dict[str, Any]) -> dict[str, Client]:
    """The state's clients as objects, by nic_tag."""
    return {tag: Client(**c) for tag, c in state["clients"].items()}


def zones_state(zones: dict[str, Zone]) -> dict[str, Any]:
    """The zones as the state file holds them (what zones_of reads)."""
    return {alias: asdict(zone) for alias, zone in zones.items()}


# --- the file and the lock ----------------------------------------------------


def lock_path(name: str) -> str:
    return owner_path(f"{name}.lock")


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise changes to one lab between processes (flock, released on exit or death)."""
    path = lock_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="ascii") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_state(name: str) -> dict[str, Any]:
    path = rundir_of(name) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise LabError(f"{path} is damaged; pycarp lab down --name {name}") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise LabError(f"{path} is not a state file of this pycarp; pycarp lab down --name {name}")
    return data


def write_state(name: str, state: dict[str, Any]) -> None:
    path = rundir_of(name) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file
