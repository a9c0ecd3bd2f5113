"""The one-line summary systemd shows (STATUS=): states, and a plumbing fault."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.core.node import Node
from pycarp.runtime.daemon import Daemon
from tests.helpers import links, make_config


def test_summary_names_each_state_and_a_demoting_fault() -> None:
    configs = (make_config(vhid=1, plumb=True), make_config(vhid=2, addresses="192.0.2.60"))
    node = Node(configs, counter=lambda: 0)
    node.start(now=0.0, links=links)
    deadline = node.next_deadline()
    assert deadline is not None
    node.on_timer(now=deadline)
    faulty = next(iter(node.hosts))
    node.addresses_result(faulty, ok=False, now=deadline, detail="eth0: no such interface")
    none = cast(Any, None)
    daemon = Daemon(DaemonSettings(vhosts=configs), node, none, {}, none, None)
    assert daemon.summary() == (
        "eth0/vhid 1 MASTER (demoted: eth0: no such interface), eth0/vhid 2 MASTER"
    )


def test_sigusr1_status_lines_name_a_demoting_fault(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(vhid=1, plumb=True)
    node = Node([config], counter=lambda: 0)
    node.start(now=0.0, links=links)
    deadline = node.next_deadline()
    assert deadline is not None
    node.on_timer(now=deadline)
    node.addresses_result(next(iter(node.hosts)), ok=False, now=deadline, detail="refused")
    none = cast(Any, None)
    daemon = Daemon(DaemonSettings(vhosts=(config,)), node, none, {}, none, None)
    with caplog.at_level(logging.INFO, logger="pycarp"):
        daemon.log_status()
    assert "MASTER on eth0 id 1" in caplog.text and "demoted: refused" in caplog.text
