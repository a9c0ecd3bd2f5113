"""bench/scalecalc.py's pure parts (scalecalc.py): /proc parsing, CPU arithmetic, configs, states,
targets."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import pytest
import scalecalc
import scalerig

from pycarp.lab import ALLOWED_NETWORKS


def test_vip_for_stays_in_the_documentation_ranges_and_never_repeats() -> None:
    vips = [scalecalc.vip_for(v) for v in range(1, 256)]
    assert len(set(vips)) == 255
    hosts = set(scalerig.HOST_IP.values())
    for vip in vips:
        address = ipaddress.IPv4Address(vip)
        assert any(address in net for net in ALLOWED_NETWORKS)
        assert vip not in hosts
        assert not vip.endswith((".0", ".255"))
    assert scalecalc.vip_for(1) == "203.0.113.1"
    with pytest.raises(ValueError):
        scalecalc.vip_for(256)


def test_parse_schedstat_takes_the_first_field() -> None:
    assert scalecalc.parse_schedstat("123456789 4567 89\n") == 123456789
    with pytest.raises(ValueError):
        scalecalc.parse_schedstat("")


STATUS = """Name:\tpython3
Pid:\t4242
VmPeak:\t   50000 kB
VmRSS:\t   36120 kB
RssAnon:\t   20000 kB
Threads:\t1
"""


def test_parse_status_kib_reads_vmrss_not_its_neighbours() -> None:
    assert scalecalc.parse_status_kib(STATUS) == 36120
    assert scalecalc.parse_status_kib("Rss:  10 kB\nPss:  7 kB\n", "Pss") == 7
    with pytest.raises(ValueError):
        scalecalc.parse_status_kib("Name:\tucarp\n")


def test_cpu_delta_counts_new_threads_and_never_goes_negative() -> None:
    start = {10: 1_000, 11: 5_000, 12: 9_000}
    end = {10: 4_000, 11: 5_000, 13: 2_500}  # 12 ended, 13 was born
    assert scalecalc.cpu_delta_ns(start, end) == 3_000 + 0 + 2_500
    assert scalecalc.cpu_delta_ns({1: 10}, {1: 5}) == 0  # a tid reused by a new thread


def test_per_reference_scales_to_30_s() -> None:
    assert scalecalc.per_reference(15_000_000, 15.0) == pytest.approx(30.0)
    assert scalecalc.per_reference(3_000_000, 30.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        scalecalc.per_reference(1, 0.0)


def test_pycarp_toml_is_valid_with_one_vhost_per_vhid(tmp_path: Path) -> None:
    text = scalecalc.pycarp_toml(
        interface="eth0",
        srcip="198.51.100.2",
        vhids=range(1, 256),
        advskew=100,
        control_socket=tmp_path / "c.sock",
    )
    data = tomllib.loads(text)
    assert data["control_socket"] == str(tmp_path / "c.sock")
    assert data["defaults"]["advskew"] == 100
    assert "upscript" not in data["defaults"]  # built-in plumbing, default timers
    assert [v["vhid"] for v in data["vhost"]] == list(range(1, 256))
    assert data["vhost"][254]["addresses"] == [scalecalc.vip_for(255)]


def test_pycarp_states_flags_a_backup_that_has_not_heard_the_master() -> None:
    hosts = [
        {"vhid": 1, "state": "MASTER", "master": "198.51.100.1"},
        {"vhid": 2, "state": "BACKUP", "master": "198.51.100.1"},
        {"vhid": 3, "state": "BACKUP", "master": None},
    ]
    states = scalecalc.pycarp_states(hosts, "198.51.100.1")
    assert states == {1: "MASTER", 2: "BACKUP", 3: "BACKUP (master not heard)"}


def test_ucarp_states_take_the_last_script_call_per_vip() -> None:
    vhid_of = {scalecalc.vip_for(v): v for v in (1, 2, 3)}
    log = "down 203.0.113.1\ndown 203.0.113.2\nup 203.0.113.1\nup 203.0.113.9\nup 203.0"
    assert scalecalc.ucarp_states(log, vhid_of) == {1: "MASTER", 2: "BACKUP"}


def test_state_problem_names_what_is_not_there_yet() -> None:
    assert scalecalc.state_problem({1: "MASTER", 2: "MASTER"}, [1, 2], "MASTER") is None
    problem = scalecalc.state_problem({1: "MASTER", 2: "BACKUP"}, range(1, 7), "MASTER")
    assert (
        problem
        == "5 not MASTER: vhid 2: BACKUP, vhid 3: no state yet, vhid 4: no state yet (+2 more)"
    )


def test_address_problem_for_masters_and_backups() -> None:
    present = ["198.51.100.1/24", "203.0.113.1/32"]
    vips = ["203.0.113.1", "203.0.113.2"]
    assert scalecalc.address_problem(present, vips[:1], plumbed=True) is None
    assert scalecalc.address_problem(present, vips, plumbed=True) == "1 VIPs missing: 203.0.113.2"
    assert scalecalc.address_problem(present, vips[1:], plumbed=False) is None
    assert (
        scalecalc.address_problem(present, vips, plumbed=False)
        == "1 VIPs still plumbed: 203.0.113.1"
    )


def _case(impl: str, n: int, cpu: tuple[float, float], rss: float, status: str = "ok") -> Any:
    return {
        "impl": impl,
        "vhosts": n,
        "status": status,
        "master": {"cpu_ms_per_30s": cpu[0], "rss_mib": rss},
        "backup": {"cpu_ms_per_30s": cpu[1], "rss_mib": rss},
    }


CASES = [
    _case("pycarp", 1, (6.0, 4.0), 30.0),
    _case("ucarp", 1, (3.4, 1.6), 5.0),
    _case("pycarp", 255, (100.0, 200.0), 44.0),
    _case("ucarp", 255, (1600.0, 1500.0), 1300.0),
]


def test_summarise_gives_both_sides_and_the_ratios() -> None:
    rows = scalecalc.summarise(CASES, [1, 255])
    assert [(r["vhosts"], r["role"]) for r in rows] == [
        (1, "master"),
        (1, "backup"),
        (255, "master"),
        (255, "backup"),
    ]
    first = rows[0]
    assert first["pycarp_cpu"] == 6.0 and first["ucarp_cpu"] == 3.4
    assert first["cpu_ratio"] == pytest.approx(6.0 / 3.4)
    assert first["rss_ratio"] == pytest.approx(6.0)


def test_summarise_leaves_failed_and_missing_cases_out() -> None:
    cases = [_case("pycarp", 16, (1.0, 1.0), 1.0, status="failed"), _case("ucarp", 16, (2, 2), 2)]
    (row, _) = scalecalc.summarise(cases, [16])
    assert row["pycarp_cpu"] is None and row["ucarp_cpu"] == 2.0 and row["cpu_ratio"] is None
    (row, _) = scalecalc.summarise([], [16])
    assert row["pycarp_rss"] is None


def test_check_targets() -> None:
    checks = {c["target"]: c for c in scalecalc.check_targets(scalecalc.summarise(CASES, [1, 255]))}
    assert len(checks) == len(scalecalc.TARGETS)
    assert checks["pycarp CPU, 255 vhosts, master: < 150 ms/30 s"]["met"] is True
    backup = checks["pycarp CPU, 255 vhosts, backup: < 150 ms/30 s"]
    assert backup["met"] is False and backup["value"] == 200.0
    one = checks["pycarp CPU, 1 vhost, master: <= 2x ucarp"]
    assert one["bound"] == pytest.approx(6.8) and one["met"] is True
    assert checks["pycarp CPU, 1 vhost, backup: <= 2x ucarp"]["met"] is False  # 4.0 > 3.2
    assert checks["pycarp RSS, 1 vhost, master: <= 35 MiB"]["met"] is True
    assert checks["pycarp RSS, 255 vhosts, backup: < 45 MiB"]["met"] is True


def test_targets_are_not_measured_without_the_sizes() -> None:
    checks = scalecalc.check_targets(scalecalc.summarise(CASES[:2], [1]))
    assert {c["met"] for c in checks if c["vhosts"] == 255} == {None}
    text = scalecalc.format_targets(checks)
    assert "not measured: pycarp CPU, 255 vhosts, master" in text
    assert "met: pycarp CPU, 1 vhost, master: <= 2x ucarp: 6.0 ms (bound 6.8 ms)" in text


def test_format_table_has_a_row_per_size_and_role() -> None:
    table = scalecalc.format_table(scalecalc.summarise(CASES, [1, 255]))
    lines = table.splitlines()
    assert len(lines) == 2 + 4
    assert lines[2] == "| 1 | master | 6.0 ms | 3.4 ms | 1.76 | 30.0 MiB | 5.0 MiB | 6.000 |"
    assert "| - |" not in table
