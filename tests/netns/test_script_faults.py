"""A hung up script never keeps the VIP on two hosts (issue 10, scripts).

The master's up script hangs (sleep 60), or exits 0 but leaves a background
child holding its output open. Neither may delay what the step-down or a
stop must do: the built-in plumbing does not wait for scripts, the down
script supersedes the up script (its process group killed), and a stop
exits within its bound with the VIP gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost, toml_config, which

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
MASTER_DOWN = 3 + 50 / 256  # the peer's master-down interval (advbase 1, advskew 50)
BOTH_AT_MOST = 2.0  # seconds the VIP may be on both hosts, from the step-down
SETTLED = MASTER_DOWN + 3.0  # from the step-down until the VIP is on the peer only
KILL_GRACE = 1.0  # SIGTERM to SIGKILL of a superseded script (runtime.scripts)
SCRIPT_TIMEOUT = 5

Hang = Literal["hang", "background"]


def write_scripts(workdir: Path, *, plumb: bool, hang: Hang) -> tuple[Path, Path]:
    """Up and down scripts; with plumb=False they add and remove the VIP themselves."""
    ip = which("ip")
    add = "" if plumb else f'{ip} addr add "$2/32" dev "$1"\n'
    delete = "" if plumb else f'{ip} addr del "$2/32" dev "$1" 2>/dev/null\n'
    if hang == "hang":
        rest = f"echo $$ >> {workdir}/pids\nsleep 60\n"
    else:  # exits at once, its child keeping stdout open for 30 s
        rest = f"(sleep 30) &\necho $! >> {workdir}/pids\nexit 0\n"
    up, down = workdir / "up.sh", workdir / "down.sh"
    up.write_text(f"#!/bin/sh\n{add}echo up >> {workdir}/calls\n{rest}")
    down.write_text(f"#!/bin/sh\n{delete}echo down >> {workdir}/calls\n")
    for path in (up, down):
        path.chmod(0o755)
    return up, down


def scripted_daemon(
    daemons: Daemons, host: Host, *, advskew: int, plumb: bool, hang: Hang, shutdown: bool = False
) -> TomlDaemon:
    vhosts = [VHost(1, (f"{VIP}/32",), advskew=advskew)]
    daemon = daemons.toml(host, vhosts)
    up, down = write_scripts(daemon.workdir, plumb=plumb, hang=hang)
    flag = "true" if shutdown else "false"
    extra = [f'upscript = "{up}"', f'downscript = "{down}"', f"plumb = {str(plumb).lower()}"]
    extra += [f"shutdown = {flag}", f"script_timeout = {SCRIPT_TIMEOUT}"]
    text = toml_config(host, vhosts, daemon.password) + "\n".join(extra) + "\n"
    daemon.config_path.write_text(text)  # the last [[vhost]] gets the extra keys
    return daemon


def script_pids(daemon: TomlDaemon) -> list[int]:
    path = daemon.workdir / "pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()  # a zombie too: whoever started it must reap it


@pytest.fixture
def leftovers() -> Iterator[list[TomlDaemon]]:
    """Daemons whose scripts' processes are killed after the test (they run in own sessions)."""
    made: list[TomlDaemon] = []
    yield made
    for daemon in made:
        for pid in script_pids(daemon):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def vip_on(host: Host) -> bool:
    return f"{VIP}/32" in host.addresses()


@pytest.mark.parametrize("hang", ["hang", "background"])
@pytest.mark.parametrize("plumb", [True, False], ids=["plumb", "scripts"])
def test_a_step_down_is_not_held_up_by_a_hung_up_script(
    lab: Lab, daemons: Daemons, leftovers: list[TomlDaemon], plumb: bool, hang: Hang
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    master = scripted_daemon(daemons, a, advskew=0, plumb=plumb, hang=hang)
    peer = scripted_daemon(daemons, b, advskew=50, plumb=plumb, hang=hang)
    leftovers += [master, peer]
    master.start().wait_state(1, "MASTER", 6.0)
    peer.start().wait_state(1, "BACKUP", 3.0)
    assert wait_until(lambda: vip_on(a) and bool(script_pids(master)), 5.0), master.describe()

    started = time.monotonic()
    assert master.stepdown().returncode == 0, master.describe()
    both = 0.0
    last = started
    while True:  # sample both hosts until the VIP is on the peer only
        on_a, on_b = vip_on(a), vip_on(b)
        now = time.monotonic()
        if on_a and on_b:
            both += now - last
        last = now
        if on_b and not on_a:
            break
        assert now - started < SETTLED, f"a {on_a}, b {on_b}\n{daemons.describe()}"
        time.sleep(0.02)
    assert both <= BOTH_AT_MOST, daemons.describe()
    assert not vip_on(a) and master.status()[1]["state"] == "BACKUP", master.describe()
    if hang == "hang":  # superseded: its process group is gone
        (pid,) = script_pids(master)
        assert wait_until(lambda: not alive(pid), KILL_GRACE + 1.0), master.describe()
        assert "superseded" in master.log(), master.describe()


@pytest.mark.parametrize("plumb", [True, False], ids=["plumb", "scripts"])
def test_a_stop_while_an_up_script_hangs_exits_in_time_and_leaves_no_vip(
    lab: Lab, daemons: Daemons, leftovers: list[TomlDaemon], plumb: bool
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    # Scripts-only plumbing removes the VIP at exit only with ucarp's --shutdown.
    daemon = scripted_daemon(daemons, a, advskew=0, plumb=plumb, hang="hang", shutdown=not plumb)
    leftovers.append(daemon)
    daemon.start().wait_state(1, "MASTER", 6.0)
    assert wait_until(lambda: vip_on(a) and bool(script_pids(daemon)), 5.0), daemon.describe()
    (pid,) = script_pids(daemon)

    started = time.monotonic()
    # A lone master waits out one master-down interval, then stops; its scripts are bounded.
    bound = 3.0 + KILL_GRACE + SCRIPT_TIMEOUT + 3.0
    assert daemon.terminate(timeout=bound) == 0, daemon.describe()
    assert time.monotonic() - started < 3.0 + KILL_GRACE + 2.0, daemon.describe()
    assert not vip_on(a), daemon.describe()
    assert not alive(pid), daemon.describe()
    assert "stopped" in daemon.log()
    if not plumb:
        calls = (daemon.workdir / "calls").read_text().split()
        assert calls[-1] == "down", daemon.describe()
