"""`pycarp status`, `pycarp stepdown`, `pycarp reload`: ask the running daemon.

They talk to the daemon's control socket (pycarp.runtime.control) and exit
0 when it did what was asked, 1 when it said no or could not be reached, 2
for a bad command line. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pycarp.settings import DEFAULT_CONTROL_SOCKET

__all__ = [
    "ControlError",
    "human_duration",
    "reload_main",
    "render_reload",
    "render_table",
    "request",
    "status_main",
    "stepdown_main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
TIMEOUT = 5.0  # seconds for status and stepdown
RELOAD_TIMEOUT = 30.0  # a reload may open interfaces and run scripts
MAX_ANSWER = 16 * 1024 * 1024  # bytes; an answer longer than this is not pycarp's


class ControlError(Exception):
    """The daemon could not be asked; the message is the whole error line."""


# --- the request -----------------------------------------------------------------


def request(path: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    """Send one request to the daemon at ``path``; its answer, ``ok`` true or not.

    Raises ControlError, with a message for the user, when there is no
    answer: no daemon, no permission, no reply within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path, timeout)
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
    return answer


def _connect(sock: socket.socket, path: str, timeout: float) -> None:
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        # missing, or left behind by a daemon that died: nobody to ask either way
        raise ControlError(
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


# --- subcommands -----------------------------------------------------------------


def status_main(argv: Sequence[str]) -> int:
    """``pycarp status [--json] [--control-socket PATH]``."""
    parser = _parser("status", "Show the state of each virtual host of the running daemon.")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON, indented")
    return _run(parser, argv, _status)


def stepdown_main(argv: Sequence[str]) -> int:
    """``pycarp stepdown [VHID] [--control-socket PATH]``."""
    parser = _parser("stepdown", "Make MASTER virtual hosts step down to BACKUP (as SIGUSR2).")
    parser.add_argument(
        "vhid", nargs="?", type=_vhid, metavar="VHID", help="only this vhid (default: all)"
    )
    return _run(parser, argv, _stepdown)


def reload_main(argv: Sequence[str]) -> int:
    """``pycarp reload [--control-socket PATH]``."""
    parser = _parser("reload", "Make the running daemon re-read its configuration.")
    return _run(parser, argv, _reload)


def _status(args: argparse.Namespace) -> str:
    answer = _ask(args.control_socket, {"command": "status"})
    hosts = answer.get("hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, dict) for h in hosts):
        raise ControlError(f"unexpected answer on control socket {args.control_socket}")
    return json.dumps(hosts, indent=2) if args.json else render_table(hosts)


def _stepdown(args: argparse.Namespace) -> str:
    answer = _ask(args.control_socket, {"command": "stepdown", "vhid": args.vhid})
    hosts = answer.get("stepped_down") or []
    if not hosts:
        which = "no virtual host" if args.vhid is None else f"no virtual host with vhid {args.vhid}"
        return f"nothing to do: {which} was MASTER"
    return "\n".join(f"{host}: stepped down to BACKUP" for host in hosts)


def _reload(args: argparse.Namespace) -> str:
    answer = _ask(args.control_socket, {"command": "reload"}, RELOAD_TIMEOUT)
    return render_reload(answer)


def _ask(path: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    answer = request(path, payload, timeout)
    if answer.get("ok") is not True:
        raise ControlError(str(answer.get("error") or "the daemon refused without a reason"))
    return answer


def _run(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    action: Callable[[argparse.Namespace], str],
) -> int:
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        output = action(args)
    except ControlError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        print(output, flush=True)
    except BrokenPipeError:  # `pycarp status | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, like the daemon's own usage errors
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"pycarp {command}", description=description, allow_abbrev=False)
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=DEFAULT_CONTROL_SOCKET,
        help=f"the daemon's control socket (default {DEFAULT_CONTROL_SOCKET})",
    )
    return parser


def _vhid(text: str) -> int:
    try:
        vhid = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a vhid (1-255)") from None
    if not 1 <= vhid <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not a vhid (1-255)")
    return vhid


# --- rendering -------------------------------------------------------------------

COLUMNS = ("INTERFACE", "VHID", "STATE", "FOR", "REASON", "MASTER", "SENT/RECV", "DROPS")


def render_table(hosts: Sequence[dict[str, Any]]) -> str:
    """The status table, one row per virtual host, columns aligned."""
    if not hosts:
        return "no virtual hosts"
    rows = [COLUMNS, *(_row(host) for host in hosts)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def _row(host: dict[str, Any]) -> tuple[str, ...]:
    return (
        _cell(host.get("interface")),
        _cell(host.get("vhid")),
        _cell(host.get("state")),
        human_duration(host.get("for")),
        _cell(host.get("reason")),
        _master(host),
        f"{_cell(host.get('adverts_sent'))}/{_cell(host.get('adverts_received'))}",
        _drops(host.get("dropped")),
    )


def _master(host: dict[str, Any]) -> str:
    address = host.get("master")
    if address is None:
        return "-"
    timing = f"{_cell(host.get('master_advbase'))}/{_cell(host.get('master_advskew'))}"
    if host.get("state") == "MASTER":
        return f"{address} {timing} (this host)"
    seen = host.get("master_seen_ago")
    return f"{address} {timing}" + ("" if seen is None else f", seen {human_duration(seen)} ago")


def _drops(dropped: Any) -> str:
    if not isinstance(dropped, dict) or not dropped:
        return "-"
    return " ".join(f"{reason}={count}" for reason, count in sorted(dropped.items()))


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def human_duration(seconds: Any) -> str:
    """42s, 5m07s, 2h03m, 3d04h; tenths under 10 s; "-" when unknown."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{int(seconds * 10) / 10:.1f}s"  # cut, not rounded: 9.96 s is not 10.0 s
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def render_reload(answer: dict[str, Any]) -> str:
    """What a reload did: a summary line, then one line per host added, removed, changed."""
    groups = {kind: _names(answer.get(kind)) for kind in ("added", "removed", "changed")}
    unchanged = _names(answer.get("unchanged"))
    counts = ", ".join(f"{len(names)} {kind}" for kind, names in groups.items())
    lines = [f"reloaded: {counts}, {len(unchanged)} unchanged"]
    for kind, names in groups.items():
        lines += (f"  {kind:<8} {name}" for name in names)
    return "\n".join(lines)


def _names(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
