"""A drop-in pycarp given --pass on its command line keeps the password out of sight.

Neither its /proc/PID/cmdline (what ps shows every local user) nor its
scripts' environment or command lines (nor their parent's) hold the password,
its log and status do not either, it warns once, and it still interoperates
with a ucarp peer using the same password, in both roles.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.lab import Lab
from pycarp.lab.wait import wait_until
from pycarp.runtime.secrets import VISIBLE_WARNING
from tests.netns.daemons import Daemons, Peer
from tests.netns.observe import status_json

pytestmark = pytest.mark.netns

SECRET = "hush-4d1b9c"
VHID, VIP = 91, "198.51.100.191"
ELECTION, TAKEOVER = 6.0, 6.0

# Each call dumps the script's environment and command line, and its parent's.
SPY = """tr '\\0' ' ' < /proc/$$/cmdline >> "{dir}/script-cmdline"; echo >> "{dir}/script-cmdline"
tr '\\0' ' ' < /proc/$PPID/cmdline >> "{dir}/parent-cmdline"; echo >> "{dir}/parent-cmdline"
env >> "{dir}/script-env"
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


def _spied(peer: Peer) -> Peer:
    """The peer's up and down scripts also record what a script can see."""
    for name in ("up.sh", "down.sh"):
        script = peer.workdir / name
        shebang, _, rest = script.read_text().partition("\n")
        script.write_text(f"{shebang}\n{SPY.format(dir=peer.workdir)}{rest}")
    return peer


def _proc(pid: int | None, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def _seen_by_scripts(peer: Peer) -> str:
    names = ("script-cmdline", "parent-cmdline", "script-env")
    return "".join((peer.workdir / n).read_text() for n in names if (peer.workdir / n).exists())


def test_drop_in_with_pass_hides_it_and_still_fails_over(lab: Lab, daemons: Daemons) -> None:
    a = lab.add_host("a", "198.51.100.92")
    b = lab.add_host("b", "198.51.100.93")
    ucarp = daemons.peer(b, "ucarp", vhid=VHID, password=SECRET, vip=VIP).start()
    assert ucarp.wait_master(ELECTION), ucarp.describe()
    peer = daemons.peer(a, "pycarp", vhid=VHID, password=SECRET, vip=VIP, advskew=50,
                        extra=["--debug"])  # fmt: skip
    pycarp = _spied(peer).start()
    dump = daemons.describe

    # ucarp's adverts are accepted: pycarp stays BACKUP (its down script ran).
    assert pycarp.wait_backup(ELECTION), dump()
    assert f"--pass={SECRET}" in " ".join(pycarp.argv)  # it was given on the command line
    cmdline = _proc(pycarp.pid, "cmdline")
    assert SECRET.encode() not in cmdline and b"--vhid=91" in cmdline, cmdline
    assert SECRET.encode() not in _proc(pycarp.pid, "environ")
    status = subprocess.run(["ps", "-o", "args=", "-p", str(pycarp.pid)],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert SECRET not in status and "pycarp" in status, status

    # The master crashes: pycarp takes over, and its adverts keep a fresh ucarp BACKUP.
    ucarp.crash_host()
    b.link_up()
    assert pycarp.wait_master(TAKEOVER), dump()
    again = daemons.peer(b, "ucarp", vhid=VHID, password=SECRET, vip=VIP, advskew=100).start()
    assert again.wait_backup(ELECTION), dump()
    assert not again.wait_master(4.0), dump()  # past its master-down interval
    assert pycarp.is_master(), dump()

    # The scripts ran, saw their parent's scrubbed command line, and no password.
    seen = _seen_by_scripts(pycarp)
    assert "--vhid=91" in seen and "PYCARP_PASSWORD_FD" not in seen, seen
    assert SECRET not in seen, seen

    # Nothing of it in the status answer, nor in the log, debug lines included.
    hosts = status_json(a, dump())
    assert hosts and SECRET not in str(hosts), hosts
    log = pycarp.log()
    assert SECRET not in log, log
    assert log.count(f"pycarp: warning: {VISIBLE_WARNING}") == 1, log
    assert log.count(f"[WARNING] {VISIBLE_WARNING}") == 1, log
    assert "capabilities: kept CAP_NET_ADMIN, CAP_NET_RAW" in log, log


def test_daemonized_drop_in_hides_it_too(lab: Lab, daemons: Daemons) -> None:
    c = lab.add_host("c", "198.51.100.94")
    peer = daemons.peer(c, "pycarp", vhid=VHID + 1, password=SECRET, vip="198.51.100.192",
                        extra=["-B"])  # fmt: skip
    peer.start(wait=False)
    assert peer.wait(10) == 0, peer.describe()  # the foreground process exits at once
    assert peer.wait_master(ELECTION), peer.describe()
    (running,) = status_json(c, peer.describe())
    pid = running["pid"]
    try:
        cmdline = _proc(pid, "cmdline")
        assert SECRET.encode() not in cmdline and b"\0-B\0" in cmdline, cmdline
        # Before it detached, the terminal got the warning once.
        assert peer.log().count(f"pycarp: warning: {VISIBLE_WARNING}") == 1, peer.log()
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10), peer.describe()
