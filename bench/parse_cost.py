"""The time to read a hostile config file grows with its size, not faster (pycarp only).

Each shape of file (a long options line, many options lines, a long TOML
file, deeply nested TOML) is checked as ``pycarp check-config`` does, in this
process, at growing sizes; the time per MB should stay about the same. Files
above the limits are refused quickly too. The "parse" section of
`python -m bench`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pycarp.config.load import load_file
from pycarp.core.errors import ConfigError

KB = 1024
SIZES = (64 * KB, 256 * KB, 1000 * KB, 10 * 1024 * KB)


def _long_line(size: int) -> bytes:
    return b"--xparam=" + b"x" * size + b"\n"


def _many_lines(size: int) -> bytes:
    return b"-k 1 -b 2\n" * (size // 10)


def _toml(size: int) -> bytes:
    return b"# comment\n" * (size // 10) + b"[[vhost]]\nvhid = 1\n"


def _nested(size: int) -> bytes:
    depth = size // 2
    return b"x = " + b"[" * depth + b"]" * depth + b"\n"


SHAPES: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "options, one line": ("u.cfg", _long_line),
    "options, many lines": ("u.cfg", _many_lines),
    "TOML, long": ("c.toml", _toml),
    "TOML, nested": ("c.toml", _nested),
}


def cost(path: Path) -> tuple[float, str]:
    """Seconds to check ``path``, and the start of the error (or "ok")."""
    start = time.perf_counter()
    try:
        load_file(str(path), check_machine=False)
        outcome = "ok"
    except ConfigError as exc:
        outcome = str(exc).splitlines()[0].split(": ", 1)[-1][:60]
    return time.perf_counter() - start, outcome


def run(sizes: Sequence[int] = SIZES) -> list[dict[str, Any]]:
    """A row per shape and size: seconds, seconds per MB, and the outcome."""
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for shape, (name, make) in SHAPES.items():
            for size in sizes:
                path = Path(directory) / name
                path.write_bytes(make(size))
                seconds, outcome = cost(path)
                rows.append({"shape": shape, "kib": size // KB, "seconds": round(seconds, 5),
                             "s_per_mib": round(seconds / (size / (1024 * KB)), 5),
                             "outcome": outcome})  # fmt: skip
    return rows
