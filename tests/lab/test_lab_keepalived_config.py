"""pycarp.lab.keepalived's keepalived.conf and its checks (no keepalived run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.lab.keepalived import Instance, Keepalived, render_config


def test_an_instance_renders_every_key_it_has() -> None:
    vr = Instance(
        vrid=51,
        priority=150,
        addresses=("198.51.100.200/32",),
        advert_int=0.03,
        preempt=False,
        preempt_delay=2,
    )
    text = render_config([vr], router_id="a", notify=Path("/w/notify.sh"))
    assert "    vrrp_version 3\n" in text and "router_id a\n" in text
    block = text[text.index("vrrp_instance vr51 {") :]
    for line in (
        "state BACKUP",
        "interface eth0",
        "virtual_router_id 51",
        "priority 150",
        "advert_int 0.03",
        "nopreempt",
        "preempt_delay 2",
        "notify /w/notify.sh",
        "198.51.100.200/32 dev eth0",
    ):
        assert f"    {line}\n" in block or f"        {line}\n" in block, line
    assert "native_ipv6" not in block and "vrrp_rt_priority" not in text
    assert text.count("{") == text.count("}")


def test_ipv6_unicast_realtime_and_many_instances() -> None:
    v6 = Instance(
        vrid=7, priority=100, addresses=("2001:db8::7/64",), unicast_peers=("2001:db8::2",)
    )
    many = [Instance(vrid=v, priority=100, addresses=(f"203.0.113.{v}",)) for v in range(1, 256)]
    text = render_config([v6], rt_priority=10)
    assert "native_ipv6" in text and "unicast_peer {\n        2001:db8::2\n" in text
    assert "vrrp_rt_priority 10" in text and "vrrp_no_swap" in text
    assert render_config(many).count("vrrp_instance ") == 255


@pytest.mark.parametrize(
    "bad",
    [
        {"vrid": 0},
        {"priority": 256},
        {"advert_int": 0.001},
        {"state": "INIT"},
        {"addresses": ()},
        {"addresses": ("10.0.0.1/32",)},
        {"addresses": ("198.51.100.9", "2001:db8::9")},
        {"unicast_peers": ("192.0.2.1",)},
    ],
)
def test_instances_out_of_range_or_outside_the_lab_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"vrid": 1, "priority": 100, "addresses": ("198.51.100.9",)}
    with pytest.raises(ValueError):
        Instance(**{**fields, **bad})  # type: ignore[arg-type]


def test_duplicate_names_or_vrids_are_refused() -> None:
    vr = Instance(vrid=1, priority=100, addresses=("198.51.100.9",))
    with pytest.raises(ValueError, match="unique"):
        render_config([vr, Instance(vrid=2, priority=1, addresses=vr.addresses, name="vr1")])
    with pytest.raises(ValueError, match="VRID"):
        render_config([vr, Instance(vrid=1, priority=1, addresses=vr.addresses, name="other")])


class _Host:
    ifname = "eth0"


def test_runner_files_and_command_line_stay_in_its_workdir(tmp_path: Path) -> None:
    ka = Keepalived(_Host(), tmp_path, [Instance(vrid=3, priority=9, addresses=("198.51.100.3",))])  # type: ignore[arg-type]
    ka.write_files()
    argv = ka.argv()
    assert argv[1:6] == ["-n", "-l", "-D", "-G", "-P"]
    assert argv[argv.index("-f") + 1] == str(tmp_path / "keepalived.conf")
    assert argv[argv.index("-p") + 1] == str(tmp_path / "keepalived.pid")
    assert argv[argv.index("-r") + 1] == str(tmp_path / "vrrp.pid")
    assert f"notify {tmp_path / 'notify.sh'}" in ka.config_path.read_text()
    assert (tmp_path / "notify.sh").stat().st_mode & 0o777 == 0o700
    (tmp_path / "notify.log").write_text(
        "100.5 vr3 BACKUP 9\n101.0 vr3 MASTER 9\n102.0 vr3 FAU"  # the last one half-written
    )
    assert ka.events() == [(100.5, "vr3", "BACKUP"), (101.0, "vr3", "MASTER")]
    assert ka.states() == {"vr3": "MASTER"} and ka.state(3) == "MASTER"
    assert ka.transitions(3, since=101.0) == [(101.0, "MASTER")]
    assert ka.pids() == [] and not ka.alive()
