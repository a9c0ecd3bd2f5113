"""Programs run in a lab namespace, through `ip netns exec`.

`ip netns exec` also mounts the namespace's own /sys (and /etc/netns files)
for the program, which pyroute2 cannot do; and it execs the program, so the
pid we get is the program's own.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from typing import IO, Any

from pycarp.lab.errors import LabError

__all__ = [
    "CMD_TIMEOUT",
    "InNamespace",
    "find_program",
    "ip_binary",
    "ping_from",
    "program",
    "run_in",
    "spawn_in",
]

CMD_TIMEOUT = 10.0  # seconds for a command run with run_in
SYSTEM_PATH = (
    "/usr/sbin:/sbin:/usr/bin:/bin"  # where Debian puts ip, nft, ucarp: not always in PATH
)


def find_program(name: str) -> str | None:
    """The path of a program, from PATH or the system directories; None if absent."""
    return shutil.which(name) or shutil.which(name, path=SYSTEM_PATH)


def program(name: str, package: str | None = None) -> str:
    """The path of a program; LabError naming the Debian package when it is absent."""
    path = find_program(name)
    if path is None:
        install = f" (apt-get install {package})" if package else ""
        raise LabError(f"`{name}` not found{install}")
    return path


def ip_binary() -> str:
    return program("ip", "iproute2")


def run_in(
    name: str,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = CMD_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ip netns exec` argv and wait; text mode, output captured."""
    return subprocess.run(
        [ip_binary(), "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        input=input,
    )


def spawn_in(
    name: str,
    argv: Sequence[str],
    *,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """`ip netns exec` argv in the background, in a session of its own.

    `ip netns exec` execs argv, so the pid is argv's own process and its
    process group holds everything it forks.
    """
    return subprocess.Popen(
        [ip_binary(), "netns", "exec", name, *argv],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def ping_from(name: str, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
    """True if ip answers at least one of count echo requests sent from namespace `name`."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", f"{timeout:g}", ip]
    try:
        done = run_in(name, argv, check=False, timeout=count * (timeout + 0.2) + 5.0)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


class InNamespace:
    """run, spawn and ping for a lab host: anything with a `netns`.

    spawn() asks before_spawn() first and hands the new process to spawned(),
    so each kind of host can refuse, and keep what it started for its cleanup.
    """

    netns: str

    def run(
        self, *argv: str, check: bool = True, timeout: float = CMD_TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in this namespace and wait; text mode, output captured."""
        return run_in(self.netns, argv, check=check, timeout=timeout, input=input)

    def spawn(
        self,
        *argv: str,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start argv in this namespace in a session of its own; the host's cleanup stops it.

        `ip netns exec` execs argv, so the Popen's pid is argv's own process
        and its process group holds everything it forks. env is the whole
        environment (Popen semantics); None inherits ours.
        """
        self.before_spawn()
        proc = spawn_in(self.netns, argv, stdout=stdout, stderr=stderr, env=env)
        self.spawned(proc)
        return proc

    def before_spawn(self) -> None:
        """Raise LabError if this host may not start processes (any more)."""

    def spawned(self, proc: subprocess.Popen[bytes]) -> None:
        """Keep proc, to stop it with the host."""

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True if ip answers at least one of count echo requests."""
        return ping_from(self.netns, ip, count, timeout)
