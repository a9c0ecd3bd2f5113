"""The one-line summary systemd shows (STATUS=): states, and a plumbing fault."""

from __future__ import annotations

from typing import Any, cast

from pycarp.core.node import Node
from pycarp.runtime.daemon import Daemon
from pycarp.settings import DaemonSettings
from tests.helpers import make_config


def test_summary_names_each_state_and_a_demoting_fault() -> None:
    configs = (make_config(vhid=1, plumb=True), make_config(vhid=2, addresses="192.0.2.60"))
    node = Node(configs, counter=lambda: 0)
    node.start(now=0.0)
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
