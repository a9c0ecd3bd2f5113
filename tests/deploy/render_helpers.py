"""What the tests of ``pycarp render`` share: running the command, capturing its output."""

from __future__ import annotations

import pytest

from pycarp.deploy.command import main

PYCARP = "/opt/local/bin/pycarp"


def rendered(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``pycarp render ARGV`` prints; it must succeed."""
    assert main(argv) == 0
    out: str = capsys.readouterr().out
    return out
