"""At start: another pycarp on our socket, or running one of our vhids, is named and refused."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pycarp.config.settings import DaemonSettings
from pycarp.core.config import VirtualHostConfig
from pycarp.runtime import startcheck
from pycarp.runtime.control import ControlServer
from pycarp.runtime.startcheck import start_conflict
from tests.runtime.test_control import MASTER, FakeHandler

PID = os.getpid()  # the servers below run in this process: SO_PEERCRED names it


def vhost(interface: str, vhid: int) -> VirtualHostConfig:
    return VirtualHostConfig(
        interface=interface,
        srcip=IPv4Address("198.51.100.201"),
        vhid=vhid,
        addresses=(IPv4Address(f"203.0.113.{vhid}"),),
        password=b"secret",
    )


def settings(socket_path: Path | None, *keys: tuple[str, int]) -> DaemonSettings:
    return DaemonSettings(
        vhosts=tuple(vhost(i, v) for i, v in keys),
        control_socket=None if socket_path is None else str(socket_path),
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """start(path, *(interface, vhid)): a daemon's control socket answering that status."""
    servers: list[ControlServer] = []

    async def start(path: Path, *keys: tuple[str, int]) -> None:
        handler = FakeHandler()
        handler.hosts = [{**MASTER, "interface": i, "vhid": v} for i, v in keys]
        server = ControlServer(str(path), handler)
        await server.start()
        servers.append(server)

    yield start
    for server in servers:
        await server.close()


async def check(wanted: DaemonSettings, directory: Path) -> str | None:
    return await asyncio.to_thread(start_conflict, wanted, str(directory))


async def test_nothing_running_is_no_conflict(tmp_path: Path) -> None:
    assert await check(settings(tmp_path / "eth0-101.sock", ("eth0", 101)), tmp_path) is None
    assert await check(settings(None, ("eth0", 101)), tmp_path / "absent") is None


async def test_the_same_interface_and_vhid_is_refused_naming_the_other(
    tmp_path: Path, running: Callable[..., Any]
) -> None:
    await running(tmp_path / "eth0-101.sock", ("eth0", 101))
    wanted = settings(tmp_path / "eth0-101.sock", ("eth0", 101))
    assert await check(wanted, tmp_path) == (
        f"another pycarp (pid {PID}) is running eth0/vhid 101 on control socket "
        f"{tmp_path}/eth0-101.sock"
    )


async def test_a_toml_daemon_running_our_vhid_is_found_by_its_socket(
    tmp_path: Path, running: Callable[..., Any]
) -> None:
    await running(tmp_path / "pycarp.sock", ("eth0", 100), ("eth0", 101), ("eth1", 102))
    wanted = settings(tmp_path / "eth0-101.sock", ("eth0", 101))  # a drop-in process
    assert await check(wanted, tmp_path) == (
        f"another pycarp (pid {PID}) is running eth0/vhid 101 on control socket "
        f"{tmp_path}/pycarp.sock"
    )
    # and the other way round: the TOML file's vhosts that the drop-in one already runs
    toml = settings(tmp_path / "other.sock", ("eth0", 7), ("eth1", 102), ("eth0", 100))
    assert await check(toml, tmp_path) == (
        f"another pycarp (pid {PID}) is running eth0/vhid 100, eth1/vhid 102 on control "
        f"socket {tmp_path}/pycarp.sock"
    )


async def test_the_same_vhid_on_another_interface_is_fine(
    tmp_path: Path, running: Callable[..., Any]
) -> None:
    await running(tmp_path / "eth0-101.sock", ("eth0", 101))
    assert await check(settings(tmp_path / "eth1-101.sock", ("eth1", 101)), tmp_path) is None
    assert await check(settings(None, ("eth1", 101)), tmp_path) is None  # no socket: checked too
    assert await check(settings(None, ("eth0", 101)), tmp_path) is not None


async def test_our_socket_taken_by_other_vhids_says_pass_control_socket(
    tmp_path: Path, running: Callable[..., Any]
) -> None:
    await running(tmp_path / "pycarp.sock", ("eth0", 7))
    wanted = settings(tmp_path / "pycarp.sock", ("eth0", 8))  # a second TOML file
    assert await check(wanted, tmp_path) == (
        f"another pycarp (pid {PID}) is using the control socket {tmp_path}/pycarp.sock "
        "(running eth0/vhid 7); pass --control-socket"
    )


async def test_a_socket_outside_the_run_directory_is_asked_too(
    tmp_path: Path, running: Callable[..., Any]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    await running(elsewhere / "mine.sock", ("eth0", 7))
    wanted = settings(elsewhere / "mine.sock", ("eth0", 8))
    found = await check(wanted, tmp_path / "run")
    assert found is not None and found.startswith(f"another pycarp (pid {PID}) is using")


async def test_stale_sockets_are_ignored(tmp_path: Path) -> None:
    for name in ("eth0-101.sock", "pycarp.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(tmp_path / name))
    assert await check(settings(tmp_path / "eth0-101.sock", ("eth0", 101)), tmp_path) is None


async def test_silent_sockets_are_bounded_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(startcheck, "ANSWER_TIMEOUT", 0.3)
    mutes = []
    for name in ("a.sock", "b.sock", "c.sock", "eth0-101.sock"):
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mute.bind(str(tmp_path / name))
        mute.listen(1)
        mutes.append(mute)
    try:
        started = time.monotonic()
        other = await check(settings(tmp_path / "x.sock", ("eth0", 101)), tmp_path)
        ours = await check(settings(tmp_path / "eth0-101.sock", ("eth0", 101)), tmp_path)
        elapsed = time.monotonic() - started
    finally:
        for mute in mutes:
            mute.close()
    assert other is None  # a silent socket elsewhere: warned about, not refused
    assert "not checked for the same vhids (no answer): pycarp did not answer" in caplog.text
    # something that listens on our own path but does not answer is in the way
    assert ours == (
        f"control socket {tmp_path}/eth0-101.sock is in use: pycarp did not answer on "
        f"control socket {tmp_path}/eth0-101.sock within 0.3 s"
    )
    assert elapsed < 2.0  # asked in parallel
