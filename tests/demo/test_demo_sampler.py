"""The demo's zones: pycarp's arguments, its state from the control socket, and the sampler."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pycarp.demo.sampler import SAMPLE_INTERVAL, Sampler, ZoneRunner
from pycarp.lab.timeline import Timeline
from pycarp.lab.wait import wait_until


def fake_zone(tmp_path: Path, pid: int | None) -> Any:
    nic = SimpleNamespace(name="net0")
    return SimpleNamespace(
        nic=nic,
        ip="198.51.100.201",
        daemon_pid=lambda: pid,
        control_socket=str(tmp_path / "zoneA.sock"),
        log_file=str(tmp_path / "zoneA.log"),
    )


def runner(zone: Any) -> ZoneRunner:
    return ZoneRunner(SimpleNamespace(zones={"zoneA": zone}), "zoneA")


@pytest.fixture
def answering(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """A control socket answering each status request with {"ok": true, "hosts": hosts}."""
    hosts: list[dict[str, Any]] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "zoneA.sock"))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.makefile().readline()
                conn.sendall(json.dumps({"ok": True, "hosts": hosts}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield hosts
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=5)


def test_args_are_ucarp_cfg_with_built_in_plumbing(tmp_path: Path) -> None:
    assert runner(fake_zone(tmp_path, None)).args() == [
        "--interface=net0",
        "--srcip=198.51.100.201",
        "--vhid=101",
        "--pass=changeme",
        "--addr=198.51.100.200",
        "-z",
        "--facility=none",
    ]


def test_state_down_without_a_daemon_init_while_it_does_not_answer(tmp_path: Path) -> None:
    assert runner(fake_zone(tmp_path, None)).state() == "down"
    assert runner(fake_zone(tmp_path, 4242)).state() == "INIT"  # no socket yet


@pytest.mark.parametrize(
    ("hosts", "state"),
    [
        ([{"vhid": 101, "state": "MASTER"}], "MASTER"),
        ([{"vhid": 101, "state": "BACKUP"}], "BACKUP"),
        ([{"vhid": 101, "state": "INIT"}], "INIT"),
        ([], "INIT"),
    ],
)
def test_state_from_the_status(
    tmp_path: Path, answering: list[dict[str, Any]], hosts: list[dict[str, Any]], state: str
) -> None:
    answering[:] = hosts
    assert runner(fake_zone(tmp_path, 4242)).state() == state


def test_log_is_empty_before_the_zone_ran(tmp_path: Path) -> None:
    zone = fake_zone(tmp_path, None)
    assert runner(zone).log() == ""
    Path(zone.log_file).write_text("pycarp: started\n\n")
    assert runner(zone).log() == "pycarp: started"


def test_sampler_records_when_each_state_began(tmp_path: Path) -> None:
    tl = Timeline(clock=lambda: 0.0, t0=0.0)
    sampler = Sampler(tl, [runner(fake_zone(tmp_path, None))])
    assert sampler.current == {"zoneA": "down"} and sampler.since == {"zoneA": 0.0}
    for t, state in ((1.0, "INIT"), (1.5, "INIT"), (4.0, "MASTER"), (4.05, "MASTER")):
        sampler.record("zoneA", state, t)
    assert sampler.current == {"zoneA": "MASTER"} and sampler.since == {"zoneA": 4.0}
    assert [(s.t, s.state) for s in tl.states] == [
        (1.0, "INIT"),
        (1.5, "INIT"),
        (4.0, "MASTER"),
        (4.05, "MASTER"),
    ]
    assert sampler.wait_for(sampler.zones[0], "MASTER", 0.0)
    assert not sampler.wait_for(sampler.zones[0], "BACKUP", 0.05)


def test_sampler_thread_samples_until_stopped(tmp_path: Path) -> None:
    tl = Timeline()
    sampler = Sampler(tl, [runner(fake_zone(tmp_path, None))])
    sampler.start()
    assert wait_until(lambda: len(tl.states) >= 2, 2.0)
    sampler.stop()
    count = len(tl.states)
    time.sleep(3 * SAMPLE_INTERVAL)
    assert len(tl.states) == count
    assert {s.state for s in tl.states} == {"down"}
