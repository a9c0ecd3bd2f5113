"""Child processes in process groups of their own: stopping a group, reading its output.

Scripts (runtime/scripts.py) and command checks (runtime/probes.py) both run
so: in a session of their own, writing into a pipe of ours that is read as
it comes (never waiting for EOF, which a background child may hold off) and
of which only one end is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Literal

from pycarp.runtime.secrets import script_environment

CHUNK = 65536


async def spawn(
    argv: Sequence[str], *, keep: int, end: Literal["head", "tail"]
) -> tuple[asyncio.subprocess.Process, Output]:
    """Start argv in a session of its own, stdin /dev/null, stdout and stderr into one pipe.

    The pipe is ours, not asyncio's: waiting for the exit must not wait for
    the output's EOF. No password variable reaches the child. OSError or
    ValueError when argv cannot be run.
    """
    read_end, write_end = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=write_end,
            start_new_session=True,
            env=script_environment(),
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return proc, Output(read_end, keep=keep, end=end)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def stop_group(
    proc: asyncio.subprocess.Process, *, grace: float, reap: float | None = None
) -> None:
    """SIGTERM to the process group; SIGKILL to what is left after `grace` seconds.

    Then wait for the process: for ever, or at most `reap` seconds (one in D
    state is reaped later by the child watcher).
    """
    signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
    except TimeoutError:
        pass
    finally:  # also when cancelled again: the group must not outlive this
        signal_group(proc.pid, signal.SIGKILL)
    if reap is None:
        await proc.wait()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), reap)


class Output:
    """What a child writes into the pipe `fd`, read as it comes; `keep` bytes of one end kept.

    After take() the rest is read and dropped until EOF (or close()).
    """

    def __init__(self, fd: int, *, keep: int, end: Literal["head", "tail"]) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self._keep, self._end = keep, end
        self._data = bytearray()
        self.truncated = False  # more was written than kept
        self._keeping = True
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def take(self) -> str:
        """What was kept, once what is in the pipe now is read (a bounded number of reads)."""
        for _ in range(self._keep // CHUNK + 2):
            if not self._read():
                break
        text = self._data.decode(errors="replace")
        self._keeping = False
        self._data.clear()
        return text

    def close(self) -> None:
        """Stop reading: the pipe is closed (a writer left gets EPIPE)."""
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _read(self) -> bool:
        """Read what is there; False when nothing more is there now."""
        if self._fd is None:
            return False
        try:
            data = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:  # every writer has closed it
            self.close()
            return False
        if self._keeping:
            self._data += data
            if len(self._data) > self._keep:
                self.truncated = True
                if self._end == "tail":
                    del self._data[: -self._keep]
                else:
                    del self._data[self._keep :]
        return True
