"""The rules of the house (docs/architecture.md), checked on the source text.

Each package may import only the packages below it; the core stays pure
(stdlib only, no I/O); no module reaches into another's `_private` names;
no import cycles; no module grows past MAX_LINES.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "pycarp"
CORE = PACKAGE / "core"
MAX_LINES = 400

# What each package may import from pycarp (besides itself and the top-level `pycarp`).
ALLOWED = {
    "core": set(),
    "platform": {"core"},
    "config": {"core", "platform"},
    "client": {"core", "config", "platform", "cli.parser"},
    "runtime": {"core", "config", "platform", "client"},
    "vmadm": {"core", "config", "cli.parser"},
    "deploy": {"config", "platform", "cli.parser"},
    "lab": {"core", "config", "platform", "client", "vmadm", "cli.parser"},
    "demo": {"core", "config", "platform", "client", "vmadm", "lab", "cli.parser"},
    "cli": {"core", "config", "platform", "client", "runtime", "vmadm", "deploy", "lab", "demo"},
}
# Clocks, sockets, randomness, processes, event loops, the OS: the runtime's business.
FORBIDDEN_IN_CORE = {
    "socket", "time", "random", "secrets", "subprocess", "asyncio", "os", "select",
    "selectors", "signal", "threading", "datetime",
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path): path for path in SOURCES}


@cache
def imports(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(module, names) for every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here.pop()
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((module, tuple(alias.name for alias in node.names)))
    return tuple(found)


def pycarp_targets(path: Path) -> set[str]:
    """The pycarp modules a file imports (`from pkg import submodule` counts the submodule)."""
    targets = set()
    for module, names in imports(path):
        if module != "pycarp" and not module.startswith("pycarp."):
            continue
        targets.add(module)
        targets |= {f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES}
    return targets


def package_of(module: str) -> str:
    """The package a module belongs to; "" for pycarp itself and its top-level modules."""
    path = MODULES.get(module)
    if module.count(".") == 1 and path is not None and path.name != "__init__.py":
        return ""  # pycarp.__main__: the entry point, above every layer
    return module.split(".")[1] if module.count(".") else ""


def allowed(importer: str, target: str) -> bool:
    own, theirs = package_of(importer), package_of(target)
    if target == "pycarp" or not own or own == theirs:
        return True
    return any(
        target == f"pycarp.{rule}" or target.startswith(f"pycarp.{rule}.")
        for rule in ALLOWED.get(own, set())
    )


def test_every_package_has_a_rule() -> None:
    packages = {package_of(name) for name in MODULES} - {""}
    assert packages == set(ALLOWED), "give each package its line in ALLOWED and in the docs"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    importer = module_name(path)
    for target in pycarp_targets(path):
        assert allowed(importer, target), f"{importer} may not import {target}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_names_across_modules(path: Path) -> None:
    for module, names in imports(path):
        if module.startswith("pycarp"):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{module_name(path)} imports {private} from {module}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by job"


def test_no_import_cycles() -> None:
    graph = {name: pycarp_targets(path) & set(MODULES) for name, path in MODULES.items()}
    # a package's __init__ is imported on the way to its modules: not an edge back
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(f"{t}.")}
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        trail.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        trail.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert state and all(value == 2 for value in state.values())


CORE_FILES = sorted(CORE.glob("*.py"))


def test_the_core_is_where_we_think() -> None:
    assert {p.name for p in CORE_FILES} >= {
        "packet.py", "auth.py", "timing.py", "actions.py", "state.py", "node.py", "config.py",
        "errors.py",
    }  # fmt: skip


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_does_no_io(path: Path) -> None:
    for module, _ in imports(path):
        assert module.split(".")[0] not in FORBIDDEN_IN_CORE, f"{path.name} imports {module}"


def test_the_checker_sees_what_it_should() -> None:
    targets = pycarp_targets(CORE / "hoststate.py")
    assert "pycarp.core.config" in targets
    assert "pycarp.core.auth" in targets  # `from pycarp.core import auth, timing`
    assert not allowed("pycarp.core.state", "pycarp.runtime.driver")
    assert not allowed("pycarp.config.load", "pycarp.cli.main")
    assert allowed("pycarp.cli.main", "pycarp.config.load")
    assert allowed("pycarp.vmadm.command", "pycarp.cli.parser")


def test_dynamic_imports_only_in_the_dispatcher() -> None:
    """Imports by name would hide from these checks; only the lazy subcommand table uses them."""
    for path in SOURCES:
        if package_of(module_name(path)) == "cli":
            continue
        text = path.read_text()
        assert "__import__(" not in text and "import_module(" not in text, path.name
