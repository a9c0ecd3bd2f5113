"""The wire, as a third host sees it: tcpdump's timestamps of advertisements, and their sums.

CARP and VRRP are both IP protocol 112; tcpdump -tt stamps each packet with
the kernel's receive time, so intervals and takeovers are measured without
the benchmark's own scheduling in them.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pycarp.lab import Host
from pycarp.lab.nsexec import program
from pycarp.lab.wait import wait_until

READY = 5.0  # seconds tcpdump has to start listening
MAX_PACKETS = 200_000  # a bound on any one capture


def advert_lines(text: str) -> list[tuple[float, str]]:
    """(timestamp, source) of each `tcpdump -tt -n` line ("<t> IP <src> > ...")."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[1] != "IP":
            continue
        with contextlib.suppress(ValueError):
            out.append((float(fields[0]), fields[2]))
    return out


class Capture:
    """tcpdump of protocol 112 on host's interface, bounded in time and packets."""

    def __init__(self, host: Host, path: Path, seconds: float) -> None:
        self.host = host
        self.path = path
        self.seconds = seconds
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def stderr_path(self) -> Path:
        return self.path.with_suffix(".err")

    def start(self) -> Capture:
        """Start it and wait (bounded) until it listens."""
        tcpdump = program("tcpdump", "tcpdump")
        with open(self.path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = self.host.spawn(
                "timeout", f"{self.seconds:g}", tcpdump, "-p", "-i", self.host.ifname, "-tt",
                "-n", "-l", "--immediate-mode", "-c", str(MAX_PACKETS), "ip proto 112",
                stdout=out, stderr=err,
            )  # fmt: skip
        if not wait_until(lambda: b"listening on" in self.stderr_path.read_bytes(), READY):
            raise RuntimeError(f"tcpdump did not start: {self.stderr_path.read_text()}")
        return self

    def stop(self) -> list[tuple[float, str]]:
        """Stop it (SIGINT: it writes out what it has); (timestamp, source) of each packet."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGINT)  # timeout passes it on
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.packets()

    def packets(self) -> list[tuple[float, str]]:
        return advert_lines(self.path.read_text(errors="replace"))


def stamps_from(packets: Sequence[tuple[float, str]], source: str) -> list[float]:
    return [t for t, src in packets if src == source]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def interval_errors(stamps: Sequence[float], nominal: float) -> dict[str, float | int]:
    """p50/p99/max of |interval - nominal| and the mean signed error (drift), in ms."""
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    if not intervals:
        raise ValueError("fewer than two advertisements captured")
    signed = [(i - nominal) * 1000 for i in intervals]
    absolute = [abs(e) for e in signed]
    return {
        "intervals": len(intervals),
        "p50_ms": round(percentile(absolute, 50), 4),
        "p99_ms": round(percentile(absolute, 99), 4),
        "max_ms": round(max(absolute), 4),
        "drift_ms": round(statistics.fmean(signed), 4),
        "median_interval_s": round(statistics.median(intervals), 6),
        "errors_ms": [round(e, 3) for e in signed],  # every interval's, signed: the raw data
    }


def largest_gap_ms(stamps: Sequence[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0) * 1000


def takeover(
    packets: Sequence[tuple[float, str]], old: str, new: str, after: float
) -> tuple[float | None, float | None]:
    """(last advertisement of old before new's first after `after`, new's first after `after`).

    Each None if the capture does not hold it.
    """
    first_new = next((t for t, src in packets if src == new and t >= after), None)
    limit = first_new if first_new is not None else float("inf")
    last_old = max((t for t, src in packets if src == old and t < limit), default=None)
    return last_old, first_new
