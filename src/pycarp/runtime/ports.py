"""Opening an interface for the daemon (its receive and send sockets), and saying what it runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.platform.base import CarpReceiver, InterfaceError, InterfaceInfo, Platform
from pycarp.runtime.driver import Port

log = logging.getLogger("pycarp")
PLUMBING_WAIT = 30.0  # for address changes under way (the queue bounds its retries)


def by_interface(configs: Iterable[VirtualHostConfig]) -> dict[str, list[VirtualHostConfig]]:
    out: dict[str, list[VirtualHostConfig]] = {}
    for config in configs:
        out.setdefault(config.interface, []).append(config)
    return out


def open_ports(platform: Platform, configs: Iterable[VirtualHostConfig]) -> dict[str, Port]:
    """A port for each interface of `configs`; none stays open if one cannot be opened."""
    ports: dict[str, Port] = {}
    try:
        for interface, on_it in by_interface(configs).items():
            ports[interface] = open_port(platform, on_it)
    except BaseException:
        for port in ports.values():
            port.close()
        raise
    return ports


def open_port(platform: Platform, configs: list[VirtualHostConfig]) -> Port:
    """The sockets of one interface for the hosts `configs` on it: a receiver per family."""
    info = platform.interface_info(configs[0].interface)
    try:
        sender = platform.open_sender(info)
    except PermissionError as exc:
        raise needs_privileges(f"the packet socket on {info.name}", exc) from exc
    port = Port(info, {}, sender)
    try:
        port.receivers.update(_open_receivers(platform, info, _versions(configs)))
    except BaseException:
        port.close()
        raise
    state = "running" if info.running else "no carrier"
    ipv6 = f", IPv6 from {info.link_local}" if info.link_local else ""
    log.info("%s: index %d, MAC %s, %s%s", info.name, info.index, info.mac.hex(":"), state, ipv6)
    return port


def missing_receivers(
    platform: Platform, port: Port, configs: Iterable[VirtualHostConfig]
) -> dict[int, CarpReceiver]:
    """The receivers `port` lacks for `configs` (on its interface): IPv4's, IPv6's, or none.

    When IPv6's is lacking, the interface's link-local address is looked up
    again first (and kept in ``port.info``, where new hosts get it): IPv6 may
    have been turned on or off on it since the port was opened.
    CarpError for IPv6 addresses on an interface without IPv6.
    """
    wanted = {v: c for v, c in _versions(configs).items() if v not in port.receivers}
    if 6 in wanted:
        link_local = platform.interface_info(port.info.name).link_local
        if link_local != port.info.link_local:
            log.info("%s: IPv6 link-local address now %s", port.info.name, link_local or "none")
            port.info = replace(port.info, link_local=link_local)
    return _open_receivers(platform, port.info, wanted)


def _versions(configs: Iterable[VirtualHostConfig]) -> dict[int, VirtualHostConfig]:
    """Each IP version the hosts `configs` advertise in, with the first host that does."""
    wanted: dict[int, VirtualHostConfig] = {}
    for config in configs:
        for version in config.versions:
            wanted.setdefault(version, config)
    return wanted


def _open_receivers(
    platform: Platform, info: InterfaceInfo, wanted: dict[int, VirtualHostConfig]
) -> dict[int, CarpReceiver]:
    """A receiver for each version of `wanted`; none stays open if one cannot be opened."""
    opened: dict[int, CarpReceiver] = {}
    try:
        for version, config in sorted(wanted.items()):
            what = f"the IPv{version} CARP receive socket on {info.name}"
            try:
                if version == 4:
                    assert config.srcip is not None  # the config requires it with IPv4
                    opened[4] = platform.open_receiver(info, config.group, config.srcip)
                else:
                    opened[6] = open_receiver6(platform, info, config)
            except PermissionError as exc:
                raise needs_privileges(what, exc) from exc
    except BaseException:
        for receiver in opened.values():
            receiver.close()
        raise
    return opened


def open_receiver6(
    platform: Platform, info: InterfaceInfo, config: VirtualHostConfig
) -> CarpReceiver:
    if info.link_local is None:
        raise CarpError(
            f"{info.name} has no IPv6 link-local address (IPv6 is off on it): "
            f"vhid {config.vhid} cannot advertise its IPv6 addresses there"
        )
    try:
        return platform.open_receiver6(info)
    except InterfaceError as exc:
        raise CarpError(str(exc)) from exc


def needs_privileges(what: str, exc: OSError) -> CarpError:
    return CarpError(f"cannot open {what}: {exc.strerror} (pycarp needs CAP_NET_RAW, or root)")


def log_host(c: VirtualHostConfig) -> None:
    if c.vrrp:
        timing = f"VRRPv3, priority {c.priority}, advert_int {c.advert_int / 100:g} s"
        if c.preempt_delay:
            timing += f", preempt_delay {c.preempt_delay:g} s"
    else:
        timing = f"advbase {c.advbase}, advskew {c.advskew}"
    mac = "" if c.mac == "interface" else f", {c.mac} MAC"
    log.info(
        "%s/vhid %d: virtual address %s, %s, %s%s%s%s",
        c.interface,
        c.vhid,
        ", ".join(f"{a}/{p}" for a, p in c.networks),
        timing,
        _destination(c),
        ", preempt" if c.preempt else "",
        ", built-in plumbing" if c.plumbs else "",
        mac,
    )


def _destination(c: VirtualHostConfig) -> str:
    if c.peers:
        return f"unicast to {', '.join(str(p) for p in c.peers)} (min TTL {c.min_ttl})"
    return "broadcast" if c.nomcast else f"group {c.group}"
