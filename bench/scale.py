"""Benchmark: idle CPU and memory of one pycarp process against ucarp processes, 1 to 255 VIPs.

In a namespace lab (root, Linux): host A runs the masters, host B the backups
(advskew 100) of one implementation at a time, both measured over the same
window once every master is MASTER and every backup BACKUP. pycarp is one
process with a TOML file of N [[vhost]] tables (built-in plumbing, default
timers); ucarp is N processes, one per vhid, with `ip addr` up/down scripts,
as operators run it. CPU is the time on CPU of every thread
(/proc/PID/task/*/schedstat), given per 30 s; RSS is VmRSS at the end of the
window (summed over ucarp's processes). Results go to bench/results/scale.json
and scale.png; a summary table with the pycarp/ucarp ratios and the targets is
printed.

    .venv/bin/python bench/scale.py            # sizes 1,16,64,255, 30 s windows
    .venv/bin/python bench/scale.py --quick    # smoke run: 1 and 16, 5 s windows
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import os
import platform
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pycarp.client.commands import ControlError, request
from pycarp.demo.main import Interrupted, Progress, wait_until
from pycarp.lab import ALLOWED_NETWORKS, Host, Lab, LabError, cleanup_stale, stop_processes

IMPLS = ("pycarp", "ucarp")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
ROLES = ("master", "backup")
SIZES = (1, 16, 64, 255)
QUICK_SIZES = (1, 16)
QUICK_WINDOW = 5.0
REFERENCE_S = 30.0  # CPU is reported per this many seconds
LAB_TAG = "bench"  # namespaces pycarp-bench-br, pycarp-bench-a, pycarp-bench-b
NS_PREFIX = f"pycarp-{LAB_TAG}-"
HOST_IP = {"master": "198.51.100.1", "backup": "198.51.100.2"}
HOST_ROLE = {"master": "a", "backup": "b"}
ADVSKEW = {"master": 0, "backup": 100}
PASSWORD = "bench"
SETTLE_TIMEOUT = 30.0  # seconds for every daemon of a role to reach its state
HOLD = 4.5  # seconds the backups run before measuring: past their master-down interval (3.4 s)
QUIET = 1.0  # seconds between settling and the window (scripts and plumbing finish)
POLL = 0.1  # seconds between two looks at the daemons' states while settling
STOP_GRACE = {"pycarp": 8.0, "ucarp": 3.0}  # a lone pycarp master hands over for up to 4 s
CASE_OVERHEAD = 25.0  # seconds a case takes beyond its window, for the time budget
BUDGET = 570.0  # the whole run must finish in under 10 minutes
PROFILED = Path(__file__).resolve().parent / "profiled.py"
PROFILE_SIGNAL = signal.SIGRTMIN + 2  # switches bench/profiled.py's profiler; pycarp ignores it
RESULTS = Path(__file__).resolve().parent / "results"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "pycarp-bench-scale-quick"

# Measured before issue 8 (ms per 30 s, MiB): the baseline the targets improve on.
BEFORE: dict[str, dict[int, dict[str, float]]] = {
    "pycarp": {
        1: {"master": 13.7, "backup": 9.0, "rss": 35.0},
        255: {"master": 110.0, "backup": 451.0, "rss": 40.0},
    },
    "ucarp": {
        1: {"master": 3.4, "backup": 1.6, "rss": 5.3},
        255: {"master": 1641.0, "backup": 1509.0, "rss": 1346.0},
    },
}

# $1 interface, $2 the VIP: plumb or unplumb it, then log "<verb> <vip>".
UCARP_SCRIPT = (
    '#!/bin/sh\n{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null\necho "{event} $2" >> "{log}"\n'
)


# --- pure parts: parsing, summaries, targets (tests/test_bench_scale.py) ----------


def vip_for(vhid: int) -> str:
    """The virtual address of a vhid: 203.0.113.<vhid>, and 198.51.100.254 for vhid 255."""
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid {vhid} is outside 1..255")
    address = f"203.0.113.{vhid}" if vhid <= 254 else "198.51.100.254"
    assert any(ipaddress.IPv4Address(address) in net for net in ALLOWED_NETWORKS)
    return address


def parse_schedstat(text: str) -> int:
    """Nanoseconds on CPU: the first field of /proc/PID/task/TID/schedstat."""
    fields = text.split()
    if not fields or not fields[0].isdigit():
        raise ValueError(f"not a schedstat line: {text!r}")
    return int(fields[0])


def parse_status_kib(text: str, key: str = "VmRSS") -> int:
    """A "Key:   1234 kB" line of /proc/PID/status (or smaps_rollup), in KiB."""
    match = re.search(rf"^{re.escape(key)}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {key} line")
    return int(match[1])


def cpu_delta_ns(start: Mapping[int, int], end: Mapping[int, int]) -> int:
    """CPU time (ns) of a process's threads between two snapshots {tid: ns}.

    A thread born during the window counts in full; one that died during it
    is lost (its time is no longer readable), never counted negative.
    """
    return sum(max(0, ns - start.get(tid, 0)) for tid, ns in end.items())


def per_reference(ns: int, elapsed: float, reference: float = REFERENCE_S) -> float:
    """ns of CPU over `elapsed` seconds as ms per `reference` seconds."""
    if elapsed <= 0:
        raise ValueError("elapsed must be positive")
    return ns / 1e6 * reference / elapsed


def pycarp_toml(
    *, interface: str, srcip: str, vhids: Iterable[int], advskew: int, control_socket: Path
) -> str:
    """pycarp's TOML for one host: a [[vhost]] per vhid, one address each, built-in plumbing."""
    lines = [
        'facility = "none"',
        f"control_socket = {json.dumps(str(control_socket))}",
        "",
        "[defaults]",
        f"interface = {json.dumps(interface)}",
        f"srcip = {json.dumps(srcip)}",
        f"password = {json.dumps(PASSWORD)}",
        f"advskew = {advskew}",
    ]
    for vhid in vhids:
        lines += ["", "[[vhost]]", f"vhid = {vhid}", f'addresses = ["{vip_for(vhid)}"]']
    return "\n".join(lines) + "\n"


def pycarp_states(hosts: Sequence[Mapping[str, Any]], master_ip: str) -> dict[int, str]:
    """vhid -> state from pycarp's status; a BACKUP that has not heard master_ip is flagged."""
    states = {}
    for h in hosts:
        state = str(h.get("state"))
        if state == "BACKUP" and h.get("master") != master_ip:
            state = "BACKUP (master not heard)"
        states[int(h["vhid"])] = state
    return states


def ucarp_states(events: str, vhid_of: Mapping[str, int]) -> dict[int, str]:
    """vhid -> state from the up/down scripts' log ("up <vip>" / "down <vip>" lines)."""
    states = {}
    for line in events.splitlines():
        verb, _, vip = line.partition(" ")
        if vip in vhid_of and verb in ("up", "down"):
            states[vhid_of[vip]] = "MASTER" if verb == "up" else "BACKUP"
    return states


def state_problem(states: Mapping[int, str], vhids: Iterable[int], want: str) -> str | None:
    """None if every vhid is in state `want`; else what is not, briefly."""
    wrong = [(v, states.get(v, "no state yet")) for v in vhids if states.get(v) != want]
    if not wrong:
        return None
    shown = ", ".join(f"vhid {v}: {s}" for v, s in wrong[:3])
    more = f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""
    return f"{len(wrong)} not {want}: {shown}{more}"


def address_problem(present: Iterable[str], vips: Iterable[str], *, plumbed: bool) -> str | None:
    """None if all `vips` are on the interface (plumbed) or none is; `present` as "a.b.c.d/len"."""
    here = {p.split("/")[0] for p in present}
    wrong = [v for v in vips if (v in here) != plumbed]
    if not wrong:
        return None
    what = "missing" if plumbed else "still plumbed"
    return f"{len(wrong)} VIPs {what}: {', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _role_value(case: Mapping[str, Any] | None, role: str, key: str) -> float | None:
    if case is None or case.get("status") not in ("ok", "unstable"):
        return None
    value = case.get(role, {}).get(key)
    return float(value) if value is not None else None


def summarise(cases: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """A row per (vhosts, role): pycarp's and ucarp's CPU and RSS, and the ratios."""
    by = {(c["impl"], c["vhosts"]): c for c in cases}
    rows = []
    for size in sizes:
        for role in ROLES:
            row: dict[str, Any] = {"vhosts": size, "role": role}
            for metric, key in (("cpu", "cpu_ms_per_30s"), ("rss", "rss_mib")):
                p = _role_value(by.get(("pycarp", size)), role, key)
                u = _role_value(by.get(("ucarp", size)), role, key)
                row[f"pycarp_{metric}"], row[f"ucarp_{metric}"] = p, u
                row[f"{metric}_ratio"] = ratio(p, u)
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Target:
    """A goal for pycarp's row (vhosts, role): under an absolute limit or a multiple of ucarp's."""

    vhosts: int
    role: str
    metric: str  # "cpu" (ms per 30 s) or "rss" (MiB)
    limit: float
    of_ucarp: bool = False  # limit is a factor of ucarp's value
    strict: bool = True  # "under" (<) rather than "at most" (<=)

    @property
    def name(self) -> str:
        what = "CPU" if self.metric == "cpu" else "RSS"
        size = f"{self.vhosts} vhost{'s' if self.vhosts > 1 else ''}"
        op = "<" if self.strict else "<="
        unit = "ms/30 s" if self.metric == "cpu" else "MiB"
        bound = f"{self.limit:g}x ucarp" if self.of_ucarp else f"{self.limit:g} {unit}"
        return f"pycarp {what}, {size}, {self.role}: {op} {bound}"


TARGETS = (
    Target(255, "master", "cpu", 150.0),
    Target(255, "backup", "cpu", 150.0),
    Target(1, "master", "cpu", 2.0, of_ucarp=True, strict=False),
    Target(1, "backup", "cpu", 2.0, of_ucarp=True, strict=False),
    Target(1, "master", "rss", 35.0, strict=False),
    Target(1, "backup", "rss", 35.0, strict=False),
    Target(255, "master", "rss", 45.0),
    Target(255, "backup", "rss", 45.0),
)


def check_targets(
    rows: Sequence[Mapping[str, Any]], targets: Sequence[Target] = TARGETS
) -> list[dict[str, Any]]:
    """Each target with pycarp's value, the bound it had to meet and whether it did (None: not
    measured)."""
    by = {(r["vhosts"], r["role"]): r for r in rows}
    out = []
    for t in targets:
        row = by.get((t.vhosts, t.role), {})
        value = row.get(f"pycarp_{t.metric}")
        bound: float | None = t.limit
        if t.of_ucarp:
            ucarp = row.get(f"ucarp_{t.metric}")
            bound = None if ucarp is None else t.limit * ucarp
        met = None
        if value is not None and bound is not None:
            met = value < bound if t.strict else value <= bound
        out.append(
            {
                "target": t.name,
                "vhosts": t.vhosts,
                "role": t.role,
                "metric": t.metric,
                "value": value,
                "bound": bound,
                "met": met,
            }
        )
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a Markdown table (for the terminal and the README)."""
    lines = [
        "| vhosts | role | pycarp CPU | ucarp CPU | CPU pycarp/ucarp "
        "| pycarp RSS | ucarp RSS (sum) | RSS pycarp/ucarp |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['vhosts']} | {r['role']} | {_fmt(r['pycarp_cpu'])} ms"
            f" | {_fmt(r['ucarp_cpu'])} ms | {_fmt(r['cpu_ratio'], 2)}"
            f" | {_fmt(r['pycarp_rss'])} MiB"
            f" | {_fmt(r['ucarp_rss'])} MiB | {_fmt(r['rss_ratio'], 3)} |"
        )
    return "\n".join(lines)


def format_targets(checks: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in checks:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[c["met"]]
        unit = " ms" if c["metric"] == "cpu" else " MiB"
        detail = "" if c["value"] is None else f": {c['value']:.1f}{unit}"
        bound = "" if c["bound"] is None else f" (bound {c['bound']:.1f}{unit})"
        lines.append(f"- {verdict}: {c['target']}{detail}{bound}")
    return "\n".join(lines)


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


# --- the daemons ------------------------------------------------------------------


def _which(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise FileNotFoundError(f"{name} is not installed")
    return path


def _throttled(check: Callable[[], bool]) -> Callable[[], bool]:
    """check(), pausing POLL after a False (wait_until itself polls every 20 ms)."""

    def probe() -> bool:
        ok = check()
        if not ok:
            time.sleep(POLL)
        return ok

    return probe


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
    def want(self) -> str:
        return "MASTER" if self.role == "master" else "BACKUP"

    def start(self) -> None:
        self.workdir.mkdir(parents=True)
        self.started = time.monotonic()
        with open(self.workdir / "daemon.log", "ab") as log:
            if self.impl == "pycarp":
                self._start_pycarp(log.fileno())
            else:
                self._start_ucarp(log.fileno())

    def _start_pycarp(self, log: int) -> None:
        config = self.workdir / "pycarp.toml"
        config.write_text(
            pycarp_toml(
                interface=self.host.ifname,
                srcip=self.host.ip,
                vhids=self.vhids,
                advskew=ADVSKEW[self.role],
                control_socket=self.control_socket,
            )
        )
        run = (
            ["-m", "pycarp"]
            if self.profile is None
            else [str(PROFILED), str(self.profile), str(int(PROFILE_SIGNAL))]
        )
        argv = [sys.executable, *run, "--config", str(config)]
        self.procs.append(self.host.spawn(*argv, stdout=log, stderr=log))

    def _start_ucarp(self, log: int) -> None:
        ip, ucarp = _which("ip"), _which("ucarp")
        scripts = {}
        for event, verb in (("up", "add"), ("down", "del")):
            path = self.workdir / f"{event}.sh"
            path.write_text(UCARP_SCRIPT.format(ip=ip, verb=verb, event=event, log=self.events))
            path.chmod(0o755)
            scripts[event] = str(path)
        for vhid in self.vhids:
            argv = [
                ucarp,
                "-i",
                self.host.ifname,
                "-s",
                self.host.ip,
                "-v",
                str(vhid),
                "-p",
                PASSWORD,
                "-a",
                vip_for(vhid),
                "-u",
                scripts["up"],
                "-d",
                scripts["down"],
                "-k",
                str(ADVSKEW[self.role]),
                "-f",
                "none",
            ]
            self.procs.append(self.host.spawn(*argv, stdout=log, stderr=log))

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
            answer = request(str(self.control_socket), {"command": "status"}, timeout=5.0)
        except ControlError:
            return []
        hosts = answer.get("hosts")
        return hosts if answer.get("ok") and isinstance(hosts, list) else []

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
    settled = wait_until(_throttled(lambda: group.problem() is None or bool(group.dead())), timeout)
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


# --- the run ------------------------------------------------------------------------


def _command(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the machines are shared: see loadavg)."""
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    ucarp_help = _command(_which("ucarp"), "--help").splitlines()
    repo = Path(__file__).resolve().parent.parent
    src_dirty = _command("git", "-C", str(repo), "status", "--porcelain", "--", "src")
    return {
        "nproc": os.cpu_count(),
        "cpu": model[1] if model else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ucarp": ucarp_help[0] if ucarp_help else None,
        "ucarp_package": _command("dpkg-query", "-W", "-f", "${Version}", "ucarp") or None,
        "pycarp_commit": _command("git", "-C", str(repo), "rev-parse", "--short", "HEAD") or None,
        "pycarp_src_modified": bool(src_dirty),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def plot(cases: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({int(r["vhosts"]) for r in rows})
    colour = {"pycarp": "tab:blue", "ucarp": "tab:orange"}
    style = {"master": "-", "backup": "--"}
    fig, (cpu_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for impl in IMPLS:
        for role in ROLES:
            for ax, metric in ((cpu_ax, "cpu"), (rss_ax, "rss")):
                points = [
                    (r["vhosts"], r[f"{impl}_{metric}"])
                    for r in rows
                    if r["role"] == role and r[f"{impl}_{metric}"] is not None
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        style[role],
                        marker="o",
                        color=colour[impl],
                        label=f"{impl} {role}{' (sum)' if impl == 'ucarp' else ''}",
                    )
            before = BEFORE[impl]
            cpu_ax.scatter(
                list(before),
                [v[role] for v in before.values()],
                marker="x",
                color=colour[impl],
                alpha=0.4,
                s=30,
            )
        rss_ax.scatter(
            list(BEFORE[impl]),
            [v["rss"] for v in BEFORE[impl].values()],
            marker="x",
            color=colour[impl],
            alpha=0.4,
            s=30,
        )
    for check in check_targets(rows):
        if check["bound"] is None:
            continue
        ax = cpu_ax if check["metric"] == "cpu" else rss_ax
        n = check["vhosts"]
        ax.hlines(check["bound"], n / 1.6, n * 1.6, colors="tab:red", linestyles=":")
    cpu_ax.plot([], [], ":", color="tab:red", label="pycarp targets")
    cpu_ax.scatter([], [], marker="x", color="grey", label="before issue 8")
    window = next((c["window_s"] for c in cases if c.get("window_s")), REFERENCE_S)
    cpu_ax.set_title(f"idle CPU (window {window:.0f} s)")
    cpu_ax.set_ylabel("CPU time per 30 s (ms)")
    rss_ax.set_title("resident memory (VmRSS, end of window)")
    rss_ax.set_ylabel("RSS (MiB)")
    for ax in (cpu_ax, rss_ax):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("virtual hosts (pycarp: 1 process; ucarp: 1 process each)")
        ax.grid(True, which="both", alpha=0.3)
    cpu_ax.legend(fontsize=8)
    fig.suptitle(
        "one pycarp process vs one ucarp process per vhid, idle (host A masters, B backups)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_profiles(profile_dir: Path, top: int = 25) -> None:
    """A text summary next to each .prof: top functions by cumulative and by own time."""
    for prof in sorted(profile_dir.glob("*.prof")):
        with open(prof.with_suffix(".txt"), "w") as out:
            stats = pstats.Stats(str(prof), stream=out).strip_dirs()
            for key in ("cumulative", "tottime"):
                print(f"=== {prof.name}: top {top} by {key}", file=out)
                stats.sort_stats(key).print_stats(top)
        print(f"profile: {prof.with_suffix('.txt')}")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals(handler: Any, signums: Sequence[int]) -> Iterator[None]:
    """The block with `handler` for `signums`; the old handlers restored after."""
    old = [signal.signal(s, handler) for s in signums]
    try:
        yield
    finally:
        for s, previous in zip(signums, old, strict=True):
            signal.signal(s, previous)


@contextlib.contextmanager
def _lab() -> Iterator[Lab]:
    """The bench's lab; removed at the end whatever happens, a second Ctrl-C included."""
    lab = Lab(tag=LAB_TAG)  # removes what it made if it fails half-way
    try:
        yield lab
    finally:
        with _signals(signal.SIG_IGN, (signal.SIGINT, *STOP_SIGNALS)):
            lab.close()


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    began = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    removed = cleanup_stale(NS_PREFIX)  # only an earlier run's that died: a live run's stay
    if removed:
        say(f"removed leftovers of an earlier run: {', '.join(removed)}")
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, _lab() as lab:
        for role in ROLES:
            lab.add_host(HOST_ROLE[role], HOST_IP[role])
        for size in args.sizes:  # by size, both implementations: they see the same noise
            for impl in args.impl:
                left = args.budget - (time.monotonic() - began)
                if left < args.window + CASE_OVERHEAD:
                    cases.append(
                        {
                            "impl": impl,
                            "vhosts": size,
                            "status": "skipped",
                            "error": f"time budget: {left:.0f} s left",
                        }
                    )
                    say(f"{impl} x{size}: skipped (time budget)")
                    continue
                case = run_case(lab, impl, size, args.window, Path(tmp), args.profile)
                cases.append(case)
                say(_case_line(case))
    rows = summarise(cases, args.sizes)
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "benchmark": "idle cost at scale: one pycarp process vs one ucarp process per vhid",
        "timestamp": started_at,
        "duration_s": round(time.monotonic() - began, 1),
        "machine": info,
        "window_s": args.window,
        "cpu_unit": "ms of CPU (all threads, /proc/PID/task/*/schedstat) per 30 s",
        "rss_unit": "MiB (VmRSS at the end of the window; ucarp: sum over its processes)",
        "profiled": args.profile is not None,
        "before_issue_8": BEFORE,
        "cases": cases,
        "summary": rows,
        "targets": check_targets(rows),
    }


def _case_line(case: Mapping[str, Any]) -> str:
    head = f"{case['impl']} x{case['vhosts']}: {case['status']}"
    parts = [
        f"{role} {case[role]['cpu_ms_per_30s']:.1f} ms/30 s {case[role]['rss_mib']:.1f} MiB"
        for role in ROLES
        if role in case
    ]
    error = f" ({case['error']})" if case.get("error") else ""
    return f"{head}: {', '.join(parts)}{error}" if parts else f"{head}{error}"


def _sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(not 1 <= s <= 255 for s in sizes):
        raise argparse.ArgumentTypeError("sizes are numbers of virtual hosts in 1..255")
    return sizes


def _impls(text: str) -> list[str]:
    impls = [s.strip() for s in text.split(",") if s.strip()]
    if not impls or any(i not in IMPLS for i in impls):
        raise argparse.ArgumentTypeError(f"implementations: {', '.join(IMPLS)}")
    return impls


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, help="numbers of virtual hosts (1,16,64,255)")
    parser.add_argument("--window", type=float, help=f"seconds measured per case ({REFERENCE_S:g})")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"directory of scale.json and scale.png ({RESULTS}; with --quick {QUICK_RESULTS})",
    )
    parser.add_argument("--impl", type=_impls, default=list(IMPLS), help="pycarp,ucarp (both)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {QUICK_SIZES}, {QUICK_WINDOW:g} s windows",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help=f"seconds the run may take; later cases are skipped ({BUDGET:g})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run pycarp under cProfile, .prof and .txt files in DIR "
        "(its CPU numbers then include the profiler's cost)",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    if args.window is None:
        args.window = QUICK_WINDOW if args.quick else REFERENCE_S
    if args.window <= 0:
        parser.error("--window must be positive")
    if args.out is None:
        args.out = QUICK_RESULTS if args.quick else RESULTS
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/scale.py needs root (network namespaces)", file=sys.stderr)
        return 2
    say = Progress().say
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        with _signals(_on_signal, STOP_SIGNALS):  # unwind like Ctrl-C: the lab goes
            result = run(args, say)
    except (KeyboardInterrupt, Interrupted) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        say(f"{signal.Signals(signum).name}: the lab and its daemons are gone, no results written")
        return 128 + signum
    except LabError as exc:
        say(f"FAILED: {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    try:
        plot(result["cases"], result["summary"], args.out / "scale.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
    if args.profile is not None:
        write_profiles(args.profile)
    print()
    print(format_table(result["summary"]))
    print()
    print(format_targets(result["targets"]))
    print(f"\n{result['duration_s']:.0f} s; results in {args.out}/scale.json and scale.png")
    failed = [c for c in result["cases"] if c["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
