"""Helpers of test_multi.py: a pycarp process with a TOML config, its status, a ping probe.

A `Daemon` is one pycarp process in one lab host, started with a TOML file
written into its own work directory (several `[[vhost]]`s, built-in
plumbing, no scripts), logging to stderr into ``daemon.log``, with the
default control socket an operator gets (no control_socket key): the run
directory of its namespace, so daemons in different lab hosts never clash
although the namespaces share the filesystem. `pycarp status`, `stepdown`
and `reload` run inside the host's namespace, without --control-socket.

A `Probe` is `ping` in the client's namespace, about every 10 ms, with a bounded
count; its output is parsed afterwards into what the client lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pycarp.client.commands import ControlError, request
from pycarp.lab import Host
from tests.netns.peers import control_socket_of

PASSWORD = "multi"
POLL = 0.05  # seconds between two looks at whatever a wait is waiting for
CLI_TIMEOUT = 40.0  # `pycarp reload` itself waits up to 30 s for the daemon

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, interval: float = POLL) -> T | None:
    """Poll probe() until it returns something truthy (returned); None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def holds(condition: Callable[[], bool], duration: float, interval: float = 0.1) -> bool:
    """True if condition stays true for the whole duration (polled, bounded)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(interval)
    return condition()


def pycarp_cli(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    """`pycarp <args>` inside the host's namespace, as an operator on that host runs it."""
    return host.run(sys.executable, "-m", "pycarp", *args, check=False, timeout=CLI_TIMEOUT)


def neighbour_mac(client: Host, ip: str) -> str | None:
    """The MAC the client's ARP table holds for ip, lower case."""
    out = client.run("ip", "neigh", "show", ip, check=False).stdout
    match = re.search(r"lladdr (\S+)", out)
    return match.group(1).lower() if match else None


# --- the daemon ----------------------------------------------------------------


@dataclass(frozen=True)
class VHost:
    """One `[[vhost]]` table; interface, srcip and password come from `[defaults]`."""

    vhid: int
    addresses: tuple[str, ...]  # "a.b.c.d/len"
    advskew: int = 0
    preempt: bool = False
    password: str | None = None  # None: the [defaults] one

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(a.split("/")[0] for a in self.addresses)


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable ASCII is a TOML basic string


def toml_config(host: Host, vhosts: Sequence[VHost], *, password: str = PASSWORD) -> str:
    lines = [
        'facility = "none"  # stderr, captured in daemon.log',
        "",
        "[defaults]",
        f"interface = {_toml_string(host.ifname)}",
        f"srcip = {_toml_string(host.ip)}",
        f"password = {_toml_string(password)}",
    ]
    for vh in vhosts:
        lines += [
            "",
            "[[vhost]]",
            f"vhid = {vh.vhid}",
            f"addresses = [{', '.join(_toml_string(a) for a in vh.addresses)}]",
            f"advskew = {vh.advskew}",
            f"preempt = {'true' if vh.preempt else 'false'}",
        ]
        if vh.password is not None:
            lines.append(f"password = {_toml_string(vh.password)}")
    return "\n".join(lines) + "\n"


@dataclass
class Daemon:
    """One pycarp process with a TOML config in one lab host."""

    host: Host
    workdir: Path
    vhosts: list[VHost]
    password: str = PASSWORD
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return self.workdir / "pycarp.toml"

    @property
    def control_socket(self) -> Path:
        """The default of a TOML file: <run dir of the host's namespace>/pycarp.sock."""
        return control_socket_of(self.host)

    @property
    def daemon_log(self) -> Path:
        return self.workdir / "daemon.log"

    def write_config(self, vhosts: Sequence[VHost] | None = None) -> None:
        if vhosts is not None:
            self.vhosts = list(vhosts)
        text = toml_config(self.host, self.vhosts, password=self.password)
        # Written then renamed: a reload never reads half a file.
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def start(self, *, wait: bool = True) -> Daemon:
        """Write the config and start pycarp; waits (bounded) until status answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        argv = [sys.executable, "-m", "pycarp", "--config", str(self.config_path)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.daemon_log, "ab") as out:
            self.proc = self.host.spawn(*argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        if wait:
            assert wait_for(lambda: self.try_status() is not None, 10.0), self.describe()
        return self

    # -- the control socket -----------------------------------------------

    def try_status(self) -> list[dict[str, Any]] | None:
        """The daemon's status list, None while it does not answer."""
        try:
            answer = request(str(self.control_socket), {"command": "status"}, timeout=2.0)
        except ControlError:
            return None
        hosts = answer.get("hosts")
        return hosts if answer.get("ok") and isinstance(hosts, list) else None

    def status(self) -> dict[int, dict[str, Any]]:
        """vhid -> status object (there is one interface); fails if no answer."""
        hosts = self.try_status()
        assert hosts is not None, f"no status answer\n{self.describe()}"
        return {h["vhid"]: h for h in hosts}

    def status_cli(self) -> list[dict[str, Any]]:
        """This daemon's hosts from `pycarp status --json`, the documented interface for scripts."""
        done = pycarp_cli(self.host, "status", "--json")
        assert done.returncode == 0, f"{done.stderr}\n{self.describe()}"
        daemons = json.loads(done.stdout)
        ours = [d for d in daemons if d["socket"] == str(self.control_socket)]
        assert len(ours) == 1 and ours[0]["pid"] == self.pid, (daemons, self.describe())
        hosts = ours[0]["hosts"]
        assert isinstance(hosts, list)
        return hosts

    def wait_host(
        self, vhid: int, condition: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Poll the status until vhid's object satisfies condition; returns it."""

        def probe() -> dict[str, Any] | None:
            hosts = self.try_status()
            found = next((h for h in hosts or [] if h["vhid"] == vhid), None)
            return found if found is not None and condition(found) else None

        found = wait_for(probe, timeout)
        assert found is not None, (
            f"vhid {vhid}: condition not met in {timeout} s\n{self.describe()}"
        )
        return found

    def wait_state(self, vhid: int, state: str, timeout: float) -> dict[str, Any]:
        return self.wait_host(vhid, lambda h: h["state"] == state, timeout)

    def wait_all(self, state: str, timeout: float) -> dict[int, dict[str, Any]]:
        vhids = {vh.vhid for vh in self.vhosts}

        def probe() -> dict[int, dict[str, Any]] | None:
            hosts = self.try_status()
            got = {h["vhid"]: h for h in hosts or []}
            ok = set(got) == vhids and all(h["state"] == state for h in got.values())
            return got if ok else None

        found = wait_for(probe, timeout)
        assert found is not None, f"not all {state} in {timeout} s\n{self.describe()}"
        return found

    def stepdown(self, vhid: int | None = None) -> subprocess.CompletedProcess[str]:
        args = [] if vhid is None else [str(vhid)]
        return pycarp_cli(self.host, "stepdown", *args)

    def reload(self) -> subprocess.CompletedProcess[str]:
        return pycarp_cli(self.host, "reload")

    # -- the process --------------------------------------------------------

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a graceful stop); the exit status, None if it did not exit in time."""
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the process group: no hand-over, no cleanup."""
        assert self.proc is not None
        if self.proc.poll() is None:
            # host.spawn() made it a session leader: its pid is its group id.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def log(self) -> str:
        try:
            return self.daemon_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return (
            f"--- pycarp@{self.host.role} rc={rc} addresses={self.host.addresses()}\n"
            f"log:\n{self.log()}"
        )


def vip_entries(host: Host, vips: Sequence[str]) -> set[str]:
    """Which of vips ("a.b.c.d/len") are on the host's eth0 (`ip -j addr`, prefix included)."""
    present = set(host.addresses())
    return {v for v in vips if v in present}


def all_vips(vhosts: Sequence[VHost]) -> list[str]:
    return [a for vh in vhosts for a in vh.addresses]


# --- the client's probe -----------------------------------------------------------

# ping -D: "[<unix time>] 64 bytes from <ip>: icmp_seq=<n> ttl=64 time=0.1 ms".
_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from [\d.]+: icmp_seq=(\d+)")
_SENT = re.compile(r"(\d+) packets transmitted")


@dataclass(frozen=True)
class ProbeResult:
    sent: int
    replies: dict[int, float]  # icmp_seq -> wall-clock time of its reply

    @property
    def lost_runs(self) -> list[tuple[int, int]]:
        """(first seq, length) of each run of unanswered requests between two answers."""
        if not self.replies:
            return []
        seqs = sorted(self.replies)
        return [(a + 1, b - a - 1) for a, b in itertools.pairwise(seqs) if b - a > 1]

    @property
    def longest_lost_run(self) -> int:
        return max((n for _, n in self.lost_runs), default=0)

    @property
    def lost(self) -> int:
        return sum(n for _, n in self.lost_runs)

    @property
    def longest_silence_ms(self) -> float:
        stamps = sorted(self.replies.values())
        return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0) * 1000.0

    def replies_after(self, when: float) -> int:
        return sum(1 for t in self.replies.values() if t > when)

    @property
    def mean_interval_ms(self) -> float:
        """The probes' actual spacing (from the answers' sequence numbers and times)."""
        if len(self.replies) < 2:
            return 0.0
        first, last = min(self.replies), max(self.replies)
        return (self.replies[last] - self.replies[first]) * 1000.0 / (last - first)

    def summary(self) -> str:
        return (
            f"{self.sent} sent every {self.mean_interval_ms:.1f} ms, {len(self.replies)} "
            f"answered, {self.lost} lost between answers, "
            f"longest run {self.longest_lost_run} lost, "
            f"longest silence {self.longest_silence_ms:.0f} ms"
        )


def parse_ping(output: str) -> ProbeResult:
    replies: dict[int, float] = {}
    for match in map(_REPLY.match, output.splitlines()):
        if match:
            replies.setdefault(int(match[2]), float(match[1]))  # a DUP! keeps the first
    sent = _SENT.search(output)
    return ProbeResult(int(sent[1]) if sent else max(replies, default=0), replies)


@dataclass
class Probe:
    """`ping -i interval` from a lab host, running until stopped or `count` is sent."""

    client: Host
    target: str
    logfile: Path
    # iputils' ping rounds `-i 0.01` up to 16 ms here; 0.0099 gives the 9-10 ms we want.
    interval: float = 0.0099
    count: int = 1500
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Probe:
        with open(self.logfile, "wb") as out:
            self.proc = self.client.spawn(
                "ping", "-n", "-D", "-O", "-W", "0.2", "-i", f"{self.interval:g}",
                "-c", str(self.count), self.target, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def result(self) -> ProbeResult:
        return parse_ping(self.logfile.read_text(errors="replace"))

    def wait_replies_after(self, when: float, n: int, timeout: float) -> bool:
        return wait_for(lambda: self.result().replies_after(when) >= n, timeout) is not None

    def stop(self) -> ProbeResult:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)  # ping prints its summary and exits
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.result()


@contextlib.contextmanager
def probing(client: Host, target: str, logfile: Path, count: int = 1500) -> Iterator[Probe]:
    probe = Probe(client, target, logfile, count=count).start()
    try:
        yield probe
    finally:
        probe.stop()


# --- address events ------------------------------------------------------------------

# `ip -ts -o monitor address`:
# "[2026-01-01T12:00:00.123456] [Deleted ]2: eth0    inet a.b.c.d/len ..."
_ADDR_EVENT = re.compile(r"^\[([0-9T:.-]+)\] (Deleted )?\d+: \S+\s+inet (\S+) ")


@dataclass
class AddressMonitor:
    """`ip monitor address` in a lab host: when each IPv4 address came and went."""

    host: Host
    logfile: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, limit: float = 60.0) -> AddressMonitor:
        with open(self.logfile, "wb") as out:
            # timeout(1) bounds it even if the test forgets to stop it.
            self.proc = self.host.spawn(
                "timeout", f"{limit:g}", "ip", "-ts", "-o", "monitor", "address",
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def events(self) -> list[tuple[float, str, str]]:
        """(wall-clock time, "add" or "del", "a.b.c.d/len") in order."""
        out = []
        text = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
        for match in map(_ADDR_EVENT.match, text.splitlines()):
            if match:
                when = datetime.fromisoformat(match[1]).timestamp()  # local time, as ip prints
                out.append((when, "del" if match[2] else "add", match[3]))
        return out

    def first(self, verb: str, address: str) -> float | None:
        return next((t for t, v, a in self.events() if v == verb and a == address), None)


# --- gratuitous ARPs seen on the wire ---------------------------------------------------

# tcpdump -tt -e -n: "<time> <src mac> > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42:
# Request who-has 198.51.100.140 (<mac>) tell 198.51.100.140, length 28"
_GARP = re.compile(r"^(\d+\.\d+) (\S+) > .*Request who-has ([\d.]+) .*tell ([\d.]+)")


@dataclass
class ArpCapture:
    """tcpdump of ARP in a lab host (bounded in time and count), for gratuitous ARPs."""

    host: Host
    logfile: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def errfile(self) -> Path:
        return self.logfile.with_suffix(".err")

    def start(self, limit: float = 60.0) -> ArpCapture:
        with open(self.logfile, "wb") as out, open(self.errfile, "wb") as err:
            self.proc = self.host.spawn(
                "timeout", f"{limit:g}", "tcpdump", "-p", "-i", self.host.ifname, "-tt", "-e",
                "-n", "-l", "-c", "1000", "arp", stdout=out, stderr=err,
            )  # fmt: skip
        # tcpdump says "listening on eth0" once it is attached.
        listening = wait_for(lambda: "listening on" in self.errfile.read_text(errors="replace"), 5)
        assert listening, self.errfile.read_text(errors="replace")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)  # tcpdump flushes and exits
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def gratuitous(self) -> list[tuple[float, str, str]]:
        """(wall-clock time, sender MAC, address) of each gratuitous ARP request seen."""
        text = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
        return [
            (float(m[1]), m[2].lower(), m[3])
            for m in map(_GARP.match, text.splitlines())
            if m and m[3] == m[4]
        ]
