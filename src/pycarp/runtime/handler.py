"""What the daemon answers on its control socket (the ControlHandler of runtime/requests.py).

Each command works through the core (Node) and the driver, which carries out
the actions; `reload` also opens and closes interfaces.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from typing import Any, Protocol

from pycarp.config.settings import DaemonSettings, SettingsLoader
from pycarp.core.actions import HostKey, StateChanged
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.core.node import Node
from pycarp.core.status import document, group_status
from pycarp.platform.base import AddressManager, InterfaceError, Platform
from pycarp.runtime.driver import Driver
from pycarp.runtime.events import EventBus
from pycarp.runtime.plumbing import AddressQueue
from pycarp.runtime.ports import (
    PLUMBING_WAIT,
    by_interface,
    log_host,
    missing_receivers,
    open_port,
)

log = logging.getLogger("pycarp")


class Running(Protocol):
    """What the commands need of the running daemon (runtime/daemon.py's Daemon)."""

    settings: DaemonSettings
    node: Node
    driver: Driver
    platform: Platform
    loader: SettingsLoader | None
    addresses: AddressManager | None
    scheduling: str  # "normal", or the realtime scheduling it got

    async def remove_stale(self, configs: Iterable[VirtualHostConfig]) -> None: ...


class Commands:
    """The control socket's commands, carried out on one running daemon."""

    def __init__(self, daemon: Running) -> None:
        self.daemon = daemon
        self.bus = EventBus()

    def status(self) -> dict[str, Any]:
        daemon = self.daemon
        return {**document(daemon.node, now=daemon.driver.now()), "scheduling": daemon.scheduling}

    def stepdown(self, vhid: int | None) -> list[str]:
        return self._each(vhid, "force_backup")

    def promote(self, vhid: int | None) -> list[str]:
        return self._each(vhid, "promote")

    def _each(self, vhid: int | None, what: str) -> list[str]:
        node, driver = self.daemon.node, self.daemon.driver
        if vhid is not None and not any(k.vhid == vhid for k in node.hosts):
            raise ValueError(f"no virtual host with vhid {vhid}")
        call = node.force_backup if what == "force_backup" else node.promote
        actions = call(now=driver.now(), vhid=vhid)
        driver.step(actions)
        return [str(a.key) for a in actions if isinstance(a, StateChanged)]

    def demote(self, group: str, by: int) -> dict[str, Any]:
        node, driver = self.daemon.node, self.daemon.driver
        driver.step(node.demote(group, by, now=driver.now()))  # ValueError: no such group
        shown = group_status(node, group)
        return {"group": shown.pop("name"), **shown}

    def events(self) -> EventBus:
        return self.bus

    async def reload(self) -> dict[str, Any]:
        daemon = self.daemon
        if daemon.loader is None:
            raise ValueError("this daemon was started without a config to reload")
        # in a thread: a slow file must not stop the advertisements; raises if the config is bad
        settings = await asyncio.to_thread(daemon.loader)
        # the same checks as at start
        Node(settings.vhosts, counter=lambda: 0, checks=settings.checks, groups=settings.groups)
        node, driver = daemon.node, daemon.driver
        old = {h.key: h.config for h in node.hosts.values()}
        new = {HostKey(c.interface, c.vhid): c for c in settings.vhosts}
        removed = [k for k in old if k not in new]
        added = [k for k in new if k not in old]
        changed = [k for k in new if k in old and new[k] != old[k]]
        unchanged = [k for k in new if k in old and new[k] == old[k]]
        for name, on_it in by_interface(new[k] for k in added + changed).items():
            try:  # open before changing anything
                if name not in driver.ports:
                    driver.add_port(name, open_port(daemon.platform, on_it))
                else:
                    more = missing_receivers(daemon.platform, driver.ports[name], on_it)
                    driver.add_receivers(name, more)
            except (CarpError, InterfaceError) as exc:  # these name the interface
                raise ValueError(str(exc)) from exc
            except OSError as exc:
                raise ValueError(f"{name}: {exc}") from exc
        if driver.unicast is None and any(new[k].unicast for k in added + changed):
            try:
                driver.unicast = daemon.platform.open_unicast_sender()
            except OSError as exc:
                raise ValueError(f"cannot open the unicast socket: {exc}") from exc
        now = driver.now()
        driver.step(node.configure_health(settings.checks, settings.groups, now=now))
        replaced = []
        for key in changed:  # only its demotion changed: taken in place, no restart
            retuned = node.retune(new[key], now=now)
            if retuned is None:
                replaced.append(key)
            else:
                driver.step(retuned)
        for key in removed + replaced:
            driver.step(node.remove(key, now=now))
        if daemon.addresses is None and any(new[k].plumbs for k in added + replaced):
            daemon.addresses = AddressQueue(daemon.platform.open_address_manager())
            driver.set_addresses(daemon.addresses)
        if daemon.addresses is not None:
            await driver.plumbing_done(PLUMBING_WAIT)
            await daemon.remove_stale(new[k] for k in added + replaced)
        for key in added + replaced:
            link = driver.link(key.interface)
            counter = secrets.randbits(64)
            driver.step(node.add(new[key], counter=counter, now=now, link=link))
            log_host(new[key])
        for name in set(driver.ports) - {k.interface for k in node.hosts}:
            driver.remove_port(name).close()
        daemon.settings = settings
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
