"""Keeping a --pass password out of ``ps``: the daemon re-executes itself without it.

Every local user can read a process's command line (/proc/PID/cmdline), and
scripts see their parent's. Python cannot rewrite its argv in place, so a
daemon whose password is on its command line executes itself again (same
PID, same interpreter and options, same environment) with the password words
left out, and hands the whole original argument list to the new image through
an inherited pipe: the environment carries only the pipe's descriptor number
(PYCARP_PASSWORD_FD), removed as soon as it is read, and the descriptor is
closed, so scripts inherit neither. The new image parses the original
arguments as before: errors, exit codes and reloads are unchanged.

check-config, --help and --version (which exit at once) and a command line
that does not parse (its error comes from the normal parse) are not re-executed.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import sys
from collections.abc import Sequence

from pycarp.config.getopt import Given, InfoRequested, scan
from pycarp.config.optionsfile import SourcedArg
from pycarp.config.ucarp import PASSWORD_VARIABLE, TABLE
from pycarp.core.errors import ConfigError

__all__ = [
    "PASSWORD_FD_ENV",
    "VISIBLE_WARNING",
    "reexec_without_password",
    "script_environment",
    "warn_visible_password",
    "without_passwords",
]

PASSWORD_FD_ENV = "PYCARP_PASSWORD_FD"
VISIBLE_WARNING = "--pass is visible to other users in ps; use --passfile or PYCARP_PASSWORD"
NO_REEXEC_KEYS = frozenset({"check-config", "help", "version"})

log = logging.getLogger("pycarp")


class _State:
    visible = False  # the password was on this process's command line
    warned = False


_state = _State()


def without_passwords(args: Sequence[str]) -> list[str] | None:
    """``args`` without the values of --pass/-p (and a --pass word itself), or None.

    None when there is no --pass to hide, the arguments do not parse, or
    they ask for check-config, --help or --version.
    """
    try:
        given = scan([SourcedArg(arg, str(index)) for index, arg in enumerate(args)], TABLE)
    except (ConfigError, InfoRequested):
        return None
    if any(one.option.key in NO_REEXEC_KEYS for one in given):
        return None
    passwords = [one for one in given if one.option.key == "pass"]
    if not passwords:
        return None
    kept: dict[int, str | None] = dict(enumerate(args))  # None: left out
    for one in passwords:
        _leave_out(args, one, kept)
    return [arg for arg in kept.values() if arg is not None]


def _leave_out(args: Sequence[str], given: Given, kept: dict[int, str | None]) -> None:
    """Leave out the words (or the end of a cluster such as -Pp) holding ``given``'s value."""
    index = int(given.origin or 0)
    word = args[index]
    if word.startswith("--"):
        kept[index] = None
        if "=" not in word:
            kept[index + 1] = None  # --pass VALUE
        return
    letters = word[1:]
    # the first letter of a cluster that takes a value takes the rest, or the next word
    at = next(i for i, letter in enumerate(letters) if TABLE.by_short[letter].takes_value)
    kept[index] = f"-{letters[:at]}" if at else None
    if at == len(letters) - 1:
        kept[index + 1] = None  # -p VALUE, -Pp VALUE


def reexec_without_password(args: list[str]) -> list[str]:
    """The arguments to run with; re-executes this process first if ``args`` has --pass.

    ``args`` must be this process's own (sys.argv[1:]). Returns them
    unchanged when there is nothing to hide or re-executing is not possible,
    and in the re-executed image returns the original ones from the pipe.
    """
    if PASSWORD_FD_ENV in os.environ:
        return _recover(args)
    hidden = without_passwords(args)
    if hidden is None:
        return args
    _state.visible = True  # also if re-executing fails: the warning still holds
    prefix = _interpreter_prefix(args)
    payload = b"\0".join(os.fsencode(arg) for arg in args)
    if prefix is None or len(payload) > select.PIPE_BUF:  # a write that cannot block
        return args
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, payload)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    env = dict(os.environ, **{PASSWORD_FD_ENV: str(read_end)})
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [*prefix, *hidden], env)
    except OSError:
        os.close(read_end)
    return args


def _interpreter_prefix(args: Sequence[str]) -> list[str] | None:
    """The interpreter's own arguments (``python -m pycarp``, ``python /usr/bin/pycarp``)."""
    original = list(sys.orig_argv)
    if not args or len(original) <= len(args) or original[-len(args) :] != list(args):
        return None
    # the interpreter by its full path: a bare "python3" would be looked up in PATH again
    return [sys.executable, *original[1 : -len(args)]]


def _recover(args: list[str]) -> list[str]:
    """In the re-executed image: the original arguments, if the pipe holds them."""
    number = os.environ.pop(PASSWORD_FD_ENV)  # unsetenv: scripts do not inherit it
    try:
        fd = int(number)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return args
    except (ValueError, OSError):
        return args
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return args
    finally:
        os.close(fd)
    original = [os.fsdecode(word) for word in b"".join(chunks).split(b"\0")]
    if without_passwords(original) != args:  # not what this process was started with
        return args
    _state.visible = True
    return original


def warn_visible_password() -> None:
    """Say once, on stderr and in the log, that --pass was visible in ps."""
    if _state.visible and not _state.warned:
        _state.warned = True
        print(f"pycarp: warning: {VISIBLE_WARNING}", file=sys.stderr, flush=True)
        log.warning("%s", VISIBLE_WARNING)


def script_environment() -> dict[str, str]:
    """The environment for up and down scripts: ours without any password variable.

    PYCARP_PASSWORD stays in the daemon's own environment: a reload reads it again.
    """
    hidden = {PASSWORD_VARIABLE, PASSWORD_FD_ENV}
    return {name: value for name, value in os.environ.items() if name not in hidden}
