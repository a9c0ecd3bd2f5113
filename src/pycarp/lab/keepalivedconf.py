"""keepalived.conf for the lab's keepalived (pycarp.lab.keepalived): vrrp_instances, pure text.

`Instance` is one vrrp_instance, checked on creation (ranges, one address
family, documentation addresses only); `render_config` the whole file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pycarp.lab.names import ALLOWED_NETWORKS

__all__ = ["IPV6_LAB", "Instance", "check_address", "render_config"]

IPV6_LAB = ipaddress.IPv6Network("2001:db8::/32")


def check_address(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An "addr[/len]" inside the lab's documentation ranges; ValueError otherwise."""
    iface = ipaddress.ip_interface(text)
    if isinstance(iface, ipaddress.IPv4Interface):
        allowed = any(iface.ip in net for net in ALLOWED_NETWORKS)
    else:
        allowed = iface.ip in IPV6_LAB
    if not allowed:
        raise ValueError(f"{text}: not a lab address (documentation ranges only)")
    return iface


@dataclass(frozen=True)
class Instance:
    """One vrrp_instance (see the module's docstring)."""

    vrid: int
    priority: int
    addresses: tuple[str, ...]
    advert_int: float = 1.0
    interface: str = "eth0"
    preempt: bool = True
    preempt_delay: float = 0.0  # seconds; keepalived wants state BACKUP for it
    state: str = "BACKUP"  # the initial state: BACKUP or MASTER
    name: str | None = None
    unicast_src_ip: str | None = None
    unicast_peers: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # more lines of the block, as keepalived.conf spells them

    def __post_init__(self) -> None:
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"virtual_router_id {self.vrid} is outside 1..255")
        if not 1 <= self.priority <= 255:
            raise ValueError(f"priority {self.priority} is outside 1..255")
        if not 0.01 <= self.advert_int <= 255:
            raise ValueError(f"advert_int {self.advert_int} is outside 0.01..255 s")
        if self.state not in ("BACKUP", "MASTER"):
            raise ValueError(f"initial state must be BACKUP or MASTER, not {self.state!r}")
        if not self.addresses:
            raise ValueError("an instance needs at least one virtual address")
        families = {check_address(a).version for a in self.addresses}
        if len(families) > 1:
            raise ValueError("one address family per instance (keepalived's rule)")
        for peer in (*self.unicast_peers, *filter(None, [self.unicast_src_ip])):
            check_address(peer)

    @property
    def label(self) -> str:
        """The instance's name in keepalived.conf and in its notifications."""
        return self.name or f"vr{self.vrid}"

    @property
    def ipv6(self) -> bool:
        return ipaddress.ip_interface(self.addresses[0]).version == 6

    def render(self, notify: Path | None) -> list[str]:
        lines = [
            f"vrrp_instance {self.label} {{",
            f"    state {self.state}",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.vrid}",
            f"    priority {self.priority}",
            f"    advert_int {self.advert_int:g}",
        ]
        if self.ipv6:
            lines.append("    native_ipv6")
        if not self.preempt:
            lines.append("    nopreempt")
        if self.preempt_delay:
            lines.append(f"    preempt_delay {self.preempt_delay:g}")
        if self.unicast_src_ip:
            lines.append(f"    unicast_src_ip {self.unicast_src_ip}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {p}" for p in self.unicast_peers), "    }"]
        if notify is not None:
            lines.append(f"    notify {notify}")
        lines.append("    virtual_ipaddress {")
        lines += [f"        {a} dev {self.interface}" for a in self.addresses]
        lines.append("    }")
        lines += [f"    {x}" for x in self.extra]
        lines.append("}")
        return lines


def render_config(
    instances: Sequence[Instance],
    *,
    router_id: str = "lab",
    notify: Path | None = None,
    version: int = 3,
    rt_priority: int | None = None,
    extra_global: Sequence[str] = (),
) -> str:
    """keepalived.conf: global_defs, then one vrrp_instance each (names and VRIDs unique).

    rt_priority: keepalived's realtime scheduling for its VRRP process
    (`vrrp_rt_priority` and `vrrp_no_swap`), as pycarp's realtime mode; None: off.
    """
    if version not in (2, 3):
        raise ValueError(f"vrrp_version {version}: 2 or 3")
    labels = [i.label for i in instances]
    if len(set(labels)) != len(labels):
        raise ValueError("instance names must be unique")
    ids = [(i.interface, i.vrid, i.ipv6) for i in instances]
    if len(set(ids)) != len(ids):
        raise ValueError("one instance per interface, VRID and family")
    lines = [
        "global_defs {",
        f"    router_id {router_id}",
        f"    vrrp_version {version}",
        "    script_user root",
        "    enable_script_security",
    ]
    if rt_priority is not None:
        lines += [f"    vrrp_rt_priority {rt_priority}", "    vrrp_no_swap"]
    lines += [f"    {x}" for x in extra_global]
    lines.append("}")
    for instance in instances:
        lines += ["", *instance.render(notify)]
    return "\n".join(lines) + "\n"
