"""The illumos adapters; so far only virtual addresses (ifconfig logical interfaces).

Nothing here needs illumos to import, so the command logic is tested on any OS
with a recorded runner.
"""

from __future__ import annotations

from pycarp.platform.illumos.ifconfig import (
    IfconfigAddressManager,
    LogicalInterface,
    Runner,
    parse_ifconfig,
    run_command,
)

__all__ = [
    "IfconfigAddressManager",
    "LogicalInterface",
    "Runner",
    "parse_ifconfig",
    "run_command",
]
