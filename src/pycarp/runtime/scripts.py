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
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pycarp.core.actions import HostKey, RunScript
from pycarp.core.config import SCRIPT_TIMEOUT
from pycarp.runtime.groups import Output, spawn, stop_group

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
    try:
        proc, output = await spawn(argv, keep=TAIL_BYTES, end="tail")
    except OSError as exc:
        log.error("%s: unable to run %s: %s", key, argv[0], exc)
        return
    try:
        status = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        await stop_group(proc, grace=KILL_GRACE)
        _report(key, argv[0], f"still running after {timeout:g} s: killed", tail(output))
        return
    except asyncio.CancelledError:
        await stop_group(proc, grace=KILL_GRACE)
        _report(key, argv[0], "superseded (or pycarp stopping): killed", tail(output))
        raise
    lines = tail(output)
    if status == 0:
        _report(key, argv[0], "", lines)
    elif status < 0:
        _report(key, argv[0], f"killed by signal {-status}", lines)
    else:
        _report(key, argv[0], f"exited with status {status}", lines)


def tail(output: Output) -> list[str]:
    """The last lines written so far (the first saying when earlier ones were left out).

    From now on output is not kept: a background child that writes on is read and dropped.
    """
    lines = output.take().splitlines()
    if output.truncated or len(lines) > TAIL_LINES:
        lines = ["(earlier output left out)", *lines[-TAIL_LINES:]]
    return lines


def _report(key: HostKey, script: str, failure: str, lines: list[str]) -> None:
    level = logging.ERROR if failure else logging.INFO
    for line in lines:
        log.log(level, "%s: %s: %s", key, script, line)
    if failure:
        log.error("%s: %s %s", key, script, failure)
    else:
        log.info("%s: %s exited with status 0", key, script)
