"""Debian's keepalived (VRRP) in a lab host: the reference VRRPv3 peer of tests and benches.

    from pycarp.lab.keepalived import Instance, Keepalived

    vr = Instance(vrid=51, priority=200, addresses=("198.51.100.200/32",), advert_int=0.1)
    ka = Keepalived(host, workdir, [vr]).start()    # waits until every instance has a state
    ka.wait_state(51, "MASTER", 5.0)                 # True once it notified MASTER
    ka.state(51)                                     # "MASTER", "BACKUP", "FAULT", "STOP" or None
    ka.kill()                                        # SIGKILL parent and VRRP child: a crash
    ka.stop()                                        # or SIGTERM: priority 0, VIPs removed

- `Instance` is one `vrrp_instance`: VRID, priority (1-255), advert_int (seconds,
  centiseconds with VRRPv3), virtual addresses ("a.b.c.d/len" or IPv6 ones, one
  family per instance), preempt (False: `nopreempt`), preempt_delay, initial
  state, optional unicast peers, and extra lines. Its name is "vr<vrid>" unless given.
- `render_config(instances, ...)` is the keepalived.conf text (`vrrp_version 3` unless
  told otherwise); `Keepalived.check_config()` asks `keepalived -t` about it. Both live
  in pycarp.lab.keepalivedconf, and are here too.
- `Keepalived(host, workdir, instances)` runs `keepalived -n -l -D -G -P -f CONF -p PID
  -r VRRPPID` in the lab Host: in the foreground, VRRP only, logging to its console
  (captured in <workdir>/daemon.log), no syslog, its config and pid files in workdir,
  so nothing outside the namespace and the workdir is touched. Two processes run: the
  parent (`pid`) and its VRRP child (`vrrp_pid()`), both in the parent's process group;
  `pids()` gives both.
- State: one `notify` script appends "<unix time> <instance> <state> <priority>" to
  <workdir>/notify.log on every transition (`events()`, `states()`, `state(vrid)`,
  `wait_state`); keepalived runs it asynchronously, a few ms after the transition.
  `has_addresses(vrid)` looks at the interface instead.
- `stop()` is the graceful stop (SIGTERM: priority 0 advertisements, VIPs removed);
  `kill()` SIGKILLs the process group (no priority 0, VIPs left: `unplumb()` removes
  them). The lab's close() also stops whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from pycarp.lab.errors import LabError
from pycarp.lab.keepalivedconf import Instance, check_address, render_config
from pycarp.lab.netns import Host
from pycarp.lab.nsexec import program
from pycarp.lab.wait import wait_until

__all__ = [
    "STATES",
    "Instance",
    "Keepalived",
    "keepalived_binary",
    "render_config",
]

STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
READY = 10.0  # seconds for keepalived to give every instance a state
STOP_WAIT = 10.0  # seconds a SIGTERMed keepalived has to exit

# $1 INSTANCE|GROUP, $2 its name, $3 the new state, $4 the priority.
NOTIFY_SCRIPT = '#!/bin/sh\necho "$(date +%s.%N) $2 $3 $4" >> "{log}"\nexit 0\n'


def keepalived_binary() -> str:
    return program("keepalived", "keepalived")


class Keepalived:
    """keepalived with these instances in host, files in workdir (see the module's docstring)."""

    def __init__(
        self,
        host: Host,
        workdir: Path,
        instances: Sequence[Instance],
        *,
        router_id: str = "lab",
        version: int = 3,
        rt_priority: int | None = None,
        extra_global: Sequence[str] = (),
    ) -> None:
        if not instances:
            raise ValueError("keepalived needs at least one instance")
        self.host = host
        self.workdir = workdir
        self.instances = list(instances)
        self.router_id = router_id
        self.version = version
        self.rt_priority = rt_priority
        self.extra_global = tuple(extra_global)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.time() just before the exec

    # --- files --------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "keepalived.conf"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "keepalived.pid"

    @property
    def vrrp_pid_file(self) -> Path:
        return self.workdir / "vrrp.pid"

    @property
    def notify_script(self) -> Path:
        return self.workdir / "notify.sh"

    @property
    def notify_log(self) -> Path:
        return self.workdir / "notify.log"

    @property
    def daemon_log(self) -> Path:
        return self.workdir / "daemon.log"

    def config(self) -> str:
        return render_config(
            self.instances,
            router_id=self.router_id,
            notify=self.notify_script,
            version=self.version,
            rt_priority=self.rt_priority,
            extra_global=self.extra_global,
        )

    def write_files(self) -> None:
        """The config and the notify script (root's only: enable_script_security wants it)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        self.notify_script.write_text(NOTIFY_SCRIPT.format(log=self.notify_log))
        self.notify_script.chmod(0o700)

    def argv(self) -> list[str]:
        return [
            keepalived_binary(), "-n", "-l", "-D", "-G", "-P", "-f", str(self.config_path),
            "-p", str(self.pid_file), "-r", str(self.vrrp_pid_file),
        ]  # fmt: skip

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """`keepalived -t` on the config (written first); returncode 0 if it is accepted."""
        self.write_files()
        return self.host.run(
            keepalived_binary(), "-t", "-f", str(self.config_path), check=False, timeout=20
        )

    # --- running ------------------------------------------------------------------

    def start(self, *, wait: bool = True, timeout: float = READY) -> Self:
        """Write the files and start keepalived; with wait, until every instance has a state."""
        if self.alive():
            raise LabError("keepalived is running already")
        self.write_files()
        for stale in (self.pid_file, self.vrrp_pid_file):
            stale.unlink(missing_ok=True)  # keepalived refuses to start over a live pid file
        with open(self.daemon_log, "ab") as out:
            self.started_at = time.time()
            self.proc = self.host.spawn(*self.argv(), stdout=out, stderr=subprocess.STDOUT)
        if wait and not wait_until(lambda: not self.alive() or self.ready(), timeout):
            raise LabError(f"keepalived not ready within {timeout:g} s\n{self.tail()}")
        if wait and not self.alive():
            raise LabError(f"keepalived exited (rc {self.returncode()})\n{self.tail()}")
        return self

    def ready(self) -> bool:
        """Every instance has notified a state since the start."""
        seen = self.states(since=self.started_at)
        return all(i.label in seen for i in self.instances)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def pid(self) -> int | None:
        """The parent's pid (also its process group's)."""
        return None if self.proc is None else self.proc.pid

    def vrrp_pid(self) -> int | None:
        """The VRRP child's pid, from its pid file; None before it wrote one."""
        try:
            return int(self.vrrp_pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        """Parent and VRRP child, while they run: what a CPU or memory count should sum."""
        found = [p for p in (self.pid, self.vrrp_pid()) if p is not None]
        return [p for p in found if os.path.exists(f"/proc/{p}")] if self.alive() else []

    def stop(self, timeout: float = STOP_WAIT) -> int | None:
        """SIGTERM (the graceful stop); the exit status, None if it still runs after timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the parent and its VRRP child at once (their process group): a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:  # not reaped: the group id is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)

    def reload(self) -> None:
        """Rewrite the config from self.instances and SIGHUP keepalived to read it."""
        self.write_files()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def unplumb(self) -> None:
        """Remove the virtual addresses a killed keepalived left on the interfaces."""
        for instance in self.instances:
            for address in instance.addresses:
                ip = str(check_address(address))
                self.host.run("ip", "addr", "del", ip, "dev", instance.interface, check=False)

    # --- state --------------------------------------------------------------------

    def events(self) -> list[tuple[float, str, str]]:
        """(unix time, instance name, state) per notification, in order."""
        try:
            text = self.notify_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] in STATES:  # a half-written line is skipped
                with contextlib.suppress(ValueError):
                    out.append((float(fields[0]), fields[1], fields[2]))
        return out

    def states(self, since: float = 0.0) -> dict[str, str]:
        """Instance name -> its last notified state (notifications from `since` on)."""
        return {name: state for t, name, state in self.events() if t >= since}

    def _label(self, vrid: int) -> str:
        for instance in self.instances:
            if instance.vrid == vrid:
                return instance.label
        raise KeyError(f"no instance with VRID {vrid}")

    def state(self, vrid: int) -> str | None:
        """The last state instance `vrid` notified since this start (None: none yet)."""
        return self.states(since=self.started_at).get(self._label(vrid))

    def wait_state(self, vrid: int, state: str, timeout: float) -> bool:
        """Wait (bounded) until instance `vrid` notified `state` last."""
        return wait_until(lambda: self.state(vrid) == state, timeout)

    def transitions(self, vrid: int, since: float = 0.0) -> list[tuple[float, str]]:
        """(unix time, state) of each notification of instance `vrid` from `since` on."""
        label = self._label(vrid)
        return [(t, s) for t, name, s in self.events() if name == label and t >= since]

    def has_addresses(self, vrid: int) -> bool:
        """Every virtual address of instance `vrid` is on its interface (`ip -o addr`)."""
        instance = next(i for i in self.instances if i.vrid == vrid)
        shown = self.host.run("ip", "-o", "addr", "show", "dev", instance.interface).stdout
        present = {word for line in shown.splitlines() for word in line.split()}
        return all(str(check_address(a)) in present for a in instance.addresses)

    def log(self) -> str:
        try:
            return self.daemon_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def __repr__(self) -> str:
        vrids = ",".join(str(i.vrid) for i in self.instances)
        return f"<Keepalived pid={self.pid} vrids={vrids} {self.workdir}>"
