"""A reload reads its files in a thread: the event loop (and the advertisements) keep going."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.core.errors import ConfigError
from pycarp.core.node import Node
from pycarp.runtime.daemon import Daemon

BLOCK_LIMIT = 10.0  # seconds the loader waits at most, should the test fail


async def test_the_loop_runs_while_the_loader_blocks() -> None:
    release = threading.Event()

    def slow_loader() -> DaemonSettings:  # as a reload whose password file is a FIFO
        release.wait(BLOCK_LIMIT)
        raise ConfigError("password", "the file was slow")

    none = cast(Any, None)
    daemon = Daemon(DaemonSettings(vhosts=()), Node([], counter=lambda: 0), none, {}, none, None)
    daemon.loader = slow_loader
    reload = asyncio.ensure_future(daemon.commands.reload())
    ticks = 0
    while ticks < 5:  # the loop turns while the loader is blocked
        await asyncio.sleep(0.01)
        ticks += 1
        assert not reload.done()
    release.set()
    with pytest.raises(ConfigError, match="the file was slow"):
        await reload
