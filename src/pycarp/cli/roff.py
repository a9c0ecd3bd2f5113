"""The man(7) markup the pages are written in: escaping, fonts, sections, tagged entries.

Texts come in as plain sentences with `backquotes` around what is typed
literally, which becomes bold; everything else is escaped so that roff
prints it as it is (a backslash, a line starting with a dot, a hyphen that
must stay a minus sign to be copied and pasted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["bold", "escape", "italic", "lines", "markup", "page", "paragraph", "section", "tagged"]

_LITERAL = re.compile(r"`([^`]*)`")


def escape(text: str) -> str:
    """``text`` as roff prints it literally, within a line."""
    return text.replace("\\", r"\e").replace("-", r"\-").replace("'", r"\(aq")


def bold(text: str) -> str:
    return rf"\fB{escape(text)}\fR"


def italic(text: str) -> str:
    return rf"\fI{escape(text)}\fR"


def markup(text: str) -> str:
    """Plain text with `literals` in bold, escaped."""
    parts = _LITERAL.split(text)  # odd indexes: between backquotes
    return "".join(bold(part) if index % 2 else escape(part) for index, part in enumerate(parts))


def _safe_line(line: str) -> str:
    """A text line that cannot be taken for a request (a leading dot or quote)."""
    return rf"\&{line}" if line.startswith((".", "'")) else line


def paragraph(text: str) -> str:
    return ".PP\n" + _safe_line(markup(text))


def section(title: str) -> str:
    return f".SH {title.upper()}"


def tagged(tag: str, *body: str) -> str:
    """An indented entry under a tag (already marked up); each body text one line."""
    return "\n".join([".TP", _safe_line(tag), *(_safe_line(markup(text)) for text in body)])


def lines(texts: Iterable[str]) -> str:
    """Literal lines (commands, files) as they are, unfilled."""
    body = "\n".join(_safe_line(escape(text)) for text in texts)
    return f".PP\n.nf\n.RS 4\n{body}\n.RE\n.fi"


def page(name: str, number: int, source: str, manual: str, parts: Iterable[str]) -> str:
    """A whole page: the title line, then the parts, one after the other.

    No date: the page is a function of the tables alone, so it can be compared.
    """
    title = f'.TH {escape(name.upper())} {number} "" "{source}" "{manual}"'
    # no hyphenation, ragged right: options and paths stay whole, to be copied
    return "\n".join([title, ".nh", ".ad l", *parts]) + "\n"
