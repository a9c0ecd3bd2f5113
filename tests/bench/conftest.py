"""The benches are scripts in bench/ that import each other as top-level modules (as
`python bench/scale.py` runs them): here they are importable the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = str(Path(__file__).resolve().parents[2] / "bench")
if BENCH not in sys.path:
    sys.path.append(BENCH)
