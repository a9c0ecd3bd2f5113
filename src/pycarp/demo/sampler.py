"""The demo's zones: each one's pycarp driven through the ZoneLab, and their states sampled."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pycarp.client.instances import query
from pycarp.client.request import ControlError
from pycarp.demo.reference import PASSWORD, VHID, VIP
from pycarp.lab.timeline import Timeline
from pycarp.lab.wait import wait_until
from pycarp.lab.zones import Zone, ZoneLab

SAMPLE_INTERVAL = 0.05  # seconds between two status samples of each zone


class ZoneRunner:
    """One zone of the ZoneLab and its pycarp, as the demo drives it."""

    def __init__(self, lab: ZoneLab, name: str) -> None:
        self.lab = lab
        self.name = name

    @property
    def zone(self) -> Zone:
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
            hosts = query(zone.control_socket, 0.5).hosts
        except (ControlError, OSError, ValueError):
            return "INIT"  # running, not answering yet
        states = [h.get("state") for h in hosts]
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
                self.record(zone.name, zone.state(), time.monotonic())

    def record(self, name: str, state: str, now: float) -> None:
        """One sample: the zone's current state, since when, and the timeline."""
        if state != self.current[name]:
            self.since[name] = now
        self.current[name] = state
        self.timeline.state(name, state, now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_for(self, zone: ZoneRunner, state: str, timeout: float) -> bool:
        return wait_until(lambda: self.current[zone.name] == state, timeout)
