"""pycarp(8) and pycarp.toml(5), generated from the tables the program itself uses.

The options come from pycarp.config.ucarp's table, the TOML keys and their
types from pycarp.config.tomlkeys, what each means from
pycarp.config.keydocs and optiondocs, the subcommands from the dispatcher, the signals and
exit statuses from the code that handles them; only prose is
pycarp.cli.pagetext's. The pages in man/ are this module's output, and a
test keeps them so:

    python -m pycarp.cli.manpage --write man/     # after changing a table
    python -m pycarp.cli.manpage --check man/     # exit 1 if a page is stale
"""

from __future__ import annotations

import signal
import sys
import tomllib
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from pycarp import __version__
from pycarp.cli import pagetext, roff
from pycarp.cli.main import SUBCOMMANDS
from pycarp.cli.parser import EXIT_USAGE, Parser
from pycarp.cli.usage import PROG
from pycarp.config import tomlkeys, ucarp
from pycarp.config.getopt import Option
from pycarp.config.keydocs import CHECK_DOCS, HOST_DOCS, PROCESS_DOCS, REQUIRED, KeyDoc
from pycarp.config.optiondocs import OPTION_DOCS
from pycarp.config.settings import SOCKET_SUFFIX, TOML_SOCKET_NAME
from pycarp.platform.rundir import ILLUMOS_RUN_DIR, LINUX_RUN_DIR
from pycarp.runtime.daemon import STOP_SIGNALS

__all__ = [
    "REGENERATE",
    "daemon_page",
    "main",
    "pages",
    "problems",
    "toml_literal",
    "toml_page",
]

REGENERATE = "python -m pycarp.cli.manpage --write man/"
_SOURCE = f"{PROG} {__version__}"
_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
}


def toml_literal(text: str) -> object | None:
    """The value of ``text`` written as a TOML value ("1", '"on"', "[]"), None if it is not one."""
    try:
        value: object = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return None
    return value


def problems() -> list[str]:
    """What a table defines without its entry in the docs, or the docs name without a table."""
    where = "in pycarp/config/keydocs.py"
    tables: list[tuple[str, Collection[str], Collection[str]]] = [
        ("in pycarp/config/optiondocs.py OPTION_DOCS", [o.key for o in ucarp.OPTIONS], OPTION_DOCS),
        (f"{where} PROCESS_DOCS", tomlkeys.PROCESS_KEYS, PROCESS_DOCS),
        (f"{where} HOST_DOCS", tomlkeys.HOST_KEYS, HOST_DOCS),
        (f"{where} CHECK_DOCS", tomlkeys.CHECK_KEYS, CHECK_DOCS),
        ("in pycarp/cli/pagetext.py SUBCOMMAND_DOCS", SUBCOMMANDS, pagetext.SUBCOMMAND_DOCS),
    ]
    found = []
    for table, defined, documented in tables:
        found += [f"{name}: no entry {table}" for name in defined if name not in documented]
        found += [
            f"{name}: an entry {table}, but no such one"
            for name in documented
            if name not in defined
        ]
    return found


def pages() -> dict[str, str]:
    """Each page by its file name; ValueError listing the problems() if there are any."""
    if found := problems():
        raise ValueError("\n".join(found))
    return {f"{PROG}.8": daemon_page(), f"{PROG}.toml.5": toml_page()}


# --- pycarp(8) ---------------------------------------------------------------------


def daemon_page() -> str:
    parts = [
        roff.section("name"),
        rf"{PROG} \- a ucarp\-compatible CARP daemon for shared virtual IP addresses",
        roff.section("synopsis"),
        *_synopsis(),
        roff.section("description"),
        *map(roff.paragraph, pagetext.DAEMON_DESCRIPTION),
        roff.paragraph(_with_toml_sentence()),
        roff.section("options"),
        roff.paragraph("A flag (an option without a value) is off unless given."),
        *(_option_entry(option) for option in ucarp.OPTIONS),
        roff.section("subcommands"),
        roff.paragraph("Each subcommand takes `--help`."),
        *(_subcommand_entry(name) for name in SUBCOMMANDS),
        roff.section("signals"),
        *_signals(),
        roff.section("exit status"),
        *_exit_statuses(),
        roff.section("environment"),
        *_environment(),
        roff.section("files"),
        *_files(),
        roff.section("examples"),
        *_examples(),
        roff.section("see also"),
        _see_also(pagetext.DAEMON_SEE_ALSO),
    ]
    return roff.page(PROG, 8, _SOURCE, "System Manager's Manual", parts)


def _synopsis() -> list[str]:
    required = [ucarp.TABLE.by_long[key] for key in ("interface", "srcip", "vhid", "addr")]
    words = " ".join(f"{roff.bold(o.label)}={roff.italic(o.metavar or '')}" for o in required)
    password = ucarp.TABLE.by_long["passfile"]
    tail = rf"[{roff.bold(password.label)}={roff.italic(password.metavar or '')}] [\fIoptions\fR]"
    return [
        f"{roff.bold(PROG)} {words} {tail}",
        ".br",
        rf"{roff.bold(PROG)} {roff.bold('--config')}={roff.italic('file')} [\fIoptions\fR]",
        ".br",
        rf"{roff.bold(PROG)} \fIsubcommand\fR [\fIarguments\fR]",
    ]


def _with_toml_sentence() -> str:
    allowed = [f"--{o.key}" for o in ucarp.OPTIONS if o.key in ucarp.PROCESS_KEYS]
    return (
        f"With a TOML file, only {', '.join(allowed[:-1])} and {allowed[-1]} may be given "
        "on the command line too; they override the file's."
    )


def _option_names(option: Option) -> str:
    value = f"={roff.italic(option.metavar)}" if option.metavar else ""
    names = [f"{roff.bold('--' + name)}{value}" for name in option.names]
    if option.short is not None:
        short = f" {roff.italic(option.metavar)}" if option.metavar else ""
        names.insert(0, f"{roff.bold('-' + option.short)}{short}")
    return ", ".join(names)


def _option_entry(option: Option) -> str:
    doc = OPTION_DOCS[option.key]
    facts = [f"Values: {doc.values}."] if doc.values and option.takes_value else []
    if doc.default.startswith(REQUIRED):
        facts.append(f"{doc.default.capitalize()}.")
    elif doc.default and option.takes_value:
        value = toml_literal(doc.default)
        facts.append(f"Default: `{value}`." if value is not None else f"Default: {doc.default}.")
    if not option.ucarp:
        facts.append("(pycarp only: ucarp has no such option.)")
    return roff.tagged(_option_names(option), doc.text, *_joined(facts))


def _joined(facts: Sequence[str]) -> list[str]:
    return [" ".join(facts)] if facts else []


def _subcommand_entry(name: str) -> str:
    arguments, text = pagetext.SUBCOMMAND_DOCS[name]
    return roff.tagged(f"{roff.bold(f'{PROG} {name}')} {roff.escape(arguments)}", text)


def _signals() -> list[str]:
    stops = ", ".join(roff.bold(signal.Signals(s).name) for s in STOP_SIGNALS)
    return [
        roff.tagged(
            roff.bold("SIGUSR1"),
            "Log each virtual host's state, the reason of its last transition and the last "
            "master seen.",
        ),
        roff.tagged(
            roff.bold("SIGUSR2"),
            "Step down to BACKUP (the down script runs), then wait 3 s plus the master-down "
            "interval before taking over again if nobody else does.",
        ),
        roff.tagged(
            stops,
            "Stop after a graceful hand-over: a MASTER advertises with advbase 255 and "
            "advskew 255, so that a backup takes over at once, keeps its addresses until it "
            "hears the new master, then removes them and, with --shutdown, runs its down "
            "script. A second signal stops at once.",
        ),
    ]


def _exit_statuses() -> list[str]:
    return [
        roff.tagged(
            roff.bold("0"),
            "Stopped by a signal; --help, --version or a good --check-config; a subcommand "
            "that succeeded.",
        ),
        roff.tagged(
            roff.bold("1"),
            "The daemon could not start (an interface, a socket, another daemon serving the "
            "same vhid), or a client subcommand failed.",
        ),
        roff.tagged(
            roff.bold(str(EXIT_USAGE)),
            "A bad option, value or configuration file: nothing was started.",
        ),
    ]


def _environment() -> list[str]:
    return [
        roff.tagged(
            roff.bold(ucarp.PASSWORD_VARIABLE),
            "The password when neither --pass nor --passfile is given: unlike the command "
            "line, the environment is not readable by other users. Scripts do not inherit it. "
            "TOML files do not read it.",
        ),
        roff.tagged(
            roff.bold("NOTIFY_SOCKET") + ", " + roff.bold("WATCHDOG_USEC"),
            "Set by systemd: pycarp then reports READY, STATUS and STOPPING, and keeps the "
            "watchdog fed.",
        ),
    ]


def _files() -> list[str]:
    run = LINUX_RUN_DIR
    return [
        roff.tagged(
            roff.bold(f"{run}/<interface>-<vhid>{SOCKET_SUFFIX}"),
            "The control socket of a daemon started with options.",
        ),
        roff.tagged(
            roff.bold(f"{run}/{TOML_SOCKET_NAME}"),
            "The control socket of a daemon started with a TOML file.",
        ),
        roff.tagged(
            roff.bold(f"{run}/netns-<inode>/"),
            "The run directory in a network namespace other than the machine's own "
            f"({ILLUMOS_RUN_DIR} on illumos).",
        ),
        roff.tagged(
            roff.bold(f"/etc/{PROG}/{PROG}.toml"),
            "The configuration file that `pycarp render systemd` starts pycarp with.",
        ),
    ]


def _examples() -> Iterator[str]:
    for text, commands in pagetext.DAEMON_EXAMPLES:
        yield roff.paragraph(text)
        yield roff.lines(commands)


def _see_also(pages: Sequence[str]) -> str:
    refs = []
    for ref in pages:
        name, _, number = ref.partition("(")
        refs.append(rf"{roff.bold(name)}({number}")
    return ",\n".join(refs)


# --- pycarp.toml(5) ----------------------------------------------------------------


def toml_page() -> str:
    parts = [
        roff.section("name"),
        rf"{PROG}.toml \- the TOML configuration file of {PROG}",
        roff.section("synopsis"),
        rf"{roff.bold(f'/etc/{PROG}/{PROG}.toml')}",
        roff.section("description"),
        *map(roff.paragraph, pagetext.TOML_DESCRIPTION),
        roff.section("process options"),
        *map(roff.paragraph, pagetext.TOML_PROCESS),
        *_key_entries(tomlkeys.PROCESS_KEYS, PROCESS_DOCS, required=()),
        roff.section("virtual hosts"),
        *map(roff.paragraph, pagetext.TOML_HOSTS),
        *_key_entries(tomlkeys.HOST_KEYS, HOST_DOCS, required=tomlkeys.REQUIRED),
        roff.section("health checks"),
        *map(roff.paragraph, pagetext.TOML_CHECKS),
        *_key_entries(tomlkeys.CHECK_KEYS, CHECK_DOCS, required=()),
        roff.section("example"),
        roff.lines(pagetext.TOML_EXAMPLE),
        roff.section("see also"),
        _see_also(pagetext.TOML_SEE_ALSO),
    ]
    return roff.page(f"{PROG}.toml", 5, _SOURCE, "File Formats Manual", parts)


def _type_name(expected: tomlkeys.KeyType) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_TYPE_NAMES[one] for one in types)


def _key_entries(
    keys: Mapping[str, tomlkeys.KeyType], docs: Mapping[str, KeyDoc], required: Sequence[str]
) -> list[str]:
    entries = []
    for key, expected in keys.items():
        doc = docs[key]
        tag = f"{roff.bold(key)} = {roff.italic(_type_name(expected))}"
        facts = [f"Values: {doc.values}."] if doc.values else []
        if key in required:
            facts.append("Required (here or in [defaults]).")
        elif doc.default.startswith(REQUIRED):  # "required with IPv4 virtual addresses"
            facts.append(f"{doc.default.capitalize()}.")
        elif doc.default:
            literal = toml_literal(doc.default) is not None
            facts.append(f"Default: `{doc.default}`." if literal else f"Default: {doc.default}.")
        entries.append(roff.tagged(tag, doc.text, *_joined(facts)))
    return entries


# --- the command -------------------------------------------------------------------


def _stale(directory: Path) -> list[str]:
    """The pages in ``directory`` that differ from what the tables give (or are missing)."""
    stale = []
    for name, text in pages().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pycarp.cli.manpage",
        description="Write pycarp(8) and pycarp.toml(5) from pycarp's tables, or check them.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", metavar="DIR", type=Path, help="write the pages into DIR")
    what.add_argument("--check", metavar="DIR", type=Path, help="exit 1 if a page in DIR is stale")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if found := problems():
        for problem in found:
            print(f"{parser.prog}: {problem}", file=sys.stderr)
        return 1
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, text in pages().items():
            (args.write / name).write_text(text, encoding="utf-8")
            print(args.write / name)
        return 0
    stale = _stale(args.check)
    for name in stale:
        print(f"{args.check / name}: stale; regenerate with: {REGENERATE}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
