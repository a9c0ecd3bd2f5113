"""getopt_long's rules, over arguments that know where they were written.

Our own rather than argparse, because argparse cannot say which line of an
options file an argument came from, and its abbreviation rules differ from
getopt_long's: a long option may be shortened to any prefix of exactly one
name, short letters cluster (``-Pk50``), and a value goes as ``--vhid=5``,
``--vhid 5``, ``-v 5`` or ``-v5``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pycarp.config.optionsfile import SourcedArg
from pycarp.core.errors import ConfigError

__all__ = ["Given", "InfoRequested", "Option", "OptionTable", "scan"]

# Options that stop scanning at once: what they ask for is printed instead of running.
INFO_KEYS = frozenset({"help", "version"})


class InfoRequested(Exception):
    """--help or --version was given; ``option`` says which ("help" or "version")."""

    def __init__(self, option: str, origin: str | None = None) -> None:
        super().__init__(f"--{option}")
        self.option = option
        self.origin = origin  # where it was written, as Given.origin


@dataclass(frozen=True)
class Option:
    """One command-line option."""

    names: tuple[str, ...]  # long names; the first is the one messages use
    short: str | None
    metavar: str | None  # None: a flag, which takes no value
    help: str
    ucarp: bool = True  # in ucarp's table: wins abbreviation ties over pycarp's own

    @property
    def key(self) -> str:
        return self.names[0]

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None

    @property
    def label(self) -> str:
        return f"--{self.key}"


@dataclass(frozen=True)
class OptionTable:
    """Options, found by long name and by short letter."""

    options: tuple[Option, ...]
    by_long: dict[str, Option] = field(init=False)
    by_short: dict[str, Option] = field(init=False)

    def __post_init__(self) -> None:
        by_long = {name: option for option in self.options for name in option.names}
        by_short = {option.short: option for option in self.options if option.short}
        object.__setattr__(self, "by_long", by_long)
        object.__setattr__(self, "by_short", by_short)


@dataclass(frozen=True)
class Given:
    """One option as written, with its value and where it was written."""

    option: Option
    value: str
    origin: str | None  # "file:line (format)", or None for the command line

    def fail(self, reason: str) -> ConfigError:
        return ConfigError(self.option.label, reason, self.origin)

    def __repr__(self) -> str:
        # --pass's value must not reach a log or a traceback
        value = "<hidden>" if self.option.key == "pass" else repr(self.value)
        return f"Given({self.option.label}, {value}, {self.origin!r})"


def scan(
    args: Sequence[SourcedArg], table: OptionTable, operands: list[SourcedArg] | None = None
) -> list[Given]:
    """The options in ``args``; other words go to ``operands``, or are refused if None.

    Raises ConfigError for a word that is no option of ``table`` (or lacks
    its value), InfoRequested on --help or --version.
    """
    scanner = _Scanner(args, table)
    given: list[Given] = []
    while (arg := scanner.take()) is not None:
        if arg.value == "--":
            _take_operands(scanner.rest(), operands)
            break
        if arg.value.startswith("--"):
            given.append(scanner.long(arg))
        elif arg.value.startswith("-") and arg.value != "-":
            given.extend(scanner.short(arg))
        else:
            _take_operands([arg], operands)
    return given


def _take_operands(words: Sequence[SourcedArg], operands: list[SourcedArg] | None) -> None:
    if operands is not None:
        operands.extend(words)
    elif words:  # ucarp silently ignores them; here they are most likely a missing "-"
        first = words[0]
        reason = f"unexpected argument {first.value!r} (options start with -)"
        raise ConfigError(None, reason, first.origin)


class _Scanner:
    """Walks a list of arguments; an option may take the next one as its value."""

    def __init__(self, args: Sequence[SourcedArg], table: OptionTable) -> None:
        self._args = args
        self._next = 0
        self._table = table

    def take(self) -> SourcedArg | None:
        if self._next >= len(self._args):
            return None
        self._next += 1
        return self._args[self._next - 1]

    def rest(self) -> Sequence[SourcedArg]:
        return self._args[self._next :]

    def long(self, arg: SourcedArg) -> Given:
        name, has_value, inline = arg.value[2:].partition("=")
        option = self._lookup_long(name, arg.origin)
        if not option.takes_value:
            if has_value:
                raise ConfigError(None, f"{option.label} takes no value", arg.origin)
            return _flag(option, arg.origin)
        if has_value:
            return Given(option, inline, arg.origin)
        return Given(option, self._value_for(option.label, arg), arg.origin)

    def short(self, arg: SourcedArg) -> list[Given]:
        given: list[Given] = []
        letters = arg.value[1:]
        for position, letter in enumerate(letters):
            option = self._table.by_short.get(letter)
            if option is None:
                raise ConfigError(None, f"unknown option -{letter}", arg.origin)
            if not option.takes_value:
                given.append(_flag(option, arg.origin))
                continue
            # like getopt, the rest of the word is the value ("-v5"), else the next word
            attached = letters[position + 1 :]
            value = attached or self._value_for(f"-{letter}", arg)
            given.append(Given(option, value, arg.origin))
            break
        return given

    def _value_for(self, label: str, arg: SourcedArg) -> str:
        value = self.take()
        if value is None:
            raise ConfigError(None, f"{label} needs a value", arg.origin)
        return value.value

    def _lookup_long(self, name: str, origin: str | None) -> Option:
        """getopt_long's rule: an exact name, else a prefix of exactly one option.

        ucarp's own options are tried first so that an abbreviation keeps the
        meaning it has in ucarp (``--v`` is --vhid, not --version).
        """
        by_long = self._table.by_long
        if name in by_long:
            return by_long[name]
        for from_ucarp in (True, False) if name else ():
            side = [n for n, o in by_long.items() if o.ucarp is from_ucarp]
            names = sorted(n for n in side if n.startswith(name))
            keys = {by_long[n].key for n in names}  # --mcast and --mcastip are one option
            if len(keys) == 1:
                return by_long[names[0]]
            if keys:
                listed = ", ".join(f"--{n}" for n in names)
                raise ConfigError(None, f"ambiguous option --{name} (could be {listed})", origin)
        guess = difflib.get_close_matches(name, by_long, n=1)
        hint = f" (did you mean --{guess[0]}?)" if guess else ""
        raise ConfigError(None, f"unknown option --{name}{hint}", origin)


def _flag(option: Option, origin: str | None) -> Given:
    if option.key in INFO_KEYS:
        raise InfoRequested(option.key, origin)
    return Given(option, "", origin)
