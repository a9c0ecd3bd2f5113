"""Syslog with the chosen facility; stderr when syslog is missing or not wanted."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.runtime import logsetup


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging configures the process's "pycarp" logger (handlers, level, no
    propagation) and logging.raiseExceptions; put them back so that later tests
    do not log into this test's closed streams or lose their caplog records."""
    logger = logging.getLogger("pycarp")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    raise_exceptions = logging.raiseExceptions
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
    logging.raiseExceptions = raise_exceptions


def test_messages_go_to_syslog_with_the_facility(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(2)
    monkeypatch.setattr(logsetup, "SYSLOG_SOCKET", path)
    try:
        logsetup.setup_logging(facility="local3", debug=False, stderr=False)
        logging.getLogger("pycarp").warning("switching to MASTER")
        message = listener.recv(4096).decode()
    finally:
        listener.close()
    # priority = facility * 8 + severity: local3 (19) and warning (4)
    assert message.startswith(f"<{19 * 8 + 4}>pycarp[")
    assert message.endswith("[WARNING] switching to MASTER\x00")


def test_missing_syslog_falls_back_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logsetup, "SYSLOG_SOCKET", str(tmp_path / "absent"))
    logsetup.setup_logging(facility="daemon", debug=False, stderr=False)
    logging.getLogger("pycarp").info("hello")
    err = capsys.readouterr().err
    assert "syslog unavailable" in err
    assert "[INFO] hello" in err


def test_facility_none_logs_to_stderr_only_and_debug_is_optional(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logsetup.setup_logging(facility="none", debug=False, stderr=True)
    logging.getLogger("pycarp").debug("hidden")
    logsetup.setup_logging(facility="none", debug=True, stderr=True)
    logging.getLogger("pycarp").debug("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "[DEBUG] shown" in err
