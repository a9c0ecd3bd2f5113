"""The repository stands alone: no file refers to a sibling folder or a development machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Built here so that this file does not contain what it looks for.
NEEDLES = ("../" + "shared", "/" + "work" + "/")

BINARY_SUFFIXES = {".pcap", ".png", ".jpg", ".gif", ".gz", ".xz", ".zip", ".pyc"}
# Not part of the repository: the virtualenv and the caches of the tools.
UNTRACKED_DIRS = {
    ".git", ".venv", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    "__pycache__", "build", "dist",
}  # fmt: skip


def git_files() -> list[Path] | None:
    """Tracked files, and new ones not ignored (not yet added); None without git."""
    git = shutil.which("git")
    if git is None:
        return None
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:  # not a git checkout, e.g. an unpacked sdist
        return None
    return [REPO / os.fsdecode(name) for name in listed.stdout.split(b"\0") if name]


def walked_files() -> Iterator[Path]:
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in UNTRACKED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            yield Path(root, name)


def repository_files() -> list[Path]:
    files = git_files()
    return sorted(files if files is not None else walked_files())


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary or vanished file."""
    if path.suffix in BINARY_SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def test_the_walk_finds_the_repository() -> None:
    names = {p.relative_to(REPO).as_posix() for p in repository_files()}
    assert {"README.md", "pyproject.toml", "tests/test_standalone.py"} <= names


def references(paths: list[Path], root: Path) -> list[str]:
    """`file:line: needle in line` for each line of a text file holding a needle."""
    found = []
    for path in paths:
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for needle in NEEDLES:
                if needle in line:
                    where = f"{path.relative_to(root)}:{number}"
                    found.append(f"{where}: {needle!r} in {line.strip()[:120]!r}")
    return found


def test_no_file_refers_outside_the_repository() -> None:
    found = references(repository_files(), REPO)
    assert not found, "files refer to paths outside the repository:\n" + "\n".join(found)


def test_references_are_found_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text(f"fine\nsee {NEEDLES[0]}/scenario\n")
    (tmp_path / "t.py").write_text(f'X = "{NEEDLES[1]}x"\n')
    (tmp_path / "capture.pcap").write_bytes(NEEDLES[0].encode())
    (tmp_path / "blob").write_bytes(b"\0" + NEEDLES[1].encode())
    found = references(sorted(tmp_path.iterdir()), tmp_path)
    assert [f.split(": ")[0] for f in found] == ["doc.md:2", "t.py:1"]


def test_the_fallback_walk_skips_what_is_not_the_repository() -> None:
    walked = {p.relative_to(REPO).parts[0] for p in walked_files()}
    assert not walked & {".git", ".venv", ".hypothesis"}
    assert {"src", "tests", "README.md"} <= walked
