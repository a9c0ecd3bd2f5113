"""`pycarp status`, `stepdown`, `reload`: output, errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pycarp.client import commands as control_client
from pycarp.client.commands import ControlError, reload_main, request, status_main, stepdown_main
from pycarp.client.instances import Instance
from pycarp.client.request import answers
from pycarp.client.table import human_duration, render_reload, render_table
from pycarp.runtime.control import ControlServer
from tests.runtime.test_control import CHECK, MASTER, WEB, FakeHandler, full_backlog

BACKUP = {
    "interface": "eth1",
    "vhid": 101,
    "state": "BACKUP",
    "reason": "a preferred master advertised",
    "addresses": ["203.0.113.200"],
    "advbase": 1,
    "advskew": 100,
    "master": "203.0.113.202",
    "master_advbase": 1,
    "master_advskew": 0,
    "adverts_sent": 3,
    "adverts_received": 7391,
    "dropped": {"ttl": 1, "digest": 12},
    "for": 7384.2,
    "master_seen_ago": 0.61,
}

INIT = {
    "interface": "eth2",
    "vhid": 3,
    "state": "INIT",
    "reason": None,
    "master": None,
    "adverts_sent": 0,
    "adverts_received": 0,
    "dropped": {},
    "for": None,
    "master_seen_ago": None,
}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[str, FakeHandler]]:
    path = str(tmp_path / "ctl.sock")
    handler = FakeHandler()
    handler.hosts = [MASTER, BACKUP]
    server = ControlServer(path, handler)
    await server.start()
    yield path, handler
    await server.close()


async def run(main: Callable[[Sequence[str]], int], *argv: str) -> int:
    """A subcommand, off the event loop so that the server in the test can answer."""
    return await asyncio.to_thread(main, list(argv))


# --- rendering -----------------------------------------------------------------------

TABLE = """\
INSTANCE  INTERFACE  VHID  STATE   FOR    DEMOTE  REASON                                            MASTER                            SENT/RECV  DROPS
eth0-7    eth0       7     MASTER  1m58s  -       no advertisement within the master-down interval  198.51.100.201 1/0 (this host)    120/0      -
pycarp    eth1       101   BACKUP  2h03m  -       a preferred master advertised                     203.0.113.202 1/0, seen 0.6s ago  3/7391     digest=12 ttl=1
pycarp    eth2       3     INIT    -      -       -                                                 -                                 0/0        -"""  # noqa: E501


def instance(name: str, *hosts: dict[str, Any], pid: int | None = 42) -> Instance:
    return Instance(f"/run/pycarp/{name}.sock", pid, hosts)


def test_table_of_master_backup_and_init_hosts() -> None:
    daemons = [instance("eth0-7", MASTER), instance("pycarp", BACKUP, INIT)]
    assert render_table(daemons) == TABLE


def test_table_of_no_hosts() -> None:
    assert render_table([]) == "no virtual hosts"
    assert render_table([instance("pycarp")]) == "no virtual hosts"


def test_table_survives_missing_and_odd_fields() -> None:
    odd = {"vhid": 1, "for": "soon", "dropped": [1]}
    assert render_table([instance("x", odd)]).splitlines()[1] == (
        "x         -          1     -      -    -       -       -       -/-        -"
    )


def test_table_shows_a_fault_under_its_row() -> None:
    faulty = {**BACKUP, "fault": "sends fail: Network is unreachable"}
    lines = render_table([instance("a", MASTER, faulty, {**INIT, "fault": None})]).splitlines()
    assert len(lines) == 5
    assert lines[2].startswith("a         eth1       101   BACKUP")
    assert lines[3] == "  fault: sends fail: Network is unreachable"
    assert lines[4].startswith("a         eth2       3     INIT")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-1, "0.0s"),
        (0.61, "0.6s"),
        (9.96, "9.9s"),
        (10, "10s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (307, "5m07s"),
        (3599, "59m59s"),
        (7384.2, "2h03m"),
        (86400 * 3 + 3600 * 4 + 5, "3d04h"),
        (True, "-"),
    ],
)
def test_human_duration(seconds: Any, text: str) -> None:
    assert human_duration(seconds) == text


def test_reload_summary() -> None:
    answer = {
        "ok": True,
        "added": ["eth1/vhid 9"],
        "removed": ["eth0/vhid 8"],
        "changed": ["eth0/vhid 7"],
        "unchanged": ["eth0/vhid 1", "eth0/vhid 2"],
    }
    assert render_reload(answer) == (
        "reloaded: 1 added, 1 removed, 1 changed, 2 unchanged\n"
        "  added    eth1/vhid 9\n"
        "  removed  eth0/vhid 8\n"
        "  changed  eth0/vhid 7"
    )


# --- against a server ------------------------------------------------------------------


async def test_status_prints_the_table(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, handler = daemon
    assert await run(status_main, "--control-socket", path) == 0
    expected = render_table(
        [
            Instance(
                path,
                os.getpid(),
                (MASTER, BACKUP),
                handler.interfaces,
                tuple(handler.checks),
                tuple(handler.groups),
            )
        ]
    )
    assert capsys.readouterr().out == expected + "\n"
    assert expected.splitlines()[1].startswith("ctl ")  # the daemon is named by its socket


async def test_status_json_is_a_list_of_daemons(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = daemon
    assert await run(status_main, "--json", "--control-socket", path) == 0
    out = capsys.readouterr().out
    # the pid is the server's, from SO_PEERCRED: here this very process
    assert json.loads(out) == [
        {
            "socket": path,
            "pid": os.getpid(),
            "hosts": [MASTER, BACKUP],
            "interfaces": {"eth0": {"dropped": {"ttl": 3}}},
            "checks": [CHECK],
            "groups": [WEB],
            "scheduling": None,  # the fake daemon says nothing of it
        }
    ]
    assert out.startswith("[\n  {\n")  # indented for people


async def test_stepdown_prints_the_hosts(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, handler = daemon
    assert await run(stepdown_main, "7", "--control-socket", path) == 0
    assert await run(stepdown_main, "--control-socket", path) == 0
    assert handler.stepdowns == [7, None]
    assert capsys.readouterr().out == "eth0/vhid 7: stepped down to BACKUP\n" * 2


async def test_stepdown_of_an_unknown_vhid_exits_1(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = daemon
    assert await run(stepdown_main, "8", "--control-socket", path) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "pycarp stepdown: error: no virtual host has vhid 8\n"


async def test_stepdown_when_nothing_is_master(
    daemon: tuple[str, FakeHandler],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, handler = daemon
    monkeypatch.setattr(handler, "stepdown", lambda vhid: [])
    assert await run(stepdown_main, "7", "--control-socket", path) == 0
    assert capsys.readouterr().out == "nothing to do: no virtual host with vhid 7 was MASTER\n"


async def test_reload_prints_the_changes(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = daemon
    assert await run(reload_main, "--control-socket", path) == 0
    assert capsys.readouterr().out == (
        "reloaded: 1 added, 0 removed, 1 changed, 0 unchanged\n"
        "  added    eth1/vhid 9\n"
        "  changed  eth0/vhid 7\n"
    )


async def test_a_refused_reload_exits_1_with_the_reason(
    daemon: tuple[str, FakeHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    path, handler = daemon
    handler.reload_result = ValueError("line 3: vhid: 300 is above 255")
    assert await run(reload_main, "--control-socket", path) == 1
    assert capsys.readouterr().err == "pycarp reload: error: line 3: vhid: 300 is above 255\n"


async def test_a_reader_that_stops_early_gets_no_traceback(
    daemon: tuple[str, FakeHandler],
) -> None:
    path, handler = daemon
    handler.hosts = [MASTER] * 2000  # more than a pipe holds
    code = (
        "import sys; from pycarp.client.commands import status_main as m; sys.exit(m(sys.argv[1:]))"
    )
    argv = [sys.executable, "-c", code, "--json", "--control-socket", path]

    def like_head_c1() -> tuple[int, bytes]:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.read(1) == b"["
            proc.stdout.close()
            return proc.wait(10), proc.stderr.read()

    assert await asyncio.to_thread(like_head_c1) == (0, b"")


# --- no answer -------------------------------------------------------------------------


@pytest.mark.parametrize("main", [status_main, stepdown_main, reload_main])
def test_no_daemon_exits_1_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], main: Callable[[Sequence[str]], int]
) -> None:
    path = str(tmp_path / "nothing.sock")
    assert main(["--control-socket", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith(
        f"error: no pycarp is running with control socket {path} "
        "(is the daemon started? --control-socket?)\n"
    )
    assert captured.err.count("\n") == 1


def test_a_stale_socket_is_no_daemon(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
    with pytest.raises(ControlError, match="no pycarp is running with control socket"):
        request(path, {"command": "status"})


def test_answers_tells_a_listening_socket_from_a_missing_or_stale_one(tmp_path: Path) -> None:
    """The one rule a client and a starting daemon both go by."""
    assert answers(str(tmp_path / "missing.sock"), 1.0) is False
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(stale)
    assert answers(stale, 1.0) is False
    live = str(tmp_path / "live.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(live)
        server.listen(1)
        assert answers(live, 1.0) is True


def test_answers_counts_a_full_backlog_as_listening(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.sock")
    with full_backlog(path):
        assert answers(path, 0.2) is True


def test_answers_raises_what_it_cannot_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(self: socket.socket, address: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", deny)
    with pytest.raises(PermissionError):
        answers(str(tmp_path / "ctl.sock"), 1.0)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # root is never denied, so the refusal is simulated
    def deny(self: socket.socket, address: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", deny)
    path = str(tmp_path / "ctl.sock")
    with pytest.raises(ControlError) as denied:
        request(path, {"command": "status"})
    assert str(denied.value) == (
        f"permission denied on control socket {path} (run as root, like the daemon)"
    )


def test_a_daemon_that_does_not_answer_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "mute.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(path)
        mute.listen(1)
        with pytest.raises(ControlError) as late:
            request(path, {"command": "status"}, timeout=0.2)
    assert str(late.value) == f"pycarp did not answer on control socket {path} within 0.2 s"


def test_something_else_on_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "other.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        other.listen(1)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)  # queue a fake answer before the real client asks
        client.close()
        answered = _answer_once(other, b"HTTP/1.0 400 Bad Request\r\n\r\n")
        with pytest.raises(ControlError, match="unexpected answer on control socket"):
            answered(path)


def _answer_once(server: socket.socket, reply: bytes) -> Callable[[str], dict[str, Any]]:
    import threading

    def serve() -> None:
        server.accept()[0].close()  # the probe above
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return lambda path: request(path, {"command": "status"}, timeout=2)


# --- usage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "argv", "error"),
    [
        (stepdown_main, ["300"], "pycarp stepdown: error: argument VHID: '300' is not a vhid"),
        (stepdown_main, ["seven"], "pycarp stepdown: error: argument VHID: 'seven' is not a vhid"),
        (status_main, ["--bogus"], "pycarp status: error: unrecognized arguments: --bogus"),
        (reload_main, ["now"], "pycarp reload: error: argument VHID: 'now' is not a vhid"),
        (reload_main, ["1", "2"], "pycarp reload: error: unrecognized arguments: 2"),
        (status_main, ["--control-socket"], "pycarp status: error: argument --control-socket"),
    ],
)
def test_usage_errors_exit_2_in_one_line(
    capsys: pytest.CaptureFixture[str],
    main: Callable[[Sequence[str]], int],
    argv: list[str],
    error: str,
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(error)
    assert err.count("\n") == 1


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert status_main(["--help"]) == 0
    assert "--control-socket PATH" in capsys.readouterr().out


def test_without_a_socket_every_daemon_of_the_run_directory_is_asked() -> None:
    parser = control_client.command_parser("status", "")
    assert parser.parse_args([]).control_socket is None
