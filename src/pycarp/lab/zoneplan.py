"""A zone lab planned from vmadm manifests: every name, address and MAC, before anything is made.

Pure: plan() gives the state dict that pycarp.lab.zonestate stores and the
build follows; the same manifests and lab name always give the same plan.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Sequence
from typing import Any

from pycarp.lab.errors import LabError
from pycarp.lab.names import ALLOWED_NETWORKS, PREFIX, port_name, short_ifname
from pycarp.lab.zonestate import STATE_VERSION, ZoneNic, rundir_of
from pycarp.vmadm.manifest import NicSpec, ZoneManifest

__all__ = [
    "FIRST_CLIENT_HOST",
    "bridge_netns_of",
    "plan",
    "routable_gateway",
    "stable_mac",
]

FIRST_CLIENT_HOST = 10  # the client takes the first free address from .10 up


def bridge_netns_of(name: str) -> str:
    """The namespace that holds a lab's bridges."""
    return f"{PREFIX}{name}-br"


def stable_mac(*parts: str) -> str:
    """A locally administered unicast MAC that is the same for the same lab/zone/NIC."""
    digest = hashlib.sha1("/".join(parts).encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def routable_gateway(nic: ZoneNic) -> bool:
    """Only a gateway inside the lab's ranges and on the NIC's subnet becomes a route."""
    if nic.gateway is None:
        return False
    gw = ipaddress.IPv4Address(nic.gateway)
    net = ipaddress.IPv4Network(f"{nic.ip}/{nic.prefix}", strict=False)
    return gw in net and any(gw in n for n in ALLOWED_NETWORKS)


def _nic(name: str, m: ZoneManifest, n: NicSpec, bridge: str) -> dict[str, Any]:
    return {
        "name": n.name,
        "nic_tag": n.nic_tag,
        "ip": str(n.ip),
        "prefix": n.prefix,
        "gateway": str(n.gateway) if n.gateway is not None else None,
        "mac": n.mac or stable_mac(name, m.alias, n.name),
        "port": port_name(f"{m.alias}-{n.name[3:]}"),
        "bridge": bridge,
        "allow_ip_spoofing": n.allow_ip_spoofing,
        "allow_mac_spoofing": n.allow_mac_spoofing,
        "primary": n is m.primary,
    }


def _client_ip(
    net: ipaddress.IPv4Network, used: set[ipaddress.IPv4Address]
) -> ipaddress.IPv4Address | None:
    """The first host address from .FIRST_CLIENT_HOST up that no NIC or gateway uses."""
    hosts = (h for h in net.hosts() if int(h) - int(net.network_address) >= FIRST_CLIENT_HOST)
    return next((h for h in hosts if h not in used), None)


def plan(name: str, specs: Sequence[ZoneManifest]) -> dict[str, Any]:
    """The whole lab as a state dict: names, addresses, MACs. Nothing is created yet."""
    rundir = rundir_of(name)
    bridges: dict[str, str] = {}
    networks: dict[str, ipaddress.IPv4Network] = {}
    used: set[ipaddress.IPv4Address] = set()
    zones: dict[str, Any] = {}
    for m in specs:
        nics = []
        for n in m.nics:
            bridges.setdefault(n.nic_tag, short_ifname("br-", n.nic_tag))
            networks.setdefault(n.nic_tag, n.network)
            used.add(n.ip)
            if n.gateway is not None:
                used.add(n.gateway)
            nics.append(_nic(name, m, n, bridges[n.nic_tag]))
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
        ip = _client_ip(net, used)
        if ip is None:
            raise LabError(f"no free address for the client on {net} (nic_tag {tag})")
        used.add(ip)
        clients[tag] = {
            "nic_tag": tag,
            "netns": f"{PREFIX}{name}-client-{tag}",
            "ip": str(ip),
            "prefix": net.prefixlen,
            "mac": stable_mac(name, "client", tag),
            "port": short_ifname("c-", tag),
            "bridge": bridges[tag],
        }
    return {
        "version": STATE_VERSION,
        "name": name,
        "bridge_netns": bridge_netns_of(name),
        "bridges": bridges,
        "clients": clients,
        "zones": zones,
    }
