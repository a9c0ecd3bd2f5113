"""The thin asyncio driver: feeds packets, time and link events to the core and
carries out the actions it returns. It decides nothing about the protocol.

Exactly one timer is armed, for the core's earliest deadline (the hand-over's
at a stop included): the platform's precise one where there is one (a
timerfd on Linux: the loop's own wakes up to a millisecond late), else the
loop's. Nothing polls. Each action is complete, so carrying it
out is a row of a table (action type -> handler) that looks nothing up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pycarp.core.actions import (
    Action,
    AddAddresses,
    CheckReported,
    DemotionChanged,
    HandOverTimedOut,
    HostKey,
    Link,
    Network,
    Notice,
    PacketDropped,
    RemoveAddresses,
    RunCheck,
    RunScript,
    SendAdvertisement,
    SendAnnouncement,
    SendUnicast,
    State,
    StateChanged,
)
from pycarp.core.node import Node
from pycarp.core.packet import Frame
from pycarp.core.vrrp import VrrpAdvertisement
from pycarp.platform.base import (
    AddressError,
    AddressManager,
    CarpReceiver,
    InterfaceInfo,
    LinkSender,
    Timer,
    UnicastSender,
)
from pycarp.runtime.alarm import Alarm
from pycarp.runtime.droplog import DropLog

log = logging.getLogger("pycarp")


@dataclass
class Port:
    """What the driver holds for one interface."""

    info: InterfaceInfo
    receivers: dict[int, CarpReceiver]  # by IP version: the families of the hosts on it
    sender: LinkSender

    def close(self) -> None:
        for receiver in self.receivers.values():
            receiver.close()
        self.sender.close()


class Jobs(Protocol):
    """Per-host scripts, run in order (see runtime.scripts.SerialJobs)."""

    def script(self, action: RunScript) -> None: ...

    def turn(self, key: HostKey, direction: Literal["up", "down"]) -> None: ...


class Checks(Protocol):
    """Runs health checks (see runtime.checkrunner.CheckRunner)."""

    def run(self, action: RunCheck) -> None:
        """Start one run; its outcome goes to Driver.check_result."""
        ...


Fact = StateChanged | CheckReported | DemotionChanged


class Driver:
    def __init__(
        self,
        node: Node,
        ports: dict[str, Port],
        jobs: Jobs,
        *,
        addresses: AddressManager | None = None,
        clock: Callable[[], float] | None = None,
        checks: Checks | None = None,
        timer: Timer | None = None,
    ) -> None:
        """`timer`: a precise one (the platform's), armed instead of the loop's."""
        self.node = node
        self.ports = ports
        self._jobs = jobs
        self.checks = checks
        self.unicast: UnicastSender | None = None  # for hosts with peers (runtime.daemon opens it)
        self._unicast_failing: dict[HostKey, str] = {}  # the peers each host last could not reach
        self.facts: Callable[[Fact], None] | None = None  # e.g. the event stream
        self._addresses = addresses
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._precise = timer
        self._alarm: Alarm | None = None  # made at start, on the running loop
        self._drop_log = DropLog()
        self._plumbing: set[asyncio.Task[None]] = set()  # address changes under way
        self.after_step: Callable[[], None] | None = None  # e.g. to notice that all stopped
        self.changes = 0  # transitions and plumbing results so far: what a summary shows
        self._handlers: dict[type, Callable[[Any], list[Action]]] = {
            SendAdvertisement: self._send_advertisement,
            SendUnicast: self._send_unicast,
            SendAnnouncement: self._send_arp,
            AddAddresses: self._add_addresses,
            RemoveAddresses: self._remove_addresses,
            RunScript: self._run_script,
            RunCheck: self._run_check,
            CheckReported: self._check_reported,
            DemotionChanged: self._demotion_changed,
            StateChanged: self._state_changed,
            Notice: self._notice,
            PacketDropped: self._dropped,
            HandOverTimedOut: self._hand_over_timed_out,
        }

    def now(self) -> float:
        return self._clock()

    # -- inputs ----------------------------------------------------------

    def start(self) -> None:
        self._alarm = Alarm(self._loop, self._on_timer, self._precise)
        for name, port in self.ports.items():
            self._watch(name, port)
        self.step(self.node.start(now=self.now(), links=self.link))

    def stop(self) -> None:
        for port in self.ports.values():
            for receiver in port.receivers.values():
                self._loop.remove_reader(receiver.fileno())
        if self._alarm is not None:
            self._alarm.close()
            self._alarm = None

    def link(self, name: str) -> Link:
        """What the core needs to know of an interface: its MAC, its last known carrier."""
        info = self.ports[name].info
        return Link(info.mac, info.running, info.link_local)

    def add_port(self, name: str, port: Port) -> None:
        self.ports[name] = port
        self._watch(name, port)

    def remove_port(self, name: str) -> Port:
        port = self.ports.pop(name)
        for receiver in port.receivers.values():
            self._loop.remove_reader(receiver.fileno())
        return port

    def add_receivers(self, name: str, receivers: dict[int, CarpReceiver]) -> None:
        """Other families' receivers on a port (a reload brought IPv6 to the interface)."""
        self.ports[name].receivers.update(receivers)
        for receiver in receivers.values():
            self._loop.add_reader(receiver.fileno(), self._on_readable, name, receiver)

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
        for receiver in port.receivers.values():
            self._loop.add_reader(receiver.fileno(), self._on_readable, name, receiver)

    def _on_readable(self, interface: str, receiver: CarpReceiver) -> None:
        # One step for the whole burst: the timer is re-armed once, not per packet.
        self.step(self._read(interface, receiver, self.now()))

    def _read(self, interface: str, receiver: CarpReceiver, now: float) -> list[Action]:
        try:
            datagrams = receiver.receive()
        except OSError as exc:
            log.error("%s: receive failed: %s", interface, exc)
            return []
        actions: list[Action] = []
        for datagram in datagrams:
            actions += self.node.receive(datagram, interface=interface, now=now)
        return actions

    def _on_timer(self, due: float) -> None:
        # call_at may fire a hair early; the core must see its deadline as reached.
        now = max(due, self.now())
        # What already waits in the sockets comes first: a process that was not
        # scheduled for a while must not take its own delay for the master's silence.
        actions: list[Action] = []
        for name, port in list(self.ports.items()):
            for receiver in port.receivers.values():
                actions += self._read(name, receiver, now)
        self.step(actions + self.node.on_timer(now=now))

    def step(self, actions: Iterable[Action]) -> None:
        """Carry out actions (and whatever they lead to), then re-arm the timer."""
        queue = deque(actions)
        while queue:
            queue.extend(self._dispatch(queue.popleft()))
        deadline = self.node.next_deadline()
        if self._alarm is not None:
            self._alarm.arm(deadline)
        if self.after_step is not None:
            self.after_step()

    # -- actions ---------------------------------------------------------

    def _dispatch(self, action: Action) -> list[Action]:
        """Carry out one action; what the core answers to its outcome comes back."""
        handler: Callable[[Any], list[Action]] = self._handlers[type(action)]
        return handler(action)

    def _send_advertisement(self, action: SendAdvertisement) -> list[Action]:
        key = action.key
        # Sent when one family's frame left (each failure is logged).
        ok = sum(self._transmit(key, frame, "advertisement") for frame in action.frames) > 0
        if ok and log.isEnabledFor(logging.DEBUG):
            a = action.advert
            if isinstance(a, VrrpAdvertisement):
                said = f"priority {a.priority}"
            else:
                said = f"advskew {a.advskew}"
            log.debug("%s: advertisement sent (%s)", key, said)
        return self.node.send_result(key, ok=ok, now=self.now())

    def _send_unicast(self, action: SendUnicast) -> list[Action]:
        """One datagram to each peer: sent when at least one left (the others are logged)."""
        key, sent, failures = action.key, 0, []
        for peer, datagram in action.datagrams:
            try:
                if self.unicast is None:
                    raise OSError("no unicast socket")
                self.unicast.send_to(datagram, peer)
            except OSError as exc:
                log.debug("%s: sending advertisement to %s failed: %s", key, peer, exc)
                failures.append(f"{peer}: {exc.strerror or exc}")
                continue
            sent += 1
        detail = "; ".join(failures)
        if self._unicast_failing.get(key, "") != detail:  # said when it changes, not each time
            if failures:
                log.warning("%s: advertisements not sent to %s", key, detail)
            else:
                log.info("%s: advertisements reach every peer again", key)
            self._unicast_failing[key] = detail
        return self.node.send_result(key, ok=sent > 0, now=self.now(), detail=detail)

    def _send_arp(self, action: SendAnnouncement) -> list[Action]:
        for frame in action.frames:
            self._transmit(action.key, frame, "ARP")
        return []

    def _add_addresses(self, action: AddAddresses) -> list[Action]:
        self._plumb(action.key, action.networks, add=True, mac=action.mac)
        return []

    def _remove_addresses(self, action: RemoveAddresses) -> list[Action]:
        self._plumb(action.key, action.networks, add=False, mac=action.mac)
        return []

    def _run_script(self, action: RunScript) -> list[Action]:
        self._jobs.script(action)
        return []

    def _run_check(self, action: RunCheck) -> list[Action]:
        if self.checks is not None:
            self.checks.run(action)
        return []

    def check_result(self, name: str, *, ok: bool, detail: str) -> None:
        """A check run that _run_check started has ended."""
        self.step(self.node.check_result(name, ok=ok, detail=detail, now=self.now()))

    def _check_reported(self, action: CheckReported) -> list[Action]:
        if action.changed:
            self.changes += 1
            log.warning("check %s: %s (%s)", action.name, action.state, action.detail)
        else:
            log.debug("check %s: %s", action.name, action.detail)
        self._tell(action)
        return []

    def _demotion_changed(self, action: DemotionChanged) -> list[Action]:
        self.changes += 1
        hosts = ", ".join(str(k) for k in action.hosts) or "no host"
        log.warning(
            "demotion group %s: %d -> %d (%s); tracked by %s",
            action.group,
            action.old,
            action.new,
            action.why,
            hosts,
        )
        self._tell(action)
        return []

    def _tell(self, fact: Fact) -> None:
        if self.facts is not None:
            self.facts(fact)

    def _state_changed(self, action: StateChanged) -> list[Action]:
        self.changes += 1
        if action.new is State.MASTER:  # what the other direction's scripts do is moot now
            self._jobs.turn(action.key, "up")
        elif action.old is State.MASTER:
            self._jobs.turn(action.key, "down")
        log.warning(
            "%s: %s -> %s: %s", action.key, action.old.value, action.new.value, action.reason.value
        )
        self._tell(action)
        return []

    def _notice(self, action: Notice) -> list[Action]:
        log.warning("%s: %s", action.key, action.message)
        return []

    def _dropped(self, action: PacketDropped) -> list[Action]:
        self._drop_log(action, self.now())
        return []

    def _hand_over_timed_out(self, action: HandOverTimedOut) -> list[Action]:
        log.error("hand-over did not finish in time: stopping now")
        return []

    def _transmit(self, key: HostKey, frame: Frame, what: str) -> bool:
        try:
            self.ports[key.interface].sender.transmit(frame)
        except OSError as exc:
            log.warning("%s: sending %s failed: %s", key, what, exc)
            return False
        return True

    def _plumb(
        self, key: HostKey, networks: Sequence[Network], *, add: bool, mac: bytes | None
    ) -> None:
        """Start the change now, whatever scripts run; an add's outcome goes back to the core.

        The changes reach the address queue (runtime.plumbing) in the order made.
        """
        manager = self._addresses
        if manager is None:
            return
        shown = ", ".join(f"{a}/{p}" for a, p in networks)

        async def change() -> None:
            try:
                # A mac only when there is one: managers written before it still fit.
                args = (key.interface, networks) if mac is None else (key.interface, networks, mac)
                await (manager.add if add else manager.remove)(*args)
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

        task = self._loop.create_task(change())
        self._plumbing.add(task)
        task.add_done_callback(self._plumbing.discard)

    async def plumbing_done(self, timeout: float) -> bool:
        """Wait for the address changes started so far; False if some are still under way."""
        if not self._plumbing:
            return True
        _, pending = await asyncio.wait(set(self._plumbing), timeout=timeout)
        return not pending

    def _plumbed(self, key: HostKey, *, ok: bool, detail: str = "") -> None:
        self.changes += 1
        self.step(self.node.addresses_result(key, ok=ok, now=self.now(), detail=detail))
