"""Per-host background jobs: VIP plumbing and up/down scripts.

Jobs of one virtual host run one after the other (adding the addresses, then
the up script; the down script never overlaps the up script); different hosts
run independently, and nothing here ever delays the advertisement loop.
Scripts are run as ucarp runs them: `script <interface> <vip> [xparam]`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pycarp.core.actions import HostKey

log = logging.getLogger("pycarp.scripts")
OUTPUT_LIMIT = 64 * 1024  # what we keep of a script's output for the log

Job = Callable[[], Awaitable[None]]


class SerialJobs:
    def __init__(self) -> None:
        self._tails: dict[HostKey, asyncio.Task[None]] = {}

    def submit(self, key: HostKey, job: Job) -> None:
        """Start job once the host's previous job has finished; return at once."""
        previous = self._tails.get(key)
        self._tails[key] = asyncio.get_running_loop().create_task(self._after(previous, job))

    def run(self, key: HostKey, argv: Sequence[str]) -> None:
        """Run a script as the host's next job."""
        args = list(argv)
        self.submit(key, lambda: run_script(key, args))

    async def wait(self, timeout: float) -> bool:
        """Wait for every job submitted so far; False if some were still running."""
        pending = [t for t in self._tails.values() if not t.done()]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=2.0)  # let them kill their processes
        return not still

    @staticmethod
    async def _after(previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing job must not stop the ones after it
            log.exception("background job failed")


async def run_script(key: HostKey, argv: list[str]) -> None:
    log.warning("%s: spawning [%s]", key, " ".join(argv))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        log.error("%s: unable to run %s: %s", key, argv[0], exc)
        return
    try:
        output, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        log.error("%s: %s killed: still running at exit", key, argv[0])
        raise
    _log_result(key, argv[0], proc.returncode, output[:OUTPUT_LIMIT])


def _log_result(key: HostKey, script: str, status: int | None, output: bytes) -> None:
    for line in output.decode(errors="replace").splitlines():
        log.info("%s: %s: %s", key, script, line)
    if status == 0:
        log.info("%s: %s exited with status 0", key, script)
    elif status is not None and status < 0:
        log.error("%s: %s killed by signal %d", key, script, -status)
    else:
        log.error("%s: %s exited with status %s", key, script, status)
