"""What the lab may call its namespaces and interfaces, and the addresses it may use."""

from __future__ import annotations

import hashlib
import re

from pycarp.vmadm.manifest import LAB_NETWORKS

__all__ = ["ALLOWED_NETWORKS", "IFNAME_MAX", "PREFIX", "TAG_RE", "port_name", "short_ifname"]

# Every namespace of a lab is "<PREFIX><tag>-<role>"; nothing else uses the prefix.
PREFIX = "pycarp-"
TAG_RE = re.compile(r"[A-Za-z0-9_]{1,16}")  # no "-": a namespace name splits unambiguously

# Addresses the lab may put on its hosts: documentation ranges only. The manifest
# reader owns the list, since it refuses a lab manifest that strays outside it.
ALLOWED_NETWORKS = LAB_NETWORKS

IFNAME_MAX = 15  # IFNAMSIZ - 1


def short_ifname(prefix: str, text: str) -> str:
    """An interface name: prefix+text, hashed when longer than IFNAME_MAX."""
    name = f"{prefix}{text}"
    if len(name) <= IFNAME_MAX:
        return name
    return f"{prefix}{text[:6]}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def port_name(role: str) -> str:
    """Bridge-side veth name: "v-<role>", hashed when too long."""
    return short_ifname("v-", role)
