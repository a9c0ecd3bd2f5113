"""One run of a health check: did it pass, and what happened, in one line.

`probe` runs a check once and never takes much longer than its timeout: a
command's process group is killed at the timeout (SIGTERM, then SIGKILL), a
connection attempt is abandoned, an HTTP request's socket is shut down so its
worker thread returns at once. A failing check is a result, never an
exception. What a check writes is read as it comes (so a chatty one never
blocks) but only its first HEAD_BYTES are kept, for the detail of a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import http.client
import re
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from pycarp.core.checkconfig import CheckConfig
from pycarp.platform.base import InterfaceError
from pycarp.runtime.groups import signal_group, spawn, stop_group

__all__ = ["DETAIL_CHARS", "HEAD_BYTES", "KILL_GRACE", "probe"]

KILL_GRACE = 0.2  # seconds between SIGTERM and SIGKILL to a timed-out command's group
REAP_GRACE = 0.2  # seconds to wait for the SIGKILLed command to be reaped
CLOSE_GRACE = 0.2  # seconds a tcp check waits for its connection to close
HEAD_BYTES = 4096  # of a command's output, kept for the detail
BODY_BYTES = 4096  # of an HTTP response body, read at most
DETAIL_CHARS = 200
USER_AGENT = "pycarp-check"


async def probe(
    check: CheckConfig, *, interface_running: Callable[[str], bool]
) -> tuple[bool, str]:
    """Run `check` once: (passed, detail). Never raises for a failing check (only for a bug);
    never takes longer than check.timeout plus a small grace (~0.5 s)."""
    deadline = asyncio.get_running_loop().time() + check.timeout
    if check.type == "command":
        argv = ["/bin/sh", "-c", check.command[0]] if check.shell else list(check.command)
        ok, detail = await run_command(argv, deadline, check.timeout)
    elif check.type == "tcp":
        ok, detail = await connect_tcp(check.host, check.port, deadline, check.timeout)
    elif check.type == "http":
        ok, detail = await get_http(check.url, check.expect, deadline, check.timeout)
    else:
        ok, detail = await has_carrier(check.interface, interface_running, deadline, check.timeout)
    return ok, one_line(detail)


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    """text on one line of printable characters, at most `limit` of them."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def timed_out(timeout: float) -> str:
    return f"timed out after {timeout:g} s"


def remaining(deadline: float) -> float:
    return max(0.0, deadline - asyncio.get_running_loop().time())


def error_text(exc: BaseException) -> str:
    """An exception as a short phrase: the OS's words when it has them."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


# --- command ----------------------------------------------------------------


async def run_command(argv: list[str], deadline: float, timeout: float) -> tuple[bool, str]:
    """Run argv in a session of its own; its exit status decides."""
    try:
        proc, output = await spawn(argv, keep=HEAD_BYTES, end="head")
    except (OSError, ValueError) as exc:
        return False, f"cannot run {argv[0]}: {error_text(exc)}"
    try:
        status = await asyncio.wait_for(proc.wait(), remaining(deadline))
    except TimeoutError:
        await stop_group(proc, grace=KILL_GRACE, reap=REAP_GRACE)
        output.close()
        return False, timed_out(timeout)
    except BaseException:  # cancelled: the daemon is stopping
        await stop_group(proc, grace=KILL_GRACE, reap=REAP_GRACE)
        output.close()
        raise
    # What it left behind (a background child) must not outlive the check.
    signal_group(proc.pid, signal.SIGKILL)
    text = output.take()
    output.close()
    if status == 0:
        return True, "exit status 0"
    if status < 0:
        return False, f"killed by signal {-status} ({signal_name(-status)})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return False, f"exit status {status}: {first}" if first else f"exit status {status}"


# --- tcp --------------------------------------------------------------------


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_error(exc: OSError, host: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {error_text(exc)}"
    return error_text(exc)


async def connect_tcp(host: str, port: int, deadline: float, timeout: float) -> tuple[bool, str]:
    """Open a TCP connection and close it at once."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), remaining(deadline))
    except TimeoutError:
        return False, timed_out(timeout)
    except OSError as exc:
        return False, connect_error(exc, host)
    peer = writer.get_extra_info("peername")
    where = host_port(str(peer[0]), int(peer[1])) if peer else host_port(host, port)
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE)
    except (TimeoutError, OSError):
        writer.transport.abort()
    return True, f"connected to {where}"


# --- http -------------------------------------------------------------------


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default context: certificates verified against the system's CAs, hostname checked."""
    return ssl.create_default_context()


def tls_error(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc.reason}"
    # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" -> "wrong version number"
    words = re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", error_text(exc))
    return f"TLS handshake failed: {words or exc.reason or type(exc).__name__}"


class HttpGet:
    """One GET in a worker thread, without redirects; abort() from the loop ends it at once.

    The socket timeout bounds each wait of the worker; abort() shuts the
    connection down, so a server that trickles bytes cannot keep the thread.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.timeout = timeout
        self._lock = threading.Lock()
        self._aborted = False
        self._waker: socket.socket | None = None  # a second handle on the connection

    def status(self) -> int:
        """The response's status (worker thread); raises OSError, ssl or http.client errors."""
        with contextlib.ExitStack() as stack:
            stack.callback(self._forget_waker)
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            stack.callback(sock.close)
            with self._lock:
                if self._aborted:
                    raise TimeoutError("aborted")
                self._waker = sock.dup()
            if self.tls:
                sock = tls_context().wrap_socket(sock, server_hostname=self.host)
                stack.callback(sock.close)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.sock = sock  # connected (and wrapped) here, so that abort() can reach it
            stack.callback(conn.close)
            headers = {
                "Host": self.host_header,
                "User-Agent": USER_AGENT,
                "Accept": "*/*",
                "Connection": "close",
            }
            conn.request("GET", self.target, headers=headers)
            response = conn.getresponse()
            with contextlib.suppress(OSError, http.client.HTTPException):  # the status is known
                response.read(BODY_BYTES)
            return response.status

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            if self._waker is not None:
                with contextlib.suppress(OSError):
                    self._waker.shutdown(socket.SHUT_RDWR)

    def _forget_waker(self) -> None:
        with self._lock:
            if self._waker is not None:
                self._waker.close()
                self._waker = None


async def get_http(url: str, expect: int, deadline: float, timeout: float) -> tuple[bool, str]:
    """GET url; passed when the status is `expect`."""
    try:
        request = HttpGet(url, max(0.01, remaining(deadline)))
    except ValueError as exc:  # a port out of range
        return False, f"invalid URL: {exc}"
    if not request.host:  # "http://:80/" would mean this machine
        return False, "invalid URL: no host"
    try:
        status = await asyncio.wait_for(asyncio.to_thread(request.status), remaining(deadline))
    except TimeoutError:
        return False, timed_out(timeout)
    except ssl.SSLError as exc:
        return False, tls_error(exc)
    except OSError as exc:
        return False, connect_error(exc, request.host)
    except http.client.HTTPException as exc:
        return False, f"bad HTTP response: {error_text(exc)}"
    except ValueError as exc:  # http.client.InvalidURL, an unencodable host name
        return False, f"invalid URL: {error_text(exc)}"
    finally:
        request.abort()
    if status == expect:
        return True, f"HTTP {status}"
    return False, f"HTTP {status}, expected {expect}"


# --- carrier ----------------------------------------------------------------


async def has_carrier(
    interface: str, running: Callable[[str], bool], deadline: float, timeout: float
) -> tuple[bool, str]:
    """Whether the interface is up with carrier, as the platform adapter says."""
    try:
        up = await asyncio.wait_for(asyncio.to_thread(running, interface), remaining(deadline))
    except TimeoutError:
        return False, timed_out(timeout)
    except InterfaceError as exc:  # its message names the interface
        return False, str(exc) or f"no such interface {interface}"
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT):
            return False, f"no such interface {interface}"
        return False, f"cannot query {interface}: {error_text(exc)}"
    return (True, f"{interface} has carrier") if up else (False, f"{interface} has no carrier")
