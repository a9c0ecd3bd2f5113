"""Fixtures of the client tests: a run directory of their own for the daemons they find."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.client import commands as control_client


@pytest.fixture
def rundir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The client's run directory, with short timeouts for sockets that do not answer."""
    directory = tmp_path / "run"
    directory.mkdir()
    monkeypatch.setattr(control_client, "run_directory", lambda: str(directory))
    monkeypatch.setattr(control_client, "TIMEOUT", 0.5)
    yield directory
