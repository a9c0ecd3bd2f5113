"""`pycarp status`, `stepdown`, `promote`, `demote`, `reload`: ask the running daemons.

They talk to the daemons' control sockets (pycarp.runtime.control): the one
given with --control-socket, or else every daemon in the run directory of
this network namespace (pycarp.client.instances), picking by vhid or group
where one is needed. They exit 0 when it was done, 1 when a daemon said no
or none could be reached, 2 for a bad command line. Errors are one line on
stderr. `pycarp events` (pycarp.client.events) shares the helpers here.
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
from pycarp.client.table import describe_group, render_reload, render_table
from pycarp.core.checkconfig import MAX_GROUP, name_problem
from pycarp.core.config import VHID_RANGE
from pycarp.platform.rundir import run_directory

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "ControlError",
    "all_daemons",
    "command_parser",
    "demote_main",
    "promote_main",
    "quiet_stdout",
    "reload_main",
    "request",
    "run_command",
    "status_main",
    "stepdown_main",
]

EXIT_OK = 0
EXIT_FAILED = 1
RELOAD_TIMEOUT = 30.0  # a reload may open interfaces and run scripts


# --- subcommands -----------------------------------------------------------------


def status_main(argv: Sequence[str]) -> int:
    """``pycarp status [--json] [--control-socket PATH]``."""
    parser = command_parser(
        "status", "Show the state of each virtual host, check and demotion group of the daemons."
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list, one object per daemon, indented"
    )
    return run_command(parser, argv, _status)


def stepdown_main(argv: Sequence[str]) -> int:
    """``pycarp stepdown [VHID] [--control-socket PATH]``."""
    parser = _vhid_parser(
        "stepdown",
        "Make MASTER virtual hosts step down to BACKUP (as SIGUSR2).",
        "only this vhid, on every daemon that runs it (default: all, of the one daemon)",
    )
    return run_command(parser, argv, _stepdown)


def promote_main(argv: Sequence[str]) -> int:
    """``pycarp promote [VHID] [--control-socket PATH]``."""
    parser = _vhid_parser(
        "promote",
        "Make virtual hosts MASTER now, whatever the election says, until they leave MASTER.",
        "only this vhid, on every daemon that runs it (default: all, of the one daemon)",
    )
    return run_command(parser, argv, _promote)


def demote_main(argv: Sequence[str]) -> int:
    """``pycarp demote GROUP [+N|-N] [--control-socket PATH]``."""
    parser = command_parser(
        "demote",
        "Change the manual part of a demotion group's count (never below 0), on every "
        "daemon that has the group; +0 only shows it.",
    )
    parser.add_argument("group", type=_group, metavar="GROUP", help="the demotion group")
    parser.add_argument(
        "by",
        nargs="?",
        type=_adjustment,
        default=1,
        metavar="+N|-N",
        help=f"add N to it, or take N off (-{MAX_GROUP}..+{MAX_GROUP}; default +1)",
    )
    return run_command(parser, argv, _demote)


def reload_main(argv: Sequence[str]) -> int:
    """``pycarp reload [VHID] [--control-socket PATH]``."""
    parser = _vhid_parser(
        "reload",
        "Make a running daemon re-read its configuration.",
        "reload the daemon that runs this vhid (needed when several run)",
    )
    return run_command(parser, argv, _reload)


def _vhid_parser(command: str, description: str, vhid_help: str) -> argparse.ArgumentParser:
    parser = command_parser(command, description)
    parser.add_argument("vhid", nargs="?", type=_vhid, metavar="VHID", help=vhid_help)
    return parser


def _status(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        found = [query(args.control_socket, TIMEOUT)]
    else:
        found = all_daemons()
    if args.json:
        return json.dumps([instance.to_json() for instance in found], indent=2)
    return render_table(found)


def _stepdown(args: argparse.Namespace) -> str:
    lines = _each_host(args, "stepdown", "stepped_down", "stepped down to BACKUP")
    if not lines:
        which = "no virtual host" if args.vhid is None else f"no virtual host with vhid {args.vhid}"
        return f"nothing to do: {which} was MASTER"
    return "\n".join(lines)


def _promote(args: argparse.Namespace) -> str:
    lines = _each_host(args, "promote", "promoted", "promoted to MASTER")
    if not lines:
        which = "every virtual host" if args.vhid is None else f"vhid {args.vhid}"
        return f"nothing to do: {which} was MASTER already"
    return "\n".join(lines)


def _each_host(args: argparse.Namespace, command: str, key: str, done: str) -> list[str]:
    """Send ``command`` for args.vhid to the daemons that run it; a line per host it did.

    Without a vhid (nor --control-socket) the one daemon running here is asked.
    """
    if args.control_socket is not None:
        targets = [args.control_socket]
    elif args.vhid is not None:
        targets = [i.socket for i in _running(all_daemons(), args.vhid)]
    else:
        targets = [_only_daemon(command).socket]
    payload = {"command": command, "vhid": args.vhid}
    return _ask_each(
        targets, payload, lambda answer: [f"{h}: {done}" for h in answer.get(key) or []]
    )


def _demote(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        targets = [args.control_socket]
    else:
        targets = [i.socket for i in _having(all_daemons(), args.group)]
    payload = {"command": "demote", "group": args.group, "by": args.by}
    lines = _ask_each(
        targets, payload, lambda answer: [describe_group(answer, answer.get("group", args.group))]
    )
    return "\n".join(lines)


def _ask_each(
    targets: Sequence[str],
    payload: dict[str, Any],
    lines_of: Callable[[dict[str, Any]], list[str]],
) -> list[str]:
    """Ask each daemon of ``targets``; the lines of their answers.

    If any says no: what the others did is printed, then ControlError says why.
    """
    lines: list[str] = []
    failures: list[str] = []
    for path in targets:
        try:
            answer = _ask(path, payload)
        except ControlError as exc:
            failures.append(str(exc) if len(targets) == 1 else f"{path}: {exc}")
            continue
        lines += lines_of(answer)
    if failures:
        if lines:
            print("\n".join(lines), flush=True)  # what did happen, before the error
        raise ControlError("; ".join(failures))
    return lines


def _reload(args: argparse.Namespace) -> str:
    if args.control_socket is not None:
        path = args.control_socket
    elif args.vhid is not None:
        running = _running(all_daemons(), args.vhid)
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


def all_daemons() -> list[Instance]:
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
    found = all_daemons()
    if len(found) > 1:
        listed = ", ".join(i.socket for i in found)
        raise ControlError(
            f"{len(found)} pycarp daemons are running ({listed}): "
            f"give a VHID (pycarp {command} VHID) or --control-socket"
        )
    return found[0]


def _having(found: Sequence[Instance], group: str) -> list[Instance]:
    """The daemons among ``found`` that have demotion group ``group``; ControlError if none."""
    having = [instance for instance in found if group in _groups(instance)]
    if not having:
        listed = ", ".join(f"{i.socket} ({', '.join(_groups(i)) or 'no groups'})" for i in found)
        raise ControlError(f"no demotion group {group!r} in any pycarp here ({listed})")
    return having


def _groups(instance: Instance) -> list[str]:
    return [str(group.get("name")) for group in instance.groups]


def _vhids(instance: Instance) -> str:
    return ", ".join(str(vhid) for vhid in instance.vhids) or "none"


# --- command line ------------------------------------------------------------------


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    action: Callable[[argparse.Namespace], str | None],
) -> int:
    """Parse ``argv``, run ``action`` and print what it returns (None: it printed already).

    A ControlError is the one-line error and exit status 1.
    """
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        output = action(args)
    except ControlError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if output is not None:
        try:
            print(output, flush=True)
        except BrokenPipeError:  # `pycarp status | head`: the reader had enough
            quiet_stdout()
    return EXIT_OK


def quiet_stdout() -> None:
    """After EPIPE on stdout: no more output, and no error when Python flushes it at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def command_parser(command: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``pycarp COMMAND``, with --control-socket."""
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
    if vhid not in VHID_RANGE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a vhid (1-255)")
    return vhid


def _group(text: str) -> str:
    if name_problem(text) is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a demotion group (1 to 63 letters, digits, '_', '.' or '-')"
        )
    return text


def _adjustment(text: str) -> int:
    """+N or -N (a plain N is +N)."""
    try:
        by = int(text, 10)
    except ValueError:
        by = None
    if by is None or not -MAX_GROUP <= by <= MAX_GROUP:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an adjustment (+N or -N, N at most {MAX_GROUP})"
        )
    return by
