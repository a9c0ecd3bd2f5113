"""Start a CARP peer (ucarp or pycarp) inside a lab host and watch it.

Each peer gets its own work directory with an up and a down script. Both
scripts plumb or unplumb the VIP (so a client can reach the master) and then
append one line per call to ``scripts.log``: that file is the peer's state
history as its scripts saw it, which is exactly what ucarp users observe.
The daemon's own output (stdout and stderr) goes to ``daemon.log``.

pycarp peers are started exactly as ucarp ones, without --control-socket:
each gets the default an operator gets, <run dir of its namespace>/eth0-<vhid>.sock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pycarp.config.settings import default_control_socket
from pycarp.lab import Host

Impl = Literal["ucarp", "pycarp"]

POLL_INTERVAL = 0.05

# $1 interface, $2 vip, $3 optional xparam. The VIP is plumbed before the call
# is logged, so "last call was up" also means "the address is in place".
_SCRIPT = """#!/bin/sh
{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null
echo "$(date +%s.%N) {name} $*" >> "{log}"
exit 0
"""


def _which(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise FileNotFoundError(f"{name} is not installed")
    return path


def _write_script(path: Path, name: str, verb: str, log: Path) -> None:
    path.write_text(_SCRIPT.format(ip=_which("ip"), verb=verb, name=name, log=log))
    path.chmod(0o755)


@dataclass
class Peer:
    """A running CARP daemon in one lab host."""

    host: Host
    impl: Impl
    vip: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    argv: tuple[str, ...]
    vhid: int = 0
    _owns_workdir: bool = field(default=False, repr=False)

    @property
    def script_log(self) -> Path:
        return self.workdir / "scripts.log"

    @property
    def control_socket(self) -> Path:
        """pycarp's default control socket, as computed in the peer's namespace."""
        return control_socket_of(self.host, self.vhid)

    @property
    def daemon_log(self) -> Path:
        return self.workdir / "daemon.log"

    @property
    def name(self) -> str:
        return f"{self.impl}@{self.host.role}"

    def events(self) -> list[tuple[float, str]]:
        """(wall-clock time, "up eth0 <vip>" or "down ...") per script call."""
        try:
            text = self.script_log.read_text()
        except FileNotFoundError:
            return []
        out: list[tuple[float, str]] = []
        for line in text.splitlines():
            stamp, _, call = line.partition(" ")
            if call:  # a half-written last line has no call yet
                out.append((float(stamp), call))
        return out

    def state_history(self) -> list[str]:
        return [call for _, call in self.events()]

    def is_master(self) -> bool:
        history = self.state_history()
        return bool(history) and history[-1].startswith("up ")

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """Poll the script log until predicate(history) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.state_history()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def wait_master(self, timeout: float) -> bool:
        return self.wait_for(lambda h: bool(h) and h[-1].startswith("up "), timeout)

    def wait_backup(self, timeout: float) -> bool:
        return self.wait_for(lambda h: bool(h) and h[-1].startswith("down "), timeout)

    def log(self) -> str:
        try:
            return self.daemon_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (a service stop); returns the exit status, None if it hung."""
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self, *, isolate: bool = True) -> None:
        """Crash the peer; with ``isolate`` (the default) as a dying host would.

        SIGKILL alone is not an honest host crash: the dead daemon's VIP stays
        plumbed (ucarp never cleans up when killed) and the host's kernel would
        go on answering ARP and ping for it, so a client could reach "the VIP"
        even if no backup ever took over. A dead host is silent: its carrier
        goes down too. The stale VIP is then removed so that the host comes
        back clean if a test brings its link up again. Without ``isolate``
        this is a daemon crash on a live host, VIP left behind as ucarp does.
        """
        self._kill_group()
        if isolate:
            self.host.link_down()
            self.host.run(
                "ip", "addr", "del", f"{self.vip}/32", "dev", self.host.ifname, check=False
            )

    def stop(self) -> None:
        """Teardown: make sure the daemon is gone (no scripts, no cleanup)."""
        self._kill_group()

    def close(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> str:
        """Everything worth reading when an assertion about this peer fails."""
        return (
            f"--- {self.name} rc={self.proc.poll()} argv={' '.join(self.argv)}\n"
            f"scripts: {self.state_history()}\n"
            f"log:\n{self.log()}"
        )

    def _kill_group(self) -> None:
        """SIGKILL the daemon and any script it is running.

        host.spawn() starts it in a session of its own, so its pid is its
        process group id, still ours as long as it has not been reaped.
        """
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def control_socket_of(host: Host, vhid: int | None = None) -> Path:
    """The default control socket of a pycarp in ``host`` (no vhid: a TOML file's)."""
    with host.enter():  # the run directory depends on the namespace
        if vhid is None:
            return Path(default_control_socket())
        return Path(default_control_socket(host.ifname, vhid))


def daemon_argv(
    impl: Impl,
    host: Host,
    *,
    vhid: int,
    password: str,
    vip: str,
    upscript: Path,
    downscript: Path,
    advbase: int,
    advskew: int,
    preempt: bool,
    neutral: bool,
    nomcast: bool,
    shutdown: bool,
    extra: Sequence[str],
) -> list[str]:
    """The same ucarp command line for both implementations."""
    opts = [
        f"--interface={host.ifname}",
        f"--srcip={host.ip}",
        f"--vhid={vhid}",
        f"--pass={password}",
        f"--addr={vip}",
        f"--advbase={advbase}",
        f"--advskew={advskew}",
        f"--upscript={upscript}",
        f"--downscript={downscript}",
        # No syslog: both then log to stdio, which we capture.
        "--facility=none",
    ]
    opts += [
        flag
        for flag, on in (
            ("--preempt", preempt),
            ("--neutral", neutral),
            ("--nomcast", nomcast),
            ("--shutdown", shutdown),
        )
        if on
    ]
    opts += list(extra)
    if impl == "ucarp":
        # ucarp printf()s its log to stdout, block-buffered into a file and
        # lost on _exit(): force line buffering.
        return [_which("stdbuf"), "-oL", "-eL", _which("ucarp"), *opts]
    return [sys.executable, "-m", "pycarp", *opts]


def start_peer(
    host: Host,
    impl: Impl,
    *,
    vhid: int,
    password: str,
    vip: str,
    advbase: int = 1,
    advskew: int = 0,
    preempt: bool = False,
    neutral: bool = False,
    nomcast: bool = False,
    shutdown: bool = False,
    extra: Sequence[str] = (),
    workdir: Path | None = None,
) -> Peer:
    """Write the scripts and start the daemon (does not wait for any state)."""
    owns = workdir is None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"pycarp-peer-{host.role}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "scripts.log"
    up, down = workdir / "up.sh", workdir / "down.sh"
    _write_script(up, "up", "add", log)
    _write_script(down, "down", "del", log)
    argv = daemon_argv(
        impl,
        host,
        vhid=vhid,
        password=password,
        vip=vip,
        upscript=up,
        downscript=down,
        advbase=advbase,
        advskew=advskew,
        preempt=preempt,
        neutral=neutral,
        nomcast=nomcast,
        shutdown=shutdown,
        extra=extra,
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(workdir / "daemon.log", "ab") as out:
        proc = host.spawn(*argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Peer(host, impl, vip, workdir, proc, tuple(argv), vhid, _owns_workdir=owns)
