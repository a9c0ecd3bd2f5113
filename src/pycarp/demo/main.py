"""`pycarp demo [--plot FILE.png]`: the reference scenario, end to end.

Two zones from the reference vmadm manifests (zoneA, zoneB: 198.51.100.201
and .202) share 198.51.100.200 (vhid 101, password changeme, -z, as in
ucarp.cfg) with pycarp's built-in plumbing, on a private bridge in network
namespaces named pycarp-*. A client probes the VIP every 20 ms and notes which
zone answered (the source MAC of each echo reply). The demo crashes the master
(the client waits about 3 s), brings it back (it stays BACKUP), then stops the
new master gracefully (SIGTERM: the backup takes over at once) and reports
both outages. Everything is removed at the end whatever happens (failure,
Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import os
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pycarp.client.commands import ControlError, request
from pycarp.lab.netns import LabError
from pycarp.lab.timeline import Outage, Timeline, plot
from pycarp.lab.zones import Client as LabClient
from pycarp.lab.zones import Zone as LabZone
from pycarp.lab.zones import ZoneLab
from pycarp.vmadm.manifest import ManifestError, parse_manifest

VIP = "198.51.100.200"
VHID = 101
PASSWORD = "changeme"
CLIENT_IP = "198.51.100.10"

PROBE_INTERVAL = 0.02  # seconds between the client's echo requests
PROBE_TIMEOUT = 1.0  # an echo request unanswered after this is lost
PROBE_MAX = 3000  # 60 s of probes at most, whatever happens
SAMPLE_INTERVAL = 0.05  # seconds between two status samples of each zone
ELECTION_TIMEOUT = 10.0  # a lone node needs about 3 s (3 x advbase)
TAKEOVER_TIMEOUT = 10.0
OUTAGE_LIMIT_MS = 6000.0  # about 3 s is expected after a crash; twice that fails
GRACEFUL_LIMIT_MS = 1000.0  # a hand-over costs the client a probe or two

# The reference scenario's vmadm manifests (examples/smartos/zoneA.json and
# zoneB.json), built in so that an installed pycarp needs no files;
# tests/test_demo_manifests.py keeps the two copies equal.
EMBEDDED_MANIFESTS: dict[str, dict[str, object]] = {
    alias: {
        "alias": alias,
        "hostname": alias,
        "brand": "joyent",
        "dns_domain": "example.com",
        "dataset_uuid": "d34c301e-10c3-11e4-9b79-5f67ca448df0",
        "resolvers": ["198.51.100.9", "198.51.100.10"],
        "max_physical_memory": 4096,
        "nics": [
            {
                "nic_tag": "admin",
                "ip": ip,
                "netmask": "255.255.255.0",
                "gateway": "198.51.100.1",
                "primary": True,
                "allow_ip_spoofing": True,
                "allow_mac_spoofing": True,
            }
        ],
    }
    for alias, ip in (("zoneA", "198.51.100.201"), ("zoneB", "198.51.100.202"))
}

# ping -D prints "[<unix time>] 64 bytes from <ip>: icmp_seq=<n> ..." per reply
# (kept for bench/handover.py, which parses ping output with these helpers).
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


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def probe_results(ping_output: str) -> tuple[int, list[float]]:
    """(echo requests sent, wall-clock time of each reply) from `ping -D` output."""
    stamps = [float(m[1]) for m in map(_REPLY.match, ping_output.splitlines()) if m]
    sent_match = _SENT.search(ping_output)
    return (int(sent_match[1]) if sent_match else len(stamps)), stamps


def longest_silence_ms(stamps: list[float]) -> float:
    """The longest time between two consecutive replies, in ms."""
    return max((b - a for a, b in itertools.pairwise(stamps)), default=float("inf")) * 1000.0


# --- the client's prober (runs inside the client's namespace) -----------------------

_ETH_P_IP = 0x0800


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def prober_main(argv: Sequence[str]) -> int:
    """`<ifname> <vip> <interval> <count>`: echo requests to vip; one line per
    probe once settled, "<seq> <monotonic send time> <source MAC of the reply
    or ->". The reply's Ethernet source says which zone answered, exactly,
    which no ARP table sampling can."""
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
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            payload = struct.pack("!d", now)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq)
            pending[seq] = now
            with contextlib.suppress(OSError):  # no route yet: it counts as lost
                send.sendto(packet + payload, (vip, 0))
            seq += 1
            next_send += interval
        for lost in [s for s, t in pending.items() if now - t > PROBE_TIMEOUT]:
            out.write(f"{lost} {pending.pop(lost):.6f} -\n")
        wait = max(0.0, min(next_send - time.monotonic(), 0.05)) if seq < count else 0.05
        readable, _, _ = select.select([recv], [], [], wait)
        if readable:
            frame = recv.recv(2048)
            ihl = (frame[14] & 0x0F) * 4 if len(frame) > 14 else 0
            icmp = frame[14 + ihl : 14 + ihl + 8]
            if len(icmp) == 8 and frame[23] == 1 and frame[26:30] == target:
                kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp)
                if kind == 0 and rid == ident and rseq in pending:
                    mac = frame[6:12].hex(":")
                    out.write(f"{rseq} {pending.pop(rseq):.6f} {mac}\n")
        out.flush()
    return 0


@dataclass
class Prober:
    """The client's prober, its output into the timeline as it comes."""

    timeline: Timeline
    host: LabClient
    zone_of_mac: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    last: dict[str, float] = field(default_factory=dict)  # zone -> last answer time

    def start(self, count: int) -> None:
        code = (
            "import sys; from pycarp.demo.main import prober_main; "
            "sys.exit(prober_main(sys.argv[1:]))"
        )
        self.proc = self.host.spawn(
            sys.executable, "-c", code, self.host.ifname, VIP, f"{PROBE_INTERVAL:g}", str(count),
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            fields = line.decode(errors="replace").split()
            if len(fields) != 3:
                continue
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
        self.proc.terminate()  # it flushes every line: nothing settled is lost
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.thread is not None:
            self.thread.join(timeout=5)


# --- the zones ---------------------------------------------------------------------


class ZoneRunner:
    """One zone of the ZoneLab and its pycarp, as the demo drives it."""

    def __init__(self, lab: ZoneLab, name: str) -> None:
        self.lab = lab
        self.name = name

    @property
    def zone(self) -> LabZone:
        return self.lab.zones[self.name]  # the lab re-reads its zones on each change

    def log(self) -> str:
        try:
            return Path(self.zone.log_file).read_text(errors="replace").rstrip()
        except FileNotFoundError:
            return ""

    def args(self) -> list[str]:
        """ucarp.cfg's options; no scripts: pycarp plumbs the VIP itself."""
        return [
            f"--interface={self.zone.nic.name}", f"--srcip={self.zone.ip}",
            f"--vhid={VHID}", f"--pass={PASSWORD}", f"--addr={VIP}", "-z",
            "--facility=none",  # log to stderr, into the zone's log file
        ]  # fmt: skip

    def start(self) -> None:
        self.lab.run(self.name, self.args())

    def state(self) -> str:
        """MASTER, BACKUP or INIT from the daemon's control socket; down if none runs."""
        zone = self.zone
        if zone.daemon_pid() is None:
            return "down"
        try:
            hosts = request(zone.control_socket, {"command": "status"}, timeout=0.5).get("hosts")
        except (ControlError, OSError, ValueError):
            return "INIT"  # running, not answering yet
        states = [h.get("state") for h in hosts or [] if isinstance(h, dict)]
        return str(states[0]) if states and states[0] in ("MASTER", "BACKUP") else "INIT"

    def crash(self) -> None:
        """A dying zone: SIGKILL, link down; the daemon gets no chance to clean up."""
        self.lab.crash(self.name)

    def restart(self) -> None:
        self.lab.restart(self.name)

    def graceful_stop(self) -> bool:
        return self.lab.stop(self.name, timeout=10.0)


class Sampler:
    """Every zone's state into the timeline, every SAMPLE_INTERVAL, in a thread."""

    def __init__(self, timeline: Timeline, zones: Sequence[ZoneRunner]) -> None:
        self.timeline = timeline
        self.zones = zones
        self.current: dict[str, str] = {z.name: "down" for z in zones}
        self.since: dict[str, float] = {z.name: timeline.t0 for z in zones}  # of current
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            for zone in self.zones:
                state = zone.state()
                now = time.monotonic()
                if state != self.current[zone.name]:
                    self.since[zone.name] = now
                self.current[zone.name] = state
                self.timeline.state(zone.name, state, now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_for(self, zone: ZoneRunner, state: str, timeout: float) -> bool:
        return wait_until(lambda: self.current[zone.name] == state, timeout)


# --- the run -----------------------------------------------------------------------


@dataclass
class Results:
    crash: Outage | None = None
    graceful: Outage | None = None


def _outage(say: Callable[[str], None], tl: Timeline, what: str, start: float) -> Outage:
    outage = tl.longest_silence(start, time.monotonic())
    if outage is None:
        raise DemoError(f"the client got no answer around the {what}")
    say(f"client outage during the {what}: {outage.ms:.0f} ms ({outage.lost} probes lost)")
    return outage


def scenario(
    say: Callable[[str], None],
    tl: Timeline,
    zones: Sequence[ZoneRunner],
    client: Prober,
    sampler: Sampler,
    results: Results,
) -> None:
    """The phases; results is filled as they go (a failed run still plots)."""
    first, second = zones
    t0 = time.monotonic()
    first.start()
    say(f"started pycarp in {first.name}: pycarp {' '.join(first.args())}")
    if not sampler.wait_for(first, "MASTER", ELECTION_TIMEOUT):
        raise DemoError(f"{first.name} did not become MASTER within {ELECTION_TIMEOUT:.0f} s")
    say(f"{first.name} is MASTER after {time.monotonic() - t0:.2f} s (alone on the segment)")
    second.start()
    say(f"started pycarp in {second.name}")
    if not sampler.wait_for(second, "BACKUP", ELECTION_TIMEOUT):
        raise DemoError(f"{second.name} did not become BACKUP")
    time.sleep(1.5)  # long enough to hear an advertisement
    if sampler.current[first.name] != "MASTER" or sampler.current[second.name] != "BACKUP":
        raise DemoError(f"not one master: {sampler.current}")
    say(f"{first.name} is MASTER, {second.name} is BACKUP")

    client.start(PROBE_MAX)
    say(f"client {client.host.ip} probes {VIP} every {PROBE_INTERVAL * 1000:.0f} ms")
    started = time.monotonic()
    if not wait_until(lambda: client.answered_by(first.name, started), 3.0):
        raise DemoError(f"{first.name} does not answer the client on {VIP}")
    time.sleep(1.5)
    say(f"client: {VIP} answered by {first.name} (the source MAC of the replies)")

    say(f"crash {first.name}: pycarp SIGKILLed, its link down")
    crashed = tl.event(f"crash {first.name}")
    first.crash()
    if not sampler.wait_for(second, "MASTER", TAKEOVER_TIMEOUT):
        raise DemoError(f"{second.name} did not take over within {TAKEOVER_TIMEOUT:.0f} s")
    took = (sampler.since[second.name] - crashed) * 1000
    say(f"{second.name} is MASTER {took:.0f} ms after the crash")
    if not wait_until(lambda: client.answered_by(second.name, crashed), 3.0):
        raise DemoError(f"the client gets no answer from {second.name}")
    time.sleep(PROBE_TIMEOUT + 0.2)  # let the probes around the crash settle
    results.crash = _outage(say, tl, "crash", crashed)
    if results.crash.ms > OUTAGE_LIMIT_MS:
        raise DemoError(f"an outage of {results.crash.ms:.0f} ms is above {OUTAGE_LIMIT_MS:.0f}")

    tl.event(f"restart {first.name}")
    first.restart()
    say(f"restarted {first.name} (link up, pycarp started again)")
    if not sampler.wait_for(first, "BACKUP", ELECTION_TIMEOUT):
        raise DemoError(f"{first.name} did not come back as BACKUP")
    time.sleep(2.0)  # no preemption: it must stay BACKUP
    if sampler.current[first.name] != "BACKUP" or sampler.current[second.name] != "MASTER":
        raise DemoError(f"{first.name} did not stay BACKUP: {sampler.current}")
    say(f"{first.name} is BACKUP, {second.name} stays MASTER (no preemption)")

    say(f"graceful stop of {second.name}: SIGTERM to its pycarp")
    stopped = tl.event(f"graceful stop {second.name}")
    if not second.graceful_stop():
        raise DemoError(f"{second.name}'s pycarp did not exit after SIGTERM")
    if not sampler.wait_for(first, "MASTER", TAKEOVER_TIMEOUT):
        raise DemoError(f"{first.name} did not take over from the stopping {second.name}")
    took = (sampler.since[first.name] - stopped) * 1000
    say(f"{first.name} is MASTER {took:.0f} ms after the SIGTERM; {second.name}'s pycarp exited")
    if not wait_until(lambda: client.answered_by(first.name, stopped), 3.0):
        raise DemoError(f"the client gets no answer from {first.name}")
    time.sleep(PROBE_TIMEOUT + 0.2)
    results.graceful = _outage(say, tl, "graceful stop", stopped)
    if results.graceful.ms > GRACEFUL_LIMIT_MS:
        raise DemoError(
            f"the graceful stop cost {results.graceful.ms:.0f} ms, above {GRACEFUL_LIMIT_MS:.0f}"
        )


def lab_up(name: str) -> ZoneLab:
    """The zone lab from the built-in reference manifests."""
    manifests = [
        parse_manifest(manifest, f"built-in {alias}.json")
        for alias, manifest in EMBEDDED_MANIFESTS.items()
    ]
    return ZoneLab.up(manifests, name=name)


def run_demo(say: Callable[[str], None], plot_path: Path | None) -> None:
    tl = Timeline()
    lab: ZoneLab | None = None
    sampler: Sampler | None = None
    client: Prober | None = None
    results = Results()
    name = f"demo{secrets.token_hex(3)}"  # several demos may run at once
    try:
        lab = lab_up(name)
        zones = [ZoneRunner(lab, alias) for alias in lab.zones]
        spaces = [lab.bridge_netns, *(z.netns for z in lab.zones.values()), lab.client.netns]
        say("zones from the built-in reference manifests (examples/smartos in the repository)")
        say(f"lab up: namespaces {' '.join(spaces)}")
        say(
            f"VIP {VIP} (vhid {VHID}); "
            f"{' '.join(f'{z.name} {z.zone.ip} ({z.zone.mac})' for z in zones)}; "
            f"client {lab.client.ip}"
        )
        sampler = Sampler(tl, zones)
        sampler.start()
        client = Prober(tl, lab.client, {z.zone.mac: z.name for z in zones})
        try:
            scenario(say, tl, zones, client, sampler, results)
        except DemoError:
            for zone in zones:
                say(f"--- {zone.name}'s pycarp log:\n{zone.log()}")
            raise
        crash_ms = results.crash.ms if results.crash else float("nan")
        graceful_ms = results.graceful.ms if results.graceful else float("nan")
        say(f"summary: crash outage {crash_ms:.0f} ms, graceful stop outage {graceful_ms:.0f} ms")
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if client is not None:
            client.stop()
        if sampler is not None:
            sampler.stop()
        tl.finish()
        # By name when up() had not returned yet (interrupted there): same cleanup.
        removed = lab.down() if lab is not None else ZoneLab.teardown(name)
        say(f"lab down: removed {' '.join(removed) or 'nothing'}")
        if plot_path is not None and tl.probes:
            measured = [o for o in (results.crash, results.graceful) if o is not None]
            plot(tl, plot_path, outages=measured or None)
            say(f"timeline plotted to {plot_path}")


def _problem() -> str | None:
    """Why the demo cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "it needs Linux (network namespaces)"
    if os.geteuid() != 0:
        return "it needs root to create network namespaces (try: sudo pycarp demo)"
    if shutil.which("ip") is None and not Path("/usr/sbin/ip").exists():
        return "it needs the ip command (iproute2)"
    return None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pycarp demo",
        description="The reference scenario in network namespaces named pycarp-*: "
        "two zones share a VIP; crash of the master, its return, graceful stop of "
        "the new master; the client's outages (needs root and Linux; removes "
        "everything at the end).",
    )
    parser.add_argument("--plot", metavar="FILE.png", type=Path, help="draw the timeline")
    args = parser.parse_args(argv)
    problem = _problem()
    if problem is None and args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        problem = "--plot needs matplotlib (pip install 'pycarp[lab]')"
    if problem is not None:
        print(f"pycarp demo: {problem}", file=sys.stderr)
        return 2

    say = Progress().say
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run_demo(say, args.plot)
    except KeyboardInterrupt:
        say("interrupted; everything was cleaned up")
        return 128 + signal.SIGINT
    except Interrupted as stop:
        say("terminated; everything was cleaned up")
        return 128 + stop.signum
    except (DemoError, LabError, ManifestError, OSError) as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), handlers, strict=True):
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    say("demo passed: takeover after a crash, no preemption, graceful hand-over")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
