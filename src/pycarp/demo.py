"""`pycarp demo`: a failover you can watch, in throwaway network namespaces.

Two pycarp nodes share 198.51.100.200 (vhid 101, password changeme, as in the
reference scenario) on a private bridge, with a client on the same bridge.
The client pings the VIP every 20 ms; the master host then dies (daemon
SIGKILLed and its link down) and the demo reports how long the backup took
to take over and how long the client got no answer. Everything lives in
namespaces named pycarp-*, removed at the end whatever happens (failure,
Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pycarp.lab import Host, Lab, LabError

VIP = "198.51.100.200"
VHID = 101
PASSWORD = "changeme"
NODES = (("zoneA", "198.51.100.201"), ("zoneB", "198.51.100.202"))
CLIENT_IP = "198.51.100.10"

PROBE_INTERVAL = 0.02  # seconds between the client's echo requests
PROBE_MAX = 1500  # 30 s of probes at most, whatever happens
ELECTION_TIMEOUT = 10.0  # a lone node needs about 3 s (3 x advbase)
TAKEOVER_TIMEOUT = 10.0
OUTAGE_LIMIT_MS = 6000.0  # about 3 s is expected; twice that is a failure

# The VIP is plumbed before the call is logged, so a logged "up" means the
# address is in place.
_SCRIPT = """#!/bin/sh
{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null
echo "$(date +%s.%N) {name} $*" >> "{log}"
exit 0
"""

# ping -D prints "[<unix time>] 64 bytes from <ip>: icmp_seq=<n> ..." per reply.
_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from [\d.]+: icmp_seq=(\d+)")
_SENT = re.compile(r"(\d+) packets transmitted")


class DemoError(Exception):
    """A step of the demo did not go as expected; the message says which."""


class Interrupted(BaseException):
    """SIGTERM, handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Progress:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.2f}s] {message}", flush=True)


@dataclass
class Node:
    """One pycarp host of the demo and what its scripts recorded."""

    name: str
    host: Host
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def events(self) -> Path:
        return self.workdir / f"{self.name}.events"

    @property
    def logfile(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def calls(self) -> list[tuple[float, str]]:
        """(wall-clock time, "up" or "down") per script call so far."""
        try:
            lines = self.events.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(float(f[0]), f[1]) for f in (line.split() for line in lines) if len(f) >= 2]

    def is_master(self) -> bool:
        calls = self.calls()
        return bool(calls) and calls[-1][1] == "up"

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace").rstrip()
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        ip = shutil.which("ip") or "/usr/sbin/ip"
        scripts = {}
        for name, verb in (("up", "add"), ("down", "del")):
            path = self.workdir / f"{self.name}-{name}.sh"
            path.write_text(_SCRIPT.format(ip=ip, verb=verb, name=name, log=self.events))
            path.chmod(0o755)
            scripts[name] = path
        argv = [
            sys.executable, "-m", "pycarp",
            f"--interface={self.host.ifname}", f"--srcip={self.host.ip}",
            f"--vhid={VHID}", f"--pass={PASSWORD}", f"--addr={VIP}", "--advbase=1",
            f"--upscript={scripts['up']}", f"--downscript={scripts['down']}",
            "--facility=none",  # log to stderr, captured in the node's log file
            f"--control-socket={self.workdir / (self.name + '.sock')}",
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.logfile, "ab") as out:
            self.proc = self.host.spawn(*argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def crash(self) -> None:
        """A dying host: the daemon gets no chance to clean up, the host goes silent."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.host.link_down()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def probe_results(ping_output: str) -> tuple[int, list[float]]:
    """(echo requests sent, wall-clock time of each reply)."""
    stamps = [float(m[1]) for m in map(_REPLY.match, ping_output.splitlines()) if m]
    sent_match = _SENT.search(ping_output)
    return (int(sent_match[1]) if sent_match else len(stamps)), stamps


def longest_silence_ms(stamps: list[float]) -> float:
    """The longest time between two consecutive replies, in ms."""
    return max((b - a for a, b in itertools.pairwise(stamps)), default=float("inf")) * 1000.0


@contextmanager
def _pinging(client: Host, logfile: Path) -> Iterator[None]:
    """The client pings the VIP every PROBE_INTERVAL (bounded by PROBE_MAX)."""
    ping = shutil.which("ping") or "/usr/bin/ping"
    with open(logfile, "wb") as out:
        prober = client.spawn(
            ping, "-n", "-D", "-O", "-W", "1", "-i", f"{PROBE_INTERVAL:g}",
            "-c", str(PROBE_MAX), VIP, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield
    finally:
        if prober.poll() is None:
            prober.send_signal(signal.SIGINT)  # ping prints its summary and exits
        try:
            prober.wait(timeout=5)
        except subprocess.TimeoutExpired:
            prober.kill()
            prober.wait(timeout=5)


def failover(say: Callable[[str], None], first: Node, second: Node, client: Host) -> None:
    t0 = time.monotonic()
    first.start()
    say(f"started pycarp on {first.name}")
    if not wait_until(first.is_master, ELECTION_TIMEOUT):
        raise DemoError(f"{first.name} did not become MASTER within {ELECTION_TIMEOUT:.0f} s")
    say(f"{first.name} is MASTER after {time.monotonic() - t0:.2f} s (alone on the segment)")
    second.start()
    say(f"started pycarp on {second.name}")
    if not wait_until(lambda: bool(second.calls()), ELECTION_TIMEOUT):
        raise DemoError(f"{second.name} never ran its down script (entering BACKUP)")
    time.sleep(1.5)  # long enough to hear an advertisement
    if second.is_master() or not first.is_master():
        raise DemoError("two masters or none: the nodes do not hear each other")
    say(f"{first.name} is MASTER, {second.name} is BACKUP")

    ping_log = first.workdir / "ping.log"
    with _pinging(client, ping_log):
        say(f"client pings {VIP} every {PROBE_INTERVAL * 1000:.0f} ms")
        time.sleep(1.5)
        say(f"{first.name} dies: pycarp SIGKILLed, its link down")
        crashed_at = time.time()
        first.crash()
        if not wait_until(second.is_master, TAKEOVER_TIMEOUT):
            raise DemoError(f"{second.name} did not take over within {TAKEOVER_TIMEOUT:.0f} s")
        took = (second.calls()[-1][0] - crashed_at) * 1000.0
        say(f"{second.name} is MASTER {took:.0f} ms after the crash (its up script ran)")
        time.sleep(1.5)  # the client should be getting answers again
    sent, stamps = probe_results(ping_log.read_text(errors="replace"))
    say(f"client: {sent} echo requests, {len(stamps)} replies, {sent - len(stamps)} lost")
    if not any(t < crashed_at for t in stamps):
        raise DemoError(f"the client got no reply from {VIP} before the crash")
    if not any(t > crashed_at for t in stamps):
        raise DemoError(f"the client got no reply from {VIP} after the takeover")
    silence = longest_silence_ms(stamps)
    say(f"client outage: {silence:.0f} ms without an answer from {VIP}")
    if silence > OUTAGE_LIMIT_MS:
        raise DemoError(f"an outage of {silence:.0f} ms is above {OUTAGE_LIMIT_MS:.0f} ms")


def run_demo(say: Callable[[str], None], workdir: Path) -> None:
    lab = Lab()
    try:
        nodes = [Node(name, lab.add_host(name, ip), workdir) for name, ip in NODES]
        client = lab.add_host("client", CLIENT_IP)
        say(f"lab up: namespaces {' '.join(lab.namespaces)}")
        say(
            f"VIP {VIP} (vhid {VHID}); {' '.join(f'{n.name} {n.host.ip}' for n in nodes)}; "
            f"client {CLIENT_IP}"
        )
        try:
            failover(say, nodes[0], nodes[1], client)
        except DemoError:
            for node in nodes:
                say(f"--- {node.name}'s pycarp log:\n{node.log()}")
            raise
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lab.close()
        say(f"lab removed: {' '.join(lab.namespaces) or 'no namespace left'}")


def _problem() -> str | None:
    """Why the demo cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "it needs Linux (network namespaces)"
    if os.geteuid() != 0:
        return "it needs root to create network namespaces (try: sudo pycarp demo)"
    for tool, package in (("ip", "iproute2"), ("ping", "iputils-ping")):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"it needs the {tool} command ({package})"
    return None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pycarp demo",
        description="Show a CARP failover between two pycarp nodes in network "
        "namespaces named pycarp-* (needs root and Linux; removes them at the end).",
    )
    parser.parse_args(argv)
    problem = _problem()
    if problem is not None:
        print(f"pycarp demo: {problem}", file=sys.stderr)
        return 2

    say = Progress().say
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, _on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="pycarp-demo-"))
    try:
        run_demo(say, workdir)
    except KeyboardInterrupt:
        say("interrupted; everything was cleaned up")
        return 128 + signal.SIGINT
    except Interrupted as stop:
        say("terminated; everything was cleaned up")
        return 128 + stop.signum
    except (DemoError, LabError) as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), handlers, strict=True):
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        shutil.rmtree(workdir, ignore_errors=True)
    say("demo passed: the backup took over and the client reached the VIP again")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
