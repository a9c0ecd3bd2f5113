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
from concurrent.futures import ThreadPoolExecutor

from pycarp.config.settings import DaemonSettings, SettingsLoader
from pycarp.core.actions import HostKey
from pycarp.core.config import SCRIPT_TIMEOUT, VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.core.node import Node
from pycarp.platform import select_platform
from pycarp.platform.base import (
    AddressError,
    AddressManager,
    InterfaceError,
    LinkMonitor,
    Platform,
    Timer,
)
from pycarp.runtime.checkrunner import CheckRunner
from pycarp.runtime.control import ControlServer
from pycarp.runtime.driver import Driver, Port
from pycarp.runtime.events import event_of
from pycarp.runtime.handler import Commands
from pycarp.runtime.logsetup import setup_logging
from pycarp.runtime.metrics import MetricsServer
from pycarp.runtime.plumbing import AddressQueue, remove_stale
from pycarp.runtime.ports import PLUMBING_WAIT, log_host, open_ports
from pycarp.runtime.scripts import KILL_GRACE, SerialJobs
from pycarp.runtime.sdnotify import Notifier
from pycarp.runtime.secrets import warn_visible_password
from pycarp.runtime.startcheck import start_conflict

log = logging.getLogger("pycarp")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)
EXIT_MARGIN = 2.0  # seconds past the longest script timeout that a stop waits for scripts
# SCHED_RR priority of the event loop when realtime: above every normal process, below
# the kernel's threaded interrupts (50), which deliver the advertisements.
RT_PRIORITY = 10


def run(settings: DaemonSettings, *, reload: SettingsLoader | None = None) -> int:
    """Run until a stop signal; the exit status of the process."""
    setup_logging(facility=settings.facility, debug=settings.debug, stderr=True)
    try:
        node = Node(
            settings.vhosts,
            counter=lambda: secrets.randbits(64),
            checks=settings.checks,
            groups=settings.groups,
        )
        platform = select_platform()
        ports = open_ports(platform, settings.vhosts)
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
            port.close()
        monitor.close()


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
        self.timer: Timer | None = None
        self.scheduling = "normal"  # or what set_realtime() did
        self.notifier = Notifier()
        self.checks = CheckRunner(self._interface_running)
        self.commands = Commands(self)
        # (driver.changes, node.conflict_changes) when the last STATUS went out
        self._summarised = (-1, -1)
        self._signals = 0
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        # Capabilities are per thread: worker threads made before the drop
        # below would keep them, so those get an executor of their own.
        early = ThreadPoolExecutor(thread_name_prefix="pycarp-start")
        loop.set_default_executor(early)
        if any(c.plumbs for c in self.settings.vhosts):
            self.addresses = AddressQueue(self.platform.open_address_manager())
        # Before the control socket opens: status and stepdown use the driver.
        try:
            self.timer = self.platform.open_timer()
        except OSError as exc:  # the loop's timer still works, a millisecond coarser
            log.warning("no precise timer (%s): using the event loop's", exc)
            self.timer = None
        self.driver = Driver(
            self.node,
            self.ports,
            self.jobs,
            addresses=self.addresses,
            checks=self.checks,
            timer=self.timer,
        )
        self.driver.after_step = self._after_step
        if any(c.unicast for c in self.settings.vhosts):
            try:
                self.driver.unicast = self.platform.open_unicast_sender()
            except OSError as exc:
                log.error("cannot start: cannot open the unicast socket: %s", exc)
                return 1
        self.checks.report = self.driver.check_result
        bus = self.commands.bus
        self.driver.facts = lambda fact: bus.publish(event_of(fact))
        control = None
        metrics = None
        try:
            if self.settings.metrics is not None:
                metrics = MetricsServer(self.settings.metrics, self.commands.status)
                await metrics.start()
            if self.settings.control_socket:
                control = ControlServer(
                    self.settings.control_socket, self.commands, group=self.settings.control_group
                )
                await control.start()
        except (CarpError, OSError) as exc:
            log.error("cannot start: %s", exc)
            if metrics is not None:
                await metrics.close()
            return 1
        # Every socket is open (the control socket's chown needed CAP_CHOWN).
        runs_scripts = any(c.upscript or c.downscript for c in self.settings.vhosts)
        runs_scripts |= any(c.type == "command" for c in self.settings.checks)
        early.shutdown(wait=True)  # its idle threads end now: none keeps what is dropped
        locked = False
        if self.settings.wants_realtime:  # before the drop: it needs CAP_SYS_NICE
            self.scheduling, locked = self._go_realtime()
        try:
            dropped = self.platform.drop_privileges(
                keep_bounding=runs_scripts, locked_memory=locked
            )
            log.debug("%s", dropped)
        except OSError as exc:
            log.warning("could not drop privileges: %s", exc)
        # Worker threads (file reads, checks) would inherit realtime: they start normal.
        workers = ThreadPoolExecutor(
            thread_name_prefix="pycarp", initializer=self.platform.normal_thread
        )
        loop.set_default_executor(workers)
        try:
            return await self._serve(loop)
        finally:
            if self.driver.unicast is not None:
                self.driver.unicast.close()
            if self.timer is not None:
                self.timer.close()
            await self.checks.close()
            if metrics is not None:
                await metrics.close()
            if control is not None:
                await control.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> int:
        if self.addresses is not None:
            await self.remove_stale(self.settings.vhosts)
        loop.add_reader(self.monitor.fileno(), self._on_link)
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGUSR1, self.log_status)
        loop.add_signal_handler(signal.SIGUSR2, self.commands.stepdown, None)
        for host in self.node.hosts.values():
            log_host(host.config)
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

    def _go_realtime(self) -> tuple[str, bool]:
        """Realtime scheduling for the event loop's thread, or one warning why not.

        What the status says of it, and whether memory is locked.
        """
        try:
            done, locked = self.platform.set_realtime(RT_PRIORITY)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            log.warning(
                "realtime scheduling not permitted (%s): running at normal priority", reason
            )
            return "normal", False
        (log.info if locked else log.warning)("realtime scheduling: %s", done)
        return done, locked

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
        host = self.node.hosts[key]
        fault = host.fault
        said = [f"demoted: {fault}"] if fault else []
        if host.demote and not host.promoted:
            said.append(f"demote {host.demote}")
        if host.promoted:
            said.append("promoted")
        conflict = self.node.conflicts[key].describe()
        said += [conflict] if conflict else []
        return f" ({'; '.join(said)})" if said else ""

    # -- addresses -------------------------------------------------------

    def _interface_running(self, name: str) -> bool:
        """For carrier checks: whether `name` is up with carrier (asked in a thread)."""
        return self.platform.interface_info(name).running

    async def remove_stale(self, configs: Iterable[VirtualHostConfig]) -> None:
        """Addresses of ours left by a crashed predecessor go (see plumbing.remove_stale)."""
        assert self.addresses is not None
        macs = self.platform.supports_virtual_mac
        await remove_stale(self.addresses, configs, virtual_macs=macs)

    async def _remove_addresses(self, configs: Iterable[VirtualHostConfig]) -> None:
        """At exit: none of our addresses stays behind, whatever happened before."""
        await self.driver.plumbing_done(PLUMBING_WAIT)  # the removals of the state changes
        addresses = self.addresses
        if addresses is None:
            return
        # All at once: the queue sends them to the kernel in one call per interface.
        removals = [
            addresses.remove(c.interface, c.networks, c.address_mac) for c in configs if c.plumbs
        ]
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
            if host.demote:
                fault += f", demote {host.demote}"
            log.info("%s on %s id %d (%s)%s%s", host.state.value, *host.key, reason, seen, fault)
        for check in self.node.health.checks.values():
            log.info("check %s: %s (%s)", check.config.name, check.state.value, check.detail)


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
