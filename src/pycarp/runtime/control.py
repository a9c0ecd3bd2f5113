"""The control socket: `pycarp status`, `stepdown` and `reload` talk to the daemon here.

A unix stream socket, mode 0600 (only the daemon's user, normally root, may
use it), or 0660 and owned by the ``control_group`` when one is configured.
The protocol is one JSON object per line each way:

    -> {"command": "status"}
    <- {"ok": true, "hosts": [...]}
    -> {"command": "stepdown", "vhid": 7}          (vhid absent or null: all)
    <- {"ok": true, "stepped_down": ["eth0/vhid 7"]}
    -> {"command": "reload"}
    <- {"ok": true, "added": [...], "removed": [...], "changed": [...], "unchanged": [...]}

and on any failure ``{"ok": false, "error": "<one line>"}``. A client may
send several requests on one connection. Nothing a client sends can stop
the daemon or stall the event loop: lines are bounded, clients are bounded,
a client that says nothing (or does not read) is dropped after a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import stat
from typing import Any, Protocol

from pycarp.client.request import answers
from pycarp.config.settings import group_id
from pycarp.core.errors import CarpError, ConfigError

log = logging.getLogger("pycarp")

__all__ = [
    "COMMANDS",
    "ControlHandler",
    "ControlServer",
    "ControlSocketError",
]

MAX_LINE = 64 * 1024  # bytes in one request line, newline included
MAX_CLIENTS = 16
READ_TIMEOUT = 10.0  # seconds a client may take to send a whole line
WRITE_TIMEOUT = 5.0  # seconds a client may take to read an answer
PROBE_TIMEOUT = 1.0  # seconds to wait when checking whether a socket is live
SOCKET_MODE = 0o600
GROUP_SOCKET_MODE = 0o660  # with a control group
DIRECTORY_MODE = 0o755
COMMANDS = ("status", "stepdown", "reload")
VHID_RANGE = range(1, 256)


class ControlHandler(Protocol):
    """What the daemon answers through the control socket."""

    def status(self) -> list[dict[str, Any]]:
        """VirtualHostStatus.to_json(now=...) of each virtual host."""
        ...

    def stepdown(self, vhid: int | None) -> list[str]:
        """Step down ``vhid`` (None: every host); the hosts that did.

        Raises ValueError for a vhid that no virtual host has.
        """
        ...

    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration: {"added", "removed", "changed", "unchanged"}.

        Raises ConfigError or ValueError, with a message, for a bad configuration.
        """
        ...


class ControlSocketError(CarpError):
    """The control socket cannot be set up; the message is the whole error line."""


class RequestError(Exception):
    """A request the daemon refuses; the message goes back to the client."""


class ControlServer:
    """Serves ``handler`` on a unix socket at ``path`` between start() and close()."""

    def __init__(
        self,
        path: str,
        handler: ControlHandler,
        *,
        max_clients: int = MAX_CLIENTS,
        max_line: int = MAX_LINE,
        read_timeout: float = READ_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        group: str | None = None,
    ) -> None:
        self.path = path
        self.group = group  # name or number of the group that may use the socket too
        self._handler = handler
        self._max_clients = max_clients
        self._max_line = max_line
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._server: asyncio.AbstractServer | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket file
        self._made_directory = False
        self._clients: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()  # one reload at a time

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Listen at the path; ControlSocketError if that cannot or must not be done."""
        if self._server is not None:
            raise RuntimeError("control server already started")
        if not self.path or "\0" in self.path:
            raise ControlSocketError(f"invalid control socket path {self.path!r}")
        gid = None if self.group is None else _group_id(self.group)
        self._make_directory()
        await self._clear_path()
        try:
            sock = self._bind(gid)
        except FileNotFoundError:
            # another daemon, exiting, removed the empty directory just now
            self._make_directory()
            sock = self._bind(gid)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve_client, sock=sock, limit=self._max_line
            )
        except BaseException:
            sock.close()
            self._remove_socket_file()
            raise
        log.info("control socket %s", self.path)

    async def close(self) -> None:
        """Stop listening, drop the clients, remove the socket file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await server.wait_closed()
        self._remove_socket_file()
        if self._made_directory:  # such as /run/pycarp/netns-<inode>: leave nothing behind
            with contextlib.suppress(OSError):  # not empty: another daemon uses it
                os.rmdir(os.path.dirname(os.path.abspath(self.path)))

    def _make_directory(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if os.path.isdir(directory):
            return
        try:
            os.makedirs(directory, mode=DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)  # makedirs' mode is cut by the umask
            self._made_directory = True
        except FileExistsError:
            if not os.path.isdir(directory):
                raise ControlSocketError(
                    f"cannot create control socket {self.path}: {directory} is not a directory"
                ) from None
        except OSError as exc:
            raise ControlSocketError(
                f"cannot create directory {directory} for the control socket: {_why(exc)}"
            ) from None

    async def _clear_path(self) -> None:
        """Remove a stale socket at the path; refuse a live one or any other file."""
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ControlSocketError(
                f"cannot use control socket {self.path}: {_why(exc)}"
            ) from None
        if not stat.S_ISSOCK(mode):
            raise ControlSocketError(
                f"{self.path} exists and is not a socket; remove it or pass --control-socket"
            )
        if await self._answers():
            raise ControlSocketError(
                f"another pycarp is using the control socket {self.path}; pass --control-socket"
            )
        log.info("removing stale control socket %s", self.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _answers(self) -> bool:
        """Whether something listens at the path: the client's rule (request.answers)."""
        try:
            return await asyncio.to_thread(answers, self.path, PROBE_TIMEOUT)
        except OSError as exc:
            raise ControlSocketError(
                f"cannot use control socket {self.path}: {_why(exc)}"
            ) from None

    def _bind(self, gid: int | None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The umask makes the file 0600 from its creation: no moment when
            # another user could connect. Nothing else runs on this thread
            # between the two umask calls.
            old_umask = os.umask(0o777 & ~SOCKET_MODE)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old_umask)
            info = os.stat(self.path)
            self._identity = (info.st_dev, info.st_ino)
            if gid is not None:
                try:
                    self._share(gid)
                except ControlSocketError:
                    sock.close()
                    self._remove_socket_file()
                    raise
            sock.listen(self._max_clients)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:  # another daemon bound it since the check
                raise ControlSocketError(
                    f"another pycarp is using the control socket {self.path}; pass --control-socket"
                ) from None
            self._remove_socket_file()
            if isinstance(exc, FileNotFoundError):
                raise
            raise ControlSocketError(
                f"cannot create control socket {self.path}: {_why(exc)}"
            ) from None
        return sock

    def _share(self, gid: int) -> None:
        """Give the socket to the control group, then open it to the group (in that order)."""
        try:
            os.chown(self.path, -1, gid)
            os.chmod(self.path, GROUP_SOCKET_MODE)
        except OSError as exc:
            raise ControlSocketError(
                f"cannot give control socket {self.path} to group {self.group}: {_why(exc)} "
                "(the daemon's user must be root or a member of the group)"
            ) from None

    def _remove_socket_file(self) -> None:
        """Remove the socket file if it is still ours (not one a successor made)."""
        identity, self._identity = self._identity, None
        if identity is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == identity:
                os.unlink(self.path)

    # --- clients ---------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is None or len(self._clients) >= self._max_clients:
            writer.write(_encode(_failure("too many control clients; try again")))
            await self._hang_up(writer)
            return
        self._clients.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away, or would not read its answer
        except Exception as exc:  # a bug here must not take the daemon down
            log.error("control socket: %s", exc or type(exc).__name__)
            log.debug("control socket failure", exc_info=True)
        finally:
            self._clients.discard(task)
            await self._hang_up(writer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), self._read_timeout)
            except asyncio.IncompleteReadError as eof:
                line = eof.partial  # a last request without its newline still counts
                if not line.strip():
                    return
            except asyncio.LimitOverrunError:
                # the rest of the line is still unread: no way to resynchronise
                writer.write(_encode(_failure(f"request longer than {self._max_line} bytes")))
                return
            except TimeoutError:
                if not answered:  # an idle connection after answers is just closed
                    writer.write(_encode(_failure("no complete request in time")))
                return
            writer.write(await self._answer(line))
            answered = True
            await asyncio.wait_for(writer.drain(), self._write_timeout)
            if reader.at_eof():
                return

    async def _hang_up(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self._write_timeout)
        except (OSError, TimeoutError):
            writer.transport.abort()  # a client that does not read keeps nothing alive

    # --- requests --------------------------------------------------------------

    async def _answer(self, line: bytes) -> bytes:
        """The answer line to a request line; never raises."""
        try:
            command, vhid = _parse(line)
        except RequestError as exc:
            log.debug("control socket: bad request: %s", exc)
            return _encode(_failure(str(exc)))
        try:
            return _encode(await self._run(command, vhid))
        except (CarpError, ValueError) as exc:  # the handler's word for "no"
            return _encode(_failure(str(exc) or f"{command} failed"))
        except Exception as exc:  # TypeError from _encode, or a bug in the handler
            why = str(exc) or type(exc).__name__
            log.error("control socket: %s failed: %s", command, why)
            log.debug("%s failed", command, exc_info=True)
            return _encode(_failure(f"{command} failed: {why} (see the daemon's log)"))

    async def _run(self, command: str, vhid: int | None) -> dict[str, Any]:
        if command == "status":
            answer: dict[str, Any] = {"hosts": self._handler.status()}
        elif command == "stepdown":
            answer = {"stepped_down": self._handler.stepdown(vhid)}
        else:
            async with self._reload_lock:
                answer = dict(await self._handler.reload())
        answer["ok"] = True
        return answer


def _group_id(group: str) -> int:
    try:
        return group_id(group)
    except ConfigError:
        raise ControlSocketError(f"control group {group!r}: no such group") from None


def _parse(line: bytes) -> tuple[str, int | None]:
    """(command, vhid) of a request line; RequestError saying what is wrong."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise RequestError("the request is not valid JSON") from None
    if not isinstance(request, dict):
        raise RequestError('the request must be a JSON object such as {"command": "status"}')
    command = request.get("command")
    if command not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise RequestError(f"unknown command {_short(command)} (known: {known})")
    vhid = request.get("vhid")
    if command == "stepdown" and vhid is not None:
        if isinstance(vhid, bool) or not isinstance(vhid, int) or vhid not in VHID_RANGE:
            raise RequestError(f"vhid must be a number from 1 to 255, not {_short(vhid)}")
        return command, vhid
    return command, None


def _short(value: object, limit: int = 40) -> str:
    """repr() of a client's value, cut so that an answer never echoes a huge one."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def _encode(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer).encode() + b"\n"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
