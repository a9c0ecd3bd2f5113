"""The pycarp command: a subcommand, or ucarp 1.5.2's options to run the daemon.

What the options mean and how they are checked is pycarp.config's (see
pycarp.config.ucarp); here they are read from argv, and a bad one is a
one-line ``pycarp: error: ...`` with exit status 2. ``--config`` also takes
a TOML file describing several virtual hosts (see pycarp.config.tomlfile);
``--check-config`` (or ``pycarp check-config``) checks without starting.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from pycarp.cli.parser import EXIT_USAGE
from pycarp.cli.usage import PROG, summary, usage, version
from pycarp.config.getopt import Given, InfoRequested, scan
from pycarp.config.load import Loaded, Request, SettingsLoader, load, loader, make_request
from pycarp.config.optionsfile import SourcedArg
from pycarp.config.settings import DaemonSettings
from pycarp.config.ucarp import TABLE
from pycarp.core.errors import ConfigError

__all__ = ["SUBCOMMANDS", "main", "parse_daemon_args"]

Subcommand = Callable[[list[str]], int]


class _DaemonRun(Protocol):
    def __call__(self, settings: DaemonSettings, *, reload: SettingsLoader) -> int: ...


def _lazy(module_name: str, attribute: str = "main") -> Subcommand:
    """A subcommand whose module is imported only when it runs (startup stays quick)."""

    def run(args: list[str]) -> int:
        module = importlib.import_module(module_name)
        entry: Subcommand = getattr(module, attribute)
        return entry(args)

    run.__name__ = f"{module_name}.{attribute}"
    return run


def _check_config_command(args: list[str]) -> int:
    """``pycarp check-config FILE [options]``: --check-config with the file as operand."""
    return _main(args, file_operand=True)


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": _lazy("pycarp.demo.command"),
    "check-config": _check_config_command,
    "status": _lazy("pycarp.client.commands", "status_main"),
    "stepdown": _lazy("pycarp.client.commands", "stepdown_main"),
    "promote": _lazy("pycarp.client.commands", "promote_main"),
    "demote": _lazy("pycarp.client.commands", "demote_main"),
    "events": _lazy("pycarp.client.events", "events_main"),
    "reload": _lazy("pycarp.client.commands", "reload_main"),
    "render": _lazy("pycarp.deploy.command"),
    "check": _lazy("pycarp.vmadm.command"),
    "lab": _lazy("pycarp.lab.command"),
}


def main(argv: list[str] | None = None) -> int:
    """The ``pycarp`` program: a subcommand, or ucarp's options to run the daemon."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        return SUBCOMMANDS[args[0]](args[1:])
    if argv is None:  # this process's own command line: keep --pass out of ps
        from pycarp.runtime.secrets import reexec_without_password  # only the daemon needs it

        args = reexec_without_password(args)
    return _main(args)


def _main(args: list[str], *, file_operand: bool = False) -> int:
    try:
        request, loaded = _parse_or_exit(args, file_operand=file_operand)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if request.check_only:
        sys.stdout.write(summary(loaded, check_machine=request.check_machine))
        return 0
    return _run_daemon(loaded.settings, reload=loader(request))


def _run_daemon(settings: DaemonSettings, *, reload: SettingsLoader) -> int:
    runtime = importlib.import_module("pycarp.runtime.daemon")
    run: _DaemonRun = runtime.run
    return run(settings, reload=reload)


def parse_daemon_args(argv: Sequence[str]) -> DaemonSettings:
    """ucarp's options as DaemonSettings, or exit like argparse does.

    A bad option prints ``pycarp: error: ...`` on stderr and raises
    SystemExit(2); --help and --version print on stdout and raise
    SystemExit(0).
    """
    return _parse_or_exit(argv)[1].settings


def _parse_or_exit(argv: Sequence[str], *, file_operand: bool = False) -> tuple[Request, Loaded]:
    try:
        request = _read_command_line(argv, file_operand=file_operand)
        return request, load(request)
    except InfoRequested as info:
        sys.stdout.write(usage(SUBCOMMANDS) if info.option == "help" else version())
        raise SystemExit(0) from None
    except ConfigError as exc:
        for line in str(exc).splitlines():  # a TOML file reports all its problems
            print(f"{PROG}: error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _read_command_line(argv: Sequence[str], *, file_operand: bool) -> Request:
    args = [SourcedArg(arg) for arg in argv]
    if not file_operand:
        return make_request(scan(args, TABLE))
    operands: list[SourcedArg] = []
    given = scan(args, TABLE, operands)
    return make_request([_file_operand(operands), *given])


def _file_operand(operands: Sequence[SourcedArg]) -> Given:
    if len(operands) != 1:
        found = "none" if not operands else ", ".join(repr(o.value) for o in operands)
        raise ConfigError(
            "check-config",
            f"give exactly one config file (found {found}); "
            f"usage: {PROG} check-config FILE [--no-machine-checks] [options]",
        )
    return Given(TABLE.by_long["check-config"], operands[0].value, None)
