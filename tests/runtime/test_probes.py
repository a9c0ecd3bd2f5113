"""One run of a check, without a network: commands, timeouts, carrier answers, errors."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import pytest

from pycarp.core.checkconfig import CheckConfig
from pycarp.lab.processes import alive
from pycarp.lab.wait import wait_until
from pycarp.platform.base import InterfaceError
from pycarp.runtime.probes import DETAIL_CHARS, one_line, probe

GRACE = 0.5  # what probe may take beyond the check's timeout


def never_asked(name: str) -> bool:
    raise AssertionError(f"interface_running({name!r}) called for a non-carrier check")


def command(*argv: str, timeout: float = 5.0) -> CheckConfig:
    return CheckConfig(name="cmd", type="command", command=argv, timeout=timeout)


def shell(line: str, timeout: float = 5.0) -> CheckConfig:
    return CheckConfig(name="sh", type="command", command=(line,), shell=True, timeout=timeout)


async def timed(check: CheckConfig) -> tuple[bool, str, float]:
    started = time.monotonic()
    ok, detail = await probe(check, interface_running=never_asked)
    return ok, detail, time.monotonic() - started


def read_pids(*paths: Path) -> list[int]:
    assert wait_until(lambda: all(p.exists() and p.read_text().strip() for p in paths), 5)
    return [int(p.read_text()) for p in paths]


def gone(pids: list[int]) -> bool:
    """None of pids is a live process (a zombie nobody reaps counts as gone)."""
    return wait_until(lambda: not any(alive(pid, None) for pid in pids), 3)


async def test_exit_status_0_passes() -> None:
    assert await probe(command("/bin/true"), interface_running=never_asked) == (
        True,
        "exit status 0",
    )


async def test_argv_is_not_a_shell_line(tmp_path: Path) -> None:
    target = tmp_path / "x; touch hacked"
    ok, detail = await probe(command("/usr/bin/touch", str(target)), interface_running=never_asked)
    assert (ok, detail) == (True, "exit status 0")
    assert target.exists() and not (tmp_path / "hacked").exists()


async def test_a_failure_names_its_status_and_first_line_of_output() -> None:
    check = shell("echo; echo '  backend down  ' >&2; echo more; exit 3")
    assert await probe(check, interface_running=never_asked) == (
        False,
        "exit status 3: backend down",
    )


async def test_a_silent_failure_names_its_status() -> None:
    assert await probe(command("/bin/false"), interface_running=never_asked) == (
        False,
        "exit status 1",
    )


async def test_shell_mode_runs_one_line_with_sh() -> None:
    ok, detail = await probe(shell('test "$(echo a | tr a b)" = b'), interface_running=never_asked)
    assert (ok, detail) == (True, "exit status 0")


async def test_a_missing_program_is_a_failed_check(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent")
    assert await probe(command(missing, "arg"), interface_running=never_asked) == (
        False,
        f"cannot run {missing}: No such file or directory",
    )


async def test_a_program_that_is_not_executable_is_a_failed_check(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    # even root may execute a file only when some x bit is set
    assert await probe(command(str(plain)), interface_running=never_asked) == (
        False,
        f"cannot run {plain}: Permission denied",
    )


async def test_a_check_killed_by_a_signal_says_which() -> None:
    assert await probe(shell("kill -9 $$"), interface_running=never_asked) == (
        False,
        "killed by signal 9 (SIGKILL)",
    )


@pytest.mark.parametrize("ignore_term", [False, True])
async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path, ignore_term: bool) -> None:
    parent, child = tmp_path / "parent", tmp_path / "child"
    trap = "trap '' TERM; " if ignore_term else ""  # then only SIGKILL ends them
    check = shell(f"{trap}echo $$ > {parent}; sleep 60 & echo $! > {child}; wait", timeout=0.5)
    task = asyncio.create_task(timed(check))
    pids = await asyncio.to_thread(read_pids, parent, child)
    ok, detail, took = await task
    assert (ok, detail) == (False, "timed out after 0.5 s")
    assert took < 0.5 + GRACE
    assert gone(pids)


async def test_a_cancelled_probe_kills_its_process_group(tmp_path: Path) -> None:
    parent, child = tmp_path / "parent", tmp_path / "child"
    check = shell(f"echo $$ > {parent}; sleep 60 & echo $! > {child}; wait", timeout=30)
    task = asyncio.create_task(probe(check, interface_running=never_asked))
    pids = await asyncio.to_thread(read_pids, parent, child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert gone(pids)


async def test_a_background_child_neither_holds_the_check_nor_outlives_it(tmp_path: Path) -> None:
    child = tmp_path / "child"
    ok, detail, took = await timed(shell(f"sleep 60 & echo $! > {child}; exit 0"))
    assert (ok, detail) == (True, "exit status 0")
    assert took < 2
    assert gone(read_pids(child))


@pytest.mark.parametrize("status", [0, 1])
async def test_ten_megabytes_of_output_neither_block_nor_fill_the_detail(status: int) -> None:
    check = shell(f"head -c 10000000 /dev/zero | tr '\\0' x; exit {status}", timeout=10)
    ok, detail, took = await timed(check)
    assert ok is (status == 0)
    assert took < 5
    assert len(detail) <= DETAIL_CHARS
    if status:
        assert detail.startswith("exit status 1: xxxx") and detail.endswith("...")


async def test_the_detail_is_one_printable_line() -> None:
    check = shell("printf '\\033[31mred\\tand\\r\\n blue\\000\\n'; exit 2")
    ok, detail = await probe(check, interface_running=never_asked)
    assert not ok
    assert detail.startswith("exit status 2: ")
    assert detail.isprintable() and "\n" not in detail and "red and" in detail


async def test_no_password_variable_reaches_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCARP_PASSWORD", "s3cret")
    check = shell('test -z "$PYCARP_PASSWORD"')
    assert await probe(check, interface_running=never_asked) == (True, "exit status 0")


def test_one_line_flattens_and_bounds() -> None:
    assert one_line(" a\n\tb \x00 c ") == "a b c"
    long = one_line("y" * 1000)
    assert len(long) == DETAIL_CHARS and long.endswith("...")


def carrier(timeout: float = 1.0) -> CheckConfig:
    return CheckConfig(name="link", type="carrier", interface="eth1", timeout=timeout)


@pytest.mark.parametrize(
    ("running", "expected"),
    [(True, (True, "eth1 has carrier")), (False, (False, "eth1 has no carrier"))],
)
async def test_carrier_asks_the_platform(running: bool, expected: tuple[bool, str]) -> None:
    asked: list[tuple[str, bool]] = []

    def interface_running(name: str) -> bool:
        # asked in a worker thread: its netlink request must not block the loop
        asked.append((name, threading.current_thread() is threading.main_thread()))
        return running

    assert await probe(carrier(), interface_running=interface_running) == expected
    assert asked == [("eth1", False)]


async def test_a_missing_interface_is_a_failed_check() -> None:
    def missing(name: str) -> bool:
        raise InterfaceError(f"interface {name!r} does not exist")

    def no_device(name: str) -> bool:
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    assert await probe(carrier(), interface_running=missing) == (
        False,
        "interface 'eth1' does not exist",
    )
    assert await probe(carrier(), interface_running=no_device) == (
        False,
        "no such interface eth1",
    )


async def test_a_carrier_question_that_hangs_times_out() -> None:
    release = threading.Event()

    def hangs(name: str) -> bool:
        release.wait(10)
        return True

    started = time.monotonic()
    try:
        result = await probe(carrier(timeout=0.3), interface_running=hangs)
    finally:
        release.set()
    assert result == (False, "timed out after 0.3 s")
    assert time.monotonic() - started < 0.3 + GRACE


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://198.51.100.1:99999/", "Port out of range"), ("http://:80/", "no host")],
)
async def test_an_http_url_without_a_place_to_connect_is_a_failed_check(
    url: str, problem: str
) -> None:
    check = CheckConfig(name="web", type="http", url=url)
    ok, detail = await probe(check, interface_running=never_asked)
    assert not ok
    assert detail.startswith("invalid URL: ") and problem in detail
