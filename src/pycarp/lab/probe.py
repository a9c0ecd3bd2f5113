"""A client probing a VIP from a lab host: which echo requests were answered, when, by whom.

Two probers, for the demo, the benches and the end-to-end tests:

- PingProbe: `ping -D` in any lab host, its output read afterwards with
  ping_replies / probe_results / longest_silence_ms.
- Prober: prober_main, a child process with raw sockets, notes the Ethernet
  source of each reply, so which zone answered is known exactly (no ARP
  table sampling can tell); its lines go into a Timeline as they come.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from pycarp.core.packet import checksum
from pycarp.lab.nsexec import program
from pycarp.lab.timeline import Timeline

PROBE_TIMEOUT = 1.0  # seconds: an echo request unanswered after this is lost
STOP_WAIT = 5.0  # seconds a stopped prober has to exit before SIGKILL

# ping -D prints "[<unix time>] 64 bytes from <ip>: icmp_seq=<n> ..." per reply.
_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from [\d.]+: icmp_seq=(\d+)")
_SENT = re.compile(r"(\d+) packets transmitted")
_ETH_P_IP = 0x0800
_ICMP = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


class LabHost(Protocol):
    """What a prober needs of a lab host: netns.Host and zones.Client both are one."""

    @property
    def ifname(self) -> str: ...

    @property
    def ip(self) -> str: ...

    def spawn(
        self,
        *argv: str,
        stdout: int | IO[Any] | None = ...,
        stderr: int | IO[Any] | None = ...,
        env: dict[str, str] | None = ...,
    ) -> subprocess.Popen[bytes]: ...


def _end(proc: subprocess.Popen[bytes], sig: int) -> None:
    """sig to a prober (it then flushes what it has), bounded wait, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_WAIT)


# --- ping -----------------------------------------------------------------------------


def ping_replies(ping_output: str) -> list[tuple[int, float]]:
    """(icmp_seq, wall-clock time) of each reply in `ping -D` output, in order, DUPs included."""
    return [(int(m[2]), float(m[1])) for m in map(_REPLY.match, ping_output.splitlines()) if m]


def ping_sent(ping_output: str) -> int | None:
    """The echo requests ping says it sent; None before its summary line."""
    match = _SENT.search(ping_output)
    return int(match[1]) if match else None


def probe_results(ping_output: str) -> tuple[int, list[float]]:
    """(echo requests sent, wall-clock time of each reply) from `ping -D` output."""
    stamps = [t for _, t in ping_replies(ping_output)]
    sent = ping_sent(ping_output)
    return (sent if sent is not None else len(stamps)), stamps


def longest_silence_ms(stamps: list[float]) -> float:
    """The longest time between two consecutive replies, in ms (infinite without two)."""
    return max((b - a for a, b in itertools.pairwise(stamps)), default=float("inf")) * 1000.0


@dataclass
class PingProbe:
    """`ping -D` from host to target every interval seconds, count at most, into logfile."""

    host: LabHost
    target: str
    logfile: Path
    interval: float
    count: int
    reply_timeout: float = PROBE_TIMEOUT  # ping's -W
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> PingProbe:
        ping = program("ping", "iputils-ping")
        with open(self.logfile, "wb") as out:
            self.proc = self.host.spawn(
                ping, "-n", "-D", "-O", "-W", f"{self.reply_timeout:g}",
                "-i", f"{self.interval:g}", "-c", str(self.count), self.target,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def output(self) -> str:
        return self.logfile.read_text(errors="replace")

    def stop(self) -> str:
        """SIGINT (ping prints its summary and exits); the whole output."""
        if self.proc is not None:
            _end(self.proc, signal.SIGINT)
        return self.output()


# --- the raw-socket prober ------------------------------------------------------------


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request, its checksum filled in."""
    header = _ICMP.pack(8, 0, 0, ident, seq)
    return _ICMP.pack(8, 0, checksum(header + payload), ident, seq) + payload


def echo_reply_of(frame: bytes, target: bytes, ident: int) -> int | None:
    """The sequence number of an Ethernet frame that is target's echo reply to ident, or None."""
    if len(frame) < 34:  # Ethernet and a minimal IPv4 header
        return None
    ihl = (frame[14] & 0x0F) * 4
    icmp = frame[14 + ihl : 14 + ihl + 8]
    if len(icmp) != 8 or frame[23] != socket.IPPROTO_ICMP or frame[26:30] != target:
        return None
    kind, _, _, rid, rseq = _ICMP.unpack(icmp)
    return rseq if kind == 0 and rid == ident else None


def prober_main(argv: Sequence[str]) -> int:
    """`<ifname> <vip> <interval> <count>`: echo requests to vip; one line per
    probe once settled, "<seq> <monotonic send time> <source MAC of the reply
    or ->"."""
    ifname, vip, interval, count = argv[0], argv[1], float(argv[2]), int(argv[3])
    ident = os.getpid() & 0xFFFF
    target = socket.inet_aton(vip)
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    send.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # replies are read below
    recv = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP))
    recv.bind((ifname, _ETH_P_IP))
    pending: dict[int, float] = {}  # seq -> send time
    next_send = time.monotonic()
    seq = 0
    out = sys.stdout
    while seq < count or pending:
        now = time.monotonic()
        if seq < count and now >= next_send:
            pending[seq] = now
            with contextlib.suppress(OSError):  # no route yet: it counts as lost
                send.sendto(echo_request(ident, seq, struct.pack("!d", now)), (vip, 0))
            seq += 1
            next_send += interval
        for lost in [s for s, t in pending.items() if now - t > PROBE_TIMEOUT]:
            out.write(f"{lost} {pending.pop(lost):.6f} -\n")
        wait = max(0.0, min(next_send - time.monotonic(), 0.05)) if seq < count else 0.05
        readable, _, _ = select.select([recv], [], [], wait)
        if readable:
            frame = recv.recv(2048)
            rseq = echo_reply_of(frame, target, ident)
            if rseq is not None and rseq in pending:
                out.write(f"{rseq} {pending.pop(rseq):.6f} {frame[6:12].hex(':')}\n")
        out.flush()
    return 0


@dataclass
class Prober:
    """prober_main in host, probing target; its lines into the timeline as they come.

    zone_of_mac names the zones by their MACs: a probe answered by a MAC not
    in it is recorded under the MAC itself.
    """

    timeline: Timeline
    host: LabHost
    zone_of_mac: dict[str, str]
    target: str
    interval: float
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    last: dict[str, float] = field(default_factory=dict)  # zone -> last answer time

    def start(self, count: int) -> None:
        code = (
            "import sys; from pycarp.lab.probe import prober_main; "
            "sys.exit(prober_main(sys.argv[1:]))"
        )
        self.proc = self.host.spawn(
            sys.executable, "-c", code, self.host.ifname, self.target, f"{self.interval:g}",
            str(count), stdout=subprocess.PIPE,
        )  # fmt: skip
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.take(line.decode(errors="replace"))

    def take(self, line: str) -> None:
        """One line of prober_main's output into the timeline (anything else is ignored)."""
        fields = line.split()
        if len(fields) != 3:
            return
        t, mac = float(fields[1]), fields[2]
        zone = self.zone_of_mac.get(mac, mac) if mac != "-" else None
        self.timeline.probe(zone is not None, zone, t)
        if zone is not None:
            self.last[zone] = t

    def answered_by(self, zone: str, since: float) -> bool:
        return self.last.get(zone, float("-inf")) > since

    def stop(self) -> None:
        if self.proc is None:
            return
        _end(self.proc, signal.SIGTERM)  # it flushes every line: nothing settled is lost
        if self.thread is not None:
            self.thread.join(timeout=5)
