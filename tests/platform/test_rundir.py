"""The run directory (one per network namespace) and the default control socket names."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pycarp.config import settings
from pycarp.config.settings import DaemonSettings, default_control_socket
from pycarp.platform import rundir
from pycarp.platform.rundir import named_netns_inodes, netns_inode, run_directory

OWN = "/proc/thread-self/ns/net"
INITIAL = "/proc/1/ns/net"


def fake_namespaces(
    monkeypatch: pytest.MonkeyPatch, inodes: dict[str, int | None], named: set[int] | None = None
) -> None:
    """/proc's namespace inodes, and those of `ip netns` (/run/netns)."""
    monkeypatch.setattr(rundir, "netns_inode", lambda path=OWN: inodes[path])
    monkeypatch.setattr(rundir, "named_netns_inodes", lambda: named or set())


def test_the_initial_namespace_uses_run_pycarp(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_namespaces(monkeypatch, {OWN: 4026531840, INITIAL: 4026531840})
    assert run_directory("linux") == "/run/pycarp"


def test_another_namespace_gets_a_directory_named_after_its_inode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_namespaces(monkeypatch, {OWN: 4026532301, INITIAL: 4026531840})
    assert run_directory("linux") == "/run/pycarp/netns-4026532301"


@pytest.mark.parametrize(
    "inodes",
    [
        {OWN: 4026532301, INITIAL: None},  # /proc/1/ns/net unreadable: not root
        {OWN: None, INITIAL: 4026531840},  # no /proc at all
    ],
)
def test_when_it_cannot_tell_it_takes_the_initial_namespace(
    monkeypatch: pytest.MonkeyPatch, inodes: dict[str, int | None]
) -> None:
    fake_namespaces(monkeypatch, inodes)
    assert run_directory("linux") == "/run/pycarp"


def test_without_proc_1_a_namespace_of_ip_netns_is_still_told_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not root, or a sandbox whose pid 1 may not be inspected: /run/netns says it."""
    fake_namespaces(monkeypatch, {OWN: 4026532301, INITIAL: None}, named={4026532301, 9})
    assert run_directory("linux") == "/run/pycarp/netns-4026532301"
    # the kernel's fixed inode of the initial namespace, even if it has a name
    fake_namespaces(monkeypatch, {OWN: 0xEFFFFFF9, INITIAL: None}, named={0xEFFFFFF9})
    assert run_directory("linux") == "/run/pycarp"


def test_other_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_namespaces(monkeypatch, {})  # never asked
    assert run_directory("sunos5") == "/var/run/pycarp"
    assert run_directory("freebsd14") == "/run/pycarp"


def test_netns_inode_of_this_process() -> None:
    assert netns_inode() == os.stat("/proc/self/ns/net").st_ino  # one thread: the same
    assert netns_inode("/proc/nonexistent/ns/net") is None


def test_netns_inode_when_proc_1_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    real_stat = os.stat

    def stat(path: str) -> os.stat_result:
        if path == INITIAL:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_stat(path)

    monkeypatch.setattr(os, "stat", stat)
    assert netns_inode(INITIAL) is None
    assert run_directory("linux") == "/run/pycarp"


def test_this_process_gets_the_directory_of_its_namespace() -> None:
    """Whatever namespace the tests run in, the rule holds for the real /proc."""
    own = os.stat(OWN).st_ino
    try:
        initial = own == os.stat(INITIAL).st_ino
    except PermissionError:  # not root, or a sandbox's pid 1
        initial = own not in named_netns_inodes() or own == 0xEFFFFFF9
    assert run_directory() == ("/run/pycarp" if initial else f"/run/pycarp/netns-{own}")


def test_named_namespaces_are_read_from_run_netns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one").write_text("")
    monkeypatch.setattr(rundir, "NAMED_NETNS_DIR", str(tmp_path))
    assert named_netns_inodes() == {(tmp_path / "one").stat().st_ino}
    monkeypatch.setattr(rundir, "NAMED_NETNS_DIR", str(tmp_path / "absent"))
    assert named_netns_inodes() == set()


def test_default_control_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "run_directory", lambda: "/run/pycarp/netns-7")
    assert default_control_socket("eth0", 101) == "/run/pycarp/netns-7/eth0-101.sock"
    assert default_control_socket() == "/run/pycarp/netns-7/pycarp.sock"
    # settings built without a socket (a TOML file's) get the shared name
    assert DaemonSettings(vhosts=()).control_socket == "/run/pycarp/netns-7/pycarp.sock"
