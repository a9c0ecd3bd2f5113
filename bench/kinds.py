"""The daemons the bench compares, started the same way in lab hosts.

A kind is one daemon: "pycarp" (CARP, one process with a TOML file, built-in
plumbing), "ucarp" (Debian's, one process per virtual host with `ip addr`
up/down scripts, as operators run it), "keepalived" (Debian's, VRRPv3, one
process with a vrrp_instance per virtual host, through pycarp.lab.keepalived)
and "pycarp-vrrp3" (pycarp speaking VRRPv3). A Group is every daemon of one
kind serving some virtual hosts on one host; all are configured alike on both
hosts of a pair (same advskew or priority, no preemption), so the one started
first is the master and a restarted one stays backup.

A Timing is one advertisement interval spelled for each protocol: CARP's
advbase/advskew and VRRP's advert_int. master_down() is the protocol's bound
for a takeover after the last advertisement.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pycarp.lab import Host
from pycarp.lab.keepalived import Instance, Keepalived
from pycarp.lab.nsexec import program

PASSWORD = "bench"
PROFILED = Path(__file__).resolve().parent / "profiled.py"
PROFILE_SIGNAL = int(signal.SIGRTMIN) + 2  # switches bench/profiled.py's profiler

CARP_KINDS = ("pycarp", "ucarp")
VRRP_KINDS = ("keepalived", "pycarp-vrrp3")
KINDS = ("pycarp", "ucarp", "keepalived", "pycarp-vrrp3")

# $1 interface, $2 the VIP: plumb or unplumb it, then log "<unix time> <up|down> <vip>".
UCARP_SCRIPT = (
    '#!/bin/sh\n{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null\n'
    'echo "$(date +%s.%N) {event} $2" >> "{log}"\n'
)
# pycarp's log: "... eth0/vhid 5: BACKUP -> MASTER: ..."
PYCARP_TRANSITION = re.compile(r"(?:vhid|vrid) (\d+): ([A-Z]+) -> ([A-Z]+)")


@dataclass(frozen=True)
class Timing:
    """An advertisement interval: CARP's advbase + advskew/256, VRRP's advert_int."""

    name: str
    advbase: int
    advskew: int
    advert_int: float
    priority: int = 100  # VRRP, on both hosts

    @property
    def carp_interval(self) -> float:
        return self.advbase + self.advskew / 256


TIMINGS = {
    "1s": Timing("1s", 1, 0, 1.0),
    "100ms": Timing("100ms", 0, 26, 0.1),
    "25ms": Timing("25ms", 0, 6, 0.03),
}


def interval(kind: str, timing: Timing) -> float:
    """The advertisement interval the kind runs with."""
    return timing.advert_int if kind in VRRP_KINDS else timing.carp_interval


def master_down(kind: str, timing: Timing) -> float:
    """The protocol's bound from the master's last advertisement to a backup's takeover.

    VRRPv3: 3 intervals plus the skew (256 - priority)/256 of one. CARP with
    advbase 1 or more: 3 x advbase + advskew/256 (ucarp and pycarp alike);
    with advbase 0, ucarp's one interval and pycarp's three (docs/config.md).
    """
    if kind in VRRP_KINDS:
        return 3 * timing.advert_int + (256 - timing.priority) / 256 * timing.advert_int
    if timing.advbase >= 1:
        return 3 * timing.advbase + timing.advskew / 256
    return 3 * timing.carp_interval if kind == "pycarp" else timing.carp_interval


def vip_for(vhid: int) -> str:
    """The virtual address of a vhid: 203.0.113.<vhid>, and 198.51.100.254 for vhid 255."""
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid {vhid} is outside 1..255")
    return f"203.0.113.{vhid}" if vhid <= 254 else "198.51.100.254"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


class Group:
    """Every daemon of one kind serving vhids on host, files in workdir."""

    kind = ""

    def __init__(
        self, host: Host, vhids: Sequence[int], timing: Timing, workdir: Path, *,
        profile: Path | None = None,
    ) -> None:  # fmt: skip
        self.host = host
        self.vhids = list(vhids)
        self.timing = timing
        self.workdir = workdir
        self.profile = profile  # pycarp under cProfile, writing this file
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started_at = 0.0  # time.time() just before the first exec

    @property
    def vips(self) -> list[str]:
        return [vip_for(v) for v in self.vhids]

    @property
    def log_path(self) -> Path:
        return self.workdir / "daemon.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        self._start()

    def _start(self) -> None:
        raise NotImplementedError

    def _spawn(self, argv: Sequence[str]) -> None:
        with open(self.log_path, "ab") as out:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self.procs.append(self.host.spawn(*argv, stdout=out, stderr=subprocess.STDOUT, env=env))

    def transitions(self) -> list[tuple[int, str]]:
        """(vhid, new state) of every state change so far, in order."""
        raise NotImplementedError

    def states(self) -> dict[int, str]:
        """vhid -> its last state ("MASTER", "BACKUP", ...); absent before the first."""
        return dict(self.transitions())

    def problem(self, want: str) -> str | None:
        """None while every process runs and every vhid is in state `want`."""
        dead = [p for p in self.procs if p.poll() is not None]
        if dead:
            return f"{len(dead)} {self.kind} process(es) exited: {self.log_tail()}"
        states = self.states()
        wrong = [(v, states.get(v, "no state")) for v in self.vhids if states.get(v) != want]
        if not wrong:
            return None
        shown = ", ".join(f"vhid {v}: {s}" for v, s in wrong[:3])
        return f"{self.kind}: {len(wrong)} not {want} ({shown})"

    def pids(self) -> list[int]:
        """Every process of the group that runs: what CPU and memory sum over."""
        return [p.pid for p in self.procs if p.poll() is None]

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def kill(self) -> None:
        """SIGKILL every process (and its process group): a crash."""
        for proc in self.procs:
            if proc.poll() is None:  # not reaped: its group id is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def terminate(self) -> None:
        """SIGTERM every process: the graceful stop (returns at once)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def plumbed(self) -> dict[str, str]:
        """The group's VIPs on any link of the host (a macvlan's too) -> that link."""
        out = self.host.run("ip", "-o", "-4", "addr", "show", check=False).stdout
        found = {}
        for line in out.splitlines():
            fields = line.split()  # "2: eth0    inet 203.0.113.1/32 scope global eth0 ..."
            if len(fields) > 3 and fields[2] == "inet":
                found[fields[3].split("/")[0]] = fields[1].split("@")[0]
        return {v: found[v] for v in self.vips if v in found}

    def unplumb(self) -> None:
        """Remove whatever of the group's VIPs is still on the host (a killed daemon's)."""
        left = self.plumbed()
        if left:
            batch = "".join(f"addr del {v}/32 dev {dev}\n" for v, dev in sorted(left.items()))
            self.host.run("ip", "-force", "-batch", "-", input=batch, check=False)

    def close(self) -> None:
        self.kill()
        self.unplumb()

    def switch_profiler(self) -> None:
        """bench/profiled.py's profiler on (first call) or off and written (second)."""

    def log_tail(self, lines: int = 3) -> str:
        return " | ".join(x.strip() for x in _read(self.log_path).splitlines()[-lines:])


class PycarpGroup(Group):
    """One pycarp process, a [[vhost]] per vhid in a TOML file, built-in plumbing."""

    kind = "pycarp"

    @property
    def config_path(self) -> Path:
        return self.workdir / "pycarp.toml"

    def toml(self) -> str:
        quote = json.dumps
        t = self.timing
        lines = [
            'facility = "none"',
            f"control_socket = {quote(str(self.workdir / 'control.sock'))}",
            "",
            "[defaults]",
            f"interface = {quote(self.host.ifname)}",
            f"srcip = {quote(self.host.ip)}",
            *self.defaults(t),
        ]
        for vhid in self.vhids:
            lines += [
                "",
                "[[vhost]]",
                f"vhid = {vhid}",
                f"addresses = [{quote(vip_for(vhid) + '/32')}]",
            ]
            lines += self.vhost_lines(t)
        return "\n".join(lines) + "\n"

    def defaults(self, t: Timing) -> list[str]:
        return [
            f"password = {json.dumps(PASSWORD)}",
            f"advbase = {t.advbase}",
            f"advskew = {t.advskew}",
        ]

    def vhost_lines(self, t: Timing) -> list[str]:
        return []

    def _start(self) -> None:
        self.config_path.write_text(self.toml())
        options = ["--config", str(self.config_path)]
        if self.profile is None:
            argv = [sys.executable, "-m", "pycarp", *options]
        else:
            argv = [sys.executable, str(PROFILED), str(self.profile), str(PROFILE_SIGNAL), *options]
        self._spawn(argv)

    def transitions(self) -> list[tuple[int, str]]:
        return [(int(m[1]), m[3]) for m in PYCARP_TRANSITION.finditer(_read(self.log_path))]

    def switch_profiler(self) -> None:
        if self.profile is not None:
            for proc in self.procs:
                proc.send_signal(PROFILE_SIGNAL)


class PycarpVrrp3Group(PycarpGroup):
    """pycarp speaking VRRPv3 (protocol = "vrrp3"), configured as keepalived is."""

    kind = "pycarp-vrrp3"

    def defaults(self, t: Timing) -> list[str]:
        return []

    def vhost_lines(self, t: Timing) -> list[str]:
        return [
            'protocol = "vrrp3"',
            f"priority = {t.priority}",
            f"advert_int = {t.advert_int:g}",
            "preempt = false",
        ]


class UcarpGroup(Group):
    """One ucarp process per vhid, with up/down scripts logging to events.log."""

    kind = "ucarp"

    @property
    def events_path(self) -> Path:
        return self.workdir / "events.log"

    def scripts(self) -> list[str]:
        ip = program("ip", "iproute2")
        options = []
        for event, verb in (("up", "add"), ("down", "del")):
            path = self.workdir / f"{event}.sh"
            path.write_text(
                UCARP_SCRIPT.format(ip=ip, verb=verb, event=event, log=self.events_path)
            )
            path.chmod(0o755)
            options.append(f"--{event}script={path}")
        return options

    def _start(self) -> None:
        ucarp, scripts, t = program("ucarp", "ucarp"), self.scripts(), self.timing
        for vhid in self.vhids:
            self._spawn([
                ucarp, f"--interface={self.host.ifname}", f"--srcip={self.host.ip}",
                f"--vhid={vhid}", f"--pass={PASSWORD}", f"--addr={vip_for(vhid)}",
                f"--advbase={t.advbase}", f"--advskew={t.advskew}", "--shutdown",
                "--facility=none", *scripts,
            ])  # fmt: skip

    def transitions(self) -> list[tuple[int, str]]:
        vhid_of = {vip_for(v): v for v in self.vhids}
        out = []
        for line in _read(self.events_path).splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] in ("up", "down") and fields[2] in vhid_of:
                out.append((vhid_of[fields[2]], "MASTER" if fields[1] == "up" else "BACKUP"))
        return out


class KeepalivedGroup(Group):
    """One keepalived (parent and VRRP child), a vrrp_instance per vhid, VRRPv3, nopreempt."""

    kind = "keepalived"

    def __init__(
        self, host: Host, vhids: Sequence[int], timing: Timing, workdir: Path, *,
        profile: Path | None = None,
    ) -> None:  # fmt: skip
        super().__init__(host, vhids, timing, workdir)
        instances = [
            Instance(
                vrid=v, priority=timing.priority, addresses=(f"{vip_for(v)}/32",),
                advert_int=timing.advert_int, interface=host.ifname, preempt=False,
            )
            for v in self.vhids
        ]  # fmt: skip
        self.daemon = Keepalived(host, workdir, instances, router_id=host.role)

    @property
    def log_path(self) -> Path:
        return self.daemon.daemon_log

    def _start(self) -> None:
        self.daemon.start(wait=False)
        self.started_at = self.daemon.started_at
        assert self.daemon.proc is not None
        self.procs.append(self.daemon.proc)

    def pids(self) -> list[int]:
        return self.daemon.pids()

    def transitions(self) -> list[tuple[int, str]]:
        vhid_of = {i.label: i.vrid for i in self.daemon.instances}
        return [(vhid_of[n], s) for _, n, s in self.daemon.events() if n in vhid_of]


GROUPS: dict[str, type[Group]] = {
    "pycarp": PycarpGroup,
    "ucarp": UcarpGroup,
    "keepalived": KeepalivedGroup,
    "pycarp-vrrp3": PycarpVrrp3Group,
}


def make_group(
    kind: str, host: Host, vhids: Sequence[int], timing: Timing, workdir: Path,
    profile: Path | None = None,
) -> Group:  # fmt: skip
    return GROUPS[kind](host, vhids, timing, workdir, profile=profile)
