"""Network-namespace lab for end-to-end tests and demos (needs root).

Not used by the daemon itself; see netns.py.
"""

from pycarp.lab.netns import (
    ALLOWED_NETWORKS,
    PREFIX,
    Host,
    Lab,
    LabError,
    cleanup_stale,
    close_all_labs,
    netns_entered,
    stop_processes,
)

__all__ = [
    "ALLOWED_NETWORKS",
    "PREFIX",
    "Host",
    "Lab",
    "LabError",
    "cleanup_stale",
    "close_all_labs",
    "netns_entered",
    "stop_processes",
]
