"""The core stays pure: stdlib only, nothing from pycarp outside pycarp.core, no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "src" / "pycarp" / "core"
# Clocks, sockets, randomness, processes, event loops, the OS: the runtime's business.
FORBIDDEN = {
    "socket", "time", "random", "secrets", "subprocess", "asyncio", "os", "select",
    "selectors", "signal", "threading", "datetime",
}  # fmt: skip


def imported_modules(path: Path) -> list[str]:
    """Absolute module names imported by a core file (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["pycarp", "core"][: max(0, 3 - node.level)]
                names.append(".".join([*base, node.module] if node.module else base))
            else:
                assert node.module is not None
                names.append(node.module)
                if node.module == "pycarp":
                    names += [f"pycarp.{alias.name}" for alias in node.names]
    return names


CORE_FILES = sorted(CORE.glob("*.py"))


def test_the_core_is_where_we_think() -> None:
    assert {p.name for p in CORE_FILES} >= {
        "packet.py", "auth.py", "timing.py", "actions.py", "state.py", "node.py", "config.py",
        "errors.py",
    }  # fmt: skip


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_only_the_core_from_pycarp(path: Path) -> None:
    for name in imported_modules(path):
        if name == "pycarp" or name.startswith("pycarp."):
            assert name.startswith("pycarp.core"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_does_no_io(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"


def test_the_checker_sees_what_it_should() -> None:
    sample = CORE / "state.py"
    names = imported_modules(sample)
    assert "pycarp.core.config" in names
    assert "pycarp.core" in names  # `from pycarp.core import auth, timing`


def test_dynamic_imports_are_not_used() -> None:
    for path in CORE_FILES:
        text = path.read_text()
        assert "__import__" not in text and "importlib" not in text, path.name
