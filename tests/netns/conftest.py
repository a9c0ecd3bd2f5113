"""Fixtures of the namespace tests: a precondition check, a `lab` and its `daemons`.

These tests never skip. Without root or working `ip netns` they fail with the
reason, so a CI job that cannot run them goes red instead of green-by-skipping.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.lab import PREFIX, Lab, close_all_labs
from pycarp.lab.nsexec import find_program
from tests.netns.daemons import Daemons, Net


def _netns_problem() -> str | None:
    """Why namespace tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return f"they must run as root (euid is {os.geteuid()})"
    ip = find_program("ip")
    if ip is None:
        return "iproute2's `ip` is not installed"
    probe = f"{PREFIX}{secrets.token_hex(3)}-probe"
    try:
        added = subprocess.run(
            [ip, "netns", "add", probe], capture_output=True, text=True, timeout=10
        )
        if added.returncode != 0:
            return f"`ip netns add` failed: {added.stderr.strip()}"
        ran = subprocess.run(
            [ip, "netns", "exec", probe, "true"], capture_output=True, text=True, timeout=10
        )
        if ran.returncode != 0:
            return f"`ip netns exec` failed: {ran.stderr.strip()}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns` does not work: {exc}"
    finally:
        subprocess.run([ip, "netns", "del", probe], capture_output=True, timeout=10, check=False)
    return None


@pytest.fixture(scope="session", autouse=True)
def netns_available() -> Iterator[None]:
    """Fail (never skip) every test here when namespaces are unavailable."""
    problem = _netns_problem()
    if problem is not None:
        pytest.fail(f"netns tests cannot run: {problem}", pytrace=False)
    yield
    leaked = close_all_labs()
    if leaked:
        warnings.warn(f"labs left open by tests were closed: {leaked}", stacklevel=1)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh lab, closed (processes stopped, namespaces deleted) after the test."""
    with Lab() as the_lab:
        yield the_lab


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Makes the test's daemons (work directories under tmp_path); kills what is left after it."""
    made = Daemons(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="session")
def ucarp_bin() -> str:
    """Path of the real ucarp; its absence is a failure, not a skip."""
    path = find_program("ucarp")
    if path is None:
        pytest.fail("ucarp is not installed (apt-get install ucarp)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    """Three hosts and a client on one bridge, for the whole module."""
    with Lab() as lab:
        yield Net.on(lab)
