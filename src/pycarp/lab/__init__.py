"""Network-namespace lab for end-to-end tests and demos (needs root).

Not used by the daemon itself. The layers, lowest first: iproute (namespaces,
links, addresses through pyroute2), processes (pids, signals), owners (tags,
stale cleanup), netns (Lab and Host); the zone lab (zones and its zone*
modules, nft) builds on those.
"""

from pycarp.lab.errors import LabError
from pycarp.lab.iproute import netns_entered
from pycarp.lab.names import ALLOWED_NETWORKS, PREFIX
from pycarp.lab.netns import Host, Lab
from pycarp.lab.owners import cleanup_stale, close_all_labs
from pycarp.lab.processes import stop_processes

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
