"""Options files: ucarp command-line options kept in a file.

The format is what a shell would see if the file were pasted after
``ucarp``: options separated by blanks, one or more per line, a trailing
backslash to continue a line, ``'...'`` or ``"..."`` quoting (split with
:mod:`shlex`), ``#`` comments on their own line or after a blank, and blank
lines. Each line is split on its own, so every option is known by the line
it came from and errors can say ``ucarp.cfg:3``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from pycarp.config.files import CONFIG_FILE_LIMIT, FileProblem, read_regular_file
from pycarp.core.errors import ConfigError

__all__ = [
    "OptionsFileError",
    "SourcedArg",
    "read_options_file",
    "read_sourced_options",
    "split_options_text",
]

# shlex builds each word a character at a time, in time quadratic in its length:
# a bound on the line keeps a hostile file quick to refuse.
MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class SourcedArg:
    """One argument and where it was written (``"ucarp.cfg:3"``; None: argv)."""

    value: str
    origin: str | None = None


class OptionsFileError(ConfigError):
    """The file cannot be read or split; ``origin`` is the file's name, or "file:line"."""

    def __init__(self, reason: str, origin: str) -> None:
        super().__init__(None, reason, origin)


def read_options_file(path: str | Path) -> list[str]:
    """The arguments written in ``path``, in order, as argv would hold them."""
    return [arg.value for arg in read_sourced_options(path)]


def read_sourced_options(path: str | Path) -> list[SourcedArg]:
    """The arguments of ``path``, each tagged with ``"<path>:<line>"``."""
    try:
        data = read_regular_file(str(path), CONFIG_FILE_LIMIT)
    except FileProblem as exc:
        raise OptionsFileError(f"cannot read: {exc.reason}", str(path)) from None
    # surrogateescape keeps odd bytes (a password) intact, like argv does
    return split_options_text(data.decode("utf-8", "surrogateescape"), name=str(path))


def split_options_text(text: str, *, name: str) -> list[SourcedArg]:
    """Split the content of an options file called ``name`` (for messages)."""
    args: list[SourcedArg] = []
    for number, line in enumerate(text.splitlines(), start=1):
        origin = f"{name}:{number}"
        if len(line) > MAX_LINE:
            reason = f"the line is {len(line)} characters long; at most {MAX_LINE} are allowed"
            raise OptionsFileError(reason, origin)
        try:
            # trailing blanks after a continuation backslash are an easy slip
            words = shlex.split(_strip_comment_and_continuation(line.rstrip(" \t\r")))
        except ValueError as exc:
            reason = _describe_shlex_error(exc)
            raise OptionsFileError(reason, origin) from exc
        args.extend(SourcedArg(word, origin) for word in words)
    return args


def _strip_comment_and_continuation(line: str) -> str:
    """The line without its comment and without a trailing continuation backslash.

    shlex's own comment handling would also cut ``--pass=a#b`` at the ``#``;
    a shell (and so ucarp's users) only starts a comment at the start of a
    word, which needs knowing whether we are inside quotes.
    """
    quote: str | None = None
    escaped = False
    word_start = True  # the next character would start a new word
    for index, char in enumerate(line):
        literal = escaped  # this character was escaped: it cannot separate words
        if escaped:
            escaped = False
        elif quote == "'":
            quote = None if char == "'" else quote  # no escapes inside '...'
        elif char == "\\":
            escaped = True
        elif quote == '"':
            quote = None if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and word_start:
            return line[:index]
        word_start = quote is None and not literal and char in " \t\r"
    if escaped:
        return line[:-1]  # a continuation backslash; the next line is split on its own
    return line


def _describe_shlex_error(exc: ValueError) -> str:
    if "quotation" in str(exc):
        return "unterminated quote (quotes cannot span lines)"
    return str(exc)
