"""The thin asyncio driver: feeds packets, time and link events to the core and
carries out the actions it returns. It decides nothing about the protocol.

Exactly one timer is armed, for the core's earliest deadline; nothing polls.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Protocol

from pycarp.core import packet
from pycarp.core.actions import (
    Action,
    AddAddresses,
    HostKey,
    Notice,
    PacketDropped,
    RemoveAddresses,
    RunScript,
    SendAdvertisement,
    SendGratuitousArp,
    State,
    StateChanged,
)
from pycarp.core.errors import DropReason
from pycarp.core.node import Node
from pycarp.platform.base import (
    AddressError,
    AddressManager,
    CarpReceiver,
    FrameSender,
    InterfaceInfo,
)

log = logging.getLogger("pycarp")
DROP_LOG_INTERVAL = 10.0  # at most one log line per (reason, source) this often


@dataclass
class Port:
    """What the driver holds for one interface."""

    info: InterfaceInfo
    receiver: CarpReceiver
    sender: FrameSender


class DropLog:
    """Logs dropped packets without letting a flood of them flood the log."""

    def __init__(self, interval: float = DROP_LOG_INTERVAL, limit: int = 1024) -> None:
        self._interval, self._limit = interval, limit
        self._seen: dict[tuple[DropReason, str], tuple[float, int]] = {}

    def __call__(self, drop: PacketDropped, now: float) -> None:
        where = f"{drop.key}: " if drop.key else ""
        slot = (drop.reason, str(drop.source))
        last, quiet = self._seen.get(slot, (-self._interval, 0))
        if now - last < self._interval:
            self._seen[slot] = (last, quiet + 1)
            return
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[slot] = (now, 0)
        more = f" (+{quiet} more since the last report)" if quiet else ""
        log.warning("%sdropped packet from %s: %s%s", where, drop.source, drop.detail, more)


class Jobs(Protocol):
    """Per-host background work, run in order (see runtime.scripts.SerialJobs)."""

    def submit(self, key: HostKey, job: Callable[[], Awaitable[None]]) -> None: ...

    def run(self, key: HostKey, argv: Sequence[str]) -> None: ...


class Driver:
    def __init__(
        self,
        node: Node,
        ports: dict[str, Port],
        jobs: Jobs,
        *,
        addresses: AddressManager | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.node = node
        self.ports = ports
        self._jobs = jobs
        self._addresses = addresses
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._drop_log = DropLog()
        self.after_step: Callable[[], None] | None = None  # e.g. to notice that all stopped
        self.changes = 0  # transitions and plumbing results so far: what a summary shows
        self._heads: dict[HostKey, bytes] = {}  # each host's advertisement frame up to CARP

    def now(self) -> float:
        return self._clock()

    # -- inputs ----------------------------------------------------------

    def start(self) -> None:
        for name, port in self.ports.items():
            self._watch(name, port)
        running = self.running
        self.step(self.node.start(now=self.now(), link_up=lambda name: running[name]))

    def stop(self) -> None:
        for port in self.ports.values():
            self._loop.remove_reader(port.receiver.fileno())
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed_for = None

    @property
    def running(self) -> dict[str, bool]:
        """The last known carrier state of each interface."""
        return {name: port.info.running for name, port in self.ports.items()}

    def add_port(self, name: str, port: Port) -> None:
        self.ports[name] = port
        self._watch(name, port)

    def remove_port(self, name: str) -> Port:
        port = self.ports.pop(name)
        self._loop.remove_reader(port.receiver.fileno())
        return port

    def set_addresses(self, addresses: AddressManager) -> None:
        self._addresses = addresses

    def link_changed(self, name: str, running: bool) -> None:
        port = self.ports.get(name)
        if port is None or port.info.running == running:
            return
        port.info = replace(port.info, running=running)
        log.info("%s: link %s", name, "running" if running else "not running")
        self.step(self.node.link_changed(name, up=running, now=self.now()))

    def _watch(self, name: str, port: Port) -> None:
        self._loop.add_reader(port.receiver.fileno(), self._on_readable, name)

    def _on_readable(self, interface: str) -> None:
        try:
            datagrams = self.ports[interface].receiver.receive()
        except OSError as exc:
            log.error("%s: receive failed: %s", interface, exc)
            return
        # One step for the whole burst: the timer is re-armed once, not per packet.
        now = self.now()
        actions: list[Action] = []
        for datagram in datagrams:
            actions += self.node.receive(datagram, interface=interface, now=now)
        self.step(actions)

    def _on_timer(self) -> None:
        due = self._armed_for
        self._timer = self._armed_for = None
        # call_at may fire a hair early; the core must see its deadline as reached.
        now = max(due or 0.0, self.now())
        self.step(self.node.on_timer(now=now))

    def step(self, actions: Iterable[Action]) -> None:
        """Carry out actions (and whatever they lead to), then re-arm the timer."""
        queue = deque(actions)
        while queue:
            queue.extend(self._dispatch(queue.popleft()))
        deadline = self.node.next_deadline()
        if deadline != self._armed_for:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)
            self._armed_for = deadline
        if self.after_step is not None:
            self.after_step()

    # -- actions ---------------------------------------------------------

    def _dispatch(self, action: Action) -> list[Action]:
        match action:
            case SendAdvertisement(key, advert):
                return self._send_advert(key, advert)
            case SendGratuitousArp(key, addresses):
                port = self.ports[key.interface]
                for address in addresses:
                    self._send(key, packet.gratuitous_arp(port.info.mac, address), "ARP")
            case AddAddresses(key, networks):
                self._plumb(key, networks, add=True)
            case RemoveAddresses(key, networks):
                self._plumb(key, networks, add=False)
            case RunScript(key, which):
                self._script(key, which)
            case StateChanged(key, old, new, reason):
                self.changes += 1
                if new is State.INIT:  # stopped, or removed by a reload: its config may change
                    self._heads.pop(key, None)
                log.warning("%s: %s -> %s: %s", key, old.value, new.value, reason.value)
            case Notice(key, message):
                log.warning("%s: %s", key, message)
            case PacketDropped():
                self._drop_log(action, self.now())
        return []

    def _plumb(
        self, key: HostKey, networks: Sequence[tuple[IPv4Address, int]], *, add: bool
    ) -> None:
        """Queue the change as the host's next job; an add's outcome goes back to the core."""
        manager = self._addresses
        if manager is None:
            return
        shown = ", ".join(f"{a}/{p}" for a, p in networks)

        async def job() -> None:
            try:
                await (manager.add if add else manager.remove)(key.interface, networks)
            except (AddressError, OSError) as exc:
                if add:  # the core says it once per episode, and retries
                    log.debug("%s: adding %s failed: %s", key, shown, exc)
                    self._plumbed(key, ok=False, detail=str(exc))
                else:
                    log.error("%s: could not remove %s: %s", key, shown, exc)
                return
            log.info("%s: %s %s", key, "added" if add else "removed", shown)
            if add:
                self._plumbed(key, ok=True)

        self._jobs.submit(key, job)

    def _plumbed(self, key: HostKey, *, ok: bool, detail: str = "") -> None:
        self.changes += 1
        self.step(self.node.addresses_result(key, ok=ok, now=self.now(), detail=detail))

    def _send_advert(self, key: HostKey, advert: packet.Advertisement) -> list[Action]:
        head = self._heads.get(key) or self._frame_head(key)
        ok = self._send(key, head + advert.encode(), "advertisement")
        if ok:
            log.debug("%s: advertisement sent (advskew %d)", key, advert.advskew)
        return self.node.send_result(key, ok=ok, now=self.now())

    def _frame_head(self, key: HostKey) -> bytes:
        """Ethernet and IPv4 headers of the host's advertisements, made once per host.

        The IP identification is fixed per host: the datagrams have DF set and are
        never fragmented, so it identifies nothing (RFC 6864).
        """
        config = self.node.host(key).config
        port = self.ports[key.interface]
        ip = packet.ipv4_header(
            config.srcip, config.group, packet.CARP_LEN, ident=random.getrandbits(16)
        )
        dst = packet.BROADCAST_MAC if config.nomcast else packet.multicast_mac(config.group)
        src = packet.virtual_mac(config.vhid) if config.virtual_mac else port.info.mac
        head = self._heads[key] = packet.ethernet(dst, src, packet.ETHERTYPE_IP, ip)
        return head

    def _send(self, key: HostKey, frame: bytes, what: str) -> bool:
        try:
            self.ports[key.interface].sender.send(frame)
        except OSError as exc:
            log.warning("%s: sending %s failed: %s", key, what, exc)
            return False
        return True

    def _script(self, key: HostKey, which: str) -> None:
        config = self.node.host(key).config
        script = config.upscript if which == "up" else config.downscript
        if not script:
            return
        for address in config.addresses:
            argv = [script, key.interface, str(address)]
            if config.xparam is not None:
                argv.append(config.xparam)
            self._jobs.run(key, argv)
