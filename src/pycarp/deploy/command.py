"""``pycarp render smf|systemd|scripts|ifupdown``: service definitions, up/down scripts, hooks.

``render smf`` prints an SMF manifest (illumos, SmartOS) with one instance
per config file, ``render systemd`` a systemd unit (``--template``: the
template unit pycarp@.service, one instance per config file),
``render scripts`` ucarp-style up/down scripts, ``render ifupdown`` the
ifupdown hooks for Debian's ucarp stanzas (written to /etc/network unless
``--print``). Nothing is read from the machine except the path of the pycarp
program (``--pycarp`` overrides it, for rendering for another host).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pycarp.cli.parser import EXIT_USAGE, Parser
from pycarp.deploy.common import RenderError, check_program, check_user
from pycarp.deploy.ifupdown import (
    DEFAULT_IFUPDOWN_DIR,
    HOOK_PATHS,
    debian_hook_warning,
    render_ifupdown,
    write_ifupdown,
)
from pycarp.deploy.scripts import OS_NAMES, SCRIPT_NAMES, render_scripts, write_scripts
from pycarp.deploy.smf import (
    DEFAULT_FMRI,
    DEFAULT_SMF_CONFIG,
    DEFAULT_SMF_USER,
    SMF_PRIVILEGES,
    check_fmri,
    render_smf,
    smf_instances,
)
from pycarp.deploy.systemd import (
    DEFAULT_SYSTEMD_CONFIG,
    DEFAULT_SYSTEMD_USER,
    DEFAULT_TEMPLATE_CONFIG,
    render_systemd,
    unit_config,
)

__all__ = ["main"]

PROG = "pycarp render"
EXIT_OK = 0
EXIT_FAILED = 1


def _build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Print an SMF manifest, a systemd unit, up/down scripts or ifupdown hooks "
        "for pycarp.",
    )
    kinds = parser.add_subparsers(
        dest="kind", required=True, metavar="{smf,systemd,scripts,ifupdown}"
    )
    smf = kinds.add_parser("smf", help="SMF manifest (illumos, SmartOS)", prog=f"{PROG} smf")
    smf.add_argument(
        "--config",
        default=DEFAULT_SMF_CONFIG,
        metavar="FILE",
        help=f"config file of the instances (default {DEFAULT_SMF_CONFIG})",
    )
    smf.add_argument(
        "--fmri",
        default=DEFAULT_FMRI,
        metavar="NAME",
        help=f"service name (default {DEFAULT_FMRI})",
    )
    smf.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="NAME[=FILE]",
        help="an instance, with its own config file (default FILE: --config); "
        "repeat for several (default: one instance, 'default')",
    )
    _add_user_and_program(
        smf,
        DEFAULT_SMF_USER,
        f"user of the methods (default {DEFAULT_SMF_USER}, limited to {SMF_PRIVILEGES})",
    )
    systemd = kinds.add_parser("systemd", help="systemd unit", prog=f"{PROG} systemd")
    # help strings are %-formatted: the template's %i must be written %%i
    template_config = DEFAULT_TEMPLATE_CONFIG.replace("%", "%%")
    systemd.add_argument(
        "--config",
        metavar="FILE",
        help=f"config file (default {DEFAULT_SYSTEMD_CONFIG}; with --template "
        f"{template_config}, where %%i is the instance name)",
    )
    systemd.add_argument(
        "--template",
        action="store_true",
        help="the template unit pycarp@.service: one instance per config file",
    )
    _add_user_and_program(
        systemd, DEFAULT_SYSTEMD_USER, f"user and group to run as (default {DEFAULT_SYSTEMD_USER})"
    )
    scripts = kinds.add_parser("scripts", help="up/down scripts", prog=f"{PROG} scripts")
    scripts.add_argument("--os", required=True, choices=OS_NAMES, dest="os_name")
    scripts.add_argument(
        "--dir",
        metavar="DIR",
        help=f"write {' and '.join(SCRIPT_NAMES)} there (mode 0755) instead of printing them",
    )
    scripts.add_argument("--force", action="store_true", help="with --dir: replace existing files")
    ifupdown = kinds.add_parser(
        "ifupdown",
        help="ifupdown hooks for Debian's ucarp-* stanzas",
        prog=f"{PROG} ifupdown",
    )
    ifupdown.add_argument(
        "--dir",
        default=DEFAULT_IFUPDOWN_DIR,
        metavar="DIR",
        help=f"write {' and '.join(HOOK_PATHS)} there, mode 0755 (default {DEFAULT_IFUPDOWN_DIR})",
    )
    ifupdown.add_argument(
        "--print", action="store_true", help="print the hooks (for --dir) instead of writing them"
    )
    ifupdown.add_argument("--force", action="store_true", help="replace existing hooks")
    ifupdown.add_argument("--pycarp", metavar="PATH", help="path of pycarp on the target host")
    return parser


def _add_user_and_program(parser: argparse.ArgumentParser, user: str, user_help: str) -> None:
    parser.add_argument("--user", default=user, metavar="NAME", help=user_help)
    parser.add_argument("--pycarp", metavar="PATH", help="path of pycarp on the target host")


def _smf(args: argparse.Namespace) -> str:
    fmri = check_fmri(args.fmri)
    instances = smf_instances(args.instance, args.config)
    return render_smf(
        instances, fmri=fmri, program=check_program(args.pycarp), user=check_user(args.user)
    )


def _systemd(args: argparse.Namespace) -> str:
    return render_systemd(
        config=unit_config(args.config, template=args.template),
        program=check_program(args.pycarp),
        user=check_user(args.user),
        template=args.template,
    )


def _scripts(args: argparse.Namespace) -> str:
    scripts = render_scripts(args.os_name)
    if args.dir is None:
        return "".join(f"# ===== {name} =====\n{text}" for name, text in scripts.items())
    paths = write_scripts(scripts, args.dir, force=args.force)
    print("\n".join(f"wrote {path}" for path in paths), file=sys.stderr)
    return ""


def _ifupdown(args: argparse.Namespace) -> str:
    hooks = render_ifupdown(program=check_program(args.pycarp), directory=args.dir)
    if args.print:
        return "".join(f"# ===== {name} =====\n{text}" for name, text in hooks.items())
    paths = write_ifupdown(hooks, args.dir, force=args.force)
    notes = [f"wrote {path}" for path in paths]
    warning = debian_hook_warning(args.dir)
    print("\n".join([*notes, *([warning] if warning else [])]), file=sys.stderr)
    return ""


_ACTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "smf": _smf,
    "systemd": _systemd,
    "scripts": _scripts,
    "ifupdown": _ifupdown,
}


def main(argv: Sequence[str]) -> int:
    """``pycarp render smf|systemd|scripts|ifupdown [options]``."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        sys.stdout.write(_ACTIONS[args.kind](args))
    except RenderError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
