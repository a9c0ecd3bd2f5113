"""One run of the demo: the zone lab up, the scenario, everything down again whatever happens."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable
from pathlib import Path

from pycarp.demo.reference import EMBEDDED_MANIFESTS, VHID, VIP
from pycarp.demo.sampler import Sampler, ZoneRunner
from pycarp.demo.scenario import PROBE_INTERVAL, DemoError, Results, scenario
from pycarp.lab.probe import Prober
from pycarp.lab.timeline import Timeline, plot
from pycarp.lab.zones import ZoneLab
from pycarp.vmadm.manifest import parse_manifest


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
        client = Prober(tl, lab.client, {z.zone.mac: z.name for z in zones}, VIP, PROBE_INTERVAL)
        try:
            scenario(say, tl, zones, client, sampler, results)
        except DemoError:
            for zone in zones:
                say(f"--- {zone.name}'s pycarp log:\n{zone.log()}")
            raise
        say(results.summary())
    finally:
        # A second Ctrl-C must not cut the cleanup short (command.main restores the handlers).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        if client is not None:
            client.stop()
        if sampler is not None:
            sampler.stop()
        tl.finish()
        # By name when up() had not returned yet (interrupted there): same cleanup.
        removed = lab.down() if lab is not None else ZoneLab.teardown(name)
        say(f"lab down: removed {' '.join(removed) or 'nothing'}")
        if plot_path is not None and tl.probes:
            plot(tl, plot_path, outages=results.measured() or None)
            say(f"timeline plotted to {plot_path}")
