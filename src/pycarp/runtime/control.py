"""The control socket: `pycarp status`, `stepdown`, `promote`, `demote`, `reload`, `events`.

A unix stream socket, mode 0600 (only the daemon's user, normally root, may
use it), or 0660 and owned by the ``control_group`` when one is configured.
The protocol is one JSON object per line each way:

    -> {"command": "status"}
    <- {"ok": true, "hosts": [...], "interfaces": {...}, "checks": [...], "groups": [...]}
    -> {"command": "stepdown", "vhid": 7}          (vhid absent or null: all)
    <- {"ok": true, "stepped_down": ["eth0/vhid 7"]}
    -> {"command": "promote", "vhid": 7}           (vhid absent or null: all)
    <- {"ok": true, "promoted": ["eth0/vhid 7"]}
    -> {"command": "demote", "group": "web", "by": 1}   (by: -255..255, absent: 1)
    <- {"ok": true, "group": "web", "count": 2, "manual": 1, "failing": ["web"], "hosts": [...]}
    -> {"command": "reload"}
    <- {"ok": true, "added": [...], "removed": [...], "changed": [...], "unchanged": [...]}
    -> {"command": "events"}
    <- {"ok": true, "events": "follow"}, then one event per line (pycarp.runtime.events)

and on any failure ``{"ok": false, "error": "<one line>"}``. A client may
send several requests on one connection; ``events`` is its last: the stream
goes on until the client closes (or shuts down its sending side), or the
daemon stops. Nothing a client sends can stop the daemon or stall the event
loop: lines are bounded, clients are bounded (event streams count), a client
that says nothing is dropped after a timeout (an event stream is exempt), and
one that does not read its answers or its events is dropped after a timeout
or when it falls too far behind (pycarp.runtime.events). Parsing and
answering requests is pycarp.runtime.requests'.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from typing import Any

from pycarp.client.request import answers
from pycarp.config.settings import group_id
from pycarp.core.errors import CarpError, ConfigError
from pycarp.runtime.events import Subscription
from pycarp.runtime.requests import (
    COMMANDS,
    ControlHandler,
    RequestError,
    answer,
    encode,
    failure,
    parse,
)

log = logging.getLogger("pycarp")

__all__ = [
    "COMMANDS",
    "ControlHandler",
    "ControlServer",
    "ControlSocketError",
]

MAX_LINE = 64 * 1024  # bytes in one request line, newline included
MAX_CLIENTS = 16  # event streams included
READ_TIMEOUT = 10.0  # seconds a client may take to send a whole line
WRITE_TIMEOUT = 5.0  # seconds a client may take to read an answer, or an event
CLOSE_GRACE = 1.0  # seconds event streams get at close to send the events already queued
PROBE_TIMEOUT = 1.0  # seconds to wait when checking whether a socket is live
SOCKET_MODE = 0o600
GROUP_SOCKET_MODE = 0o660  # with a control group
DIRECTORY_MODE = 0o755
FOLLOWING = {"ok": True, "events": "follow"}  # the answer to an events request


class ControlSocketError(CarpError):
    """The control socket cannot be set up; the message is the whole error line."""


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
        self._followers: dict[asyncio.Task[Any], Subscription] = {}  # the event streams
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
        followers = dict(self._followers)
        for subscription in followers.values():  # their streams end after what is queued
            subscription.close()
        if followers:
            await asyncio.wait(list(followers), timeout=CLOSE_GRACE)
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
            writer.write(encode(failure("too many control clients; try again")))
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
            self._followers.pop(task, None)
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
                writer.write(encode(failure(f"request longer than {self._max_line} bytes")))
                return
            except TimeoutError:
                if not answered:  # an idle connection after answers is just closed
                    writer.write(encode(failure("no complete request in time")))
                return
            try:
                request = parse(line)
            except RequestError as exc:
                log.debug("control socket: bad request: %s", exc)
                writer.write(encode(failure(str(exc))))
            else:
                if request.command == "events":
                    await self._follow(reader, writer)
                    return
                writer.write(await answer(self._handler, request, self._reload_lock))
            answered = True
            await self._send(writer)
            if reader.at_eof():
                return

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send the events as they come until the client or the daemon ends the stream."""
        task = asyncio.current_task()
        try:
            subscription = self._handler.events().subscribe()  # before the answer: miss nothing
        except Exception as exc:  # a bug in the handler
            why = str(exc) or type(exc).__name__
            log.error("control socket: events failed: %s", why)
            writer.write(encode(failure(f"events failed: {why} (see the daemon's log)")))
            await self._send(writer)
            return
        if task is not None:
            self._followers[task] = subscription
        hang_up = asyncio.create_task(_until_eof(reader))
        hang_up.add_done_callback(lambda _: subscription.close())
        try:
            writer.write(encode(FOLLOWING))
            await self._send(writer)
            async for event in subscription:
                writer.write(encode(event))
                await self._send(writer)  # a client that does not read is dropped here
        finally:
            subscription.close()
            hang_up.cancel()

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(writer.drain(), self._write_timeout)

    async def _hang_up(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self._write_timeout)
        except (OSError, TimeoutError):
            writer.transport.abort()  # a client that does not read keeps nothing alive


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Read and ignore what an event stream's client sends, until it closes."""
    with contextlib.suppress(OSError):
        while await reader.read(MAX_LINE):
            pass


def _group_id(group: str) -> int:
    try:
        return group_id(group)
    except ConfigError:
        raise ControlSocketError(f"control group {group!r}: no such group") from None


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
