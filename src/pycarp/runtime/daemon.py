"""The daemon: opens the interfaces, wires the driver to signals and the
control socket, runs until told to stop, and hands over on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Iterable
from typing import Any

from pycarp.config.settings import DaemonSettings, SettingsLoader
from pycarp.core.actions import HostKey, StateChanged
from pycarp.core.config import SCRIPT_TIMEOUT, VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.core.node import Node
from pycarp.core.status import node_status
from pycarp.platform import select_platform
from pycarp.platform.base import (
    AddressError,
    AddressManager,
    InterfaceError,
    LinkMonitor,
    Platform,
)
from pycarp.runtime.control import ControlServer
from pycarp.runtime.driver import Driver, Port
from pycarp.runtime.logsetup import setup_logging
from pycarp.runtime.plumbing import AddressQueue
from pycarp.runtime.scripts import KILL_GRACE, SerialJobs
from pycarp.runtime.sdnotify import Notifier
from pycarp.runtime.secrets import warn_visible_password
from pycarp.runtime.startcheck import start_conflict

log = logging.getLogger("pycarp")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)
PLUMBING_WAIT = 30.0  # for address changes under way (the queue bounds its retries)
EXIT_MARGIN = 2.0  # seconds past the longest script timeout that a stop waits for scripts


def run(settings: DaemonSettings, *, reload: SettingsLoader | None = None) -> int:
    """Run until a stop signal; the exit status of the process."""
    setup_logging(facility=settings.facility, debug=settings.debug, stderr=True)
    try:
        node = Node(settings.vhosts, counter=lambda: secrets.randbits(64))
        platform = select_platform()
        ports = {c.interface: open_port(platform, c) for c in _first_per_interface(settings.vhosts)}
        monitor = platform.open_link_monitor()
    except (CarpError, InterfaceError, OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    # Here, before --daemonize, so that the refusal reaches the terminal.
    conflict = start_conflict(settings)
    if conflict is not None:
        log.error("cannot start: %s", conflict)
        return 1
    warn_visible_password()  # before --daemonize: the terminal sees it too
    if settings.daemonize:
        daemonize()
        setup_logging(facility=settings.facility, debug=settings.debug, stderr=False)
    daemon = Daemon(settings, node, platform, ports, monitor, reload)
    try:
        return asyncio.run(daemon.serve())
    finally:
        for port in daemon.ports.values():
            port.receiver.close()
            port.sender.close()
        monitor.close()


def _first_per_interface(configs: Iterable[VirtualHostConfig]) -> list[VirtualHostConfig]:
    seen: dict[str, VirtualHostConfig] = {}
    for config in configs:
        seen.setdefault(config.interface, config)
    return list(seen.values())


def open_port(platform: Platform, config: VirtualHostConfig) -> Port:
    info = platform.interface_info(config.interface)
    try:
        receiver = platform.open_receiver(info, config.group, config.srcip)
    except PermissionError as exc:
        raise _needs_privileges(f"the CARP receive socket on {info.name}", exc) from exc
    try:
        sender = platform.open_sender(info)
    except OSError as exc:
        receiver.close()
        if isinstance(exc, PermissionError):
            raise _needs_privileges(f"the packet socket on {info.name}", exc) from exc
        raise
    state = "running" if info.running else "no carrier"
    log.info("%s: index %d, MAC %s, %s", info.name, info.index, info.mac.hex(":"), state)
    return Port(info, receiver, sender)


def _needs_privileges(what: str, exc: OSError) -> CarpError:
    return CarpError(f"cannot open {what}: {exc.strerror} (pycarp needs CAP_NET_RAW, or root)")


class Daemon:
    """One running process; also the handler of the control socket."""

    def __init__(
        self,
        settings: DaemonSettings,
        node: Node,
        platform: Platform,
        ports: dict[str, Port],
        monitor: LinkMonitor,
        loader: SettingsLoader | None,
    ) -> None:
        self.settings = settings
        self.node = node
        self.platform = platform
        self.ports = ports
        self.monitor = monitor
        self.loader = loader
        self.jobs = SerialJobs()
        self.addresses: AddressManager | None = None
        self.notifier = Notifier()
        # (driver.changes, node.conflict_changes) when the last STATUS went out
        self._summarised = (-1, -1)
        self._signals = 0
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        if any(c.plumbs for c in self.settings.vhosts):
            self.addresses = AddressQueue(self.platform.open_address_manager())
        # Before the control socket opens: status and stepdown use the driver.
        self.driver = Driver(self.node, self.ports, self.jobs, addresses=self.addresses)
        self.driver.after_step = self._after_step
        control = None
        if self.settings.control_socket:
            control = ControlServer(
                self.settings.control_socket, self, group=self.settings.control_group
            )
            try:
                await control.start()
            except (CarpError, OSError) as exc:
                log.error("cannot start: %s", exc)
                return 1
        # Every socket is open (the control socket's chown needed CAP_CHOWN).
        runs_scripts = any(c.upscript or c.downscript for c in self.settings.vhosts)
        try:
            log.debug("%s", self.platform.drop_privileges(keep_bounding=runs_scripts))
        except OSError as exc:
            log.warning("could not drop privileges: %s", exc)
        try:
            return await self._serve(loop)
        finally:
            if control is not None:
                await control.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> int:
        if self.addresses is not None:
            await self._remove_stale(self.settings.vhosts)
        loop.add_reader(self.monitor.fileno(), self._on_link)
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGUSR1, self.log_status)
        loop.add_signal_handler(signal.SIGUSR2, self.stepdown, None)
        for host in self.node.hosts.values():
            _log_host(host.config)
        self.driver.start()
        self.notifier.ready(self.summary())
        await self._stopping.wait()
        self.notifier.stopping()
        await self._hand_over()
        self.driver.stop()
        loop.remove_reader(self.monitor.fileno())
        await self._remove_addresses(self.settings.vhosts)
        # Each script is bounded by its timeout; the down scripts of the stop had just begun.
        longest = max((c.script_timeout for c in self.settings.vhosts), default=SCRIPT_TIMEOUT)
        bound = longest + KILL_GRACE + EXIT_MARGIN
        if not await self.jobs.wait(bound):
            log.error("scripts still running after %.0f s were killed", bound)
        if self.addresses is not None:
            await self.addresses.close()
        self.notifier.close()
        log.info("stopped")
        return 0

    # -- stopping --------------------------------------------------------

    def _on_stop_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.warning("%s received: stopping (handing over where MASTER)", name)
            self._stopping.set()
        else:
            log.warning("%s received again: stopping now", name)
            self.driver.step(self.node.shutdown(now=self.driver.now(), graceful=False))

    async def _hand_over(self) -> None:
        """Stop every host, waiting for the ones handing over (the core bounds the wait)."""
        self.driver.step(self.node.shutdown(now=self.driver.now()))
        await self._stopped.wait()

    def _after_step(self) -> None:
        if self._stopping.is_set():
            if self.node.stopped:
                self._stopped.set()
        elif self.notifier.enabled:
            changes = (self.driver.changes, self.node.conflict_changes)
            if self._summarised != changes:
                self._summarised = changes
                self.notifier.status(self.summary())

    def summary(self) -> str:
        """One line for systemctl status: each virtual host's state, any fault or conflict."""
        return ", ".join(
            f"{k} {h.state.value}{self._troubles(k)}" for k, h in self.node.hosts.items()
        )

    def _troubles(self, key: HostKey) -> str:
        fault = self.node.hosts[key].fault
        said = [f"demoted: {fault}"] if fault else []
        conflict = self.node.conflicts[key].describe()
        said += [conflict] if conflict else []
        return f" ({'; '.join(said)})" if said else ""

    # -- addresses -------------------------------------------------------

    async def _remove_stale(self, configs: Iterable[VirtualHostConfig]) -> None:
        """Addresses of ours left on an interface by a crashed predecessor go."""
        assert self.addresses is not None
        by_interface: dict[str, list[VirtualHostConfig]] = {}
        for config in configs:
            if config.plumbs:
                by_interface.setdefault(config.interface, []).append(config)
        for interface, on_it in by_interface.items():
            try:
                present = await self.addresses.present(interface)  # one listing per interface
                for config in on_it:
                    stale = [(a, p) for a, p in config.networks if a in present]
                    if stale:
                        shown = ", ".join(str(a) for a, _ in stale)
                        log.warning(
                            "%s/vhid %d: %s already configured while not MASTER (left by an "
                            "earlier run?): removing",
                            interface,
                            config.vhid,
                            shown,
                        )
                        await self.addresses.remove(interface, stale)
            except (AddressError, OSError) as exc:
                log.error("%s: could not check for stale addresses: %s", interface, exc)

    async def _remove_addresses(self, configs: Iterable[VirtualHostConfig]) -> None:
        """At exit: none of our addresses stays behind, whatever happened before."""
        await self.driver.plumbing_done(PLUMBING_WAIT)  # the removals of the state changes
        addresses = self.addresses
        if addresses is None:
            return
        # All at once: the queue sends them to the kernel in one call per interface.
        removals = [addresses.remove(c.interface, c.networks) for c in configs if c.plumbs]
        for outcome in await asyncio.gather(*removals, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, AddressError | OSError):
                raise outcome

    # -- events ----------------------------------------------------------

    def _on_link(self) -> None:
        for name, running in self.monitor.read():
            self.driver.link_changed(name, running)

    def log_status(self) -> None:
        for host in self.node.hosts.values():
            peer = host.last_peer
            seen = f", last master seen {peer.address}" if peer else ""
            reason = host.reason.value if host.reason else "-"
            fault = f", demoted: {host.fault}" if host.fault else ""
            conflict = self.node.conflicts[host.key].describe()
            fault += f", {conflict}" if conflict else ""
            constant = self.node.guards[host.key].constant_senders
            if constant:
                fault += ", constant counter: " + " ".join(str(a) for a in constant)
            log.info("%s on %s id %d (%s)%s%s", host.state.value, *host.key, reason, seen, fault)

    # -- control socket (ControlHandler) ---------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self.driver.now()
        return [s.to_json(now=now) for s in node_status(self.node)]

    def stepdown(self, vhid: int | None) -> list[str]:
        if vhid is not None and not any(k.vhid == vhid for k in self.node.hosts):
            raise ValueError(f"no virtual host with vhid {vhid}")
        actions = self.node.force_backup(now=self.driver.now(), vhid=vhid)
        self.driver.step(actions)
        return [str(a.key) for a in actions if isinstance(a, StateChanged)]

    async def reload(self) -> dict[str, Any]:
        if self.loader is None:
            raise ValueError("this daemon was started without a config to reload")
        # in a thread: a slow file must not stop the advertisements; raises if the config is bad
        settings = await asyncio.to_thread(self.loader)
        Node(settings.vhosts, counter=lambda: 0)  # the same checks as at start
        old = {h.key: h.config for h in self.node.hosts.values()}
        new = {HostKey(c.interface, c.vhid): c for c in settings.vhosts}
        removed = [k for k in old if k not in new]
        added = [k for k in new if k not in old]
        changed = [k for k in new if k in old and new[k] != old[k]]
        unchanged = [k for k in new if k in old and new[k] == old[k]]
        for config in _first_per_interface(new[k] for k in added + changed):
            if config.interface not in self.ports:  # open before changing anything
                try:
                    port = open_port(self.platform, config)
                except (InterfaceError, OSError) as exc:
                    raise ValueError(f"{config.interface}: {exc}") from exc
                self.driver.add_port(config.interface, port)
        now = self.driver.now()
        for key in removed + changed:
            self.driver.step(self.node.remove(key, now=now))
        if self.addresses is None and any(new[k].plumbs for k in added + changed):
            self.addresses = AddressQueue(self.platform.open_address_manager())
            self.driver.set_addresses(self.addresses)
        if self.addresses is not None:
            await self.driver.plumbing_done(PLUMBING_WAIT)
            await self._remove_stale(new[k] for k in added + changed)
        for key in added + changed:
            link = self.driver.link(key.interface)
            counter = secrets.randbits(64)
            self.driver.step(self.node.add(new[key], counter=counter, now=now, link=link))
            _log_host(new[key])
        for name in set(self.ports) - {k.interface for k in self.node.hosts}:
            port = self.driver.remove_port(name)
            port.receiver.close()
            port.sender.close()
        self.settings = settings
        summary = {
            "added": [str(k) for k in added],
            "removed": [str(k) for k in removed],
            "changed": [str(k) for k in changed],
            "unchanged": [str(k) for k in unchanged],
        }
        log.warning(
            "reloaded: %s", ", ".join(f"{what} {len(keys)}" for what, keys in summary.items())
        )
        return summary


def _log_host(c: VirtualHostConfig) -> None:
    log.info(
        "%s/vhid %d: virtual address %s, advbase %d, advskew %d, %s%s%s",
        c.interface,
        c.vhid,
        ", ".join(f"{a}/{p}" for a, p in c.networks),
        c.advbase,
        c.advskew,
        "broadcast" if c.nomcast else f"group {c.group}",
        ", preempt" if c.preempt else "",
        ", built-in plumbing" if c.plumbs else "",
    )


def daemonize() -> None:
    """Detach as a classic daemon: fork, new session, fork, stdio to /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with contextlib.suppress(OSError):
        os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
