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
import importlib.util
import os
import signal
import sys
from pathlib import Path

from pycarp.demo.runner import run_demo
from pycarp.demo.scenario import DemoError
from pycarp.lab import LabError
from pycarp.lab.nsexec import find_program
from pycarp.lab.wait import Interrupted, Progress, raise_interrupted, signals_kept, signals_set
from pycarp.vmadm.manifest import ManifestError


def problem() -> str | None:
    """Why the demo cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "it needs Linux (network namespaces)"
    if os.geteuid() != 0:
        return "it needs root to create network namespaces (try: sudo pycarp demo)"
    if find_program("ip") is None:
        return "it needs the ip command (iproute2)"
    return None


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
    why = problem()
    if why is None and args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        why = "--plot needs matplotlib (pip install 'pycarp[lab]')"
    if why is not None:
        print(f"pycarp demo: {why}", file=sys.stderr)
        return 2

    say = Progress().say
    # run_demo ignores both signals while it cleans up: the old handlers come back here.
    with signals_kept(signal.SIGINT), signals_set(raise_interrupted, signal.SIGTERM):
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
    say("demo passed: takeover after a crash, no preemption, graceful hand-over")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
