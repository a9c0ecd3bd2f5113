"""One request to a pycarp daemon over its control socket, and the answer.

The protocol is pycarp.runtime.control's: one JSON object per line each way.
Every failure to get an answer is a ControlError whose message is a whole
line for the user.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

__all__ = [
    "NOBODY_LISTENS",
    "TIMEOUT",
    "ControlError",
    "NotRunning",
    "answers",
    "peer_pid",
    "request",
    "request_with_pid",
]

TIMEOUT = 5.0  # seconds for status and stepdown
MAX_ANSWER = 16 * 1024 * 1024  # bytes; an answer longer than this is not pycarp's


class ControlError(Exception):
    """The daemon could not be asked; the message is the whole error line."""


class NotRunning(ControlError):
    """Nothing listens on the socket: it is missing, or left by a daemon that died."""


# What connecting to a control socket raises when no process listens there: the
# file is missing, or a daemon that died left it behind. The one rule for both a
# client (NotRunning) and a starting daemon (the path is free to take over).
NOBODY_LISTENS = (FileNotFoundError, ConnectionRefusedError)


def answers(path: str, timeout: float) -> bool:
    """Whether a process listens at the control socket ``path``.

    A full backlog (the connect times out, or fails with EAGAIN) counts as
    listening. Any other failure to connect is raised as the OSError it is.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except NOBODY_LISTENS:
            return False
        except (TimeoutError, BlockingIOError):
            return True
    return True


def request(path: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    """Send one request to the daemon at ``path``; its answer, ``ok`` true or not.

    Raises ControlError, with a message for the user, when there is no
    answer: no daemon, no permission, no reply within ``timeout`` seconds
    (NotRunning when nothing listens there).
    """
    return request_with_pid(path, payload, timeout)[0]


def request_with_pid(
    path: str, payload: dict[str, Any], timeout: float = TIMEOUT
) -> tuple[dict[str, Any], int | None]:
    """As request(), with the pid of the process that answered (None: unknown)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path, timeout)
        pid = peer_pid(sock)
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon hung up at once; it may have said why: read it
        except TimeoutError:
            raise _timed_out(path, timeout) from None
        except OSError as exc:
            raise ControlError(f"cannot talk to pycarp on {path}: {_why(exc)}") from None
        line = _read_line(sock, path, timeout, deadline)
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ControlError(f"unexpected answer on control socket {path} (is it pycarp's?)")
    return answer, pid


def peer_pid(sock: socket.socket) -> int | None:
    """The pid of the process at the other end of a connected unix socket, if the OS says."""
    option = getattr(socket, "SO_PEERCRED", None)  # Linux; illumos has getpeerucred() instead
    if option is None:
        return None
    try:
        credentials = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    pid: int = struct.unpack("3i", credentials)[0]  # struct ucred: pid, uid, gid
    return pid or None


def _connect(sock: socket.socket, path: str, timeout: float) -> None:
    try:
        sock.connect(path)
    except NOBODY_LISTENS:
        raise NotRunning(
            f"no pycarp is running with control socket {path} "
            "(is the daemon started? --control-socket?)"
        ) from None
    except PermissionError:
        raise ControlError(
            f"permission denied on control socket {path} (run as root, like the daemon)"
        ) from None
    except TimeoutError:
        raise _timed_out(path, timeout) from None
    except OSError as exc:
        raise ControlError(f"cannot connect to control socket {path}: {_why(exc)}") from None


def _read_line(sock: socket.socket, path: str, timeout: float, deadline: float) -> bytes:
    received = bytearray()
    while b"\n" not in received:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(path, timeout)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise _timed_out(path, timeout) from None
        except OSError as exc:
            raise ControlError(f"cannot talk to pycarp on {path}: {_why(exc)}") from None
        if not chunk:
            if received:
                break  # an answer without its newline is still an answer
            raise ControlError(f"pycarp closed control socket {path} without answering")
        received += chunk
        if len(received) > MAX_ANSWER:
            raise ControlError(f"unexpected answer on control socket {path} (too long)")
    return bytes(received.split(b"\n", 1)[0])


def _timed_out(path: str, timeout: float) -> ControlError:
    return ControlError(f"pycarp did not answer on control socket {path} within {timeout:g} s")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
