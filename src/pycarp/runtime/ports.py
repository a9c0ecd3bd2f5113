"""Opening an interface for the daemon (its receive and send sockets), and saying what it runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.platform.base import Platform
from pycarp.runtime.driver import Port

log = logging.getLogger("pycarp")
PLUMBING_WAIT = 30.0  # for address changes under way (the queue bounds its retries)


def first_per_interface(configs: Iterable[VirtualHostConfig]) -> list[VirtualHostConfig]:
    seen: dict[str, VirtualHostConfig] = {}
    for config in configs:
        seen.setdefault(config.interface, config)
    return list(seen.values())


def open_port(platform: Platform, config: VirtualHostConfig) -> Port:
    info = platform.interface_info(config.interface)
    try:
        receiver = platform.open_receiver(info, config.group, config.srcip)
    except PermissionError as exc:
        raise needs_privileges(f"the CARP receive socket on {info.name}", exc) from exc
    try:
        sender = platform.open_sender(info)
    except OSError as exc:
        receiver.close()
        if isinstance(exc, PermissionError):
            raise needs_privileges(f"the packet socket on {info.name}", exc) from exc
        raise
    state = "running" if info.running else "no carrier"
    log.info("%s: index %d, MAC %s, %s", info.name, info.index, info.mac.hex(":"), state)
    return Port(info, receiver, sender)


def needs_privileges(what: str, exc: OSError) -> CarpError:
    return CarpError(f"cannot open {what}: {exc.strerror} (pycarp needs CAP_NET_RAW, or root)")


def log_host(c: VirtualHostConfig) -> None:
    log.info(
        "%s/vhid %d: virtual address %s, advbase %d, advskew %d, %s%s%s",
        c.interface,
        c.vhid,
        ", ".join(f"{a}/{p}" for a, p in c.networks),
        c.advbase,
        c.advskew,
        _destination(c),
        ", preempt" if c.preempt else "",
        ", built-in plumbing" if c.plumbs else "",
    )


def _destination(c: VirtualHostConfig) -> str:
    if c.peers:
        return f"unicast to {', '.join(str(p) for p in c.peers)} (min TTL {c.min_ttl})"
    return "broadcast" if c.nomcast else f"group {c.group}"
