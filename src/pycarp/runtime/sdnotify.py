"""systemd's notify protocol: READY=1, STOPPING=1, STATUS=..., WATCHDOG=1.

Does nothing unless systemd started us with NOTIFY_SOCKET set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("pycarp")


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: the name starts with a NUL byte.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._watchdog = _watchdog_interval(env)
        self._timer: asyncio.TimerHandle | None = None
        self._status = ""
        self._ready = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> None:
        if not self._address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto("\n".join(fields).encode(), self._address)
            except OSError as exc:
                log.debug("systemd notification failed: %s", exc)

    def ready(self, status: str) -> None:
        self._status, self._ready = status, True
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")
        if self._watchdog:
            self._keepalive()

    def status(self, status: str) -> None:
        """Say what changed; before READY=1 there is nothing to tell yet."""
        if self._ready and status != self._status:
            self._status = status
            self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: handing over")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _keepalive(self) -> None:
        # Half the watchdog interval, as sd_watchdog_enabled(3) recommends.
        self.send("WATCHDOG=1")
        assert self._watchdog is not None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._watchdog / 2, self._keepalive)


def _watchdog_interval(env: os._Environ[str] | dict[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process
    return int(usec) / 1_000_000
