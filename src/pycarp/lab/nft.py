"""SmartOS's NIC protection (allow_ip_spoofing, allow_mac_spoofing) as nftables rules.

One table, `bridge pycarp_lab`, in the bridge namespace: chain `forward` sees
every frame from one bridge port to another. nft runs through `ip netns exec`:
pyroute2 does not speak nftables' netlink well enough for a ruleset.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from pycarp.lab.errors import LabError
from pycarp.lab.nsexec import run_in
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


def load_rules(netns: str, script: str) -> None:
    """`nft -f -` in netns with script; LabError with nft's message if it fails."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        raise LabError("nftables `nft` not found (apt-get install nftables)")
    done = run_in(netns, [nft, "-f", "-"], check=False, timeout=10, input=script)
    if done.returncode != 0:
        raise LabError(f"nft failed in {netns}: {done.stderr.strip()}")
