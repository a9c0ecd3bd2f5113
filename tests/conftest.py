"""The suite's guard: a skipped or xfailed test fails the run.

A test that skips itself (a missing tool, a missing file, not root) turns CI
green while testing nothing; here it turns the session red and is named.
"""

from __future__ import annotations

import pytest

_not_run: list[str] = []  # "nodeid: what happened (reason)"


def _note(report: pytest.TestReport | pytest.CollectReport) -> None:
    if hasattr(report, "wasxfail"):
        kind = "xfailed" if report.skipped else "xpassed"
        _not_run.append(f"{report.nodeid}: {kind} ({report.wasxfail or 'no reason'})")
    elif report.skipped:
        longrepr = report.longrepr
        # A skip's longrepr is (file, line, "Skipped: reason").
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _not_run.append(f"{report.nodeid or '<collection>'}: skipped ({reason})")


def pytest_configure(config: pytest.Config) -> None:
    _not_run.clear()  # a fresh list for each in-process run


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _not_run and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _not_run:
        title = "tests not run: skips and xfails are failures here"
        terminalreporter.write_sep("=", title, red=True)
        for line in _not_run:
            terminalreporter.write_line(line)
