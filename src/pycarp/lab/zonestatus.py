"""What a zone lab reports: each zone's pycarp, each VIP's reachability and why not."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pycarp.client.instances import query
from pycarp.client.request import ControlError
from pycarp.lab.zonestate import Client, Zone, ZoneNic

__all__ = [
    "VipStatus",
    "ZoneStatus",
    "client_for",
    "plumbed_on",
    "vips_of",
    "why_unreachable",
    "zone_status",
]

STATUS_TIMEOUT = 3.0  # seconds for a zone's control socket to answer


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


def zone_status(zone: Zone) -> ZoneStatus:
    """The zone's pycarp, as its control socket reports it."""
    pid = zone.daemon_pid()
    hosts: list[dict[str, Any]] = []
    error = None
    if pid is not None:
        try:
            hosts = list(query(zone.control_socket, STATUS_TIMEOUT).hosts)
        except ControlError as exc:
            error = str(exc)
    return ZoneStatus(
        zone.alias, pid is not None, pid, hosts, error, zone.link_down, zone.partitioned
    )


def vips_of(statuses: Iterable[ZoneStatus]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(VIP -> vhid, VIP -> zones whose pycarp is MASTER for it), in the order reported."""
    vips: dict[str, int] = {}
    masters: dict[str, list[str]] = {}
    for st in statuses:
        for host in st.hosts:
            for addr in host.get("addresses", []):
                vips.setdefault(addr, int(host["vhid"]))
                if host.get("state") == "MASTER":
                    masters.setdefault(addr, []).append(st.zone)
    return vips, masters


def plumbed_on(vip: str, addresses: Mapping[str, Sequence[str]]) -> list[str]:
    """The zones (of alias -> "a.b.c.d/len" addresses) that have vip."""
    return [a for a, addrs in addresses.items() if any(x.split("/")[0] == vip for x in addrs)]


def _on_subnet(addr: ipaddress.IPv4Address, ip: str, prefix: int) -> bool:
    return addr in ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)


def client_for(vip: str, clients: Iterable[Client]) -> Client | None:
    """The client on the VIP's subnet, None if it is on none of the lab's networks."""
    addr = ipaddress.IPv4Address(vip)
    return next((c for c in clients if _on_subnet(addr, c.ip, c.prefix)), None)


def _nic_for(addr: ipaddress.IPv4Address, zone: Zone) -> ZoneNic:
    return next((n for n in zone.nics if _on_subnet(addr, n.ip, n.prefix)), zone.nic)


def why_unreachable(vip: str, plumbed: Sequence[str], zones: Mapping[str, Zone]) -> str:
    """One line: why the client gets no answer from vip, plumbed on these zones."""
    if not plumbed:
        return "unreachable: no zone has it plumbed (no MASTER?)"
    addr = ipaddress.IPv4Address(vip)
    reasons = []
    for alias in plumbed:
        zone = zones[alias]
        nic = _nic_for(addr, zone)
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
        return f"unreachable (plumbed on {', '.join(plumbed)})"
    return "unreachable: " + "; ".join(reasons)
