"""The lab's lower layer without namespaces: processes, owner tags, imports, the CLI parser."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pycarp.lab import owners
from pycarp.lab.errors import LabError
from pycarp.lab.netns import check_host
from pycarp.lab.processes import (
    alive,
    signal_process,
    start_time,
    stop_processes,
    wait_gone,
)

LAB = Path(__file__).resolve().parents[2] / "src" / "pycarp" / "lab"
LOWER = ("errors", "names", "iproute", "nsexec", "processes", "owners", "netns", "wait", "segments")


@pytest.fixture
def owner_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(owners, "OWNER_DIR", str(tmp_path))
    return tmp_path


def child(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE)


def test_a_process_is_its_pid_and_start_time() -> None:
    proc = child("exec sleep 30")
    try:
        start = start_time(proc.pid)
        assert start is not None and alive(proc.pid, start) and alive(proc.pid, None)
        assert not alive(proc.pid, start + 1)
        assert not signal_process(proc.pid, start + 1, signal.SIGKILL)  # not that process
        assert proc.poll() is None
        assert signal_process(proc.pid, start, signal.SIGTERM)
        assert wait_gone(proc.pid, start, timeout=5.0)  # reaps our own child
        assert not alive(proc.pid, start) and start_time(proc.pid) is None
        assert not signal_process(proc.pid, start, signal.SIGTERM)
    finally:
        proc.kill()
        proc.wait()


def test_stop_processes_kills_the_group_that_ignores_sigterm() -> None:
    polite = child("exec sleep 30")
    stubborn = child("trap '' TERM; sleep 30 & echo $!; wait")
    assert stubborn.stdout is not None
    grandchild = int(stubborn.stdout.readline())
    grandchild_start = start_time(grandchild)
    stop_processes([polite, stubborn], set(), grace=0.5)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert wait_gone(grandchild, grandchild_start, timeout=5.0)


def test_owners_by_file_and_by_directory(owner_dir: Path) -> None:
    assert not owners.owner_alive("t1")
    owners.claim("t1")
    assert (owner_dir / "t1").read_text() == f"{os.getpid()} {start_time(os.getpid())}\n"
    assert owners.owner_alive("t1")
    with pytest.raises(LabError, match="'t1' is in use by a running process"):
        owners.claim("t1")
    owners.release("t1")
    owners.release("t1")  # idempotent
    assert not owners.owner_alive("t1")
    (owner_dir / "t2").write_text("1 -1\n")  # pid 1, but not the process that started then
    assert not owners.owner_alive("t2")
    (owner_dir / "t3").write_text("garbage")
    assert not owners.owner_alive("t3")
    (owner_dir / "t4").mkdir()
    assert not owners.owner_alive("t4")
    (owner_dir / "t4" / owners.STATE_FILE).write_text("{}")
    assert owners.owner_alive("t4")


def test_tags_of_namespace_names() -> None:
    assert owners.tag_of("pycarp-ab12-br") == "ab12"
    assert owners.tag_of("pycarp-lab-client-admin") == "lab"
    assert owners.tag_of("other-ab12-br") is None
    with pytest.raises(ValueError, match="prefix must start with 'pycarp-'"):
        owners.cleanup_stale("other-")


def lab_imports(module: str) -> set[str]:
    """The modules of pycarp.lab that module imports (by name, without the package)."""
    tree = ast.parse((LAB / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    parts = [name.split(".") for name in found if name.startswith("pycarp.lab.")]
    return {p[2] for p in parts if (LAB / f"{p[2]}.py").exists()}


@pytest.mark.parametrize("module", LOWER)
def test_the_lower_layer_knows_nothing_of_zone_labs(module: str) -> None:
    assert lab_imports(module) <= set(LOWER), f"{module} imports above the lower layer"


def test_the_package_api() -> None:
    import pycarp.lab as lab

    assert set(lab.__all__) == {
        "ALLOWED_NETWORKS", "PREFIX", "Host", "Lab", "LabError", "cleanup_stale",
        "close_all_labs", "netns_entered", "stop_processes",
    }  # fmt: skip
    for name in lab.__all__:
        assert getattr(lab, name) is not None


def test_lab_usage_errors_are_one_line_without_a_hint() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pycarp.lab.command", "up"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "pycarp lab up: error: the following arguments are required: MANIFEST.json"
    )


@pytest.mark.parametrize(
    ("role", "ip", "prefix", "mac", "message"),
    [
        ("bad/role", "198.51.100.1", 24, None, "host role must match"),
        ("a", "192.0.2.1", 24, None, r"lab addresses must be in 198\.51\.100\.0/24, 203"),
        ("a", "203.0.113.1", 33, None, "bad prefix length 33"),
        ("a", "203.0.113.1", 24, "02:00:00:00:00", "bad MAC address"),
    ],
)
def test_host_checks(role: str, ip: str, prefix: int, mac: str | None, message: str) -> None:
    check_host("a-b_1", "203.0.113.1", 28, "02:00:5e:00:00:01")
    with pytest.raises(ValueError, match=message):
        check_host(role, ip, prefix, mac)
