"""What the end-to-end tests look at: the operator's CLI, the client's view, the wire.

`pycarp status` and the control socket as an operator on a lab host uses
them; the client's pings, its ARP table and a `Probe` that pings about every
10 ms (parsed afterwards into what was lost); `ip monitor address`; tcpdump.
Every capture is bounded in time and count, and stopped by its test.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pycarp.client.request import ControlError, request
from pycarp.config.settings import default_control_socket
from pycarp.lab import Host
from pycarp.lab.probe import PingProbe, ping_replies, ping_sent
from pycarp.lab.wait import wait_until

CLI_TIMEOUT = 40.0  # `pycarp reload` itself waits up to 30 s for the daemon


def text_of(path: Path) -> str:
    """A capture's output so far ("" before it wrote any)."""
    return path.read_text(errors="replace") if path.exists() else ""


def holds(condition: Callable[[], bool], duration: float, interval: float = 0.1) -> bool:
    """True if condition stays true for the whole duration (polled, bounded)."""
    return not wait_until(lambda: not condition(), duration, interval=interval)


# --- the operator's view ------------------------------------------------------------


def control_socket_of(host: Host, vhid: int | None = None) -> Path:
    """The default control socket of a pycarp in ``host`` (no vhid: a TOML file's)."""
    with host.enter():  # the run directory depends on the namespace
        if vhid is None:
            return Path(default_control_socket())
        return Path(default_control_socket(host.ifname, vhid))


def ask_status(path: Path) -> list[dict[str, Any]] | None:
    """The status list of the daemon at path, None while it does not answer."""
    try:
        answer = request(str(path), {"command": "status"}, timeout=2.0)
    except ControlError:
        return None
    hosts = answer.get("hosts")
    return hosts if answer.get("ok") and isinstance(hosts, list) else None


def pycarp_cli(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    """`pycarp <args>` inside the host's namespace, as an operator on that host runs it."""
    return host.run(sys.executable, "-m", "pycarp", *args, check=False, timeout=CLI_TIMEOUT)


def status_json(host: Host, context: str = "") -> list[dict[str, Any]]:
    """`pycarp status --json` on the host, without --control-socket: one object a daemon."""
    done = pycarp_cli(host, "status", "--json")
    assert done.returncode == 0, f"{done.stderr}\n{context}"
    daemons = json.loads(done.stdout)
    assert isinstance(daemons, list)
    return daemons


def vip_entries(host: Host, vips: Sequence[str]) -> set[str]:
    """Which of vips ("a.b.c.d/len") are on the host's eth0 (`ip -j addr`, prefix included)."""
    present = set(host.addresses())
    return {v for v in vips if v in present}


def ip_entries(host: Host, *, every_link: bool = False) -> list[dict[str, Any]]:
    """The address entries of `ip -j addr` for the host's eth0 (every link: its macvlans too)."""
    out = host.run("ip", "-j", "addr", "show", *(() if every_link else ("dev", host.ifname))).stdout
    return [a for link in json.loads(out) for a in link.get("addr_info", []) if "local" in a]


def global_addresses(
    host: Host, family: str | None = None, *, every_link: bool = False
) -> set[str]:
    """The global addresses on the host's eth0 as "addr/len"; family "inet" or "inet6" only."""
    return {
        f"{a['local']}/{a['prefixlen']}"
        for a in ip_entries(host, every_link=every_link)
        if a.get("scope") == "global" and family in (None, a.get("family"))
    }


def link_local(host: Host) -> str | None:
    """The host's IPv6 link-local address as `ip` shows it; None without IPv6."""
    found = [str(a["local"]) for a in ip_entries(host) if a.get("scope") == "link"]
    return found[0] if found else None


def tentative(host: Host) -> bool:
    """An IPv6 address of the host's is still in duplicate address detection."""
    return any(a.get("tentative") for a in ip_entries(host))


def all_plumbed(
    host: Host,
    monitor: AddressMonitor,
    vips: Sequence[str],
    timeout: float,
    *,
    every_link: bool = False,
) -> float:
    """Wait until every vip ("addr/len") is on the host; when the kernel added the last one."""

    def missing() -> set[str]:
        return set(vips) - global_addresses(host, every_link=every_link)

    assert wait_until(lambda: not missing(), timeout), f"{len(missing())} of {len(vips)} missing"
    # ip monitor writes its lines a moment later.
    reported = wait_until(lambda: monitor.last_first("add", vips) is not None, 5.0)
    last = monitor.last_first("add", vips)
    assert reported and last is not None, "ip monitor did not report every address"
    return last


# --- the client's view -----------------------------------------------------------------


def neighbour_mac(client: Host, ip: str) -> str | None:
    """The MAC the client's ARP table holds for ip, lower case."""
    out = client.run("ip", "neigh", "show", ip, check=False).stdout
    match = re.search(r"lladdr (\S+)", out)
    return match.group(1).lower() if match else None


def ping_within(client: Host, ip: str, timeout: float = 3.0, each: float = 1.0) -> bool:
    """The client's pings of ip (each waiting up to `each` s) get an answer within timeout."""
    return wait_until(lambda: client.ping(ip, count=1, timeout=each), timeout)


# ping -D: "[<unix time>] 64 bytes from <ip>: icmp_seq=<n> ttl=64 time=0.1 ms".


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
    for seq, at in ping_replies(output):
        replies.setdefault(seq, at)  # a DUP! keeps the first
    sent = ping_sent(output)
    return ProbeResult(sent if sent is not None else max(replies, default=0), replies)


def stop_capture(proc: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    """Stop a capture by sig (it then writes out what it has), SIGKILL if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # host.spawn() made it a process group leader
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class Probe:
    """`ping -i interval` from a lab host, running until stopped or `count` is sent."""

    client: Host
    target: str
    logfile: Path
    # iputils' ping rounds `-i 0.01` up to 16 ms here; 0.0099 gives the 9-10 ms we want.
    interval: float = 0.0099
    count: int = 1500
    ping: PingProbe | None = field(default=None, repr=False)

    def start(self) -> Probe:
        self.ping = PingProbe(
            self.client, self.target, self.logfile, self.interval, self.count, reply_timeout=0.2
        ).start()
        return self

    def result(self) -> ProbeResult:
        return parse_ping(text_of(self.logfile))

    def wait_replies_after(self, when: float, n: int, timeout: float) -> bool:
        return wait_until(lambda: self.result().replies_after(when) >= n, timeout)

    def stop(self) -> ProbeResult:
        if self.ping is not None:
            self.ping.stop()  # SIGINT: ping prints its summary and exits
        return self.result()


@contextlib.contextmanager
def probing(client: Host, target: str, logfile: Path, count: int = 1500) -> Iterator[Probe]:
    probe = Probe(client, target, logfile, count=count).start()
    try:
        yield probe
    finally:
        probe.stop()


# --- the hosts' addresses and the wire ------------------------------------------------

# `ip -ts -o monitor address`:
# "[2026-01-01T12:00:00.123456] [Deleted ]2: eth0    inet a.b.c.d/len ..."
_ADDR_EVENT = re.compile(r"^\[([0-9T:.-]+)\] (Deleted )?\d+: \S+\s+inet6? (\S+) ")


@dataclass
class AddressMonitor:
    """`ip monitor address` in a lab host: when each address (IPv4, IPv6) came and went."""

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
        stop_capture(self.proc, signal.SIGTERM)

    def events(self) -> list[tuple[float, str, str]]:
        """(wall-clock time, "add" or "del", "address/len") in order."""
        out = []
        for match in map(_ADDR_EVENT.match, text_of(self.logfile).splitlines()):
            if match:
                when = datetime.fromisoformat(match[1]).timestamp()  # local time, as ip prints
                out.append((when, "del" if match[2] else "add", match[3]))
        return out

    def first(self, verb: str, address: str) -> float | None:
        return next((t for t, v, a in self.events() if v == verb and a == address), None)

    def last_first(self, verb: str, addresses: Sequence[str]) -> float | None:
        """The latest of the addresses' first `verb` events; None while one has none."""
        times = [self.first(verb, a) for a in addresses]
        return max(t for t in times if t is not None) if None not in times else None


# tcpdump -tt -e -n: "<time> <src mac> > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42:
# Request who-has 198.51.100.140 (<mac>) tell 198.51.100.140, length 28"
_GARP = re.compile(r"^(\d+\.\d+) (\S+) > .*Request who-has ([\d.]+) .*tell ([\d.]+)")


@dataclass
class Tcpdump:
    """tcpdump on a lab host's eth0, one line a frame with its Ethernet header."""

    host: Host
    logfile: Path
    expression: str  # a pcap filter, e.g. "arp"
    promiscuous: bool = True
    count: int = 1000
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def errfile(self) -> Path:
        return self.logfile.with_suffix(".err")

    def start(self, limit: float = 60.0) -> Tcpdump:
        """Start it (bounded by limit seconds and count frames); wait until it listens."""
        argv = ["timeout", f"{limit:g}", "tcpdump", *([] if self.promiscuous else ["-p"])]
        argv += ["-i", self.host.ifname, "-tt", "-e", "-n", "-l", "-c", str(self.count)]
        with open(self.logfile, "wb") as out, open(self.errfile, "wb") as err:
            self.proc = self.host.spawn(*argv, self.expression, stdout=out, stderr=err)
        # tcpdump says "listening on eth0" once it is attached.
        assert wait_until(lambda: "listening on" in text_of(self.errfile), 5), text_of(self.errfile)
        return self

    def stop(self) -> None:
        stop_capture(self.proc, signal.SIGINT)  # tcpdump flushes and exits

    def lines(self) -> list[str]:
        return text_of(self.logfile).splitlines()

    def gratuitous_arps(self) -> list[tuple[float, str, str]]:
        """(wall-clock time, sender MAC, address) of each gratuitous ARP request seen."""
        return [
            (float(m[1]), m[2].lower(), m[3])
            for m in map(_GARP.match, self.lines())
            if m and m[3] == m[4]
        ]


def tshark_vrrp(
    host: Host, pcap: Path, expression: str, *more: str, count: int = 3
) -> list[list[str]]:
    """`count` packets captured on host, as tshark decodes them: VRRP's fields, then `more`."""
    host.run("timeout", "5", "tcpdump", "-p", "-i", host.ifname, "-w", str(pcap), "-c", str(count),
             expression, check=False)  # fmt: skip
    names = ["vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio"]
    names += ["vrrp.checksum.status", "eth.src", *more]
    argv = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=,", "-Y", "vrrp"]
    for name in names:
        argv += ["-e", name]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line.split(",") for line in done.stdout.splitlines() if line]
