"""bench/kinds.py: the timings, the protocols' bounds, each kind's config and state reading."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import kinds
from bench.kinds import TIMINGS, interval, make_group, master_down, vip_for

HOST: Any = SimpleNamespace(ifname="eth0", ip="198.51.100.4", role="a1")


def test_the_bounds_are_each_protocols_master_down() -> None:
    one, hundred, quarter = TIMINGS["1s"], TIMINGS["100ms"], TIMINGS["25ms"]
    assert master_down("pycarp", one) == master_down("ucarp", one) == 3.0
    assert master_down("pycarp", hundred) == pytest.approx(3 * 26 / 256)  # three intervals
    assert master_down("ucarp", hundred) == pytest.approx(26 / 256)  # ucarp's one
    assert master_down("keepalived", one) == pytest.approx(3 + 156 / 256)  # plus the skew
    assert master_down("pycarp-vrrp3", quarter) == pytest.approx(0.09 + 0.03 * 156 / 256)
    assert interval("pycarp", quarter) == pytest.approx(6 / 256)
    assert interval("keepalived", quarter) == 0.03


def test_vips_are_documentation_addresses_and_unique() -> None:
    vips = [vip_for(v) for v in range(1, 256)]
    assert len(set(vips)) == 255 and vips[0] == "203.0.113.1" and vips[-1] == "198.51.100.254"
    with pytest.raises(ValueError):
        vip_for(0)


def test_pycarp_gets_a_vhost_per_vhid_and_vrrp3_the_keepalived_settings(tmp_path: Path) -> None:
    carp = make_group("pycarp", HOST, range(1, 17), TIMINGS["100ms"], tmp_path / "c")
    data = tomllib.loads(carp.toml())  # type: ignore[attr-defined]
    assert data["defaults"]["advbase"] == 0 and data["defaults"]["advskew"] == 26
    assert [v["vhid"] for v in data["vhost"]] == list(range(1, 17))
    assert data["vhost"][0]["addresses"] == ["203.0.113.1/32"]
    vrrp = make_group("pycarp-vrrp3", HOST, [5], TIMINGS["25ms"], tmp_path / "v")
    (vhost,) = tomllib.loads(vrrp.toml())["vhost"]  # type: ignore[attr-defined]
    assert (vhost["protocol"], vhost["priority"], vhost["advert_int"]) == ("vrrp3", 100, 0.03)
    assert vhost["preempt"] is False


def test_states_come_from_each_kinds_own_record(tmp_path: Path) -> None:
    pycarp = make_group("pycarp", HOST, [1, 2], TIMINGS["1s"], tmp_path / "p")
    pycarp.workdir.mkdir()
    pycarp.log_path.write_text(
        "2026-12-01T10:00:00 [WARNING] eth0/vhid 1: INIT -> BACKUP: started\n"
        "2026-12-01T10:00:00 [INFO] eth0: index 2\n"
        "2026-12-01T10:00:03 [WARNING] eth0/vhid 1: BACKUP -> MASTER: no advertisement\n"
        "2026-12-01T10:00:03 [WARNING] eth0/vhid 2: INIT -> BACKUP: started\n"
    )
    assert pycarp.states() == {1: "MASTER", 2: "BACKUP"}
    assert pycarp.problem("MASTER") == "pycarp: 1 not MASTER (vhid 2: BACKUP)"
    ucarp = make_group("ucarp", HOST, [1, 2], TIMINGS["1s"], tmp_path / "u")
    ucarp.workdir.mkdir()
    ucarp.events_path.write_text(  # type: ignore[attr-defined]
        "1.0 down 203.0.113.1\n1.1 down 203.0.113.2\n4.0 up 203.0.113.1\n4.1 up 203.0"
    )
    assert ucarp.transitions() == [(1, "BACKUP"), (2, "BACKUP"), (1, "MASTER")]
    keepalived = make_group("keepalived", HOST, [7], TIMINGS["100ms"], tmp_path / "k")
    keepalived.workdir.mkdir()
    (keepalived.workdir / "notify.log").write_text("1.0 vr7 BACKUP 100\n2.0 vr7 MASTER 100\n")
    assert keepalived.states() == {7: "MASTER"}
    assert keepalived.pids() == [] and not keepalived.alive()


def test_ucarp_scripts_plumb_and_log_with_a_timestamp(tmp_path: Path) -> None:
    group = make_group("ucarp", HOST, [1], TIMINGS["1s"], tmp_path)
    up, down = group.scripts()  # type: ignore[attr-defined]
    assert (up, down) == (
        f"--upscript={tmp_path / 'up.sh'}",
        f"--downscript={tmp_path / 'down.sh'}",
    )
    text = (tmp_path / "up.sh").read_text()
    assert ' addr add "$2/32" dev "$1" ' in text and 'date +%s.%N) up $2" >> ' in text
    assert (tmp_path / "down.sh").stat().st_mode & 0o111


def test_every_kind_has_a_group() -> None:
    assert set(kinds.GROUPS) == set(kinds.KINDS)
    assert kinds.PROFILED.exists()
