"""What a lab's segments and routers need besides links: nftables rules and sysctls.

Everything here acts inside one named namespace, never the root one: nft runs
through `ip netns exec`, and a sysctl under /proc/sys/net is written by a
thread that has entered the namespace (those files belong to the namespace
of whoever opens them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pycarp.lab.errors import LabError
from pycarp.lab.iproute import netns_entered
from pycarp.lab.nsexec import program, run_in

__all__ = [
    "DEFAULT_SEGMENT",
    "MCAST_TABLE",
    "MULTICAST",
    "SEGMENT_RE",
    "RouterLink",
    "ip_forward",
    "load_rules",
    "multicast_drop_rules",
    "nft_binary",
    "ruleset",
    "set_ip_forward",
    "split_cidr",
]

DEFAULT_SEGMENT = "br0"
SEGMENT_RE = re.compile(r"br[0-9]{1,2}")  # a bridge in the lab's bridge namespace
MCAST_TABLE = "pycarp_mcast"  # bridge table of drop_multicast; apart from the zone lab's
MULTICAST = "224.0.0.0/4"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


@dataclass(frozen=True)
class RouterLink:
    """One link of a router: its interface, address and bridge port on one segment."""

    segment: str
    ifname: str
    ip: str
    prefix: int
    port: str


def split_cidr(cidr: str) -> tuple[str, int]:
    """("a.b.c.d", len) of "a.b.c.d/len"; ValueError without the length."""
    ip, slash, prefix = cidr.partition("/")
    if not slash or not prefix.isdigit():
        raise ValueError(f"router address must be a.b.c.d/len, got {cidr!r}")
    return ip, int(prefix)


def nft_binary() -> str:
    return program("nft", "nftables")


def load_rules(netns: str, script: str) -> None:
    """`nft -f -` in netns with script; LabError with nft's message if it fails."""
    done = run_in(netns, [nft_binary(), "-f", "-"], check=False, timeout=10, input=script)
    if done.returncode != 0:
        raise LabError(f"nft failed in {netns}: {done.stderr.strip()}")


def ruleset(netns: str) -> str:
    """`nft list ruleset` in netns."""
    done = run_in(netns, [nft_binary(), "list", "ruleset"], check=False, timeout=10)
    if done.returncode != 0:
        raise LabError(f"nft list ruleset failed in {netns}: {done.stderr.strip()}")
    return done.stdout


def multicast_drop_rules(drop: bool) -> str:
    """An nft script that makes (drop) or removes (not drop) the multicast drop table.

    Bridge family, hook forward: every IPv4 frame to 224.0.0.0/4, and every
    IPv6 frame to CARP's ff02::12, from one port to another, on every bridge of
    the namespace (neighbour discovery's groups pass: IPv6 needs them to work
    at all, and the clouds that drop multicast answer it). The table is declared
    before it is deleted, so either script works whatever the current state.
    """
    lines = [f"table bridge {MCAST_TABLE}", f"delete table bridge {MCAST_TABLE}"]
    if drop:
        lines += [
            f"table bridge {MCAST_TABLE} {{",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            f"    ether type ip ip daddr {MULTICAST} counter drop",
            "    ether type ip6 ip6 daddr ff02::12 counter drop",
            "  }",
            "}",
        ]
    return "\n".join([*lines, ""])


def set_ip_forward(netns: str, on: bool) -> None:
    """net.ipv4.ip_forward of namespace netns (only that one's)."""
    try:
        with netns_entered(netns), open(IP_FORWARD, "w", encoding="ascii") as f:
            f.write("1\n" if on else "0\n")
    except OSError as exc:
        raise LabError(f"{netns}: cannot set ip_forward: {exc.strerror}") from None


def ip_forward(netns: str) -> bool:
    try:
        with netns_entered(netns), open(IP_FORWARD, encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError as exc:
        raise LabError(f"{netns}: cannot read ip_forward: {exc.strerror}") from None
