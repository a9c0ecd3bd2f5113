"""Throw-away Ethernet segments made of network namespaces.

Every host is a namespace whose "eth0" is one end of a veth pair; the other
end is a port of a bridge, "br0" unless the host is put on another segment
("br1"...). The bridges live in a namespace of their own so that nothing of
the lab is ever visible in (or able to leak into) the root namespace. A
router is a host with a link on several segments and IPv4 forwarding on (in
its own namespace only). Needs root and iproute2 (`ip netns exec` runs the
hosts' programs) and, for drop_multicast, nftables.

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
from collections.abc import Iterator, Mapping
from types import TracebackType

from pycarp.lab import iproute, owners, segments
from pycarp.lab.errors import LabError
from pycarp.lab.iproute import NETNS_DIR, NetnsExists, netns_entered
from pycarp.lab.names import ALLOWED_NETWORKS, PREFIX, TAG_RE, port_name, short_ifname
from pycarp.lab.nsexec import InNamespace
from pycarp.lab.processes import stop_processes
from pycarp.lab.segments import RouterLink, split_cidr
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
    "Router",
    "RouterLink",
    "check_host",
]

BRIDGE = segments.DEFAULT_SEGMENT
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
        self._ports: set[str] = set()  # every bridge port, on any segment
        self._segments: list[str] = []  # bridges made in bridge_netns
        self._netns: list[str] = []  # namespaces we created, in creation order
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False
        self._owned = False
        try:
            owners.claim(self.tag)
            self._owned = True
            self._make_netns(self.bridge_netns)
            self._segment(BRIDGE)
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

    def _segment(self, segment: str) -> None:
        """The bridge `segment`, made on first use."""
        if segment not in self._segments:
            iproute.add_bridge(self.bridge_netns, segment)
            self._segments.append(segment)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def hosts(self) -> dict[str, Host]:
        return dict(self._hosts)

    @property
    def segments(self) -> list[str]:
        """The bridges made so far, "br0" first."""
        return list(self._segments)

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab created and has not deleted yet."""
        return [n for n in self._netns if iproute.netns_exists(n)]

    def add_host(
        self,
        role: str,
        ip: str,
        prefix: int = 24,
        mac: str | None = None,
        segment: str = BRIDGE,
    ) -> Host:
        """A new namespace "<PREFIX><tag>-<role>" whose eth0 is plugged into segment."""
        port = port_name(role)
        self._check_new(role, [(ip, prefix)], mac, [port], [segment])
        self._segment(segment)
        netns = f"{PREFIX}{self.tag}-{role}"
        self._make_netns(netns)
        self._plug(netns, HOST_IFNAME, port, segment, mac, ip, prefix)
        host = Host(self, role, netns, ip, prefix, port, segment)
        self._hosts[role] = host
        host.wait_running(True)
        return host

    def add_router(self, role: str, links: Mapping[str, str]) -> Router:
        """A host with a link per segment ({"br0": "198.51.100.1/24", ...}) that forwards IPv4.

        Its links are eth0, eth1... in the mapping's order; forwarding is
        switched on in its namespace only.
        """
        if len(links) < 2:
            raise ValueError(f"router {role!r} needs links on two segments at least")
        addrs = [split_cidr(cidr) for cidr in links.values()]
        ports = [short_ifname("v-", f"{role}-{i}") for i in range(len(links))]
        self._check_new(role, addrs, None, ports, list(links))
        for segment in links:
            self._segment(segment)
        netns = f"{PREFIX}{self.tag}-{role}"
        self._make_netns(netns)
        made = []
        for i, (segment, (ip, prefix)) in enumerate(zip(links, addrs, strict=True)):
            ifname = f"eth{i}"
            self._plug(netns, ifname, ports[i], segment, None, ip, prefix)
            made.append(RouterLink(segment, ifname, ip, prefix, ports[i]))
        segments.set_ip_forward(netns, True)
        router = Router(self, role, netns, made)
        self._hosts[role] = router
        router.wait_running(True)
        return router

    def _check_new(
        self,
        role: str,
        addrs: list[tuple[str, int]],
        mac: str | None,
        ports: list[str],
        on: list[str],
    ) -> None:
        """ValueError (LabError once closed) unless a new host fits; before anything is made."""
        if self._closed:
            raise LabError("lab is closed")
        for segment in on:
            if not segments.SEGMENT_RE.fullmatch(segment):
                raise ValueError(
                    f"segment must match {segments.SEGMENT_RE.pattern}, got {segment!r}"
                )
        for ip, prefix in addrs:
            check_host(role, ip, prefix, mac)
        if role in self._hosts or role == "br":
            raise ValueError(f"host role {role!r} already used in lab {self.tag}")
        for port in ports:
            if port in self._ports or ports.count(port) > 1:
                raise ValueError(f"bridge port name {port} for role {role!r} collides")

    def _plug(self, netns: str, ifname: str, port: str, segment: str, mac: str | None,
              ip: str, prefix: int) -> None:  # fmt: skip
        """ifname in netns, its veth peer `port` a port of segment; both up, ip/prefix on it."""
        self._ports.add(port)
        iproute.plug(netns, ifname, port, self.bridge_netns, segment, mac)
        iproute.add_address(netns, ifname, ip, prefix)

    def drop_multicast(self, drop: bool = True) -> None:
        """Make every segment drop (or, with False, forward again) multicast between ports:
        IPv4's, and IPv6 CARP's group.

        An nftables table, `bridge pycarp_mcast`, in the bridge namespace.
        """
        if self._closed:
            raise LabError("lab is closed")
        segments.load_rules(self.bridge_netns, segments.multicast_drop_rules(drop))

    def ruleset(self) -> str:
        """`nft list ruleset` in the bridge namespace."""
        return segments.ruleset(self.bridge_netns)

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
    """One namespace of a Lab, with eth0 on a segment (a bridge: "br0" unless told)."""

    def __init__(
        self,
        lab: Lab,
        role: str,
        netns: str,
        ip: str,
        prefix: int,
        port: str,
        segment: str = BRIDGE,
    ) -> None:
        self.lab = lab
        self.role = role
        self.netns = netns
        self.ifname = HOST_IFNAME
        self.ip = ip
        self.prefix = prefix
        self.port = port  # the bridge-side end of the veth, in lab.bridge_netns
        self.segment = segment

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

    def add_route(self, network: str, via: str) -> None:
        """A route to network ("a.b.c.d/len") via a router on this host's segment."""
        iproute.add_route(self.netns, network, via)

    def add_default_route(self, via: str) -> None:
        iproute.add_default_route(self.netns, via)

    def mac(self) -> str:
        return iproute.link_state(self.netns, self.ifname).mac

    def running(self) -> bool:
        """Whether eth0 has IFF_RUNNING (up and carrier, operstate UP)."""
        return iproute.link_state(self.netns, self.ifname).running

    def wait_running(self, running: bool, timeout: float = LINK_WAIT) -> None:
        """Wait (bounded) until eth0's RUNNING flag is `running`; LabError if it is not."""
        if not wait_until(lambda: self.running() == running, timeout):
            raise LabError(f"{self.netns}: {self.ifname} RUNNING did not become {running}")

    def bridge_ports(self) -> dict[str, str]:
        """Bridge port -> its segment, for each of the host's links."""
        return {self.port: self.segment}

    def link_down(self, wait: bool = True) -> None:
        """Pull the cable: the bridge end goes down, so eth0 loses carrier."""
        for port in self.bridge_ports():
            iproute.set_link_up(self.lab.bridge_netns, port, False)
        if wait:
            self.wait_running(False)

    def link_up(self, wait: bool = True) -> None:
        """Plug the cable back in."""
        for port in self.bridge_ports():
            iproute.set_link_up(self.lab.bridge_netns, port, True)
        # An eth0 set down inside the host can never get RUNNING: nothing to wait for.
        if wait and iproute.link_state(self.netns, self.ifname).up:
            self.wait_running(True)

    def cut(self) -> None:
        """Partition: take the port off the bridge; eth0 keeps its carrier."""
        for port in self.bridge_ports():
            iproute.set_master(self.lab.bridge_netns, port, None)

    def uncut(self) -> None:
        for port, segment in self.bridge_ports().items():
            iproute.set_master(self.lab.bridge_netns, port, segment)

    def __repr__(self) -> str:
        return f"<Host {self.role} {self.netns} {self.ip}/{self.prefix}>"


class Router(Host):
    """A host with a link on each of several segments, forwarding IPv4 between them.

    As a Host it is its first link (ifname, ip, port, segment); links has them
    all. link_down, link_up, cut and uncut act on every link: it fails whole.
    """

    def __init__(self, lab: Lab, role: str, netns: str, links: list[RouterLink]) -> None:
        first = links[0]
        super().__init__(lab, role, netns, first.ip, first.prefix, first.port, first.segment)
        self.links = {link.segment: link for link in links}

    def addresses(self) -> list[str]:
        """IPv4 addresses on every link, by link order."""
        return iproute.ipv4_addresses(self.netns)

    def forwarding(self) -> bool:
        """net.ipv4.ip_forward in the router's namespace."""
        return segments.ip_forward(self.netns)

    def bridge_ports(self) -> dict[str, str]:
        return {link.port: link.segment for link in self.links.values()}

    def __repr__(self) -> str:
        links = " ".join(f"{k.segment}:{k.ip}/{k.prefix}" for k in self.links.values())
        return f"<Router {self.role} {self.netns} {links}>"
