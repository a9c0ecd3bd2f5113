"""Logging as ucarp does it: syslog with a facility, and stderr unless daemonized."""

from __future__ import annotations

import logging
import logging.handlers
import os
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
    def format(self, record: logging.LogRecord) -> str:
        return _LEVEL_TAGS.get(record.levelno, "") + super().format(record)


def setup_logging(*, facility: str, debug: bool, stderr: bool) -> None:
    root = logging.getLogger("pycarp")
    root.handlers.clear()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
    problem = None
    if facility != "none":
        code = logging.handlers.SysLogHandler.facility_names[facility]
        try:
            handler = logging.handlers.SysLogHandler(SYSLOG_SOCKET, facility=code)
        except OSError as exc:
            problem = f"syslog unavailable ({SYSLOG_SOCKET}: {exc.strerror}); logging to stderr"
        else:
            handler.ident = f"pycarp[{os.getpid()}]: "
            handler.setFormatter(_TaggedFormatter("%(message)s"))
            root.addHandler(handler)
    if stderr or problem:
        out = logging.StreamHandler(sys.stderr)
        out.setFormatter(_TaggedFormatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        root.addHandler(out)
    if problem:
        root.warning("%s", problem)
