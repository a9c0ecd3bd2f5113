"""systemd notifications: sent only under systemd, with the protocol's fields."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.runtime.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def messages(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(2)


def test_nothing_is_sent_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.send("READY=1")  # no error, no effect


def test_ready_status_and_stopping(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready("eth0/vhid 1 BACKUP")
    assert sock.recv(4096).decode().split("\n") == [
        "READY=1",
        "STATUS=eth0/vhid 1 BACKUP",
        f"MAINPID={os.getpid()}",
    ]
    notifier.status("eth0/vhid 1 BACKUP")  # unchanged: not sent again
    notifier.status("eth0/vhid 1 MASTER")
    notifier.stopping()
    assert messages(sock) == [
        "STATUS=eth0/vhid 1 MASTER",
        "STOPPING=1\nSTATUS=stopping: handing over",
    ]


async def test_watchdog_keepalives_at_half_the_interval(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    notifier.ready("x")
    await asyncio.sleep(0.28)
    notifier.close()
    got = messages(sock)
    assert got[0].startswith("READY=1")
    assert got[1:].count("WATCHDOG=1") >= 4


def test_a_watchdog_meant_for_another_process_is_ignored(
    listener: tuple[socket.socket, str],
) -> None:
    _, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    assert notifier._watchdog is None
