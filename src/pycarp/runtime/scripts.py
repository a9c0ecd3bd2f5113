"""Per-host up and down scripts, run in the background (docs/scripts.md).

Scripts are run as ucarp runs them: `script <interface> <vip> [xparam]`. The
scripts of one virtual host run one after the other; different hosts run
independently, and nothing waits for them: not the advertisement loop, not
the built-in plumbing. A host's direction (up when it becomes MASTER, down
when it stops being one) decides which of its jobs still matter: turning
supersedes the queued and running jobs of the other direction, and a
superseded script's process group is killed before the next script starts.

Each script runs in a session (and process group) of its own, has a timeout
after which its group gets SIGTERM, then SIGKILL, and ends when its process
exits: background children that keep its output open do not hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pycarp.core.actions import HostKey, RunScript
from pycarp.core.config import SCRIPT_TIMEOUT
from pycarp.runtime.secrets import script_environment

log = logging.getLogger("pycarp.scripts")
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL to a script's process group
TAIL_LINES = 20  # what a log keeps of a script's output: its last lines, at most TAIL_BYTES
TAIL_BYTES = 4096

Job = Callable[[], Awaitable[None]]
Direction = Literal["up", "down"]


class SerialJobs:
    def __init__(self) -> None:
        # Each host's unfinished jobs, with the direction the host had when each was submitted.
        self._live: dict[HostKey, dict[asyncio.Task[None], Direction | None]] = {}
        self._direction: dict[HostKey, Direction] = {}

    def submit(self, key: HostKey, job: Job) -> None:
        """Start job once every earlier job of the host has finished; return at once."""
        live = self._live.setdefault(key, {})
        earlier = list(live)
        task = asyncio.get_running_loop().create_task(self._after(earlier, job))
        live[task] = self._direction.get(key)
        task.add_done_callback(lambda done: live.pop(done, None))

    def turn(self, key: HostKey, direction: Direction) -> None:
        """The host now goes up or down: its jobs of the other direction are superseded."""
        if self._direction.get(key) == direction:
            return
        self._direction[key] = direction
        for task, given in self._live.get(key, {}).items():
            if given is not None and given != direction:
                task.cancel()  # a running script kills its process group on the way out

    def script(self, action: RunScript) -> None:
        """Run the action's commands in turn, as the host's next jobs."""
        self.turn(action.key, action.which)
        for argv in action.commands:
            self.run(action.key, argv, timeout=action.timeout)

    def run(self, key: HostKey, argv: Sequence[str], *, timeout: float = SCRIPT_TIMEOUT) -> None:
        """Run a script as the host's next job."""
        args = list(argv)
        self.submit(key, lambda: run_script(key, args, timeout=timeout))

    async def wait(self, timeout: float) -> bool:
        """Wait for every job submitted so far; False if some were still running (now killed)."""
        pending = [t for live in self._live.values() for t in live]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:  # let them kill their process groups
            await asyncio.wait(still, timeout=KILL_GRACE + 1.0)
        return not still

    @staticmethod
    async def _after(earlier: list[asyncio.Task[None]], job: Job) -> None:
        if earlier:
            await asyncio.wait(earlier)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing job must not stop the ones after it
            log.exception("background job failed")


async def run_script(key: HostKey, argv: list[str], *, timeout: float = SCRIPT_TIMEOUT) -> None:
    """Run one script to its exit, its timeout or its cancellation; log the outcome."""
    log.warning("%s: spawning [%s]", key, " ".join(argv))
    read_end, write_end = os.pipe()
    try:
        # Our own pipe, not asyncio's: its wait() must not wait for the output's EOF.
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=write_end,
            start_new_session=True,
            env=script_environment(),  # no password variable reaches a script
        )
    except OSError as exc:
        os.close(read_end)
        log.error("%s: unable to run %s: %s", key, argv[0], exc)
        return
    except asyncio.CancelledError:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    output = Output(read_end)
    try:
        status = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        await stop_group(proc)
        _report(key, argv[0], f"still running after {timeout:g} s: killed", output.detach())
        return
    except asyncio.CancelledError:
        await stop_group(proc)
        _report(key, argv[0], "superseded (or pycarp stopping): killed", output.detach())
        raise
    lines = output.detach()
    if status == 0:
        _report(key, argv[0], "", lines)
    elif status < 0:
        _report(key, argv[0], f"killed by signal {-status}", lines)
    else:
        _report(key, argv[0], f"exited with status {status}", lines)


async def stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the script's process group; SIGKILL to what is left after KILL_GRACE."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE)
    except TimeoutError:
        pass
    finally:  # also when cancelled again: the group must not outlive this
        signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Output:
    """A script's output as it comes, keeping only its tail, never waiting for EOF."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self._data = bytearray()
        self._truncated = False
        self._keeping = True
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def detach(self) -> list[str]:
        """The last lines written so far (the first saying when earlier ones were left out).

        From now on output is not kept: a background child that writes on is read and dropped.
        """
        # Bounded: a background child that writes on must not hold the event loop;
        # only the last TAIL_BYTES are kept anyway.
        for _ in range(TAIL_BYTES // 65536 + 2):
            if not self._read():
                break
        lines = self._data.decode(errors="replace").splitlines()
        if self._truncated or len(lines) > TAIL_LINES:
            lines = ["(earlier output left out)", *lines[-TAIL_LINES:]]
        self._keeping = False
        self._data.clear()
        return lines

    def _read(self) -> bool:
        """Read what is there; False when nothing more is there now."""
        if self._fd is None:
            return False
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:  # every writer has closed it
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
            return False
        if self._keeping:
            self._data += data
            if len(self._data) > TAIL_BYTES:
                del self._data[:-TAIL_BYTES]
                self._truncated = True
        return True


def _report(key: HostKey, script: str, failure: str, lines: list[str]) -> None:
    level = logging.ERROR if failure else logging.INFO
    for line in lines:
        log.log(level, "%s: %s: %s", key, script, line)
    if failure:
        log.error("%s: %s %s", key, script, failure)
    else:
        log.info("%s: %s exited with status 0", key, script)
