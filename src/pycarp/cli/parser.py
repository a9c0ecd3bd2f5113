"""The argument parser every subcommand uses: usage errors on one line, exit status 2.

A leaf module (it imports nothing of pycarp), so that each package's command
front-end can use it without importing the dispatcher.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with pycarp's one-line usage errors; abbreviations are refused by default."""

    def __init__(self, *args: object, hint: bool = True, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hint = hint

    def error(self, message: str) -> NoReturn:
        tail = " (see --help)" if self.hint else ""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{tail}\n")
