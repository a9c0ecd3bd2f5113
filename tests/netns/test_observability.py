"""End-to-end: the metrics endpoint and `pycarp events` follow a failover.

Two TOML daemons, A (advskew 0) and B (advskew 100), each serving metrics on
its lab address (a non-loopback address, so with `metrics_public = true`).
A steps down; B takes over. The scrape is run inside each host's namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pycarp.lab import Host, Lab
from tests.netns.daemons import Daemons, TomlDaemon, VHost

pytestmark = pytest.mark.netns

ELECTION = 7.0
TAKEOVER = 7.0
PORT = 9406  # the default port
SCRAPE = """
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.stdout.write(opener.open(sys.argv[1], timeout=5).read().decode())
"""


def metrics_of(host: Host) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    done = host.run(sys.executable, "-c", SCRAPE, f"http://{host.ip}:{PORT}/metrics", timeout=10)
    samples = {}
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def daemon(lab: Lab, daemons: Daemons, role: str, last: int, advskew: int) -> TomlDaemon:
    host = lab.add_host(role, f"198.51.100.{last}")
    head = f'metrics = "{host.ip}:{PORT}"\nmetrics_public = true'
    return daemons.toml(host, [VHost(1, ("198.51.100.101/24",), advskew=advskew)], head=head)


def follow(host: Host, count: int) -> subprocess.Popen[bytes]:
    """`pycarp events --json` in the host's namespace, bounded in count and time."""
    argv = (sys.executable, "-m", "pycarp", "events", "--json", "--count", str(count))
    return host.spawn(*argv, "--timeout", "30", stdout=subprocess.PIPE)


def events_of(proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=40)
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def test_metrics_and_events_follow_a_failover(lab: Lab, daemons: Daemons) -> None:
    a, b = daemon(lab, daemons, "a", 11, 0), daemon(lab, daemons, "b", 12, 100)
    a.start()
    a.wait_state(1, "MASTER", ELECTION)
    b.start()
    b.wait_host(1, lambda h: h["master"] == a.host.ip, 5.0)
    before = metrics_of(a.host)
    vhost = {"interface": "eth0", "vhid": "1"}
    assert value(before, "pycarp_vhost_state", **vhost, state="MASTER") == 1.0
    on_b = metrics_of(b.host)
    assert value(on_b, "pycarp_vhost_state", **vhost, state="BACKUP") == 1.0
    assert (value(on_b, "pycarp_vhost_adverts_received_total", **vhost) or 0) >= 1
    # One event each: A MASTER -> BACKUP, B BACKUP -> MASTER.
    watch_a, watch_b = follow(a.host, 1), follow(b.host, 1)
    time.sleep(1.0)  # both subscribed before the failover
    assert a.stepdown(1).returncode == 0
    b.wait_state(1, "MASTER", TAKEOVER)
    on_a, on_b = events_of(watch_a), events_of(watch_b)
    assert [(e["type"], e["old"], e["new"], e["reason"]) for e in on_a] == [
        ("transition", "MASTER", "BACKUP", "forced")
    ], on_a
    assert [(e["type"], e["old"], e["new"], e["reason"]) for e in on_b] == [
        ("transition", "BACKUP", "MASTER", "master_down")
    ], on_b
    after_a, after_b = metrics_of(a.host), metrics_of(b.host)
    assert value(after_a, "pycarp_vhost_state", **vhost, state="BACKUP") == 1.0
    assert value(after_b, "pycarp_vhost_state", **vhost, state="MASTER") == 1.0
    forced = value(
        after_a, "pycarp_vhost_transitions_total", **vhost, state="BACKUP", reason="forced"
    )
    assert forced == 1.0
    master_time = value(after_a, "pycarp_vhost_master_seconds_total", **vhost)
    assert master_time is not None and master_time > 1.0
    took = value(
        after_b, "pycarp_vhost_transitions_total", **vhost, state="MASTER", reason="master_down"
    )
    assert took == 1.0
