"""Several daemons in one run directory: `pycarp status`, `stepdown`, `reload` without a socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pycarp.client import commands as control_client
from pycarp.client.commands import reload_main, status_main, stepdown_main
from pycarp.client.instances import socket_paths, survey
from pycarp.runtime.control import ControlServer
from tests.runtime.test_control import MASTER


def host(interface: str, vhid: int, state: str = "BACKUP") -> dict[str, Any]:
    return {**MASTER, "interface": interface, "vhid": vhid, "state": state}


class Handler:
    """A daemon running ``hosts``; records the stepdowns and reloads it was asked for."""

    def __init__(self, *hosts: dict[str, Any]) -> None:
        self.hosts = list(hosts)
        self.stepdowns: list[int | None] = []
        self.reloads = 0

    def status(self) -> dict[str, Any]:
        return {"hosts": self.hosts}

    def stepdown(self, vhid: int | None) -> list[str]:
        if vhid is not None and all(h["vhid"] != vhid for h in self.hosts):
            raise ValueError(f"no virtual host with vhid {vhid}")
        self.stepdowns.append(vhid)
        return [
            f"{h['interface']}/vhid {h['vhid']}" for h in self.hosts if vhid in (None, h["vhid"])
        ]

    async def reload(self) -> dict[str, Any]:
        self.reloads += 1
        return {"added": [], "removed": [], "changed": [], "unchanged": ["x"]}


@pytest.fixture
async def daemons(rundir: Path) -> AsyncIterator[Callable[..., Any]]:
    """start(name, *hosts): a control server at <rundir>/<name>.sock; all closed afterwards."""
    servers: list[ControlServer] = []

    async def start(name: str, *hosts: dict[str, Any]) -> Handler:
        handler = Handler(*hosts)
        server = ControlServer(str(rundir / f"{name}.sock"), handler)
        await server.start()
        servers.append(server)
        return handler

    yield start
    for server in servers:
        await server.close()


async def run(main: Callable[[Sequence[str]], int], *argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def stale(path: Path) -> None:
    """A socket file nothing listens on: what a killed daemon leaves."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))


# --- status ------------------------------------------------------------------------------


async def test_status_lists_every_daemon_and_skips_stale_sockets(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("eth0-101", host("eth0", 101, "MASTER"))
    await daemons("pycarp", host("eth0", 102), host("eth1", 7))
    stale(rundir / "eth0-103.sock")
    (rundir / "notes.txt").write_text("not a socket")
    assert await run(status_main) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = [line.split()[:4] for line in out.splitlines()]
    assert rows == [
        ["INSTANCE", "INTERFACE", "VHID", "STATE"],
        ["eth0-101", "eth0", "101", "MASTER"],
        ["pycarp", "eth0", "102", "BACKUP"],
        ["pycarp", "eth1", "7", "BACKUP"],
    ]
    assert await run(status_main, "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["socket"], d["pid"], len(d["hosts"])) for d in listed] == [
        (str(rundir / "eth0-101.sock"), os.getpid(), 1),
        (str(rundir / "pycarp.sock"), os.getpid(), 2),
    ]


async def test_a_daemon_that_does_not_answer_is_mentioned_on_stderr(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("eth0-101", host("eth0", 101))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(rundir / "mute.sock"))
        mute.listen(1)
        assert await run(status_main) == 0
    out, err = capsys.readouterr()
    assert "eth0-101" in out and "mute" not in out
    assert err == (
        f"pycarp: warning: pycarp did not answer on control socket {rundir}/mute.sock "
        "within 0.5 s\n"
    )


@pytest.mark.parametrize("main", [status_main, stepdown_main, reload_main])
def test_no_daemon_says_where_it_looked(
    rundir: Path, capsys: pytest.CaptureFixture[str], main: Callable[[Sequence[str]], int]
) -> None:
    stale(rundir / "eth0-1.sock")
    assert main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(
        f"error: no pycarp is running here: no control socket in {rundir} answered "
        "(is the daemon started? --control-socket?)\n"
    )
    assert err.count("\n") == 1


def test_a_missing_run_directory_is_no_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(control_client, "run_directory", lambda: str(tmp_path / "absent"))
    assert status_main([]) == 1
    assert f"no control socket in {tmp_path}/absent answered" in capsys.readouterr().err


# --- stepdown ---------------------------------------------------------------------------


async def test_stepdown_vhid_goes_to_every_daemon_that_runs_it(
    daemons: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("eth0-7", host("eth0", 7))
    b = await daemons("eth0-8", host("eth0", 8))
    c = await daemons("eth1-7", host("eth1", 7))
    assert await run(stepdown_main, "7") == 0
    assert (a.stepdowns, b.stepdowns, c.stepdowns) == ([7], [], [7])
    assert capsys.readouterr().out == (
        "eth0/vhid 7: stepped down to BACKUP\neth1/vhid 7: stepped down to BACKUP\n"
    )


async def test_stepdown_of_a_vhid_nobody_runs(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("eth0-7", host("eth0", 7))
    await daemons("pycarp", host("eth0", 8), host("eth0", 9))
    assert await run(stepdown_main, "10") == 1
    assert capsys.readouterr().err == (
        "pycarp stepdown: error: no virtual host with vhid 10 in any pycarp here "
        f"({rundir}/eth0-7.sock (vhid 7), {rundir}/pycarp.sock (vhid 8, 9))\n"
    )


@pytest.mark.parametrize(("main", "name"), [(stepdown_main, "stepdown"), (reload_main, "reload")])
async def test_without_vhid_several_daemons_are_refused(
    daemons: Callable[..., Any],
    rundir: Path,
    capsys: pytest.CaptureFixture[str],
    main: Callable[[Sequence[str]], int],
    name: str,
) -> None:
    a = await daemons("eth0-7", host("eth0", 7))
    b = await daemons("eth0-8", host("eth0", 8))
    assert await run(main) == 1
    assert capsys.readouterr().err == (
        f"pycarp {name}: error: 2 pycarp daemons are running ({rundir}/eth0-7.sock, "
        f"{rundir}/eth0-8.sock): give a VHID (pycarp {name} VHID) or --control-socket\n"
    )
    assert (a.stepdowns, b.stepdowns, a.reloads, b.reloads) == ([], [], 0, 0)


async def test_with_one_daemon_no_vhid_is_needed(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = await daemons("pycarp", host("eth0", 7), host("eth0", 8))
    stale(rundir / "eth0-9.sock")  # a dead daemon does not count
    assert await run(stepdown_main) == 0
    assert await run(reload_main) == 0
    assert (only.stepdowns, only.reloads) == ([None], 1)
    out = capsys.readouterr().out
    assert out.startswith("eth0/vhid 7: stepped down to BACKUP\neth0/vhid 8: stepped down")
    assert "reloaded: 0 added, 0 removed, 0 changed, 1 unchanged" in out


# --- reload ------------------------------------------------------------------------------


async def test_reload_vhid_picks_its_daemon(
    daemons: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("eth0-7", host("eth0", 7))
    b = await daemons("pycarp", host("eth0", 8), host("eth1", 9))
    assert await run(reload_main, "9") == 0
    assert (a.reloads, b.reloads) == (0, 1)
    assert capsys.readouterr().out.startswith("reloaded: ")


async def test_reload_of_a_vhid_two_daemons_run_is_refused(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = await daemons("eth0-7", host("eth0", 7))
    b = await daemons("eth1-7", host("eth1", 7))
    assert await run(reload_main, "7") == 1
    assert capsys.readouterr().err == (
        f"pycarp reload: error: vhid 7 is run by 2 pycarp daemons ({rundir}/eth0-7.sock, "
        f"{rundir}/eth1-7.sock); give --control-socket\n"
    )
    assert (a.reloads, b.reloads) == (0, 0)
    assert await run(reload_main, "--control-socket", str(rundir / "eth1-7.sock")) == 0
    assert (a.reloads, b.reloads) == (0, 1)


# --- the survey itself --------------------------------------------------------------------


def test_socket_paths_are_the_sock_files_sorted(tmp_path: Path) -> None:
    for name in ("b.sock", "a.sock", "c.txt", "d.sock.tmp"):
        (tmp_path / name).write_text("")
    assert socket_paths(str(tmp_path)) == [str(tmp_path / "a.sock"), str(tmp_path / "b.sock")]
    assert socket_paths(str(tmp_path / "absent")) == []


def test_survey_asks_every_socket_at_once(tmp_path: Path) -> None:
    mutes = []
    for n in range(5):
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mute.bind(str(tmp_path / f"m{n}.sock"))
        mute.listen(1)
        mutes.append(mute)
    try:
        started = time.monotonic()
        found = survey(socket_paths(str(tmp_path)), 0.5)
        elapsed = time.monotonic() - started
    finally:
        for mute in mutes:
            mute.close()
    assert found.found == [] and len(found.unreachable) == 5
    assert elapsed < 2.0  # five silent sockets in parallel, not 2.5 s in a row
