"""Bad command lines and config files, through the real entry: one line, exit 2, nothing run.

Every case of bad_input_cases.py runs in this process (``pycarp.cli.main``,
with the daemon's start replaced by a failure); a sample runs as
``python -m pycarp`` too, with a timeout: no file may hang the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pycarp.cli import main as cli
from pycarp.config import files, machine
from pycarp.config.files import FileProblem, read_regular_file
from pycarp.config.optionsfile import MAX_LINE, split_options_text
from tests.config.bad_input_cases import CASES, MB, Case, make_files
from tests.config.config_helpers import BASE, write

TIMEOUT = 20.0  # seconds; generous: the point is that nothing blocks or crawls
# Run as a process too: the files that could block or bloat it, and the daemon's start.
IN_A_PROCESS = {
    "config-fifo",
    "config-dev-zero",
    "config-10-mb",
    "config-10-mb-line",
    "config-1-mb-line",
    "passfile-fifo",
    "advskew-5000-digits",
    "addr-multicast",
    "file-nul-xparam",
    "toml-nested-5000",
    "toml-5000-digits",
    "toml-fifo",
    "toml-start-bad",
}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the cases name, made once: no case changes them."""
    path = tmp_path_factory.mktemp("bad-input")
    make_files(path)
    return path


def _argv(case: Case, directory: Path) -> list[str]:
    for name, data in case.files.items():
        (directory / name).write_bytes(data)
    return [arg.replace("{d}", str(directory)) for arg in case.argv]


def _check_error(case: Case, err: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("pycarp: error: "), line
    for part in case.expect:
        assert part in line, line


def _never_start(settings: Any, **_: Any) -> int:
    raise AssertionError(f"the daemon was started with {settings}")


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)
    assert {case.id for case in CASES} >= IN_A_PROCESS


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_refused_in_one_line(
    case: Case,
    directory: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pycarp.runtime.daemon.run", _never_start)
    argv = _argv(case, directory)
    before = sorted(os.listdir(directory))
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _check_error(case, err)
    assert sorted(os.listdir(directory)) == before  # nothing left behind


@pytest.mark.parametrize("case", [c for c in CASES if c.id in IN_A_PROCESS], ids=lambda c: c.id)
def test_refused_by_the_program(case: Case, directory: Path) -> None:
    # this machine's interface, not the fake one of the in-process tests
    argv = [arg.replace("eth0", "lo") for arg in _argv(case, directory)]
    for name, data in case.files.items():
        (directory / name).write_bytes(data.replace(b"eth0", b"lo"))
    socket = directory / "control.sock"
    if "check-config" not in argv:
        argv += ["--control-socket", str(socket)]
    before = sorted(os.listdir(directory))
    done = subprocess.run(
        [sys.executable, "-m", "pycarp", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert "Traceback" not in done.stderr
    _check_error(case, done.stderr)
    assert sorted(os.listdir(directory)) == before and not socket.exists()


def test_an_unreadable_passfile(
    directory: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # root reads any file: make open() refuse as it would for another user
    real_open = os.open

    def refuse(path: str, flags: int, *args: Any) -> int:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(files.os, "open", refuse)
    monkeypatch.setattr("pycarp.runtime.daemon.run", _never_start)
    write(directory / "locked", "secret\n")
    assert cli.main([*BASE, "--passfile", str(directory / "locked")]) == 2
    err = capsys.readouterr().err
    assert err == f"pycarp: error: --passfile: cannot read {directory}/locked: Permission denied\n"


def test_a_long_line_is_refused_in_linear_time(directory: Path) -> None:
    """A 1 MB and a 10 MB line, under a timeout generous enough for a slow machine."""
    for name, reason in (("line1m.cfg", "characters long"), ("line10m.cfg", "larger than")):
        done = subprocess.run(
            [sys.executable, "-m", "pycarp", "check-config", str(directory / name)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 2 and reason in done.stderr


def test_a_long_line_within_the_bound_is_read() -> None:
    (arg,) = split_options_text("--xparam=" + "y" * (MAX_LINE - 9), name="long.cfg")
    assert arg.value == "--xparam=" + "y" * (MAX_LINE - 9)


def test_a_file_replaced_after_stat_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    regular = write(tmp_path / "regular", "x")
    real_stat = os.stat
    monkeypatch.setattr(files.os, "stat", lambda path: real_stat(regular))  # stat saw a file
    with pytest.raises(FileProblem, match=r"not a regular file \(a FIFO\)"):
        read_regular_file(str(fifo), MB)


def test_password_files_read_as_ucarp(tmp_path: Path) -> None:
    long = write(tmp_path / "long", "p" * 600)
    assert machine.read_passfile(str(long)) == b"p" * machine.PASSFILE_READ_LIMIT
