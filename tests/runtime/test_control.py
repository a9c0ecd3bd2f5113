"""The control socket: the protocol, the socket file's life, and robustness to abuse."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycarp.client.request import request
from pycarp.core.errors import ConfigError
from pycarp.runtime.control import ControlServer, ControlSocketError
from pycarp.runtime.events import EventBus

MASTER = {
    "interface": "eth0",
    "vhid": 7,
    "state": "MASTER",
    "reason": "no advertisement within the master-down interval",
    "addresses": ["198.51.100.200"],
    "advbase": 1,
    "advskew": 0,
    "master": "198.51.100.201",
    "master_advbase": 1,
    "master_advskew": 0,
    "adverts_sent": 120,
    "adverts_received": 0,
    "dropped": {},
    "for": 118.5,
    "master_seen_ago": None,
}


WEB = {"name": "web", "count": 1, "failing": ["web"], "manual": 0, "hosts": ["eth0/vhid 7"]}
CHECK = {
    "name": "web",
    "type": "http",
    "group": "web",
    "state": "failing",
    "ok": False,
    "detail": "HTTP 503",
    "passes": 0,
    "fails": 3,
    "results": {"ok": 10, "failed": 3},
    "last_ago": 0.4,
    "for": 12.0,
}


class FakeHandler:
    """Answers like the daemon would, and records what it was asked."""

    def __init__(self) -> None:
        self.hosts = [MASTER]
        self.interfaces: dict[str, Any] = {"eth0": {"dropped": {"ttl": 3}}}
        self.checks = [CHECK]
        self.groups = [WEB]
        self.bus = EventBus()
        self.events_error: Exception | None = None
        self.stepdowns: list[int | None] = []
        self.promotions: list[int | None] = []
        self.demotions: list[tuple[str, int]] = []
        self.reload_result: dict[str, Any] | Exception = {
            "added": ["eth1/vhid 9"],
            "removed": [],
            "changed": ["eth0/vhid 7"],
            "unchanged": [],
        }
        self.status_error: Exception | None = None
        self.reload_delay = 0.0

    def status(self) -> dict[str, Any]:
        if self.status_error is not None:
            raise self.status_error
        return {
            "hosts": self.hosts,
            "interfaces": self.interfaces,
            "checks": self.checks,
            "groups": self.groups,
        }

    def stepdown(self, vhid: int | None) -> list[str]:
        if vhid not in (None, 7):
            raise ValueError(f"no virtual host has vhid {vhid}")
        self.stepdowns.append(vhid)
        return ["eth0/vhid 7"]

    def promote(self, vhid: int | None) -> list[str]:
        if vhid not in (None, 7):
            raise ValueError(f"no virtual host has vhid {vhid}")
        self.promotions.append(vhid)
        return ["eth0/vhid 7"]

    def demote(self, group: str, by: int) -> dict[str, Any]:
        if group not in (g["name"] for g in self.groups):
            raise ValueError(f"no demotion group {group!r}")
        self.demotions.append((group, by))
        manual = max(0, by)
        return {
            "group": group,
            "count": 1 + manual,
            "manual": manual,
            "failing": ["web"],
            "hosts": ["eth0/vhid 7"],
        }

    def events(self) -> EventBus:
        if self.events_error is not None:
            raise self.events_error
        return self.bus

    async def reload(self) -> dict[str, Any]:
        await asyncio.sleep(self.reload_delay)
        if isinstance(self.reload_result, Exception):
            raise self.reload_result
        return self.reload_result


@pytest.fixture
def handler() -> FakeHandler:
    return FakeHandler()


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "pycarp" / "ctl.sock")


@pytest.fixture
async def server(path: str, handler: FakeHandler) -> AsyncIterator[ControlServer]:
    srv = ControlServer(path, handler, max_clients=4, read_timeout=0.5, write_timeout=0.5)
    await srv.start()
    yield srv
    await srv.close()


async def ask(path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The blocking client, off the event loop so that the server can answer."""
    return await asyncio.to_thread(request, path, payload, 2.0)


async def raw(path: str, data: bytes) -> list[dict[str, Any]]:
    """Send raw bytes, then read answer lines until the server hangs up."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    writer.write_eof()
    answers = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return [json.loads(line) for line in answers.splitlines()]


# --- round trips -----------------------------------------------------------------


async def test_status_round_trip(server: ControlServer, path: str) -> None:
    assert await ask(path, {"command": "status"}) == {
        "ok": True,
        "hosts": [MASTER],
        "interfaces": {"eth0": {"dropped": {"ttl": 3}}},
        "checks": [CHECK],
        "groups": [WEB],
    }


async def test_stepdown_one_and_all(server: ControlServer, path: str, handler: FakeHandler) -> None:
    answer = await ask(path, {"command": "stepdown", "vhid": 7})
    assert answer == {"ok": True, "stepped_down": ["eth0/vhid 7"]}
    await ask(path, {"command": "stepdown"})
    await ask(path, {"command": "stepdown", "vhid": None})
    assert handler.stepdowns == [7, None, None]


async def test_stepdown_unknown_vhid_is_refused(server: ControlServer, path: str) -> None:
    answer = await ask(path, {"command": "stepdown", "vhid": 8})
    assert answer == {"ok": False, "error": "no virtual host has vhid 8"}


@pytest.mark.parametrize("command", ["stepdown", "promote"])
@pytest.mark.parametrize("vhid", [0, 256, "7", 7.0, True, [7]])
async def test_stepdown_and_promote_vhid_must_be_a_vhid(
    server: ControlServer, path: str, vhid: Any, command: str
) -> None:
    answer = await ask(path, {"command": command, "vhid": vhid})
    assert answer["ok"] is False
    assert answer["error"].startswith("vhid must be a number from 1 to 255")


async def test_promote_one_and_all(server: ControlServer, path: str, handler: FakeHandler) -> None:
    answer = await ask(path, {"command": "promote", "vhid": 7})
    assert answer == {"ok": True, "promoted": ["eth0/vhid 7"]}
    await ask(path, {"command": "promote"})
    assert handler.promotions == [7, None]
    assert await ask(path, {"command": "promote", "vhid": 8}) == {
        "ok": False,
        "error": "no virtual host has vhid 8",
    }


async def test_demote_answers_the_group(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    answer = await ask(path, {"command": "demote", "group": "web", "by": 2})
    assert answer == {
        "ok": True,
        "group": "web",
        "count": 3,
        "manual": 2,
        "failing": ["web"],
        "hosts": ["eth0/vhid 7"],
    }
    await ask(path, {"command": "demote", "group": "web", "by": -255})
    await ask(path, {"command": "demote", "group": "web"})  # by: 1
    assert handler.demotions == [("web", 2), ("web", -255), ("web", 1)]


async def test_demote_of_an_unknown_group_is_refused(server: ControlServer, path: str) -> None:
    answer = await ask(path, {"command": "demote", "group": "db", "by": 1})
    assert answer == {"ok": False, "error": "no demotion group 'db'"}


@pytest.mark.parametrize("group", [None, "", 7, ["web"], "x" * 64, "no spaces", "-web", "é"])
async def test_demote_group_must_be_a_name(
    server: ControlServer, path: str, handler: FakeHandler, group: Any
) -> None:
    answer = await ask(path, {"command": "demote", "group": group, "by": 1})
    assert answer["ok"] is False
    assert answer["error"].startswith("group must be the name of a demotion group (1 to 63 ")
    assert len(answer["error"]) < 200
    assert handler.demotions == []


@pytest.mark.parametrize("by", [True, False, 1.0, "1", "+1", None, 256, -256, [1]])
async def test_demote_by_must_be_a_small_number(
    server: ControlServer, path: str, handler: FakeHandler, by: Any
) -> None:
    answer = await ask(path, {"command": "demote", "group": "web", "by": by})
    assert answer["ok"] is False
    assert answer["error"].startswith("by must be a number from -255 to 255, not ")
    assert handler.demotions == []


async def test_a_63_character_group_is_a_name(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    name = "g" * 63
    handler.groups = [{**WEB, "name": name}]
    assert (await ask(path, {"command": "demote", "group": name, "by": 1}))["ok"] is True


async def test_reload_passes_the_changes_through(server: ControlServer, path: str) -> None:
    assert await ask(path, {"command": "reload"}) == {
        "ok": True,
        "added": ["eth1/vhid 9"],
        "removed": [],
        "changed": ["eth0/vhid 7"],
        "unchanged": [],
    }


async def test_reload_of_a_bad_config_is_refused_with_its_message(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    handler.reload_result = ConfigError("vhid", "300 is above 255", origin="/etc/pycarp.toml:3")
    answer = await ask(path, {"command": "reload"})
    assert answer == {"ok": False, "error": "/etc/pycarp.toml:3: vhid: 300 is above 255"}


async def test_a_failing_handler_is_an_error_answer_not_a_dead_daemon(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    handler.status_error = RuntimeError("boom")
    answer = await ask(path, {"command": "status"})
    assert answer["ok"] is False
    assert "boom" in answer["error"]
    handler.status_error = None
    assert (await ask(path, {"command": "status"}))["ok"] is True


async def test_several_requests_on_one_connection(server: ControlServer, path: str) -> None:
    answers = await raw(path, b'{"command": "status"}\n{"command": "stepdown", "vhid": 7}\n')
    assert [a["ok"] for a in answers] == [True, True]
    assert answers[1]["stepped_down"] == ["eth0/vhid 7"]


async def test_an_idle_connection_after_answers_is_closed_quietly(
    server: ControlServer, path: str
) -> None:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "status"}\n')
    assert json.loads(await reader.readline())["ok"] is True
    assert await asyncio.wait_for(reader.read(), 5) == b""  # after the read timeout
    writer.close()


async def test_a_last_request_without_newline_is_answered(server: ControlServer, path: str) -> None:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "status"}')
    writer.write_eof()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
    writer.close()
    assert answer["ok"] is True


# --- bad requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"hello\n", "the request is not valid JSON"),
        (b"\xff\xfe\n", "the request is not valid JSON"),
        (b"\n", "the request is not valid JSON"),
        (b"[" * 60000 + b"\n", "the request is not valid JSON"),  # too deep to parse
        (b'["status"]\n', "the request must be a JSON object"),
        (
            b'{"command": "reboot"}\n',
            "unknown command 'reboot' (known: status, stepdown, promote, demote, reload, events)",
        ),
        (b"{}\n", "unknown command None"),
    ],
)
async def test_bad_requests_get_an_error_and_the_connection_goes_on(
    server: ControlServer, path: str, line: bytes, error: str
) -> None:
    answers = await raw(path, line + b'{"command": "status"}\n')
    assert answers[0]["ok"] is False
    assert answers[0]["error"].startswith(error)
    assert answers[1]["ok"] is True


async def test_an_error_never_echoes_a_huge_value(server: ControlServer, path: str) -> None:
    answers = await raw(path, json.dumps({"command": "x" * 50000}).encode() + b"\n")
    assert len(answers[0]["error"]) < 200


async def test_an_over_long_line_is_refused_and_the_daemon_goes_on(
    server: ControlServer, path: str
) -> None:
    answers = await raw(path, b"x" * (200 * 1024))
    assert answers == [{"ok": False, "error": "request longer than 65536 bytes"}]
    assert (await ask(path, {"command": "status"}))["ok"] is True


async def test_a_silent_client_is_dropped_after_the_read_timeout(
    server: ControlServer, path: str
) -> None:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "sta')  # and then nothing
    started = time.monotonic()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert answer == {"ok": False, "error": "no complete request in time"}
    assert await reader.read() == b""  # hung up
    assert time.monotonic() - started < 2
    writer.close()


async def test_idle_clients_do_not_stall_others(server: ControlServer, path: str) -> None:
    idle = [await asyncio.open_unix_connection(path) for _ in range(3)]  # one slot left
    started = time.monotonic()
    assert (await ask(path, {"command": "status"}))["ok"] is True
    assert time.monotonic() - started < 0.4  # before the idle ones time out
    for _, writer in idle:
        writer.close()


async def test_clients_over_the_limit_are_told_so_at_once(server: ControlServer, path: str) -> None:
    idle = [await asyncio.open_unix_connection(path) for _ in range(4)]
    await asyncio.sleep(0.05)  # let the server take them in
    started = time.monotonic()
    answer = await ask(path, {"command": "status"})
    assert answer == {"ok": False, "error": "too many control clients; try again"}
    assert time.monotonic() - started < 0.4
    for _, writer in idle:
        writer.close()
    await asyncio.sleep(0.05)
    assert (await ask(path, {"command": "status"}))["ok"] is True


async def test_a_slow_reload_does_not_block_status(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    handler.reload_delay = 0.3
    reload = asyncio.create_task(ask(path, {"command": "reload"}))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    assert (await ask(path, {"command": "status"}))["ok"] is True
    assert time.monotonic() - started < 0.2
    assert (await reload)["ok"] is True


# --- the socket file ---------------------------------------------------------------


async def test_socket_is_0600_in_a_0755_directory(server: ControlServer, path: str) -> None:
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755


async def test_socket_is_0600_whatever_the_umask(path: str, handler: FakeHandler) -> None:
    old = os.umask(0)
    try:
        srv = ControlServer(path, handler)
        await srv.start()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        await srv.close()
    finally:
        os.umask(old)
    assert os.umask(old) == old  # start() put the umask back


async def test_close_removes_the_socket_file(path: str, handler: FakeHandler) -> None:
    srv = ControlServer(path, handler)
    await srv.start()
    await srv.close()
    assert not os.path.exists(path)
    await srv.close()  # twice is harmless


def _a_group() -> grp.struct_group:
    """A group the socket may be given to: a foreign one as root, else our own."""
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            return grp.getgrnam("nogroup")
    return grp.getgrgid(os.getgid())


async def test_with_a_control_group_the_socket_is_0660_and_the_groups(
    path: str, handler: FakeHandler
) -> None:
    group = _a_group()
    srv = ControlServer(path, handler, group=group.gr_name)
    await srv.start()
    try:
        info = os.stat(path)
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, group.gr_gid)
    finally:
        await srv.close()
    # a number works too
    srv = ControlServer(path, handler, group=str(group.gr_gid))
    await srv.start()
    try:
        assert os.stat(path).st_gid == group.gr_gid
    finally:
        await srv.close()


async def test_an_unknown_control_group_is_a_clear_error(path: str, handler: FakeHandler) -> None:
    with pytest.raises(ControlSocketError) as refused:
        await ControlServer(path, handler, group="no-such-group-x").start()
    assert str(refused.value) == "control group 'no-such-group-x': no such group"
    assert not os.path.exists(path)


async def test_a_group_the_daemon_may_not_give_is_a_clear_error(
    path: str, handler: FakeHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refuse)  # what a non-member, non-root user gets
    group = grp.getgrgid(os.getgid()).gr_name
    with pytest.raises(ControlSocketError) as refused:
        await ControlServer(path, handler, group=group).start()
    assert str(refused.value) == (
        f"cannot give control socket {path} to group {group}: Operation not permitted "
        "(the daemon's user must be root or a member of the group)"
    )
    assert not os.path.exists(path)  # never left open, and never left behind


async def test_a_directory_it_made_goes_at_close_when_empty(
    path: str, handler: FakeHandler, tmp_path: Path
) -> None:
    srv = ControlServer(path, handler)
    await srv.start()
    await srv.close()
    assert not os.path.exists(os.path.dirname(path))  # such as /run/pycarp/netns-<inode>
    assert os.path.isdir(tmp_path / "run")
    # one that was there before stays
    os.makedirs(os.path.dirname(path))
    srv = ControlServer(path, handler)
    await srv.start()
    await srv.close()
    assert os.path.isdir(os.path.dirname(path))


async def test_close_leaves_a_file_that_is_not_ours(path: str, handler: FakeHandler) -> None:
    srv = ControlServer(path, handler)
    await srv.start()
    os.unlink(path)
    Path(path).write_text("someone else's\n")
    await srv.close()
    assert Path(path).read_text() == "someone else's\n"


async def test_close_drops_connected_clients(server: ControlServer, path: str) -> None:
    reader, writer = await asyncio.open_unix_connection(path)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.close(), 2)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_a_stale_socket_is_replaced(path: str, handler: FakeHandler) -> None:
    os.makedirs(os.path.dirname(path))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # bound, never listened, closed: what a killed daemon leaves
    dead.close()
    srv = ControlServer(path, handler)
    await srv.start()
    try:
        assert (await ask(path, {"command": "status"}))["ok"] is True
    finally:
        await srv.close()


async def test_a_live_socket_is_refused(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    with pytest.raises(ControlSocketError) as refused:
        await ControlServer(path, handler).start()
    assert str(refused.value) == (
        f"another pycarp is using the control socket {path}; pass --control-socket"
    )
    assert (await ask(path, {"command": "status"}))["ok"] is True  # the first one goes on


@contextlib.contextmanager
def full_backlog(path: str) -> Iterator[None]:
    """A listening socket at path whose backlog is full: the kernel turns connects away."""
    waiting: list[socket.socket] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        busy.bind(path)
        busy.listen(0)
        try:
            while True:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.setblocking(False)
                waiting.append(client)
                client.connect(path)
        except BlockingIOError:
            pass
        try:
            yield
        finally:
            for client in waiting:
                client.close()


async def test_a_busy_socket_is_refused_too(tmp_path: Path, handler: FakeHandler) -> None:
    """A daemon too busy to accept (its backlog full) is still there."""
    path = str(tmp_path / "busy.sock")
    with full_backlog(path), pytest.raises(ControlSocketError, match="another pycarp is using"):
        await ControlServer(path, handler).start()
    assert os.path.exists(path)  # not taken over


async def test_a_socket_that_cannot_be_probed_is_a_clear_error(
    path: str, handler: FakeHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.makedirs(os.path.dirname(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)

    def deny(self: socket.socket, address: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", deny)
    with pytest.raises(ControlSocketError) as refused:
        await ControlServer(path, handler).start()
    assert str(refused.value) == f"cannot use control socket {path}: Permission denied"


async def test_a_path_that_is_not_a_socket_is_refused(path: str, handler: FakeHandler) -> None:
    os.makedirs(os.path.dirname(path))
    Path(path).write_text("precious\n")
    with pytest.raises(ControlSocketError) as refused:
        await ControlServer(path, handler).start()
    assert str(refused.value) == (
        f"{path} exists and is not a socket; remove it or pass --control-socket"
    )
    assert Path(path).read_text() == "precious\n"


async def test_a_parent_that_is_a_file_is_a_clear_error(
    tmp_path: Path, handler: FakeHandler
) -> None:
    (tmp_path / "run").write_text("")
    with pytest.raises(ControlSocketError, match="run is not a directory"):
        await ControlServer(str(tmp_path / "run" / "ctl.sock"), handler).start()


async def test_a_path_too_long_for_a_unix_socket_is_a_clear_error(
    tmp_path: Path, handler: FakeHandler
) -> None:
    path = str(tmp_path / ("x" * 120))
    with pytest.raises(ControlSocketError, match="cannot create control socket"):
        await ControlServer(path, handler).start()
    assert not os.path.exists(path)


async def test_an_answer_that_cannot_be_sent_is_an_error_answer(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    handler.hosts = [{"since": object()}]
    answer = await ask(path, {"command": "status"})
    assert answer["ok"] is False
    assert answer["error"].startswith("status failed: ")


async def test_a_client_that_does_not_read_is_dropped(
    server: ControlServer, path: str, handler: FakeHandler
) -> None:
    handler.hosts = [MASTER] * 20000  # an answer far bigger than the socket buffers
    _, writer = await asyncio.open_unix_connection(path)
    writer.write(b'{"command": "status"}\n')  # and never read
    await asyncio.sleep(0.1)
    handler.hosts = [MASTER]
    started = time.monotonic()
    assert (await ask(path, {"command": "status"}))["ok"] is True
    assert time.monotonic() - started < 0.4  # the stuck answer holds up nobody
    await asyncio.sleep(1.5)  # write timeout, then the hang-up's timeout
    assert not server._clients
    writer.close()


@pytest.mark.parametrize("bad", ["", "run/\0/ctl.sock"])
async def test_an_invalid_path_is_a_clear_error(bad: str, handler: FakeHandler) -> None:
    with pytest.raises(ControlSocketError, match="invalid control socket path"):
        await ControlServer(bad, handler).start()
