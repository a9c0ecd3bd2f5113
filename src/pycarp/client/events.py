"""`pycarp events`: print the daemons' events as they happen.

It asks each daemon (the one at --control-socket, or every daemon of this
network namespace) for its event stream (the control socket's ``events``
request, pycarp.runtime.events) and prints the events as they arrive, one
line each, flushed at once. It stops on Ctrl-C or SIGTERM (exit 0), after
--count events or --timeout seconds (exit 0), or when a daemon goes away or
drops this reader (exit 1, said on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from pycarp.client.commands import (
    ControlError,
    all_daemons,
    command_parser,
    quiet_stdout,
    run_command,
)
from pycarp.client.instances import Instance, query
from pycarp.client.request import MAX_ANSWER, TIMEOUT

__all__ = ["events_main", "render_event"]

REQUEST = b'{"command": "events"}\n'
CHUNK = 65536


def events_main(argv: Sequence[str]) -> int:
    """``pycarp events [--json] [--count N] [--timeout S] [--control-socket PATH]``."""
    parser = command_parser(
        "events",
        "Print the daemons' events as they happen: state transitions, check results, "
        "demotion changes.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print each event as a JSON object on one line, with an "instance" field',
    )
    parser.add_argument("--count", type=_count, metavar="N", help="stop after N events")
    parser.add_argument("--timeout", type=_seconds, metavar="S", help="stop after S seconds")
    return run_command(parser, argv, _events)


def _events(args: argparse.Namespace) -> None:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with _terminated_as_interrupt():
        try:
            if args.control_socket is not None:
                found = [query(args.control_socket, TIMEOUT)]
            else:
                found = all_daemons()
            with contextlib.ExitStack() as streams:
                followed = [streams.enter_context(_Stream.open(i, TIMEOUT)) for i in found]
                _print_events(followed, args.json, args.count, deadline)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM: the usual way to stop following
        except BrokenPipeError:  # `pycarp events | head -1`
            quiet_stdout()


def _print_events(
    streams: Sequence[_Stream], as_json: bool, count: int | None, deadline: float | None
) -> None:
    printed = 0
    with selectors.DefaultSelector() as selector:
        for stream in streams:
            selector.register(stream.sock, selectors.EVENT_READ, stream)
        pending = list(streams)  # their first recv may have brought events already
        while count is None or printed < count:
            for stream in pending:
                for event in stream.events():
                    line = json.dumps({**event, "instance": stream.instance.name})
                    print(line if as_json else render_event(event, stream.instance.name))
                    sys.stdout.flush()
                    printed += 1
                    if count is not None and printed >= count:
                        return
            if deadline is None:
                wait = None
            elif (wait := deadline - time.monotonic()) <= 0:
                return
            pending = [key.data for key, _ in selector.select(wait)]
            for stream in pending:
                stream.receive()


class _Stream:
    """One daemon's event stream: its socket and the bytes of a line not yet complete."""

    def __init__(self, instance: Instance, sock: socket.socket) -> None:
        self.instance = instance
        self.sock = sock
        self.buffer = bytearray()
        self.ended = False

    @classmethod
    @contextlib.contextmanager
    def open(cls, instance: Instance, timeout: float) -> Iterator[_Stream]:
        """Ask ``instance`` for its events; ControlError if it will not stream them."""
        path = instance.socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            stream = cls(instance, sock)
            try:
                sock.settimeout(timeout)
                sock.connect(path)
                sock.sendall(REQUEST)
                while b"\n" not in stream.buffer and not stream.ended:
                    stream.receive()
            except OSError as exc:
                why = exc.strerror or str(exc) or type(exc).__name__
                raise ControlError(f"cannot follow the events of pycarp on {path}: {why}") from None
            answer = next(stream.lines(), None)
            if answer is None:
                raise ControlError(f"pycarp closed control socket {path} without answering")
            if answer.get("ok") is not True:
                why = answer.get("error") or "refused without a reason"
                raise ControlError(f"{path}: {why}")
            if answer.get("events") != "follow":
                raise ControlError(f"unexpected answer on control socket {path} (is it pycarp's?)")
            sock.setblocking(False)
            yield stream

    def receive(self) -> None:
        """Read what the socket has (blocking until then, during the handshake)."""
        try:
            chunk = self.sock.recv(CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self.ended = True
        self.buffer += chunk
        if len(self.buffer) > MAX_ANSWER:
            raise ControlError(f"unexpected line on control socket {self.instance.socket}")

    def lines(self) -> Iterator[dict[str, Any]]:
        """The complete lines received so far, as objects."""
        while b"\n" in self.buffer:
            line, _, rest = bytes(self.buffer).partition(b"\n")
            self.buffer[:] = rest
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            if not isinstance(value, dict):
                path = self.instance.socket
                raise ControlError(f"unexpected line on control socket {path} (is it pycarp's?)")
            yield value

    def events(self) -> Iterator[dict[str, Any]]:
        """The events received so far; ControlError once the daemon ends the stream."""
        for value in self.lines():
            if "seq" not in value:  # not an event: the daemon dropped this reader, saying why
                why = value.get("error") or "the daemon ended the event stream"
                raise ControlError(f"{self.instance.socket}: {why}")
            yield value
        if self.ended:
            raise ControlError(
                f"pycarp on {self.instance.socket} went away (the event stream ended)"
            )


# --- how an event reads ------------------------------------------------------------


def render_event(event: dict[str, Any], instance: str) -> str:
    """One line for people: the time, the daemon, then what happened."""
    when = str(event.get("time", "-"))
    if when.endswith("+00:00"):
        when = when.removesuffix("+00:00") + "Z"
    kind = event.get("type")
    if kind == "transition":
        what = (
            f"{event.get('host')}  {event.get('old')} -> {event.get('new')}  ({event.get('why')})"
        )
    elif kind == "check":
        what = _check(event)
    elif kind == "demotion":
        what = (
            f"demotion {event.get('group')} {event.get('old')} -> {event.get('new')} "
            f"({event.get('why')})"
        )
    else:  # a kind this client does not know yet: show its fields
        rest = {k: v for k, v in event.items() if k not in ("seq", "time", "type")}
        what = f"{kind} {json.dumps(rest)}"
    return f"{when} {instance}  {what}"


def _check(event: dict[str, Any]) -> str:
    """``check web failing (exit status 1)`` when the state changed, else the result."""
    name, state, detail = event.get("check"), event.get("state"), event.get("detail") or "-"
    if event.get("changed"):
        return f"check {name} {state} ({detail})"
    result = "passed" if event.get("ok") else "failed"
    return f"check {name} {result}: {detail} ({state})"


# --- command line ------------------------------------------------------------------


@contextlib.contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM stops following as Ctrl-C does (only the main thread can catch signals)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (in tests): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _count(text: str) -> int:
    try:
        count = int(text, 10)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (1 or more)")
    return count


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (more than 0)")
    return seconds
