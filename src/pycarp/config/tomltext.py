"""A TOML file's text as a document, and the error that lists a file's problems.

pycarp.config.tomlfile turns the document into settings; what goes wrong
before there is a document (not UTF-8, a syntax error) is reported here, in
the same shape: one line naming the file, the format and the line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Any

from pycarp.core.errors import ConfigError

__all__ = ["FORMAT", "MAX_SHOWN", "ConfigErrors", "decode"]

FORMAT = "TOML"  # how errors name the format: "pycarp.toml (TOML): ..."
MAX_SHOWN = 20  # problems shown in str(); a bad [defaults] can repeat in every vhost

_TOML_POSITION = re.compile(r"(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")


class ConfigErrors(ConfigError):
    """Every problem found in a file, each a ConfigError; str() shows one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        self.messages = tuple(str(error) for error in self.errors)
        lines = list(self.messages[:MAX_SHOWN])
        if len(self.messages) > MAX_SHOWN:
            lines.append(f"({len(self.messages) - MAX_SHOWN} more errors not shown)")
        super().__init__(None, "\n".join(lines))


def decode(data: bytes | str, name: str) -> dict[str, Any]:
    """The document in ``data``, the content of the file ``name``; ConfigErrors if none."""
    text = _utf8(data, name) if isinstance(data, bytes) else data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigErrors([_syntax_error(name, str(exc))]) from None
    except RecursionError:
        reason = "arrays or tables are nested too deeply"
        raise ConfigErrors([ConfigError(None, reason, f"{name} ({FORMAT})")]) from None
    except ValueError:  # tomllib's int() of a number with thousands of digits
        reason = "a number has too many digits"
        raise ConfigErrors([ConfigError(None, reason, f"{name} ({FORMAT})")]) from None


def _utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")  # TOML files are UTF-8
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        reason = f"not UTF-8 (byte {data[exc.start]:#04x})"
        raise ConfigErrors([ConfigError(None, reason, f"{name}:{line} ({FORMAT})")]) from None


def _syntax_error(name: str, message: str) -> ConfigError:
    """tomllib's "reason (at line 3, column 7)" as "name:3 (TOML): syntax error ..."."""
    position = _TOML_POSITION.fullmatch(message)
    if position is None:  # "(at end of document)" and the like
        return ConfigError(None, f"syntax error: {message}", f"{name} ({FORMAT})")
    line, column, reason = position["line"], position["column"], position["reason"]
    where = f"{name}:{line} ({FORMAT})"
    return ConfigError(None, f"syntax error at column {column}: {reason}", where)
