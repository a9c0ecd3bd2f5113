"""A node: every virtual host of one process, and the checks on what arrives.

Received datagrams are checked in ucarp's order (own source, TTL, version,
vhid, group, checksum, digest), counted when dropped, and handed to the one
virtual host they are for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address

from pycarp.core import auth, packet
from pycarp.core.actions import Action, HostKey, PacketDropped, State
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError, DropReason, PacketError
from pycarp.core.state import VirtualHost


class Node:
    def __init__(self, configs: Iterable[VirtualHostConfig], *, counter: Callable[[], int]) -> None:
        """`counter` gives each virtual host its initial counter (the runtime's random source)."""
        self.hosts: dict[HostKey, VirtualHost] = {}
        for config in configs:
            host = VirtualHost(config, counter=counter())
            if host.key in self.hosts:
                raise ConfigError(f"vhid {config.vhid} is configured twice on {config.interface}")
            self.hosts[host.key] = host
        self.drops: Counter[DropReason] = Counter()
        self.host_drops: dict[HostKey, Counter[DropReason]] = {k: Counter() for k in self.hosts}
        self._retired: dict[HostKey, VirtualHost] = {}

    @property
    def interfaces(self) -> set[str]:
        return {key.interface for key in self.hosts}

    def next_deadline(self) -> float | None:
        deadlines = [d for h in self.hosts.values() if (d := h.next_deadline()) is not None]
        return min(deadlines, default=None)

    def start(self, *, now: float, link_up: Callable[[str], bool] = lambda _: True) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            actions += host.start(now=now, link_up=link_up(host.key.interface))
        return actions

    def on_timer(self, *, now: float) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            actions += host.on_timer(now=now)
        return actions

    def link_changed(self, interface: str, *, up: bool, now: float) -> list[Action]:
        actions: list[Action] = []
        for host in self._on(interface):
            actions += host.link_changed(up=up, now=now)
        return actions

    def force_backup(self, *, now: float, vhid: int | None = None) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            if vhid is None or host.key.vhid == vhid:
                actions += host.force_backup(now=now)
        return actions

    def shutdown(self, *, now: float, graceful: bool = True) -> list[Action]:
        actions: list[Action] = []
        for host in self.hosts.values():
            actions += host.shutdown(now=now, graceful=graceful)
        return actions

    @property
    def stopped(self) -> bool:
        """Every host has finished stopping (handovers included)."""
        return all(h.state is State.INIT for h in self.hosts.values())

    def add(
        self, config: VirtualHostConfig, *, counter: int, now: float, link_up: bool
    ) -> list[Action]:
        """Start a new virtual host (a reload)."""
        host = VirtualHost(config, counter=counter)
        if host.key in self.hosts:
            raise ConfigError(f"vhid {config.vhid} is configured twice on {config.interface}")
        self.hosts[host.key] = host
        self.host_drops[host.key] = Counter()
        return host.start(now=now, link_up=link_up)

    def remove(self, key: HostKey, *, now: float) -> list[Action]:
        """Stop a virtual host at once and forget it (a reload).

        Its config stays reachable through host() until the next remove(), so
        the runtime can still carry out the actions returned here.
        """
        self._retired.clear()
        host = self.hosts.pop(key)
        self.host_drops.pop(key, None)
        self._retired[key] = host
        return host.shutdown(now=now, graceful=False)

    def host(self, key: HostKey) -> VirtualHost:
        return self.hosts.get(key) or self._retired[key]

    def send_result(self, key: HostKey, *, ok: bool, now: float) -> list[Action]:
        return self.host(key).send_result(ok=ok, now=now)

    def receive(self, datagram: bytes, *, interface: str, now: float) -> list[Action]:
        """An IPv4 datagram of protocol 112 that arrived on `interface`."""
        source: IPv4Address | None = None
        key: HostKey | None = None
        try:
            header, payload = packet.parse_ipv4(datagram)
            source = header.src
            hosts = self._on(interface)
            if header.proto != packet.PROTO_CARP or any(h.config.srcip == source for h in hosts):
                return []  # not CARP, or our own advertisement looped back
            if header.ttl != packet.TTL:
                raise PacketError(DropReason.BAD_TTL, f"TTL {header.ttl}, expected 255")
            host = None
            if len(payload) > 1 and payload[0] >> 4 == packet.VERSION:
                host = next((h for h in hosts if h.key.vhid == payload[1]), None)
                if host is None or header.dst != host.config.group:
                    # ucarp ignores other vhids and groups before the checksum,
                    # so neighbours (VRRPv2 shares protocol 112) are not drops.
                    return []
                key = host.key
            advert = packet.decode(payload)  # short, bad version, type or checksum: raises
            assert host is not None  # decode() raised for whatever could not be placed
            c = host.config
            if not auth.verify(c.password, c.vhid, c.addresses, advert.counter, advert.digest):
                raise PacketError(
                    DropReason.BAD_DIGEST, "bad digest: check vhid, password and virtual address"
                )
        except PacketError as exc:
            return [self._dropped(key, exc.reason, source, str(exc))]
        return host.receive(advert, source=header.src, now=now)

    def _on(self, interface: str) -> list[VirtualHost]:
        return [h for h in self.hosts.values() if h.key.interface == interface]

    def _dropped(
        self, key: HostKey | None, reason: DropReason, source: IPv4Address | None, detail: str
    ) -> PacketDropped:
        self.drops[reason] += 1
        if key is not None:
            self.host_drops[key][reason] += 1
        return PacketDropped(key, reason, source, detail)
