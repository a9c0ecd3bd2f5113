"""Reading the files a configuration names: config files and password files.

Only a regular file is read: a FIFO would block the reader forever, a
device such as /dev/zero never ends, a directory has nothing to read. The
file is checked before it is opened, opened without blocking and checked
again (it may have been replaced in between), and never more than its limit
is read, so that no file can hang or bloat the daemon.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

__all__ = ["CONFIG_FILE_LIMIT", "FileProblem", "has_nul", "read_regular_file"]

CONFIG_FILE_LIMIT = 1024 * 1024  # far above any real configuration
_CHUNK = 64 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(Exception):
    """Why a file cannot be read: ``reason`` is "No such file or directory" and the like."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def has_nul(text: str) -> bool:
    return "\0" in text


def read_regular_file(
    path: str,
    limit: int,
    *,
    truncate: bool = False,
    check: Callable[[os.stat_result], None] | None = None,
) -> bytes:
    """The content of the regular file ``path``; FileProblem if it is not one, or too large.

    At most ``limit`` bytes: with ``truncate`` the rest is ignored (as ucarp
    reads a password file), otherwise a larger file is refused. ``check``
    sees the status of the file opened, before it is read.
    """
    if has_nul(path):
        raise FileProblem("the path contains a NUL byte")
    try:
        _check_regular(os.stat(path))  # before open(): opening a FIFO would block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)  # the file opened, not the one stat() saw
            _check_regular(info)
            if check is not None:
                check(info)
            data = _read_at_most(fd, limit + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise FileProblem(exc.strerror or str(exc)) from None
    if len(data) > limit:
        if not truncate:
            raise FileProblem(f"larger than {limit} bytes")
        data = data[:limit]
    return data


def _check_regular(info: os.stat_result) -> None:
    if stat.S_ISREG(info.st_mode):
        return
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "an unknown kind of file")
    raise FileProblem(f"not a regular file ({kind})")


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
