"""Network namespaces, links, addresses, routes and neighbours, through pyroute2 (needs root).

A namespace is named by its file in NETNS_DIR, as `ip netns` names it.
Netlink sockets are opened inside the namespace by the calling thread (setns
and back) and handed to pyroute2, so no request forks a helper process.
Programs run in a namespace through pycarp.lab.nsexec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from pycarp.lab.errors import LabError
from pycarp.platform.rundir import NAMED_NETNS_DIR

__all__ = [
    "NETNS_DIR",
    "LinkState",
    "NetnsExists",
    "NsId",
    "add_address",
    "add_bridge",
    "add_default_route",
    "add_route",
    "add_veth",
    "create_netns",
    "delete_netns",
    "flush_neighbours",
    "ipv4_addresses",
    "link_state",
    "list_netns",
    "neighbour_mac",
    "netns_entered",
    "netns_exists",
    "netns_id",
    "netns_path",
    "plug",
    "set_link_up",
    "set_master",
]

NETNS_DIR = NAMED_NETNS_DIR
NETLINK_ROUTE = 0
RTPROT_BOOT = 3  # what `ip route add` marks its routes with
IFF_UP = 0x1
IFF_RUNNING = 0x40
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

NsId = tuple[int, int]  # (st_dev, st_ino) of a namespace: what /proc/<pid>/ns/net points to
T = TypeVar("T")

log = logging.getLogger(__name__)


class NetnsExists(LabError):
    """A namespace of that name exists already."""


# --- namespaces -----------------------------------------------------------


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def netns_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_id(name: str) -> NsId | None:
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NetlinkError):
        return os.strerror(exc.code) if isinstance(exc.code, int) else str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def create_netns(name: str) -> None:
    """A new named namespace with lo up; NetnsExists if the name is taken."""
    path = netns_path(name)
    try:
        netns.create(path)
    except FileExistsError:
        raise NetnsExists(f"cannot create netns {name}: it exists already") from None
    except Exception as exc:
        if os.path.isfile(path) and not os.path.ismount(path):
            with contextlib.suppress(OSError):  # the mount point of a failed bind
                os.unlink(path)
        raise LabError(f"cannot create netns {name}: {_reason(exc)}") from None
    try:
        set_link_up(name, "lo", True)
    except BaseException:
        delete_netns(name)
        raise


def delete_netns(name: str) -> bool:
    """Delete a named namespace (like `ip netns del`); False if it was gone (or stays: logged)."""
    path = netns_path(name)
    if not os.path.exists(path):
        return False
    try:
        netns.remove(path)
    except OSError as exc:
        if os.path.exists(path):
            log.warning("could not delete netns %s: %s", name, _reason(exc))
            return False
    return True


@contextlib.contextmanager
def netns_entered(name: str) -> Iterator[None]:
    """Run the block with the calling thread inside the namespace `name`.

    Sockets opened in the block stay in that namespace after it ends, which is
    how tests open platform sockets "on a host". sysfs is not remounted: use
    netlink or ioctl inside the block, not /sys.
    """
    with open("/proc/thread-self/ns/net", "rb") as home, open(netns_path(name), "rb") as target:
        netns.setns(target.fileno(), flags=0)
        try:
            yield
        finally:
            netns.setns(home.fileno(), flags=0)


# --- netlink requests -----------------------------------------------------


def _request(name: str, what: str, work: Callable[[Any], T]) -> T:
    """work(ipr) with an IPRoute in namespace `name`; a failure is a LabError naming `what`."""

    def in_namespace() -> T:
        with netns_entered(name):
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )
        try:
            with IPRoute(use_socket=sock) as ipr:
                return work(ipr)
        finally:
            sock.close()

    try:
        if not _loop_running():
            return in_namespace()
        # pyroute2's sync API runs an event loop of its own: never inside a running one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(in_namespace).result()
    except (NetlinkError, OSError) as exc:
        raise LabError(f"{name}: {what} failed: {_reason(exc)}") from None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _index(ipr: Any, name: str, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LabError(f"{name}: no {ifname}")
    return int(found[0])


def set_link_up(name: str, ifname: str, up: bool) -> None:
    state = "up" if up else "down"
    _request(
        name,
        f"set {ifname} {state}",
        lambda ipr: ipr.link("set", index=_index(ipr, name, ifname), state=state),
    )


def set_master(name: str, ifname: str, bridge: str | None) -> None:
    """Make ifname a port of bridge; None takes it off its bridge."""

    def work(ipr: Any) -> None:
        master = 0 if bridge is None else _index(ipr, name, bridge)
        ipr.link("set", index=_index(ipr, name, ifname), master=master)

    _request(name, f"set {ifname} master {bridge or 'none'}", work)


def add_bridge(name: str, bridge: str) -> None:
    """A bridge, up, that floods every multicast frame (snooping off) and runs no STP."""

    def work(ipr: Any) -> None:
        ipr.link("add", ifname=bridge, kind="bridge", br_mcast_snooping=0, br_stp_state=0)
        ipr.link("set", index=_index(ipr, name, bridge), state="up")

    _request(name, f"add bridge {bridge}", work)


def add_veth(name: str, ifname: str, peer: str, peer_netns: str, mac: str | None = None) -> None:
    """A veth pair made in namespace `name`, its peer put straight into peer_netns.

    So neither end ever appears in the namespace of the caller.
    """
    with open(netns_path(peer_netns), "rb") as target:
        peer_spec = {"ifname": peer, "net_ns_fd": target.fileno()}
        extra = {"address": mac} if mac else {}
        _request(
            name,
            f"add veth {ifname} (peer {peer} in {peer_netns})",
            lambda ipr: ipr.link("add", ifname=ifname, kind="veth", peer=peer_spec, **extra),
        )


def plug(
    name: str, ifname: str, port: str, bridge_netns: str, bridge: str, mac: str | None = None
) -> None:
    """ifname in namespace `name`, a veth whose peer `port` is a port of bridge; both up."""
    add_veth(name, ifname, port, bridge_netns, mac)
    set_master(bridge_netns, port, bridge)
    set_link_up(bridge_netns, port, True)
    set_link_up(name, ifname, True)


def add_address(name: str, ifname: str, ip: str, prefix: int) -> None:
    """ip/prefix on ifname (no broadcast address, like `ip addr add ip/prefix`)."""
    _request(
        name,
        f"add {ip}/{prefix} to {ifname}",
        lambda ipr: ipr.addr("add", index=_index(ipr, name, ifname), address=ip, prefixlen=prefix),
    )


def add_default_route(name: str, gateway: str) -> None:
    _request(
        name,
        f"add default route via {gateway}",
        lambda ipr: ipr.route("add", dst="default", gateway=gateway, proto=RTPROT_BOOT),
    )


def add_route(name: str, network: str, gateway: str) -> None:
    """A route to network ("a.b.c.d/len") via gateway, like `ip route add network via gateway`."""
    _request(
        name,
        f"add route {network} via {gateway}",
        lambda ipr: ipr.route("add", dst=network, gateway=gateway, proto=RTPROT_BOOT),
    )


# --- looking --------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    mac: str
    up: bool  # IFF_UP: administratively up
    running: bool  # IFF_RUNNING: up and with carrier


def link_state(name: str, ifname: str) -> LinkState:
    def work(ipr: Any) -> LinkState:
        [link] = ipr.link("get", index=_index(ipr, name, ifname))
        flags = int(link["flags"])
        return LinkState(
            str(link.get("IFLA_ADDRESS")), bool(flags & IFF_UP), bool(flags & IFF_RUNNING)
        )

    return _request(name, f"show {ifname}", work)


def ipv4_addresses(name: str, ifname: str | None = None) -> list[str]:
    """IPv4 addresses ("a.b.c.d/len") on ifname, or on every link but lo, by link order."""

    def work(ipr: Any) -> list[str]:
        if ifname is not None:
            wanted = {_index(ipr, name, ifname)}
        else:
            wanted = {int(x["index"]) for x in ipr.link("dump") if x.get("IFLA_IFNAME") != "lo"}
        found = [
            (int(a["index"]), f"{a.get('IFA_LOCAL') or a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.addr("dump", family=socket.AF_INET)
            if int(a["index"]) in wanted
        ]
        return [text for _, text in sorted(found, key=lambda item: item[0])]

    return _request(name, "show addresses", work)


def neighbour_mac(name: str, ip: str) -> str | None:
    """The MAC the neighbour table has for ip (None: no entry, or it failed to resolve)."""

    def work(ipr: Any) -> str | None:
        for entry in ipr.neigh("dump", family=socket.AF_INET):
            mac = entry.get("NDA_LLADDR")
            if entry.get("NDA_DST") == ip and mac and not int(entry["state"]) & NUD_FAILED:
                return str(mac)
        return None

    return _request(name, f"show neighbour {ip}", work)


def flush_neighbours(name: str, ifname: str) -> None:
    """Forget what ifname learned (like `ip neigh flush dev`: static entries stay)."""

    def work(ipr: Any) -> None:
        index = _index(ipr, name, ifname)
        for entry in ipr.neigh("dump", ifindex=index):
            if int(entry["state"]) & (NUD_PERMANENT | NUD_NOARP) or not entry.get("NDA_DST"):
                continue
            with contextlib.suppress(NetlinkError):  # gone meanwhile
                ipr.neigh("del", ifindex=index, dst=entry.get("NDA_DST"), family=entry["family"])

    _request(name, f"flush neighbours of {ifname}", work)
