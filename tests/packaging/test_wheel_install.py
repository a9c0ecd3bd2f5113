"""The sdist and the wheel as an operator gets them: built, installed in a fresh venv, run.

A copy of the checkout (without the virtualenv, caches and git) is built
with `python -m build`, as .ci/run does, so that nothing is written into the
checkout. Building fetches setuptools and installing fetches the wheel's
dependencies through pip, as scripts/bootstrap.sh does: this takes some tens
of seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp import __version__

REPO = Path(__file__).resolve().parents[2]
# Not part of a checkout as git has it, and large: left out of the copy that is built.
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist"
)
PAGES = {"man8/pycarp.8": "pycarp.8", "man5/pycarp.toml.5": "pycarp.toml.5"}
QUIET = ["--disable-pip-version-check", "--no-input", "-q"]


def _run(*argv: str | Path, timeout: float = 300, **kwargs: object) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the sdist, the wheel) of a copy of this checkout."""
    root = tmp_path_factory.mktemp("packaging")
    tree = root / "pycarp"
    shutil.copytree(REPO, tree, ignore=NOT_COPIED, symlinks=True)
    _run(sys.executable, "-m", "build", "--outdir", root / "dist", tree)
    sdists = sorted((root / "dist").glob("*.tar.gz"))
    wheels = sorted((root / "dist").glob("*.whl"))
    assert [p.name for p in sdists + wheels] == [
        f"pycarp-{__version__}.tar.gz",
        f"pycarp-{__version__}-py3-none-any.whl",
    ]
    yield sdists[0], wheels[0]
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def venv(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed."""
    where = tmp_path_factory.mktemp("venv") / "pycarp-venv"
    _run(sys.executable, "-m", "venv", where)
    _run(where / "bin" / "pip", "install", *QUIET, built[1])
    return where


def test_the_wheel_holds_the_package_its_metadata_and_man_pages(built: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(built[1]).namelist()
    data = f"pycarp-{__version__}.data/data/share/man/"
    info = f"pycarp-{__version__}.dist-info/"
    strays = [n for n in names if not n.startswith(("pycarp/", info, data))]
    assert strays == []  # nothing of tests/, bench/ or the checkout's other files
    assert sorted(n.removeprefix(data) for n in names if n.startswith(data)) == sorted(PAGES)
    assert {"pycarp/py.typed", "pycarp/lab/zones.py", f"{info}licenses/LICENSE"} <= set(names)
    metadata = zipfile.ZipFile(built[1]).read(f"{info}METADATA").decode()
    for line in (
        f"Version: {__version__}",
        "License-Expression: BSD-2-Clause",
        "Project-URL: Source, https://github.com/pycarp/pycarp",
        "Description-Content-Type: text/markdown",
        'Requires-Dist: matplotlib>=3.7; extra == "lab"',  # the lab's plots stay an extra
    ):
        assert f"\n{line}\n" in metadata, line
    assert "Requires-Dist: matplotlib>=3.7\n" not in metadata


def test_the_sdist_has_what_builds_the_wheel_and_no_junk(built: tuple[Path, Path]) -> None:
    top = f"pycarp-{__version__}/"
    with tarfile.open(built[0]) as sdist:
        names = [n.removeprefix(top) for n in sdist.getnames()]
    for needed in ("pyproject.toml", "README.md", "LICENSE", "man/pycarp.8", "docs/config.md"):
        assert needed in names, needed
    junk = ("tests/", "bench/", ".venv/", ".git/", "build/", "dist/")
    assert [n for n in names if n.startswith(junk) or "__pycache__" in n] == []


def test_the_installed_pycarp_runs_and_has_its_man_pages(venv: Path) -> None:
    assert _run(venv / "bin" / "pycarp", "--version") == f"pycarp {__version__}\n"
    for installed, committed in PAGES.items():
        page = venv / "share" / "man" / installed
        assert page.read_text() == (REPO / "man" / committed).read_text()
        done = subprocess.run(
            ["man", "--warnings", "-l", str(page)],
            capture_output=True,
            text=True,
            env={**os.environ, "MANPAGER": "cat"},
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, ""), page
    # with the venv's bin on PATH, `man pycarp` finds the venv's page (man-db's manpath)
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    found = _run("man", "-w", "pycarp", env=env).strip()
    assert found == str(venv / "share" / "man" / "man8" / "pycarp.8")


def test_pipx_installs_the_wheel_as_an_operator_would(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """Debian's pipx, its home and bin directory in tmp_path: `pycarp` on the PATH it makes."""
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "home"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    env["PIPX_MAN_DIR"] = str(tmp_path / "man")  # honoured by newer pipx; harmless here
    _run("pipx", "install", built[1], env=env)
    assert _run(tmp_path / "bin" / "pycarp", "--version") == f"pycarp {__version__}\n"
    pages = sorted(p.name for p in (tmp_path / "home").rglob("share/man/man*/*"))
    assert pages == ["pycarp.8", "pycarp.toml.5"]
