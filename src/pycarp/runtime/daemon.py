"""The daemon: opens the interfaces, wires the driver to signals, runs until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys

from pycarp.core.node import Node
from pycarp.platform import select_platform
from pycarp.platform.base import InterfaceError, LinkMonitor, Platform
from pycarp.runtime.driver import Driver, Port
from pycarp.runtime.logsetup import setup_logging
from pycarp.runtime.scripts import ScriptRunner
from pycarp.settings import DaemonSettings

log = logging.getLogger("pycarp")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)
SCRIPT_WAIT_AT_EXIT = 30.0


def run(settings: DaemonSettings) -> int:
    """Run until a stop signal; the exit status of the process."""
    setup_logging(facility=settings.facility, debug=settings.debug, stderr=True)
    try:
        node = Node(settings.vhosts, counter=lambda: secrets.randbits(64))
        platform = select_platform()
        ports = open_ports(platform, settings)
        monitor = platform.open_link_monitor()
    except (InterfaceError, OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    if settings.daemonize:
        daemonize()
        setup_logging(facility=settings.facility, debug=settings.debug, stderr=False)
    try:
        asyncio.run(_serve(node, ports, monitor))
    finally:
        for port in ports.values():
            port.receiver.close()
            port.sender.close()
        monitor.close()
    return 0


def open_ports(platform: Platform, settings: DaemonSettings) -> dict[str, Port]:
    ports: dict[str, Port] = {}
    for config in settings.vhosts:
        if config.interface in ports:
            continue
        info = platform.interface_info(config.interface)
        receiver = platform.open_receiver(info, config.group, config.srcip)
        ports[config.interface] = Port(info, receiver, platform.open_sender(info))
        log.info(
            "%s: index %d, MAC %s, %s",
            info.name,
            info.index,
            info.mac.hex(":"),
            "running" if info.running else "no carrier",
        )
    return ports


async def _serve(node: Node, ports: dict[str, Port], monitor: LinkMonitor) -> None:
    loop = asyncio.get_running_loop()
    scripts = ScriptRunner()
    driver = Driver(node, ports, scripts.run)
    stopping = asyncio.Event()

    def on_link() -> None:
        for name, running in monitor.read():
            if name in ports:
                log.debug("%s: link %s", name, "running" if running else "not running")
                driver.step(node.link_changed(name, up=running, now=driver.now()))

    def on_stop(signum: int) -> None:
        log.warning("%s received: stopping", signal.Signals(signum).name)
        stopping.set()

    loop.add_reader(monitor.fileno(), on_link)
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_stop, signum)
    loop.add_signal_handler(signal.SIGUSR1, log_status, node)
    loop.add_signal_handler(
        signal.SIGUSR2, lambda: driver.step(node.force_backup(now=driver.now()))
    )
    for host in node.hosts.values():
        c = host.config
        log.info(
            "%s: virtual address %s, advbase %d, advskew %d, %s%s",
            host.key,
            ", ".join(map(str, c.addresses)),
            c.advbase,
            c.advskew,
            "broadcast" if c.nomcast else f"group {c.group}",
            ", preempt" if c.preempt else "",
        )
    driver.start()
    await stopping.wait()
    driver.step(node.shutdown(now=driver.now()))
    driver.stop()
    loop.remove_reader(monitor.fileno())
    if not await scripts.wait(SCRIPT_WAIT_AT_EXIT):
        log.error("scripts still running after %.0f s were killed", SCRIPT_WAIT_AT_EXIT)
    log.info("stopped")


def log_status(node: Node) -> None:
    for host in node.hosts.values():
        peer = host.last_peer
        seen = f", last master seen {peer.address}" if peer else ""
        reason = host.reason.value if host.reason else "-"
        log.info("%s on %s id %d (%s)%s", host.state.value, *host.key, reason, seen)


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
