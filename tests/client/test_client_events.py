"""`pycarp events`: following the daemons' event streams, how events read, how it stops."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pycarp.client.events import events_main, render_event
from pycarp.lab.wait import wait_until
from pycarp.runtime.control import ControlServer
from pycarp.runtime.events import EventBus
from tests.runtime.test_control import FakeHandler

TIME = "2026-12-01T13:20:01.123+00:00"
TRANSITION = {
    "seq": 17,
    "time": TIME,
    "type": "transition",
    "host": "eth0/vhid 1",
    "interface": "eth0",
    "vhid": 1,
    "old": "BACKUP",
    "new": "MASTER",
    "reason": "master_down",
    "why": "no advertisement within the master-down interval",
}
DEMOTION = {
    "seq": 18,
    "time": TIME,
    "type": "demotion",
    "group": "web",
    "old": 0,
    "new": 1,
    "why": "check web is failing",
    "hosts": ["eth0/vhid 1"],
}
CHECK = {
    "seq": 19,
    "time": TIME,
    "type": "check",
    "check": "web",
    "ok": False,
    "detail": "exit status 1",
    "state": "failing",
    "changed": True,
}
FIELDS = ("seq", "time")  # what the bus adds


def published(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what the bus adds: what the daemon publishes."""
    return {key: value for key, value in event.items() if key not in FIELDS}


# --- how events read --------------------------------------------------------------------


def test_a_transition_reads() -> None:
    assert render_event(TRANSITION, "pycarp") == (
        "2026-12-01T13:20:01.123Z pycarp  eth0/vhid 1  BACKUP -> MASTER  "
        "(no advertisement within the master-down interval)"
    )


def test_a_check_reads() -> None:
    assert render_event(CHECK, "pycarp") == (
        "2026-12-01T13:20:01.123Z pycarp  check web failing (exit status 1)"
    )
    unchanged = {**CHECK, "ok": True, "detail": "HTTP 200", "state": "healthy", "changed": False}
    assert render_event(unchanged, "eth0-1") == (
        "2026-12-01T13:20:01.123Z eth0-1  check web passed: HTTP 200 (healthy)"
    )


def test_a_demotion_reads() -> None:
    assert render_event(DEMOTION, "pycarp") == (
        "2026-12-01T13:20:01.123Z pycarp  demotion web 0 -> 1 (check web is failing)"
    )


def test_an_event_of_a_newer_daemon_still_reads() -> None:
    event = {"seq": 1, "time": "2026-12-01T13:20:01.123+01:00", "type": "new", "x": 1}
    assert render_event(event, "p") == '2026-12-01T13:20:01.123+01:00 p  new {"x": 1}'
    assert render_event({}, "p") == "- p  None {}"


# --- against daemons ----------------------------------------------------------------------


@pytest.fixture
async def daemons(rundir: Path) -> AsyncIterator[Callable[..., Any]]:
    """start(name, limit=...): a daemon at <rundir>/<name>.sock; (handler, server)."""
    servers: list[ControlServer] = []

    async def start(name: str, limit: int = 100) -> tuple[FakeHandler, ControlServer]:
        handler = FakeHandler()
        handler.bus = EventBus(limit=limit)
        server = ControlServer(str(rundir / f"{name}.sock"), handler)
        await server.start()
        servers.append(server)
        return handler, server

    yield start
    for server in servers:
        await server.close()


def following(*argv: str) -> asyncio.Task[int]:
    """`pycarp events ARGV` running on a thread; bounded in time, so that no test hangs."""
    return asyncio.create_task(asyncio.to_thread(events_main, [*argv, "--timeout", "10"]))


async def subscribed(*handlers: FakeHandler) -> None:
    def all_there() -> bool:
        return all(handler.bus.subscribers == 1 for handler in handlers)

    assert await asyncio.to_thread(wait_until, all_there, 5)


async def test_events_are_printed_as_they_come(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = await daemons("pycarp")
    task = following("--count", "3", "--control-socket", str(rundir / "pycarp.sock"))
    await subscribed(handler)
    for event in (TRANSITION, DEMOTION, CHECK):
        handler.bus.publish(published(event))
    assert await task == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "pycarp  eth0/vhid 1  BACKUP -> MASTER  (no advertisement within the master-down interval)",
        "pycarp  demotion web 0 -> 1 (check web is failing)",
        "pycarp  check web failing (exit status 1)",
    ]
    assert all(line.split(" ", 1)[0].endswith("Z") for line in lines)


async def test_json_adds_the_instance_and_follows_every_daemon(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = await daemons("eth0-1")
    b, _ = await daemons("eth1-2")
    task = following("--json", "--count", "2")
    await subscribed(a, b)
    a.bus.publish(published(TRANSITION))
    await asyncio.sleep(0.1)
    b.bus.publish(published(CHECK))
    assert await task == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["instance"], e["seq"], e["type"]) for e in lines] == [
        ("eth0-1", 1, "transition"),
        ("eth1-2", 1, "check"),
    ]
    assert published(lines[1]) == {**published(CHECK), "instance": "eth1-2"}


async def test_timeout_stops_quietly(
    daemons: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    await daemons("pycarp")
    started = time.monotonic()
    assert await asyncio.to_thread(events_main, ["--timeout", "0.3"]) == 0
    assert 0.3 <= time.monotonic() - started < 3
    assert capsys.readouterr() == ("", "")


async def test_a_daemon_that_goes_away_ends_it_with_exit_1(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, server = await daemons("pycarp")
    task = following()
    await subscribed(handler)
    handler.bus.publish(published(TRANSITION))
    await server.close()
    assert await task == 1
    out, err = capsys.readouterr()
    assert "BACKUP -> MASTER" in out  # what came before the end is printed
    assert err == (
        f"pycarp events: error: pycarp on {rundir}/pycarp.sock went away (the event stream ended)\n"
    )


async def test_a_reader_dropped_for_falling_behind_exits_1_saying_so(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = await daemons("pycarp", limit=2)
    task = following()
    await subscribed(handler)
    for _ in range(3):  # at once: the daemon cannot send any before the third
        handler.bus.publish(published(TRANSITION))
    assert await task == 1
    assert capsys.readouterr() == (
        "",
        f"pycarp events: error: {rundir}/pycarp.sock: events: this reader fell 2 events "
        "behind; reconnect\n",
    )


async def test_a_daemon_that_will_not_stream_exits_1(
    daemons: Callable[..., Any], rundir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = await daemons("pycarp")
    handler.events_error = RuntimeError("no bus")
    assert await asyncio.to_thread(events_main, ["--timeout", "5"]) == 1
    assert capsys.readouterr().err == (
        f"pycarp events: error: {rundir}/pycarp.sock: events failed: no bus "
        "(see the daemon's log)\n"
    )


def test_no_daemon_exits_1(rundir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert events_main([]) == 1
    assert capsys.readouterr().err == (
        f"pycarp events: error: no pycarp is running here: no control socket in {rundir} "
        "answered (is the daemon started? --control-socket?)\n"
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--count", "0"], "argument --count: '0' is not a count (1 or more)"),
        (["--count", "x"], "argument --count: 'x' is not a count (1 or more)"),
        (["--timeout", "0"], "argument --timeout: '0' is not a number of seconds"),
        (["--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds"),
        (["--timeout", "inf"], "argument --timeout: 'inf' is not a number of seconds"),
        (["web"], "unrecognized arguments: web"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert events_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pycarp events: error: {error}")
    assert err.count("\n") == 1


# --- stopping it: signals and a reader that had enough ------------------------------------

CODE = "import sys; from pycarp.client.events import events_main as m; sys.exit(m(sys.argv[1:]))"


def spawn(path: Path, *options: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", CODE, "--control-socket", str(path), "--timeout", "20"]
    return subprocess.Popen(
        [*argv, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )


async def ended(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    try:
        code = await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    return code, proc.stderr.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_exits_0(
    daemons: Callable[..., Any], rundir: Path, signum: signal.Signals
) -> None:
    handler, _ = await daemons("pycarp")
    proc = spawn(rundir / "pycarp.sock")
    await subscribed(handler)
    proc.send_signal(signum)
    assert await ended(proc) == (0, b"")


async def test_a_reader_that_stops_early_gets_no_traceback(
    daemons: Callable[..., Any], rundir: Path
) -> None:
    handler, _ = await daemons("pycarp")
    proc = spawn(rundir / "pycarp.sock", "--json")
    assert proc.stdout is not None
    await subscribed(handler)
    handler.bus.publish(published(TRANSITION))
    first = await asyncio.to_thread(proc.stdout.readline)  # like `pycarp events | head -1`
    assert json.loads(first)["instance"] == "pycarp"
    proc.stdout.close()
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:  # the next write finds no reader
        handler.bus.publish(published(TRANSITION))
        await asyncio.sleep(0.05)
    assert await ended(proc) == (0, b"")


def test_the_subcommand_exists() -> None:
    from pycarp.cli.main import SUBCOMMANDS

    assert SUBCOMMANDS["events"].__name__ == "pycarp.client.events.events_main"
