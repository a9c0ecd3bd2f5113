"""Test helpers for the protocol core: configs and a fake LAN without clocks.

FakeLan holds several Nodes on one broadcast domain. The datagram of every
SendAdvertisement a node emits (the payload of its frame, as the runtime sends
it) is fed to every other node through Node.receive, so the whole send and
receive path (IP header, TTL, checksum, demux, digest) runs in every timeline.
Time jumps from deadline to deadline; nothing sleeps.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Literal, TypeVar

from pycarp.core import auth, packet
from pycarp.core.actions import (
    Action,
    HostKey,
    Link,
    RunScript,
    SendAdvertisement,
    SendAnnouncement,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.node import Node
from pycarp.core.packet import Advertisement
from pycarp.core.state import VirtualHost

A = TypeVar("A")

PASSWORD = b"secret"
VIP = IPv4Address("192.0.2.50")
MAC = bytes.fromhex("020000000001")  # every timeline's interface has this hardware address
LINK = Link(MAC)
UP_SCRIPT = "/usr/local/sbin/vip-up"
DOWN_SCRIPT = "/usr/local/sbin/vip-down"


def rfc1071(data: bytes) -> int:
    """The Internet checksum word by word with the end-around carry (RFC 1071, 4.1):
    the reference the tests hold the codecs' arithmetic to."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def links(interface: str) -> Link:
    """Node.start()'s `links`: every interface has MAC and carrier."""
    return LINK


def make_config(**overrides: Any) -> VirtualHostConfig:
    """A valid VirtualHostConfig; strings are accepted for addresses."""
    values: dict[str, Any] = {
        "interface": "eth0",
        "srcip": IPv4Address("192.0.2.1"),
        "vhid": 1,
        "addresses": (VIP,),
        "password": PASSWORD,
        # ucarp's model: scripts, no built-in plumbing (test_plumbing covers it).
        "plumb": False,
    }
    values.update(overrides)
    for name in ("srcip", "group"):
        if isinstance(values.get(name), str):
            values[name] = IPv4Address(values[name])
    if isinstance(values["addresses"], str):
        values["addresses"] = (values["addresses"],)
    values["addresses"] = tuple(ip_address(a) for a in values["addresses"])
    values["peers"] = tuple(
        IPv6Address(p) if isinstance(p, str) and "%" in p else ip_address(p)
        for p in values.get("peers", ())
    )
    if isinstance(values["password"], str):
        values["password"] = values["password"].encode()
    return VirtualHostConfig(**values)


def scripted(**overrides: Any) -> VirtualHostConfig:
    """make_config() with an up and a down script, as ucarp is run."""
    return make_config(**{"upscript": UP_SCRIPT, "downscript": DOWN_SCRIPT, **overrides})


def script(vh: VirtualHost, which: Literal["up", "down"]) -> RunScript:
    """The RunScript of vh's up or down script: ucarp's argv, once per virtual address."""
    c = vh.config
    path = c.upscript if which == "up" else c.downscript
    assert path is not None
    extra = () if c.xparam is None else (c.xparam,)
    return RunScript(vh.key, which, tuple((path, c.interface, str(a), *extra) for a in c.addresses))


def arp(vh: VirtualHost) -> SendAnnouncement:
    """The announcement of vh's addresses, from the interface's MAC."""
    return SendAnnouncement(vh.key, MAC, vh.config.addresses)


def make_advert(config: VirtualHostConfig, *, counter: int = 1, **overrides: Any) -> Advertisement:
    """A correctly signed advertisement for config's vhid (overrides e.g. advskew=...)."""
    fields: dict[str, Any] = {
        "vhid": config.vhid,
        "advbase": config.advbase,
        "advskew": config.advskew,
        "counter": counter,
        "digest": auth.digest(config.password, config.vhid, config.addresses, counter),
    }
    fields.update(overrides)
    return Advertisement(**fields)


def datagram(
    advert: Advertisement | bytes,
    *,
    src: IPv4Address | str = "192.0.2.2",
    dst: IPv4Address | str = "224.0.0.18",
    ttl: int = packet.TTL,
    ident: int = 0x1234,
) -> bytes:
    """An advertisement as the IPv4 datagram a raw socket would hand us."""
    payload = advert.encode() if isinstance(advert, Advertisement) else advert
    return packet.encode_ipv4(IPv4Address(src), IPv4Address(dst), payload, ident=ident, ttl=ttl)


def of_type(actions: Iterable[Any], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def kinds(actions: Iterable[Action]) -> list[str]:
    """A compact picture of an action list, e.g. ['StateChanged', 'RunScript:up']."""
    out = []
    for a in actions:
        name = type(a).__name__
        if isinstance(a, RunScript):
            name += f":{a.which}"
        elif isinstance(a, StateChanged):
            name += f":{a.new.value}"
        out.append(name)
    return out


@dataclass
class Member:
    """One node on the fake LAN, with everything it did and when."""

    name: str
    node: Node
    log: list[tuple[float, Action]] = field(default_factory=list)
    send_ok: bool = True
    fail_next: int = 0  # this many coming sends fail, then send_ok decides again
    alive: bool = True

    @property
    def host(self) -> VirtualHost:
        """The node's only virtual host (most timelines have one per node)."""
        (host,) = self.node.hosts.values()
        return host

    @property
    def state(self) -> State:
        return self.host.state

    def actions(self, *, since: float = float("-inf"), until: float = float("inf")) -> list[Action]:
        return [a for t, a in self.log if since <= t <= until]

    def timed(self, kind: type[A], *, since: float = float("-inf")) -> list[tuple[float, A]]:
        return [(t, a) for t, a in self.log if t >= since and isinstance(a, kind)]

    def transitions(self) -> list[tuple[float, State, State]]:
        return [(t, a.old, a.new) for t, a in self.timed(StateChanged)]

    def adverts(self, *, since: float = float("-inf")) -> list[tuple[float, Advertisement]]:
        return [(t, a.advert) for t, a in self.timed(SendAdvertisement, since=since)]

    def arps(self, *, since: float = float("-inf")) -> list[float]:
        return [t for t, _ in self.timed(SendAnnouncement, since=since)]


MemberRef = Member | str


class FakeLan:
    """A broadcast domain of Nodes driven by a virtual clock.

    Packets are delivered with `latency` seconds of delay (0 by default: at
    the same instant, but after the sender has finished its step). Every send
    is reported back through Node.send_result, failing while a member's
    `send_ok` is False or its `fail_next` count lasts (a failed send is not
    delivered).
    """

    def __init__(self, *, start: float = 0.0, latency: float = 0.0) -> None:
        self.now = start
        self.latency = latency
        self.members: dict[str, Member] = {}
        self._silenced: set[str] = set()
        self._groups: list[set[str]] | None = None
        self._queue: list[tuple[float, int, str, HostKey, bytes]] = []
        self._seq = itertools.count()
        self.delivered = 0

    # -- building --------------------------------------------------------

    def add(
        self,
        config: VirtualHostConfig | Iterable[VirtualHostConfig] | VirtualHost,
        *,
        name: str | None = None,
        counter: int = 0,
    ) -> Member:
        """Add a node with one or more virtual hosts (or wrap a VirtualHost)."""
        name = name or f"n{len(self.members)}"
        if isinstance(config, VirtualHost):
            node = Node([], counter=lambda: counter)
            node.insert(config)  # keep the caller's instance
        elif isinstance(config, VirtualHostConfig):
            node = Node([config], counter=lambda: counter)
        else:
            node = Node(list(config), counter=lambda: counter)
        member = Member(name, node)
        self.members[name] = member
        return member

    def member(self, ref: MemberRef) -> Member:
        return self.members[ref] if isinstance(ref, str) else ref

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members.values())

    # -- stimuli ---------------------------------------------------------

    def start(self, *refs: MemberRef, link_up: bool = True) -> None:
        for m in self._pick(refs):
            self._apply(m, m.node.start(now=self.now, links=lambda _: Link(MAC, link_up)))

    def link(self, ref: MemberRef, *, up: bool, interface: str = "eth0") -> None:
        m = self.member(ref)
        self._apply(m, m.node.link_changed(interface, up=up, now=self.now))

    def force_backup(self, ref: MemberRef) -> None:
        m = self.member(ref)
        self._apply(m, m.node.force_backup(now=self.now))

    def shutdown(self, ref: MemberRef, *, graceful: bool = True) -> None:
        m = self.member(ref)
        self._apply(m, m.node.shutdown(now=self.now, graceful=graceful))

    def kill(self, ref: MemberRef) -> None:
        """Power off: no more timers, packets or actions (like SIGKILL)."""
        self.member(ref).alive = False

    def addresses_result(self, ref: MemberRef, *, ok: bool, detail: str = "") -> None:
        """Report the outcome of the member's AddAddresses, as the runtime would."""
        m = self.member(ref)
        self._apply(m, m.node.addresses_result(m.host.key, ok=ok, now=self.now, detail=detail))

    def inject(self, ref: MemberRef, data: bytes, *, interface: str = "eth0") -> list[Action]:
        """Hand a raw datagram to one member now, as if it came off the wire."""
        m = self.member(ref)
        actions = m.node.receive(data, interface=interface, now=self.now)
        self._apply(m, actions)
        return actions

    def silence(self, ref: MemberRef, silent: bool = True) -> None:
        """Drop everything ref sends (it still hears the others)."""
        name = self.member(ref).name
        if silent:
            self._silenced.add(name)
        else:
            self._silenced.discard(name)

    def partition(self, *groups: Iterable[MemberRef]) -> None:
        """Only members within the same group hear each other; unlisted ones hear nobody."""
        self._groups = [{self.member(r).name for r in g} for g in groups]

    def heal(self) -> None:
        self._groups = None
        self._silenced.clear()

    # -- time ------------------------------------------------------------

    def next_event(self) -> float | None:
        times = [d for m in self if m.alive and (d := m.node.next_deadline()) is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times, default=None)

    def run_until(self, until: float, *, max_steps: int = 100_000) -> None:
        """Process every deadline and delivery up to and including `until`."""
        for _ in range(max_steps):
            at = self.next_event()
            if at is None or at > until:
                break
            self.now = max(self.now, at)
            self._step()
        else:
            raise AssertionError(f"more than {max_steps} steps before t={until}: a livelock?")
        self.now = max(self.now, until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def _step(self) -> None:
        while self._queue and self._queue[0][0] <= self.now:
            _, _, sender, key, data = heapq.heappop(self._queue)
            for m in self._listeners(sender):
                self.delivered += 1
                self._apply(m, m.node.receive(data, interface=key.interface, now=self.now))
        for m in list(self):
            deadline = m.node.next_deadline()
            if m.alive and deadline is not None and deadline <= self.now:
                self._apply(m, m.node.on_timer(now=self.now))

    # -- plumbing --------------------------------------------------------

    def masters(self) -> list[str]:
        return [m.name for m in self if m.alive and m.state is State.MASTER]

    def _pick(self, refs: tuple[MemberRef, ...]) -> list[Member]:
        return [self.member(r) for r in refs] if refs else list(self)

    def _listeners(self, sender: str) -> list[Member]:
        if sender in self._silenced:
            return []
        out = []
        for m in self:
            if m.name == sender or not m.alive:
                continue
            if self._groups is not None and not any(
                sender in g and m.name in g for g in self._groups
            ):
                continue
            out.append(m)
        return out

    def _apply(self, m: Member, actions: list[Action]) -> None:
        if not m.alive:
            return
        pending = list(actions)
        while pending:
            action = pending.pop(0)
            m.log.append((self.now, action))
            if isinstance(action, SendAdvertisement):
                ok = m.send_ok and m.fail_next == 0
                m.fail_next = max(0, m.fail_next - 1)
                # The runtime reports each send; its answer may bring more actions.
                pending += m.node.send_result(action.key, ok=ok, now=self.now)
                if ok:
                    self._transmit(m, action)

    def _transmit(self, m: Member, action: SendAdvertisement) -> None:
        data = action.frames[0].payload  # the IP datagram, as the runtime sends it
        heapq.heappush(
            self._queue, (self.now + self.latency, next(self._seq), m.name, action.key, data)
        )
