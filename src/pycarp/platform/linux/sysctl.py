"""Per-interface sysctls (/proc/sys/net/...) of one network namespace.

/proc/sys/net shows the namespace of the thread that opens a file there, not
the namespace of a netlink socket. The address manager promises to work in
the namespace it was made in, whichever namespace the calling thread is in
later (the tests call it from the root namespace), so a Sysctls keeps a
handle on its namespace: from a thread that is elsewhere, the files are
read and written by a short-lived thread that enters the namespace first
(which needs CAP_SYS_ADMIN; the daemon's own thread never needs it). Every
write checks the namespace again just before it: a value meant for a lab
host must never land on the machine's own interface of the same name.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from pycarp.platform.base import AddressError

CLONE_NEWNET = 0x40000000
NETNS_SELF = "/proc/thread-self/ns/net"
THREAD_WAIT = 5.0  # seconds for the namespace thread: a few small files

T = TypeVar("T")


def _namespace_of(path_or_fd: str | int) -> tuple[int, int]:
    st = os.stat(path_or_fd)
    return st.st_dev, st.st_ino


def sysctl_path(family: str, interface: str, name: str) -> str:
    """/proc/sys/net/<family>/conf/<interface>/<name>; family "ipv4" or "ipv6"."""
    if family not in ("ipv4", "ipv6") or "/" in interface or interface in ("", ".", ".."):
        raise AddressError(f"{family}/{interface}/{name}: not an interface sysctl")
    return f"/proc/sys/net/{family}/conf/{interface}/{name}"


class Sysctls:
    """Reads and writes interface sysctls in the namespace of the thread that made it."""

    def __init__(self) -> None:
        self._fd = os.open(NETNS_SELF, os.O_RDONLY | os.O_CLOEXEC)
        self._netns = _namespace_of(self._fd)

    def _here(self) -> bool:
        return _namespace_of(NETNS_SELF) == self._netns

    def read(self, family: str, interface: str, name: str) -> int | None:
        """The value; None where the file does not exist (IPv6 off, the interface gone)."""
        path = sysctl_path(family, interface, name)
        return self._in_namespace(lambda: _read(path))

    def write(self, family: str, interface: str, name: str, value: int) -> None:
        path = sysctl_path(family, interface, name)

        def work() -> None:
            if not self._here():  # the last line of defence, see the module docstring
                raise AddressError(f"{path}: not in the address manager's network namespace")
            try:
                with open(path, "w", encoding="ascii") as f:
                    f.write(f"{value}\n")
            except OSError as exc:
                raise AddressError(f"cannot set {path} to {value}: {exc.strerror}") from exc

        self._in_namespace(work)

    def _in_namespace(self, work: Callable[[], T]) -> T:
        if self._here():
            return work()
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(self._fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise AddressError(f"cannot enter the network namespace: {os.strerror(code)}")
                outcome.append(work())
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="pycarp-sysctl", daemon=True)
        thread.start()
        thread.join(THREAD_WAIT)
        if failure:
            raise failure[0]
        if not outcome:
            raise AddressError(f"sysctl thread did not finish within {THREAD_WAIT:g}s")
        return outcome[0]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError) as exc:
        raise AddressError(f"cannot read {path}: {exc}") from exc
