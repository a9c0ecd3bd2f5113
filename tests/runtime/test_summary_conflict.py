"""A digest conflict in the systemd STATUS line and in the SIGUSR1 summary."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.core.node import Node
from pycarp.runtime.daemon import Daemon
from tests.helpers import datagram, links, make_advert, make_config

CONFIG = make_config(vhid=1)
BAD = datagram(make_advert(make_config(vhid=1, password=b"another")), src="192.0.2.9")


def conflicted() -> Daemon:
    node = Node([CONFIG], counter=lambda: 1 << 40)
    node.start(now=0.0, links=links)
    for t in range(3):
        node.receive(BAD, interface="eth0", now=0.5 + t)
    none = cast(Any, None)
    return Daemon(DaemonSettings(vhosts=(CONFIG,)), node, none, {}, none, None)


def test_summary_names_a_digest_conflict() -> None:
    assert conflicted().summary() == (
        "eth0/vhid 1 BACKUP (digest conflict: 3 bad digests, the last from 192.0.2.9)"
    )


def test_sigusr1_status_lines_name_a_digest_conflict(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pycarp"):
        conflicted().log_status()
    assert "digest conflict: 3 bad digests, the last from 192.0.2.9" in caplog.text
