"""`pycarp status`, `pycarp stepdown`, `pycarp reload`: ask the running daemons.

They talk to the daemons' control sockets (pycarp.runtime.control): the one
given with --control-socket, or else every daemon in the run directory of
this network namespace (pycarp.instances), picking by vhid where one is
needed. They exit 0 when it was done, 1 when a daemon said no or none could
be reached, 2 for a bad command line. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pycarp.cli.parser import EXIT_USAGE, Parser
from pycarp.client.instances import Instance, query, socket_paths, survey
from pycarp.client.request import TIMEOUT, ControlError, request
from pycarp.platform.rundir import run_directory

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
RELOAD_TIMEOUT = 30.0  # a reload may open interfaces and run scripts


# --- subcommands -----------------------------------------------------------------


def status_main(argv: Sequence[str]) -> int:
    """``pycarp status [--json] [--control-socket PATH]``."""
    parser = _parser("status", "Show the state of each virtual host of the running daemons.")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list, one object per daemon, indented"
    )
    return _run(parser, argv, _status)


def stepdown_main(argv: Sequence[str]) -> int:
    """``pycarp stepdown [VHID] [--control-socket PATH]``."""
    parser = _vhid_parser(
        "stepdown",
        "Make MASTER virtual hosts step down to BACKUP (as SIGUSR2).",
        "only this vhid, on every daemon that runs it (default: all, of the one daemon)",
    )
    return _run(parser, argv, _stepdown)


def reload_main(argv: Sequence[str]) -> int:
    """``pycarp reload [VHID] [--control-socket PATH]``."""
    parser = _vhid_parser(
        "reload",
        "Make a running daemon re-read its configuration.",
        "reload the daemon that runs this vhid (needed when several run)",
    )
    return _run(parser, argv, _reload)


def _vhid_parser(command: str, description: str, vhid_help: str) -> argparse.ArgumentParser:
    parser = _parser(command, description)
    parser.add_argument("vhid", nargs="?", type=_vhid, metavar="VHID", help=vhid_help)
    return parser


def _status(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        found = [query(args.control_socket, TIMEOUT)]
    else:
        found = _all_daemons()
    if args.json:
        return json.dumps([instance.to_json() for instance in found], indent=2)
    return render_table(found)


def _stepdown(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        targets = [args.control_socket]
    elif args.vhid is not None:
        targets = [i.socket for i in _running(_all_daemons(), args.vhid)]
    else:
        targets = [_only_daemon("stepdown").socket]
    stepped: list[str] = []
    failures: list[str] = []
    for path in targets:
        try:
            answer = _ask(path, {"command": "stepdown", "vhid": args.vhid})
        except ControlError as exc:
            failures.append(str(exc) if len(targets) == 1 else f"{path}: {exc}")
            continue
        stepped += (str(host) for host in answer.get("stepped_down") or [])
    lines = [f"{host}: stepped down to BACKUP" for host in stepped]
    if failures:
        if lines:
            print("\n".join(lines), flush=True)  # what did happen, before the error
        raise ControlError("; ".join(failures))
    if not lines:
        which = "no virtual host" if args.vhid is None else f"no virtual host with vhid {args.vhid}"
        return f"nothing to do: {which} was MASTER"
    return "\n".join(lines)


def _reload(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        path = args.control_socket
    elif args.vhid is not None:
        running = _running(_all_daemons(), args.vhid)
        if len(running) > 1:
            listed = ", ".join(i.socket for i in running)
            raise ControlError(
                f"vhid {args.vhid} is run by {len(running)} pycarp daemons ({listed}); "
                "give --control-socket"
            )
        path = running[0].socket
    else:
        path = _only_daemon("reload").socket
    return render_reload(_ask(path, {"command": "reload"}, RELOAD_TIMEOUT))


def _ask(path: str, payload: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    answer = request(path, payload, timeout)
    if answer.get("ok") is not True:
        raise ControlError(str(answer.get("error") or "the daemon refused without a reason"))
    return answer


# --- finding the daemons -----------------------------------------------------------


def _all_daemons() -> list[Instance]:
    """Every daemon in this namespace's run directory; ControlError if none answers.

    The ones that cannot be reached are mentioned on stderr.
    """
    directory = run_directory()
    found = survey(socket_paths(directory), TIMEOUT)
    for message in found.unreachable.values():
        print(f"pycarp: warning: {message}", file=sys.stderr)
    if not found.found:
        raise ControlError(
            f"no pycarp is running here: no control socket in {directory} answered "
            "(is the daemon started? --control-socket?)"
        )
    return found.found


def _running(found: Sequence[Instance], vhid: int) -> list[Instance]:
    """The daemons among ``found`` that run ``vhid``; ControlError if none does."""
    running = [instance for instance in found if instance.runs(vhid)]
    if not running:
        listed = ", ".join(f"{i.socket} (vhid {_vhids(i)})" for i in found)
        raise ControlError(f"no virtual host with vhid {vhid} in any pycarp here ({listed})")
    return running


def _only_daemon(command: str) -> Instance:
    """The one daemon running here; ControlError naming them all if there are several."""
    found = _all_daemons()
    if len(found) > 1:
        listed = ", ".join(i.socket for i in found)
        raise ControlError(
            f"{len(found)} pycarp daemons are running ({listed}): "
            f"give a VHID (pycarp {command} VHID) or --control-socket"
        )
    return found[0]


def _vhids(instance: Instance) -> str:
    return ", ".join(str(vhid) for vhid in instance.vhids) or "none"


# --- command line ------------------------------------------------------------------


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


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=f"pycarp {command}", description=description)
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=None,
        help=f"the daemon's control socket (default: each *.sock in {run_directory()})",
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

COLUMNS = (
    *("INSTANCE", "INTERFACE", "VHID", "STATE", "FOR", "REASON", "MASTER", "SENT/RECV"),
    "DROPS",
)
FAULT_INDENT = "  "


def render_table(instances: Sequence[Instance]) -> str:
    """The status table: one row per virtual host of each daemon, columns aligned.

    INSTANCE names the daemon by its socket (``eth0-101`` for
    /run/pycarp/eth0-101.sock). A host with a fault gets a line of its own
    under its row.
    """
    hosts = [(instance.name, host) for instance in instances for host in instance.hosts]
    if not hosts:
        return "no virtual hosts"
    rows = [COLUMNS, *(_row(name, host) for name, host in hosts)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [_line(COLUMNS, widths)]
    for row, (_, host) in zip(rows[1:], hosts, strict=True):
        lines.append(_line(row, widths))
        if host.get("fault"):  # absent, null or empty: no fault
            lines.append(f"{FAULT_INDENT}fault: {host['fault']}")
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _row(name: str, host: dict[str, Any]) -> tuple[str, ...]:
    return (
        name,
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
