"""A zone lab's state file, lock and objects, and the daemon arguments: no root, no namespaces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab import owners
from pycarp.lab.errors import LabError
from pycarp.lab.zonedaemons import default_args, last_line, with_control_socket
from pycarp.lab.zoneplan import plan
from pycarp.lab.zonestate import (
    STATE_FILE,
    Client,
    check_name,
    clients_of,
    lock_path,
    locked,
    read_state,
    rundir_of,
    write_state,
    zones_of,
    zones_state,
)
from pycarp.vmadm.manifest import parse_manifest


@pytest.fixture
def owner_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OWNER_DIR in a temporary directory: states and locks go there."""
    monkeypatch.setattr(owners, "OWNER_DIR", str(tmp_path))
    return tmp_path


def two_zone_plan(name: str) -> dict[str, Any]:
    specs = [
        parse_manifest({"alias": alias, "nics": [{"nic_tag": "admin", "ips": [ip]}]}, alias)
        for alias, ip in (("zoneA", "198.51.100.201/24"), ("zoneB", "198.51.100.202/24"))
    ]
    return plan(name, specs)


def test_the_state_goes_through_the_file_unchanged(owner_dir: Path) -> None:
    state = two_zone_plan("s1")
    assert rundir_of("s1") == owner_dir / "s1"
    assert state["zones"]["zoneA"]["control_socket"] == str(owner_dir / "s1" / "zoneA.sock")
    rundir_of("s1").mkdir()
    write_state("s1", state)
    assert read_state("s1") == state
    assert not (rundir_of("s1") / "state.tmp").exists()  # replaced atomically
    # A directory holding the state owns the name, as a living process would.
    assert owners.owner_alive("s1")
    (rundir_of("s1") / STATE_FILE).unlink()
    assert not owners.owner_alive("s1")


def test_objects_and_state_dicts_round_trip(owner_dir: Path) -> None:
    state = two_zone_plan("s2")
    zones = zones_of(state)
    assert list(zones) == ["zoneA", "zoneB"]
    zones["zoneA"].daemon = {"pid": 1, "start": 2, "args": ["--vhid=1"]}
    zones["zoneA"].link_down = True
    again = zones_of({"zones": zones_state(zones)})
    assert again == zones
    assert json.loads(json.dumps(zones_state(zones))) == zones_state(zones)
    [client] = clients_of(state).values()
    assert isinstance(client, Client) and client.ifname == "eth0" and client.procs == []
    assert client.ip == "198.51.100.10"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is damaged; pycarp lab down --name s3"),
        ('{"version": 2}', "is not a state file of this pycarp"),
        ("[]", "is not a state file of this pycarp"),
    ],
)
def test_a_bad_state_file_is_one_line_error(
    owner_dir: Path, content: str | None, message: str
) -> None:
    rundir_of("s3").mkdir()
    if content is not None:
        (rundir_of("s3") / STATE_FILE).write_text(content)
    with pytest.raises(LabError, match=message):
        read_state("s3")


def test_the_lock_file_sits_beside_the_run_directory(owner_dir: Path) -> None:
    assert lock_path("s4") == str(owner_dir / "s4.lock")
    with locked("s4"), locked("s5"):  # one lock per lab
        assert os.path.exists(lock_path("s4"))


def test_lab_names_are_checked() -> None:
    check_name("lab_1")
    for bad in ("", "a-b", "x" * 17, "../etc"):
        with pytest.raises(LabError, match="lab name must match"):
            check_name(bad)


def test_zone_daemon_pid_needs_the_same_start_time(owner_dir: Path) -> None:
    zone = zones_of(two_zone_plan("s6"))["zoneA"]
    assert zone.daemon_pid() is None
    zone.daemon = {"pid": os.getpid(), "start": None, "args": []}
    assert zone.daemon_pid() == os.getpid()
    zone.daemon["start"] = -1  # the pid was reused by another process
    assert zone.daemon_pid() is None


def test_the_control_socket_is_added_unless_given() -> None:
    assert with_control_socket(["--vhid=1"], "/s") == ["--vhid=1", "--control-socket=/s"]
    given = ["--control-socket=/mine", "--vhid=1"]
    assert with_control_socket(given, "/s") == given
    assert with_control_socket(["--control-socket", "/x"], "/s") == ["--control-socket", "/x"]


def test_default_args_name_the_zone_config(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"no pycarp arguments and no .*/zoneA\.toml or \.cfg"):
        default_args(tmp_path, "zoneA")
    (tmp_path / "zoneA.cfg").write_text("")
    assert default_args(tmp_path, "zoneA") == [f"--config={tmp_path / 'zoneA.cfg'}"]
    (tmp_path / "zoneA.toml").write_text("")
    assert default_args(tmp_path, "zoneA") == [f"--config={tmp_path / 'zoneA.toml'}"]


def test_last_line_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "z.log"
    assert last_line(str(log)) == "(no log)"
    log.write_text("")
    assert last_line(str(log)) == "(no output)"
    log.write_text("--- start\nerror: no such interface\n\n")
    assert last_line(str(log)) == "error: no such interface"
