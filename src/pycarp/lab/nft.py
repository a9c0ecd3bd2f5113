"""SmartOS's NIC protection (allow_ip_spoofing, allow_mac_spoofing) as nftables rules.

One table, `bridge pycarp_lab`, in the bridge namespace: chain `forward` sees
every frame from one bridge port to another. nft runs through `ip netns exec`:
pyroute2 does not speak nftables' netlink well enough for a ruleset.
load_rules lives in pycarp.lab.segments (the test lab uses it too).
"""

from __future__ import annotations

from collections.abc import Iterable

from pycarp.lab.segments import load_rules
from pycarp.lab.zonestate import Zone

__all__ = ["NFT_TABLE", "load_rules", "nft_rules"]

NFT_TABLE = "pycarp_lab"


def nft_rules(zones: Iterable[Zone]) -> str:
    """The ruleset for these zones, on each zone's bridge port (frames *from* the zone).

    Without allow_mac_spoofing: only the NIC's own source MAC. Without
    allow_ip_spoofing: only the NIC's own source IPv4 address, and ARP only
    with the NIC's own address as sender (so no gratuitous ARP for a VIP).
    """
    lines = [
        f"table bridge {NFT_TABLE} {{",
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
