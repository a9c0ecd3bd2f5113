"""pycarp under cProfile, switched on and off from outside: `python -m bench --profile DIR`.

    python bench/profiled.py OUT.prof SIGNUM [pycarp's arguments]

runs pycarp exactly as `python -m pycarp` would, with a profiler that starts
switched off. The first signal SIGNUM (one pycarp does not use) switches it
on, the second off and writes OUT.prof, so the profile holds the measured window only: no start-up,
no settling, no hand-over at exit. (cProfile's own cost is in the profile's
times and in the CPU the bench measures.)
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    out, signum, args = argv[0], int(argv[1]), argv[2:]
    profiler = cProfile.Profile()
    switches = 0

    def switch(signum: int, frame: FrameType | None) -> None:
        nonlocal switches
        switches += 1
        if switches == 1:
            profiler.enable()  # signal handlers run in the main thread: the event loop's
        elif switches == 2:
            profiler.disable()
            profiler.dump_stats(out)

    signal.signal(signum, switch)
    from pycarp.cli.main import main as pycarp_main

    try:
        return pycarp_main(args)
    finally:
        if switches == 1:  # stopped while profiling: keep what there is
            profiler.disable()
            profiler.dump_stats(out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
