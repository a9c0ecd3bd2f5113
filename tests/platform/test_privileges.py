"""Dropping capabilities: each case in a child process, so pytest keeps its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pycarp.platform.illumos import IllumosPlatform

NET = (1 << 12) | (1 << 13)  # CAP_NET_ADMIN | CAP_NET_RAW

PROBE = """
import json, sys
from pycarp.platform.linux import LinuxPlatform
locked = len(sys.argv) > 2 and sys.argv[2] == "locked"
said = LinuxPlatform().drop_privileges(keep_bounding=sys.argv[1] == "keep", locked_memory=locked)
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status") if ":\\t" in line)
caps = {k: int(v, 16) for k, v in status.items() if k.startswith("Cap")}
print(json.dumps({"said": said, **caps}))
"""

linux_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="needs Linux and root"
)


def _drop(bounding: str, locked: str = "") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, bounding, locked], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@linux_root
def test_only_net_raw_and_net_admin_stay() -> None:
    caps = _drop("drop")
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == (NET, NET, NET), caps
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, caps
    said = str(caps["said"])
    assert said.startswith("capabilities: kept CAP_NET_ADMIN, CAP_NET_RAW"), said
    assert "bounding set cut to CAP_NET_ADMIN, CAP_NET_RAW" in said, said


@linux_root
def test_locked_memory_keeps_cap_ipc_lock_too() -> None:
    """Realtime: memory locked past RLIMIT_MEMLOCK needs it for as long as it lasts."""
    caps = _drop("drop", "locked")
    kept = NET | 1 << 14
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == (kept, kept, kept), caps
    assert "kept CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK" in str(caps["said"]), caps


@linux_root
def test_with_scripts_the_bounding_set_stays_whole() -> None:
    before = subprocess.run(
        ["grep", "CapBnd", "/proc/self/status"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    caps = _drop("keep")
    assert (caps["CapEff"], caps["CapPrm"]) == (NET, NET), caps
    assert caps["CapBnd"] == int(before, 16), caps
    assert "left whole for the scripts" in str(caps["said"])


# After the drop, the effective set of a program this process runs (a script).
SCRIPT_PROBE = """
import subprocess, sys
from pycarp.platform.linux import LinuxPlatform
LinuxPlatform().drop_privileges(keep_bounding=sys.argv[1] == "keep")
print(subprocess.run(["grep", "CapEff", "/proc/self/status"], capture_output=True,
                     text=True, check=True).stdout.split()[1])
"""


@linux_root
@pytest.mark.parametrize("bounding", ["keep", "drop"])
def test_what_a_script_of_a_root_daemon_gets(bounding: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT_PROBE, bounding], capture_output=True, text=True, check=True
    )
    child = int(done.stdout, 16)
    if bounding == "keep":
        assert child & ~NET, hex(child)  # root's usual capabilities, more than the daemon kept
    else:
        assert child == NET, hex(child)


def test_illumos_leaves_privileges_and_says_so() -> None:
    said = IllumosPlatform().drop_privileges(keep_bounding=False)
    assert said.startswith("privileges: left as they are")
