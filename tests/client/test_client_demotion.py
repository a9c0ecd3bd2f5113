"""`pycarp promote`, `pycarp demote`, and the status table's demotion column and notes."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pycarp.client import commands as control_client
from pycarp.client.commands import demote_main, promote_main, status_main
from pycarp.client.instances import Instance
from pycarp.client.table import describe_group, render_table
from pycarp.runtime.control import ControlServer
from tests.runtime.test_control import CHECK, MASTER, WEB, FakeHandler


def group(name: str, count: int = 1, **fields: Any) -> dict[str, Any]:
    return {**WEB, "name": name, "count": count, **fields}


class Daemon(FakeHandler):
    """A daemon with these hosts and demotion groups."""

    def __init__(self, hosts: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.hosts = list(hosts)
        self.groups = list(groups)
        self.checks = []
        self.interfaces = {}

    def promote(self, vhid: int | None) -> list[str]:
        self.promotions.append(vhid)
        return [
            f"{h['interface']}/vhid {h['vhid']}"
            for h in self.hosts
            if vhid in (None, h["vhid"]) and h["state"] != "MASTER"
        ]


@pytest.fixture
async def daemons(rundir: Path) -> AsyncIterator[Callable[..., Any]]:
    """start(name, hosts, groups): a control server at <rundir>/<name>.sock."""
    servers: list[ControlServer] = []

    async def start(
        name: str, hosts: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]] = ()
    ) -> Daemon:
        handler = Daemon(hosts, groups)
        server = ControlServer(str(rundir / f"{name}.sock"), handler)
        await server.start()
        servers.append(server)
        return handler

    yield start
    for server in servers:
        await server.close()


async def run(main: Callable[[Sequence[str]], int], *argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def host(interface: str, vhid: int, state: str = "BACKUP", **fields: Any) -> dict[str, Any]:
    return {**MASTER, "interface": interface, "vhid": vhid, "state": state, **fields}


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def demote_args(monkeypatch: pytest.MonkeyPatch) -> Callable[..., argparse.Namespace]:
    """parse(*argv): what `pycarp demote ARGV` parses to (its action only keeps it)."""
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(control_client, "_demote", seen.append)

    def parse(*argv: str) -> argparse.Namespace:
        assert demote_main(list(argv)) == 0
        return seen.pop()

    return parse


@pytest.mark.parametrize(
    ("argv", "by"), [(["web"], 1), (["web", "-1"], -1), (["web", "+2"], 2), (["web", "3"], 3)]
)
def test_demote_takes_a_signed_adjustment(
    demote_args: Callable[..., argparse.Namespace], argv: list[str], by: int
) -> None:
    args = demote_args(*argv)
    assert (args.group, args.by) == ("web", by)


def test_demote_minus_one_with_a_socket_after_it(
    demote_args: Callable[..., argparse.Namespace],
) -> None:
    args = demote_args("web", "-1", "--control-socket", "/run/x.sock")
    assert (args.by, args.control_socket) == (-1, "/run/x.sock")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "pycarp demote: error: the following arguments are required: GROUP"),
        (["web", "-256"], "pycarp demote: error: argument +N|-N: '-256' is not an adjustment"),
        (["web", "many"], "pycarp demote: error: argument +N|-N: 'many' is not an adjustment"),
        (["no way"], "pycarp demote: error: argument GROUP: 'no way' is not a demotion group"),
        (["web", "1", "2"], "pycarp demote: error: unrecognized arguments: 2"),
        (["0"], "pycarp promote: error: argument VHID: '0' is not a vhid"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    main = promote_main if error.startswith("pycarp promote") else demote_main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(error)
    assert err.count("\n") == 1


# --- promote ------------------------------------------------------------------------------


async def test_promote_vhid_goes_to_every_daemon_that_runs_it(
    daemons: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("eth0-7", [host("eth0", 7)])
    b = await daemons("eth0-8", [host("eth0", 8)])
    c = await daemons("eth1-7", [host("eth1", 7)])
    assert await run(promote_main, "7") == 0
    assert (a.promotions, b.promotions, c.promotions) == ([7], [], [7])
    assert capsys.readouterr().out == (
        "eth0/vhid 7: promoted to MASTER\neth1/vhid 7: promoted to MASTER\n"
    )


async def test_promote_when_every_host_is_master(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = await daemons("pycarp", [host("eth0", 7, "MASTER")])
    assert await run(promote_main) == 0
    assert await run(promote_main, "7", "--control-socket", str(rundir / "pycarp.sock")) == 0
    assert only.promotions == [None, 7]
    assert capsys.readouterr().out == (
        "nothing to do: every virtual host was MASTER already\n"
        "nothing to do: vhid 7 was MASTER already\n"
    )


async def test_promote_of_an_unknown_vhid_exits_1(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("pycarp", [host("eth0", 7)])
    assert await run(promote_main, "9") == 1
    assert capsys.readouterr().err == (
        "pycarp promote: error: no virtual host with vhid 9 in any pycarp here "
        f"({rundir}/pycarp.sock (vhid 7))\n"
    )


# --- demote --------------------------------------------------------------------------------


async def test_demote_goes_to_every_daemon_that_has_the_group(
    daemons: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("a", [host("eth0", 7)], [group("web")])
    b = await daemons("b", [host("eth0", 8)], [group("db")])
    c = await daemons("c", [host("eth1", 9)], [group("db"), group("web", 0)])
    assert await run(demote_main, "web", "+2") == 0
    assert (a.demotions, b.demotions, c.demotions) == ([("web", 2)], [], [("web", 2)])
    assert capsys.readouterr().out == (
        "web: count 3 (manual 2; failing: web)  hosts: eth0/vhid 7\n" * 2
    )


async def test_demote_of_a_group_nobody_has_exits_1(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("a", [host("eth0", 7)], [group("db"), group("web")])
    await daemons("b", [host("eth0", 8)])  # an older daemon, or one without groups
    assert await run(demote_main, "mail", "-1") == 1
    assert capsys.readouterr().err == (
        "pycarp demote: error: no demotion group 'mail' in any pycarp here "
        f"({rundir}/a.sock (db, web), {rundir}/b.sock (no groups))\n"
    )


async def test_demote_with_a_socket_says_what_the_daemon_says(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("a", [host("eth0", 7)], [group("web")])
    path = str(rundir / "a.sock")
    assert await run(demote_main, "mail", "--control-socket", path) == 1
    assert capsys.readouterr().err == "pycarp demote: error: no demotion group 'mail'\n"
    assert await run(demote_main, "web", "-1", "--control-socket", path) == 0
    assert a.demotions == [("web", -1)]
    assert capsys.readouterr().out == "web: count 1 (manual 0; failing: web)  hosts: eth0/vhid 7\n"


def test_a_group_line() -> None:
    assert describe_group({"count": 1, "manual": 1, "failing": [], "hosts": []}, "ops") == (
        "ops: count 1 (manual 1)  hosts: none"
    )
    assert describe_group({}, None) == "-: count - (manual -)  hosts: none"


# --- the status table ----------------------------------------------------------------------


def instance(name: str, *hosts: dict[str, Any], **document: Any) -> Instance:
    return Instance(f"/run/pycarp/{name}.sock", 42, hosts, **document)


def demote_cells(*hosts: dict[str, Any]) -> list[str]:
    lines = render_table([instance("p", *hosts)]).splitlines()
    start = lines[0].index("DEMOTE")
    return [line[start : start + 10].strip() for line in lines[1:]]


def test_the_demote_column() -> None:
    assert demote_cells(
        host("eth0", 1, demote=0),
        host("eth0", 2, demote=2, demotion="penalty"),
        host("eth0", 3, "BACKUP", demote=1, demotion="stepdown"),
        host("eth0", 4, "MASTER", demote=0, promoted=True),
        host("eth0", 5),  # a daemon that predates demotion
        host("eth0", 6, demote="2"),
    ) == ["-", "2", "1 stepdown", "promoted", "-", "-"]


def test_checks_groups_and_interface_drops_are_below_the_hosts() -> None:
    starting = {**CHECK, "name": "db", "type": "tcp", "group": "db", "state": "starting"}
    starting |= {"ok": None, "detail": "", "for": None}
    table = render_table(
        [
            instance(
                "pycarp",
                host("eth0", 7, "MASTER", demote=1),
                checks=({**CHECK, "state": "healthy", "ok": True, "detail": "HTTP 200",
                         "for": 307}, starting),
                groups=(group("web", 0), group("db", 2, manual=1, failing=["db"])),
                interfaces={"eth1": {"dropped": {}}, "eth0": {"dropped": {"ttl": 3, "version": 1}}},
            )
        ]
    )  # fmt: skip
    assert table.splitlines()[2:] == [
        "",
        "check web (http, group web): healthy for 5m07s, last: HTTP 200",
        "check db (tcp, group db): starting, no result yet",
        "group db: count 2 (manual 1; failing: db)  hosts: eth0/vhid 7",
        "interface eth0: dropped ttl=3 version=1",
    ]


def test_with_several_daemons_each_note_names_its_daemon() -> None:
    failing = {**CHECK, "for": 2.5}
    table = render_table(
        [
            instance("a", host("eth0", 7), checks=(failing,)),
            instance("b", host("eth1", 8), interfaces={"eth1": {"dropped": {"ttl": 1}}}),
        ]
    )
    assert table.splitlines()[3:] == [
        "",
        "a: check web (http, group web): failing for 2.5s, last: HTTP 503",
        "b: interface eth1: dropped ttl=1",
    ]


def test_odd_notes_do_not_break_the_table() -> None:
    table = render_table(
        [
            instance(
                "p",
                checks=({"name": "x", "ok": False},),
                groups=({"count": True}, {"name": "g", "count": "2"}),
                interfaces={"eth0": "?", "eth1": {"dropped": [1]}},
            )
        ]
    )
    assert table == "no virtual hosts\n\ncheck x (-, group -): -, last: failed"


async def test_status_json_of_a_daemon_without_checks(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("pycarp", [host("eth0", 7)])
    assert await run(status_main, "--json") == 0
    (daemon,) = json.loads(capsys.readouterr().out)
    assert (daemon["interfaces"], daemon["checks"], daemon["groups"]) == ({}, [], [])
