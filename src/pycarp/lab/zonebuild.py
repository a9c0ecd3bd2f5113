"""A planned zone lab made real, and removed again (bridges, zones, clients, rules).

Layout, for a lab "L": the bridges (one per nic_tag) live in the namespace
"pycarp-L-br"; each zone is the namespace "pycarp-L-<alias>" with one veth
per NIC, each client "pycarp-L-client-<tag>". Every veth is made inside its
namespace with the peer put straight into the bridge namespace: nothing of
the lab ever appears in the root namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from pycarp.lab import iproute
from pycarp.lab.errors import LabError
from pycarp.lab.names import PREFIX
from pycarp.lab.nft import load_rules, nft_rules
from pycarp.lab.processes import kill_ns_processes, signal_process, wait_gone
from pycarp.lab.zoneplan import bridge_netns_of, routable_gateway
from pycarp.lab.zonestate import (
    Client,
    Zone,
    check_name,
    lock_path,
    locked,
    read_state,
    rundir_of,
)

__all__ = ["KILL_WAIT", "build", "lab_namespaces", "plug", "teardown"]

KILL_WAIT = 5.0  # seconds teardown waits for killed processes to go


def lab_namespaces(name: str) -> list[str]:
    """The namespaces that exist with lab name's prefix."""
    return [n for n in iproute.list_netns() if n.startswith(f"{PREFIX}{name}-")]


def plug(netns: str, ifname: str, mac: str, port: str, bridge_netns: str, bridge: str) -> None:
    """netns's ifname, a veth whose peer `port` is a port of bridge (netns made if need be)."""
    if not iproute.netns_exists(netns):
        iproute.create_netns(netns)
    iproute.plug(netns, ifname, port, bridge_netns, bridge, mac)


def build(
    bridge_netns: str,
    bridges: Mapping[str, str],
    clients: Mapping[str, Client],
    zones: Mapping[str, Zone],
) -> None:
    """Every namespace, bridge, veth, address, route and rule of the plan."""
    iproute.create_netns(bridge_netns)
    for tag, bridge in bridges.items():
        iproute.add_bridge(bridge_netns, bridge)
        client = clients[tag]
        plug(client.netns, client.ifname, client.mac, client.port, bridge_netns, bridge)
        iproute.add_address(client.netns, client.ifname, client.ip, client.prefix)
    for zone in zones.values():
        for nic in zone.nics:
            plug(zone.netns, nic.name, nic.mac, nic.port, bridge_netns, nic.bridge)
            iproute.add_address(zone.netns, nic.name, nic.ip, nic.prefix)
        # SmartOS routes by the primary NIC's gateway; never one off the lab's ranges.
        if zone.nic.gateway is not None and routable_gateway(zone.nic):
            iproute.add_default_route(zone.netns, zone.nic.gateway)
    load_rules(bridge_netns, nft_rules(zones.values()))


def teardown(name: str, state: dict[str, Any] | None = None) -> list[str]:
    """Remove a lab from its state file if any, and by its name prefix in any case.

    Kills every daemon it records and every process in its namespaces, deletes
    the namespaces (bridges last) and the run directory. Returns the
    namespaces removed. Works after the creator was killed.
    """
    check_name(name)
    with locked(name):
        if state is None:
            with contextlib.suppress(LabError):  # missing or damaged: go by the prefix
                state = read_state(name)
        zones = (state or {}).get("zones", {}).values()
        names = set(lab_namespaces(name)) | {zone["netns"] for zone in zones}
        daemons = [(d["pid"], d["start"]) for zone in zones if (d := zone.get("daemon"))]
        for pid, start in daemons:  # also a daemon that left its namespace somehow
            signal_process(pid, start, signal.SIGKILL)
        kill_ns_processes({i for i in map(iproute.netns_id, names) if i is not None}, KILL_WAIT)
        for pid, start in daemons:
            wait_gone(pid, start, timeout=2.0)
        bridge = bridge_netns_of(name)
        removed = [n for n in sorted(names, key=lambda n: n == bridge) if iproute.delete_netns(n)]
        shutil.rmtree(rundir_of(name), ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(lock_path(name))
    return removed
