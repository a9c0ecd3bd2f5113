"""Logging as ucarp does it: syslog with a facility, and stderr unless daemonized."""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import socket
import sys

SYSLOG_SOCKET = "/dev/log"
_LEVEL_TAGS = {
    logging.DEBUG: "[DEBUG] ",
    logging.INFO: "[INFO] ",
    logging.WARNING: "[WARNING] ",
    logging.ERROR: "[ERROR] ",
    logging.CRITICAL: "[ERROR] ",
}


class _TaggedFormatter(logging.Formatter):
    """Adds ucarp's level tags ("[WARNING] ") as %(tag)s."""

    def format(self, record: logging.LogRecord) -> str:
        record.tag = _LEVEL_TAGS.get(record.levelno, "")
        return super().format(record)


def _probe_syslog() -> None:
    """SysLogHandler only complains at the first message; find out now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(SYSLOG_SOCKET)
            except OSError as exc:
                if exc.errno != errno.EPROTOTYPE:
                    raise
            else:
                return
    raise OSError(errno.EPROTOTYPE, "not a syslog socket")


def setup_logging(*, facility: str, debug: bool, stderr: bool) -> None:
    root = logging.getLogger("pycarp")
    root.handlers.clear()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
    logging.raiseExceptions = False  # a daemon must not print tracebacks when syslog hiccups
    problem = None
    if facility != "none":
        code = logging.handlers.SysLogHandler.facility_names[facility]
        try:
            _probe_syslog()
            handler = logging.handlers.SysLogHandler(SYSLOG_SOCKET, facility=code)
        except OSError as exc:
            problem = f"syslog unavailable ({SYSLOG_SOCKET}: {exc.strerror}); logging to stderr"
        else:
            handler.ident = f"pycarp[{os.getpid()}]: "
            handler.setFormatter(_TaggedFormatter("%(tag)s%(message)s"))
            root.addHandler(handler)
    if stderr or problem:
        out = logging.StreamHandler(sys.stderr)
        out.setFormatter(_TaggedFormatter("%(asctime)s %(tag)s%(message)s", "%Y-%m-%dT%H:%M:%S"))
        root.addHandler(out)
    if problem:
        root.warning("%s", problem)
