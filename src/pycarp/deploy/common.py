"""What the renderers share: the error they raise, the program's path, argument checks."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["STOP_TIMEOUT", "RenderError", "check_program", "check_user", "pycarp_path"]

# Graceful hand-over: the peer needs up to the master-down interval (~3 s)
# plus the down script, which pycarp waits 30 s for; leave room beyond that.
STOP_TIMEOUT = 60

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")


class RenderError(Exception):
    """A bad argument; the message is the whole error line."""


def pycarp_path() -> str:
    """The absolute path of the ``pycarp`` program that is running, or on PATH.

    Service managers run methods with a minimal PATH, so the unit and the
    manifest name the program by its absolute path.
    """
    beside = Path(sys.executable).parent / "pycarp"  # a virtualenv's bin/
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("pycarp")
    return os.path.abspath(found) if found else "/usr/local/bin/pycarp"


def check_program(given: str | None) -> str:
    """``--pycarp`` (default: this pycarp's path), which must be absolute and unspaced."""
    program = given or pycarp_path()
    if not os.path.isabs(program) or any(c.isspace() for c in program):
        raise RenderError(f"--pycarp: {program!r} must be an absolute path without spaces")
    return program


def check_user(name: str) -> str:
    """``--user``, if it is a plausible user name."""
    if not _USER.fullmatch(name):
        raise RenderError(f"--user: {name!r} is not a user name")
    return name
