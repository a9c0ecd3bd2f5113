"""DropLog: a line per (reason, source) each interval, and a budget of lines in all."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address

import pytest

from pycarp.core.actions import HostKey, PacketDropped
from pycarp.core.errors import DropReason
from pycarp.runtime.droplog import DROP_LOG_INTERVAL, DROP_LOG_LINES, DropLog

KEY = HostKey("eth0", 1)


def drop(source: str, reason: DropReason = DropReason.BAD_DIGEST) -> PacketDropped:
    return PacketDropped(KEY, reason, IPv4Address(source), "bad digest")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_one_source_is_logged_once_an_interval_with_what_was_kept_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = DropLog()
    with caplog.at_level(logging.WARNING, logger="pycarp"):
        for i in range(1000):
            log(drop("198.51.100.9"), now=i * 0.01)
        log(drop("198.51.100.9"), now=DROP_LOG_INTERVAL + 0.5)
    assert lines(caplog) == [
        "eth0/vhid 1: dropped packet from 198.51.100.9: bad digest",
        "eth0/vhid 1: dropped packet from 198.51.100.9: bad digest"
        " (+999 more since the last report)",
    ]


def test_spoofed_sources_cannot_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    log = DropLog()
    sources = [f"198.51.100.{n}" for n in range(1, 255)]
    with caplog.at_level(logging.WARNING, logger="pycarp"):
        for reason in (DropReason.BAD_DIGEST, DropReason.BAD_TTL):
            for n, source in enumerate(sources):
                log(drop(source, reason), now=n * 0.001)
        assert len(caplog.records) == DROP_LOG_LINES
        log(drop("198.51.100.1"), now=DROP_LOG_INTERVAL + 1.0)
    unlogged = 2 * len(sources) - DROP_LOG_LINES
    assert lines(caplog)[DROP_LOG_LINES:] == [
        f"{unlogged} more dropped packets not logged (too many sources or reasons at once)",
        "eth0/vhid 1: dropped packet from 198.51.100.1: bad digest",
    ]
