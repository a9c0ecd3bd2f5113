"""What the TOML tests share: a valid head, [[vhost]] tables, and loading them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pycarp.config import machine
from pycarp.config.settings import DaemonSettings
from pycarp.config.tomlfile import ConfigErrors, load_toml

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"

# The smallest valid file; cases add keys to it.
HEAD = """
[defaults]
interface = "eth0"
srcip = "10.0.0.1"
password = "secret"
"""


def vhost(vhid: int, *addresses: str, **keys: object) -> str:
    """A [[vhost]] table; ``keys`` are written as TOML literals (strings are quoted)."""
    lines = ["[[vhost]]", f"vhid = {vhid}", f"addresses = {list(addresses)!r}".replace("'", '"')]
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


class Raw(str):
    """A value written into the TOML text as it is (a date, say)."""


def toml_value(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def load_text(tmp_path: Path, text: str, *, check_machine: bool = True) -> DaemonSettings:
    path = tmp_path / "pycarp.toml"
    path.write_text(text)
    return load_toml(path, check_machine=check_machine)


def errors(tmp_path: Path, text: str, *, check_machine: bool = True) -> list[str]:
    """The problems found, without the "FILE (TOML): " every one starts with."""
    with pytest.raises(ConfigErrors) as caught:
        load_text(tmp_path, text, check_machine=check_machine)
    prefix = f"{tmp_path / 'pycarp.toml'} (TOML): "
    for message in caught.value.messages:
        assert message.startswith(prefix), message
        assert "\n" not in message
    return [message.removeprefix(prefix) for message in caught.value.messages]


def doc_block(kind: str) -> str:
    """The first ```kind block of docs/config.md."""
    blocks = re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return str(blocks[0])


def as_the_docs_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented example's scripts and password file, as if this were its host."""
    monkeypatch.setattr(machine, "check_script", lambda path, field: path)
    monkeypatch.setattr(
        machine, "read_passfile", lambda path: {"/etc/pycarp/secret": b"changeme"}[path]
    )
