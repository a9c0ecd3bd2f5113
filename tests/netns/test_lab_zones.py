"""`pycarp lab` end to end: the reference zones, failovers, spoofing protection, cleanup."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycarp.config.optionsfile import split_options_text
from pycarp.lab.iproute import NETNS_DIR
from pycarp.lab.zones import ZoneLab, rundir_of

pytestmark = pytest.mark.netns

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"
VIP = "198.51.100.200"
SRCIP = {"zoneA": "198.51.100.201", "zoneB": "198.51.100.202"}


def _args(zone: str) -> list[str]:
    """ucarp.cfg's options for this zone, with built-in plumbing (no scripts), no syslog."""
    text = (SCENARIO / "ucarp.cfg").read_text()
    words = [a.value for a in split_options_text(text, name="ucarp.cfg")]
    kept = [w for w in words if not w.startswith(("--upscript", "--downscript", "--srcip"))]
    return [*kept, f"--srcip={SRCIP[zone]}", "--facility=none"]


def _lab_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pycarp.lab.command", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _until(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.2)


def _lab_namespaces(name: str) -> list[str]:
    return [n for n in os.listdir(NETNS_DIR) if n.startswith(f"pycarp-{name}-")]


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh lab name; whatever the test leaves is torn down."""
    the_name = f"z{secrets.token_hex(3)}"
    yield the_name
    ZoneLab.teardown(the_name)
    assert _lab_namespaces(the_name) == []


def _answered_by(lab: ZoneLab, zone: str) -> bool:
    vips = lab.reach()
    return any(v.vip == VIP and v.reachable and v.answered_by == zone for v in vips)


def _start_pair(lab: ZoneLab) -> None:
    """zoneA first, MASTER; then zoneB, BACKUP."""
    lab.run("zoneA", _args("zoneA"))
    _until(lambda: lab.status()[0].states == {101: "MASTER"}, 8, "zoneA never became MASTER")
    lab.run("zoneB", _args("zoneB"))
    _until(lambda: lab.status()[1].states == {101: "BACKUP"}, 5, "zoneB never became BACKUP")


def test_crash_and_graceful_stop_fail_over(name: str) -> None:
    lab = ZoneLab.up([SCENARIO / "zoneA.json", SCENARIO / "zoneB.json"], name)
    za, zb = lab.zones["zoneA"], lab.zones["zoneB"]
    assert (za.netns, za.ip, zb.ip) == (f"pycarp-{name}-zoneA", SRCIP["zoneA"], SRCIP["zoneB"])
    assert lab.client.ping(za.ip) and lab.client.ping(zb.ip)
    _start_pair(lab)
    assert _answered_by(lab, "zoneA")
    assert lab.client.neigh(VIP) == za.mac

    # Another process sees the same lab.
    other = ZoneLab.load(name)
    assert other.zones["zoneA"].daemon_pid() == za.daemon_pid() is not None

    lab.crash("zoneA")  # SIGKILL + link down: zoneB takes over after 3 x advbase
    assert lab.status()[0].running is False and lab.status()[0].link_down
    _until(lambda: _answered_by(lab, "zoneB"), 8, "the VIP did not move to zoneB after a crash")
    assert lab.client.neigh(VIP) == zb.mac

    lab.restart("zoneA")  # back, but no preemption: stays BACKUP
    _until(lambda: lab.status()[0].states == {101: "BACKUP"}, 5, "restarted zoneA not BACKUP")
    assert _answered_by(lab, "zoneB")

    assert lab.stop("zoneB")  # graceful: zoneA takes over at once
    _until(lambda: _answered_by(lab, "zoneA"), 5, "the VIP did not move back after a stop")
    cli = _lab_cli("status", "--name", name)
    assert cli.returncode == 0, cli.stderr
    assert "zoneB" in cli.stdout and "not running" in cli.stdout
    assert f"{VIP} (vhid 101): reachable, answered by zoneA" in cli.stdout

    # The daemon ran with the zone's hostname, in a UTS namespace of its own.
    pid = lab.zones["zoneA"].daemon_pid()
    assert pid is not None
    uts = subprocess.run(
        ["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True
    )
    assert uts.stdout.strip() == "zoneA"
    assert os.uname().nodename != "zoneA"


def test_without_ip_spoofing_the_vip_is_unreachable_and_status_says_why(
    name: str, tmp_path: Path
) -> None:
    manifests = []
    for zone in ("zoneA", "zoneB"):
        data = json.loads((SCENARIO / f"{zone}.json").read_text())
        del data["nics"][0]["allow_ip_spoofing"]  # vmadm's default: false
        manifests.append(tmp_path / f"{zone}.json")
        manifests[-1].write_text(json.dumps(data))
    lab = ZoneLab.up(manifests, name)
    _start_pair(lab)  # CARP itself works: adverts come from the zones' own addresses
    assert VIP in [a.split("/")[0] for a in lab.zones["zoneA"].addresses()]
    assert not lab.client.ping(VIP)
    [vip] = lab.reach()
    assert not vip.reachable and vip.plumbed_on == ["zoneA"] and vip.masters == ["zoneA"]
    why = f"unreachable: zoneA's net0 drops traffic from {VIP} (allow_ip_spoofing is false)"
    assert vip.problem == why
    cli = _lab_cli("status", "--name", name)
    assert cli.returncode == 0, cli.stderr
    assert why in cli.stdout
    assert lab.client.ping(lab.zones["zoneA"].ip)  # its own address is fine


_HOLDER = """
import sys, time
from pycarp.lab.zones import ZoneLab
lab = ZoneLab.up(sys.argv[2:4], sys.argv[1])
lab.run("zoneA", sys.argv[4:])
lab.client.spawn("sleep", "300")
print("ready", flush=True)
time.sleep(300)
"""


def test_down_after_the_creator_was_killed(name: str) -> None:
    manifests = [str(SCENARIO / "zoneA.json"), str(SCENARIO / "zoneB.json")]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, name, *manifests, *_args("zoneA")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
    finally:
        holder.kill()
        holder.wait(timeout=10)
    lab = ZoneLab.load(name)
    daemon = lab.zones["zoneA"].daemon_pid()
    assert daemon is not None
    assert len(_lab_namespaces(name)) == 4  # two zones, the client, the bridges

    cli = _lab_cli("down", "--name", name)
    assert cli.returncode == 0, cli.stderr
    assert _lab_namespaces(name) == []
    assert not rundir_of(name).exists()
    assert lab.zones["zoneA"].daemon_pid() is None
    assert not Path(f"/proc/{daemon}").exists() or "zoneA" not in Path(
        f"/proc/{daemon}/cmdline"
    ).read_text(errors="replace")
    again = _lab_cli("down", "--name", name)  # idempotent
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_down_without_state_file_goes_by_the_name(name: str) -> None:
    up = _lab_cli("up", str(SCENARIO / "zoneA.json"), str(SCENARIO / "zoneB.json"), "--name", name)
    assert up.returncode == 0, up.stderr
    assert "198.51.100.201" in up.stdout
    (rundir_of(name) / "state.json").unlink()
    status = _lab_cli("status", "--name", name)
    assert status.returncode == 1 and status.stderr.startswith("pycarp lab: error: no lab")
    assert "Traceback" not in status.stderr
    down = _lab_cli("down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert _lab_namespaces(name) == []


def test_refusals_are_one_line(name: str, tmp_path: Path) -> None:
    data = json.loads((SCENARIO / "zoneA.json").read_text())
    data["nics"][0]["ip"] = "192.0.2.201"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    done = _lab_cli("up", str(bad), "--name", name)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "outside the lab's ranges" in done.stderr
    assert _lab_namespaces(name) == []
