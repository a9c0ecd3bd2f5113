"""A throw-away Ethernet segment made of network namespaces.

Every host is a namespace whose "eth0" is one end of a veth pair; the other
end is a port of the bridge "br0", which lives in a namespace of its own so
that nothing of the lab is ever visible in (or able to leak into) the root
namespace. Needs root and iproute2 (`ip netns exec` runs the hosts' programs).

Ownership: a Lab claims its tag (pycarp.lab.owners) before it creates
anything, so cleanup_stale() can tell the namespaces of a lab that is still
running (maybe in another test process) from real leftovers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from types import TracebackType

from pycarp.lab import iproute, owners
from pycarp.lab.errors import LabError
from pycarp.lab.iproute import NETNS_DIR, NetnsExists, netns_entered
from pycarp.lab.names import ALLOWED_NETWORKS, PREFIX, TAG_RE, port_name
from pycarp.lab.nsexec import InNamespace
from pycarp.lab.processes import stop_processes
from pycarp.lab.wait import wait_until
from pycarp.platform.rundir import netns_run_directory

# LabError and NETNS_DIR are here for those who import them from this module.
__all__ = [
    "ALLOWED_NETWORKS",
    "BRIDGE",
    "HOST_IFNAME",
    "NETNS_DIR",
    "TERM_GRACE",
    "Host",
    "Lab",
    "LabError",
    "check_host",
]

BRIDGE = "br0"
HOST_IFNAME = "eth0"
TERM_GRACE = 3.0  # seconds between SIGTERM and SIGKILL in close()
LINK_WAIT = 5.0  # seconds wait_running waits at most

_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,23}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")

log = logging.getLogger(__name__)


def check_host(role: str, ip: str, prefix: int, mac: str | None) -> None:
    """ValueError unless role, ip/prefix and mac are fit for a lab host."""
    if not _ROLE_RE.fullmatch(role):
        raise ValueError(f"host role must match {_ROLE_RE.pattern}, got {role!r}")
    addr = ipaddress.IPv4Address(ip)
    if not any(addr in net for net in ALLOWED_NETWORKS):
        allowed = ", ".join(str(n) for n in ALLOWED_NETWORKS)
        raise ValueError(f"lab addresses must be in {allowed}, got {ip}")
    if not 1 <= prefix <= 32:
        raise ValueError(f"bad prefix length {prefix}")
    if mac is not None and not _MAC_RE.fullmatch(mac):
        raise ValueError(f"bad MAC address {mac!r}")


class Lab:
    """A bridge namespace plus host namespaces attached to it; close() undoes it all."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag if tag is not None else secrets.token_hex(3)
        if not TAG_RE.fullmatch(self.tag):
            raise ValueError(f"lab tag must match {TAG_RE.pattern}, got {self.tag!r}")
        self.bridge_netns = f"{PREFIX}{self.tag}-br"
        self._hosts: dict[str, Host] = {}
        self._netns: list[str] = []  # namespaces we created, in creation order
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False
        self._owned = False
        try:
            owners.claim(self.tag)
            self._owned = True
            self._make_netns(self.bridge_netns)
            iproute.add_bridge(self.bridge_netns, BRIDGE)
        except BaseException:
            self.close()
            raise
        owners.register(self)

    def _make_netns(self, name: str) -> None:
        # Listed first: close() then deletes whatever an interrupted create left.
        self._netns.append(name)
        try:
            iproute.create_netns(name)
        except NetnsExists as exc:
            self._netns.remove(name)  # someone else's: not ours to delete
            raise LabError(f"{exc} (leftover? see pycarp.lab.cleanup_stale)") from None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def hosts(self) -> dict[str, Host]:
        return dict(self._hosts)

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab created and has not deleted yet."""
        return [n for n in self._netns if iproute.netns_exists(n)]

    def add_host(self, role: str, ip: str, prefix: int = 24, mac: str | None = None) -> Host:
        """A new namespace "<PREFIX><tag>-<role>" whose eth0 is plugged into br0."""
        if self._closed:
            raise LabError("lab is closed")
        check_host(role, ip, prefix, mac)
        if role in self._hosts or role == "br":
            raise ValueError(f"host role {role!r} already used in lab {self.tag}")
        port = port_name(role)
        if any(h.port == port for h in self._hosts.values()):
            raise ValueError(f"bridge port name {port} for role {role!r} collides")

        netns = f"{PREFIX}{self.tag}-{role}"
        self._make_netns(netns)
        iproute.add_veth(netns, HOST_IFNAME, port, self.bridge_netns, mac)
        iproute.set_master(self.bridge_netns, port, BRIDGE)
        iproute.set_link_up(self.bridge_netns, port, True)
        iproute.add_address(netns, HOST_IFNAME, ip, prefix)
        iproute.set_link_up(netns, HOST_IFNAME, True)
        host = Host(self, role, netns, ip, prefix, port)
        self._hosts[role] = host
        host.wait_running(True)
        return host

    def track(self, proc: subprocess.Popen[bytes]) -> None:
        """close() stops proc (and its process group) with the lab."""
        self._procs.append(proc)

    def close(self) -> None:
        """Stop every process, delete every namespace (bridge last). Idempotent."""
        if self._closed:
            return
        self._closed = True
        owners.unregister(self)
        ids: set[iproute.NsId] = set()
        try:
            ids = {i for i in (iproute.netns_id(n) for n in self._netns) if i is not None}
            stop_processes(self._procs, ids, TERM_GRACE)
        except Exception:
            log.exception("lab %s: stopping processes failed", self.tag)
        for _, inode in ids:  # what killed daemons left: stale sockets
            shutil.rmtree(netns_run_directory(inode), ignore_errors=True)
        bridge_last = sorted(self._netns, key=lambda n: n == self.bridge_netns)
        for name in bridge_last:
            try:
                iproute.delete_netns(name)
            except Exception:
                log.exception("lab %s: deleting netns %s failed", self.tag, name)
        self._netns = [n for n in self._netns if iproute.netns_exists(n)]
        if self._owned:
            owners.release(self.tag)
            self._owned = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"hosts={sorted(self._hosts)}"
        return f"<Lab {self.tag} {state}>"


class Host(InNamespace):
    """One namespace of a Lab, with eth0 on the shared segment."""

    def __init__(self, lab: Lab, role: str, netns: str, ip: str, prefix: int, port: str) -> None:
        self.lab = lab
        self.role = role
        self.netns = netns
        self.ifname = HOST_IFNAME
        self.ip = ip
        self.prefix = prefix
        self.port = port  # the bridge-side end of the veth, in lab.bridge_netns

    def before_spawn(self) -> None:
        if self.lab.closed:
            raise LabError("lab is closed")

    def spawned(self, proc: subprocess.Popen[bytes]) -> None:
        # Lab.close() stops its process group, and kills whatever is left in
        # the lab's namespaces (a process that setsid()s leaves its group).
        self.lab.track(proc)

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """This thread inside the host's namespace for the block (see netns_entered)."""
        with netns_entered(self.netns):
            yield

    def addresses(self) -> list[str]:
        """IPv4 addresses on eth0 as "a.b.c.d/len"."""
        return iproute.ipv4_addresses(self.netns, self.ifname)

    def mac(self) -> str:
        return iproute.link_state(self.netns, self.ifname).mac

    def running(self) -> bool:
        """Whether eth0 has IFF_RUNNING (up and carrier, operstate UP)."""
        return iproute.link_state(self.netns, self.ifname).running

    def wait_running(self, running: bool, timeout: float = LINK_WAIT) -> None:
        """Wait (bounded) until eth0's RUNNING flag is `running`; LabError if it is not."""
        if not wait_until(lambda: self.running() == running, timeout):
            raise LabError(f"{self.netns}: {self.ifname} RUNNING did not become {running}")

    def link_down(self, wait: bool = True) -> None:
        """Pull the cable: the bridge end goes down, so eth0 loses carrier."""
        iproute.set_link_up(self.lab.bridge_netns, self.port, False)
        if wait:
            self.wait_running(False)

    def link_up(self, wait: bool = True) -> None:
        """Plug the cable back in."""
        iproute.set_link_up(self.lab.bridge_netns, self.port, True)
        # An eth0 set down inside the host can never get RUNNING: nothing to wait for.
        if wait and iproute.link_state(self.netns, self.ifname).up:
            self.wait_running(True)

    def cut(self) -> None:
        """Partition: take the port off the bridge; eth0 keeps its carrier."""
        iproute.set_master(self.lab.bridge_netns, self.port, None)

    def uncut(self) -> None:
        iproute.set_master(self.lab.bridge_netns, self.port, BRIDGE)

    def __repr__(self) -> str:
        return f"<Host {self.role} {self.netns} {self.ip}/{self.prefix}>"
