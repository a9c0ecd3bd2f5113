"""bench/scale.py's rig: each role's daemons in a lab host, settled, measured from /proc.

A Group is every daemon of one role (masters on host A, backups on B) of one
implementation, started the benches' way (daemonrig.py); run_case starts both
groups, waits until each is in its state, and measures them together over
one window: CPU from every thread's schedstat, memory from status and
smaps_rollup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import daemonrig
from scalecalc import (
    PASSWORD,
    ROLES,
    address_problem,
    cpu_delta_ns,
    parse_schedstat,
    parse_status_kib,
    per_reference,
    pycarp_states,
    pycarp_toml,
    state_problem,
    ucarp_states,
    vip_for,
)

from pycarp.client.instances import query
from pycarp.client.request import ControlError
from pycarp.lab import Host, Lab, LabError, stop_processes
from pycarp.lab.wait import wait_until

HOST_IP = {"master": "198.51.100.1", "backup": "198.51.100.2"}
HOST_ROLE = {"master": "a", "backup": "b"}
ADVSKEW = {"master": 0, "backup": 100}
SETTLE_TIMEOUT = 30.0  # seconds for every daemon of a role to reach its state
HOLD = 4.5  # seconds the backups run before measuring: past their master-down interval (3.4 s)
QUIET = 1.0  # seconds between settling and the window (scripts and plumbing finish)
POLL = 0.1  # seconds between two looks at the daemons' states while settling
STOP_GRACE = {"pycarp": 8.0, "ucarp": 3.0}  # a lone pycarp master hands over for up to 4 s
PROFILE_SIGNAL = signal.SIGRTMIN + 2  # switches bench/profiled.py's profiler; pycarp ignores it


# --- reading /proc -------------------------------------------------------------


def thread_times(pid: int) -> dict[int, int]:
    """{tid: ns on CPU} of every thread of pid; empty if the process is gone."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        with contextlib.suppress(OSError, ValueError):  # a thread may end meanwhile
            out[int(tid)] = parse_schedstat(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text())
    return out


def memory_kib(pid: int) -> tuple[int, int | None]:
    """(VmRSS, Pss) of pid in KiB; Pss None where smaps_rollup cannot be read."""
    rss = parse_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    try:
        pss: int | None = parse_status_kib(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss")
    except (OSError, ValueError):
        pss = None
    return rss, pss


@dataclass
class Group:
    """Every daemon of one role (masters on host A, backups on B) of one implementation."""

    impl: str
    role: str
    host: Host
    vhids: range
    workdir: Path
    master_ip: str
    profile: Path | None = None  # pycarp under cProfile, writing this file
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: float = 0.0

    @property
    def control_socket(self) -> Path:
        return self.workdir / "control.sock"

    @property
    def events(self) -> Path:
        return self.workdir / "events.log"

    @property
    def vips(self) -> list[str]:
        return [vip_for(v) for v in self.vhids]

    @property
    def advskew(self) -> int:
        return ADVSKEW[self.role]

    @property
    def want(self) -> str:
        return "MASTER" if self.role == "master" else "BACKUP"

    def start(self) -> None:
        self.workdir.mkdir(parents=True)
        self.started = time.monotonic()
        log = self.workdir / "daemon.log"
        if self.impl == "pycarp":
            config = ["--config", str(self._pycarp_config())]
            argv = daemonrig.pycarp(config, self.profile, int(PROFILE_SIGNAL))
            self.procs.append(daemonrig.spawn(self.host, argv, log))
            return
        scripts = daemonrig.ucarp_scripts(self.workdir, self.events)
        for vhid in self.vhids:
            options = daemonrig.carp_options(
                self.host, vhid=vhid, vip=vip_for(vhid), password=PASSWORD, advskew=self.advskew
            )
            self.procs.append(
                daemonrig.spawn(self.host, daemonrig.ucarp([*options, *scripts]), log)
            )

    def _pycarp_config(self) -> Path:
        config = self.workdir / "pycarp.toml"
        config.write_text(
            pycarp_toml(
                interface=self.host.ifname,
                srcip=self.host.ip,
                vhids=self.vhids,
                advskew=self.advskew,
                control_socket=self.control_socket,
            )
        )
        return config

    def states(self) -> dict[int, str]:
        if self.impl == "ucarp":
            try:
                text = self.events.read_text()
            except FileNotFoundError:
                return {}
            return ucarp_states(text, {vip_for(v): v for v in self.vhids})
        return pycarp_states(self.status(), self.master_ip)

    def status(self) -> list[dict[str, Any]]:
        """pycarp's status list, empty while it does not answer."""
        try:
            return list(query(str(self.control_socket), 5.0).hosts)
        except ControlError:
            return []

    def problem(self, *, addresses: bool = False) -> str | None:
        """None while every daemon runs and is in the role's state (and, with addresses,
        the VIPs are where they belong)."""
        dead = self.dead()
        if dead:
            said = " | ".join(self.log_tail())
            return f"{len(dead)} {self.impl} process(es) exited (rc {dead[0].returncode}): {said}"
        problem = state_problem(self.states(), self.vhids, self.want)
        if problem is None and addresses:
            plumbed = self.role == "master"
            problem = address_problem(self.host.addresses(), self.vips, plumbed=plumbed)
        return None if problem is None else f"{self.impl} {self.role}s: {problem}"

    def changed_within(self, seconds: float, events_before: int) -> bool:
        """Whether any virtual host changed state in the last `seconds` (a flap in the window)."""
        if self.impl == "ucarp":
            return self.event_count() != events_before
        return any(h.get("for") is None or h["for"] < seconds for h in self.status())

    def dead(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is not None]

    def log_tail(self, lines: int = 3) -> list[str]:
        """The daemons' last words (their stdout and stderr)."""
        try:
            text = (self.workdir / "daemon.log").read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line.strip() for line in text.splitlines()[-lines:]]

    def event_count(self) -> int:
        try:
            return len(self.events.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def switch_profiler(self) -> None:
        """On at the window's start, off (and written) at its end: see bench/profiled.py."""
        if self.profile is not None:
            for proc in self.procs:
                proc.send_signal(PROFILE_SIGNAL)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        """SIGTERM each process group, bounded wait, SIGKILL; then no VIP stays behind."""
        stop_processes(self.procs, set(), STOP_GRACE[self.impl])
        left = {p.split("/")[0] for p in self.host.addresses()} & set(self.vips)
        if left:
            batch = "".join(f"addr del {v}/32 dev {self.host.ifname}\n" for v in sorted(left))
            self.host.run("ip", "-force", "-batch", "-", input=batch, check=False)


def _snapshot(pids: Iterable[int]) -> dict[int, dict[int, int]]:
    return {pid: thread_times(pid) for pid in pids}


def _measure_role(
    group: Group,
    start: Mapping[int, dict[int, int]],
    end: Mapping[int, dict[int, int]],
    elapsed: float,
) -> dict[str, Any]:
    ns = sum(cpu_delta_ns(start[pid], end[pid]) for pid in group.pids())
    rss = pss = 0
    pss_known = True
    for pid in group.pids():
        r, p = memory_kib(pid)
        rss += r
        pss_known = pss_known and p is not None
        pss += p or 0
    return {
        "processes": len(group.procs),
        "threads": sum(len(end[pid]) for pid in group.pids()),
        "cpu_ms": round(ns / 1e6, 2),
        "cpu_ms_per_30s": round(per_reference(ns, elapsed), 2),
        "rss_kib": rss,
        "rss_mib": round(rss / 1024, 2),
        "pss_mib": round(pss / 1024, 2) if pss_known else None,
    }


def _settle(group: Group, timeout: float) -> float:
    """Wait (bounded) until the group is in its state; seconds it took. Raises on timeout."""
    settled = wait_until(
        lambda: group.problem() is None or bool(group.dead()), timeout, interval=POLL
    )
    problem = group.problem()
    if problem is not None:
        took = time.monotonic() - group.started
        raise RuntimeError(
            f"not settled after {took:.1f} s: {problem}"
            if settled
            else f"did not settle in {timeout:g} s: {problem}"
        )
    return round(time.monotonic() - group.started, 2)


def run_case(
    lab: Lab, impl: str, size: int, window: float, workdir: Path, profile_dir: Path | None
) -> dict[str, Any]:
    """One implementation with `size` virtual hosts: masters on A and backups on B, measured
    together over `window` seconds. Never raises for a daemon that misbehaves: the case then
    has status "failed" and the error."""
    hosts = lab.hosts
    groups = {
        role: Group(
            impl,
            role,
            hosts[HOST_ROLE[role]],
            range(1, size + 1),
            workdir / f"{impl}-{size}-{role}",
            HOST_IP["master"],
            profile=(
                profile_dir / f"pycarp-{size}-{role}.prof"
                if profile_dir is not None and impl == "pycarp"
                else None
            ),
        )
        for role in ROLES
    }
    master, backup = groups["master"], groups["backup"]
    case: dict[str, Any] = {"impl": impl, "vhosts": size, "status": "failed", "error": None}
    try:
        master.start()
        settle = {"master": _settle(master, SETTLE_TIMEOUT)}
        backup.start()
        settle["backup"] = _settle(backup, SETTLE_TIMEOUT)
        case["settle_s"] = settle
        # A backup that never heard the master would take over after 3.4 s: wait past that.
        time.sleep(max(0.0, backup.started + HOLD - time.monotonic()) + QUIET)
        for group in (master, backup):
            problem = group.problem(addresses=True)
            if problem is not None:
                raise RuntimeError(f"not settled after {HOLD:g} s: {problem}")
        events = {role: g.event_count() for role, g in groups.items()}
        pids = master.pids() + backup.pids()
        t0 = time.monotonic()
        start = _snapshot(pids)
        for group in groups.values():
            group.switch_profiler()
        time.sleep(window)
        for group in groups.values():
            group.switch_profiler()
        t1 = time.monotonic()
        end = _snapshot(pids)
        elapsed = t1 - t0
        for role, group in groups.items():
            case[role] = _measure_role(group, start, end, elapsed)
        case["window_s"] = round(elapsed, 3)
        problems = [p for p in (g.problem(addresses=True) for g in groups.values()) if p]
        flapped = [r for r, g in groups.items() if g.changed_within(elapsed, events[r])]
        if problems or flapped:
            case["status"] = "unstable"
            case["error"] = "; ".join(
                problems + [f"{r}s changed state in the window" for r in flapped]
            )
        else:
            case["status"] = "ok"
    except (RuntimeError, OSError, ValueError, LabError, subprocess.SubprocessError) as exc:
        case["error"] = str(exc)
    finally:
        backup.stop()  # backups first: a pycarp master alone hands over within 4 s
        master.stop()
    return case
