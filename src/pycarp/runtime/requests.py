"""The control socket's requests: what a line may ask, and what the daemon answers.

pycarp.runtime.control owns the socket and its connections; this module
turns one request line into a Request (or a RequestError to send back) and
a Request into the handler's answer. The protocol is in control's docstring.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pycarp.core.checkconfig import MAX_GROUP, name_problem
from pycarp.core.config import VHID_RANGE
from pycarp.core.errors import CarpError
from pycarp.runtime.events import EventBus

log = logging.getLogger("pycarp")

__all__ = [
    "ADJUSTMENT_RANGE",
    "COMMANDS",
    "ControlHandler",
    "Request",
    "RequestError",
    "answer",
    "encode",
    "failure",
    "parse",
]

COMMANDS = ("status", "stepdown", "promote", "demote", "reload", "events")
ADJUSTMENT_RANGE = range(-MAX_GROUP, MAX_GROUP + 1)  # `by` of a demote request


class ControlHandler(Protocol):
    """What the daemon answers through the control socket."""

    def status(self) -> dict[str, Any]:
        """The status document: {"hosts": [...], "interfaces": {...}, "checks": [...],
        "groups": [...]} (docs/status.md); ``hosts`` holds VirtualHostStatus.to_json(now=...)
        of each virtual host."""
        ...

    def stepdown(self, vhid: int | None) -> list[str]:
        """Step down ``vhid`` (None: every host); the hosts that did.

        Raises ValueError for a vhid that no virtual host has.
        """
        ...

    def promote(self, vhid: int | None) -> list[str]:
        """Make ``vhid`` (None: every host) MASTER now; the hosts that were promoted.

        Raises ValueError for a vhid that no virtual host has.
        """
        ...

    def demote(self, group: str, by: int) -> dict[str, Any]:
        """Add ``by`` (-255..255) to the manual part of demotion group ``group``.

        Returns the group afterwards: {"group", "count", "manual", "failing",
        "hosts"}. Raises ValueError for a group the daemon does not have.
        """
        ...

    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration: {"added", "removed", "changed", "unchanged"}.

        Raises ConfigError or ValueError, with a message, for a bad configuration.
        """
        ...

    def events(self) -> EventBus:
        """The bus the daemon publishes its events on (pycarp.runtime.events)."""
        ...


class RequestError(Exception):
    """A request the daemon refuses; the message goes back to the client."""


@dataclass(frozen=True)
class Request:
    command: str
    vhid: int | None = None  # stepdown, promote: None is every host
    group: str = ""  # demote
    by: int = 1  # demote


def parse(line: bytes) -> Request:
    """The Request of a request line; RequestError saying what is wrong."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise RequestError("the request is not valid JSON") from None
    if not isinstance(request, dict):
        raise RequestError('the request must be a JSON object such as {"command": "status"}')
    command = request.get("command")
    if command not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise RequestError(f"unknown command {_short(command)} (known: {known})")
    if command in ("stepdown", "promote"):
        return Request(command, vhid=_vhid(request.get("vhid")))
    if command == "demote":
        return Request(command, group=_group(request.get("group")), by=_by(request.get("by", 1)))
    return Request(command)


def _vhid(vhid: object) -> int | None:
    if vhid is None:
        return None
    if isinstance(vhid, bool) or not isinstance(vhid, int) or vhid not in VHID_RANGE:
        raise RequestError(f"vhid must be a number from 1 to 255, not {_short(vhid)}")
    return vhid


def _group(group: object) -> str:
    if not isinstance(group, str) or name_problem(group) is not None:
        raise RequestError(
            "group must be the name of a demotion group (1 to 63 letters, digits, '_', '.' "
            f"or '-'), not {_short(group)}"
        )
    return group


def _by(by: object) -> int:
    if isinstance(by, bool) or not isinstance(by, int) or by not in ADJUSTMENT_RANGE:
        raise RequestError(
            f"by must be a number from -{MAX_GROUP} to {MAX_GROUP}, not {_short(by)}"
        )
    return by


async def answer(handler: ControlHandler, request: Request, reload_lock: asyncio.Lock) -> bytes:
    """The answer line to a request other than ``events``; never raises.

    ``reload_lock`` keeps reloads one at a time.
    """
    try:
        return encode(await _run(handler, request, reload_lock))
    except (CarpError, ValueError) as exc:  # the handler's word for "no"
        return encode(failure(str(exc) or f"{request.command} failed"))
    except Exception as exc:  # TypeError from encode, or a bug in the handler
        why = str(exc) or type(exc).__name__
        log.error("control socket: %s failed: %s", request.command, why)
        log.debug("%s failed", request.command, exc_info=True)
        return encode(failure(f"{request.command} failed: {why} (see the daemon's log)"))


async def _run(
    handler: ControlHandler, request: Request, reload_lock: asyncio.Lock
) -> dict[str, Any]:
    command = request.command
    if command == "status":
        result: dict[str, Any] = dict(handler.status())
    elif command == "stepdown":
        result = {"stepped_down": handler.stepdown(request.vhid)}
    elif command == "promote":
        result = {"promoted": handler.promote(request.vhid)}
    elif command == "demote":
        result = dict(handler.demote(request.group, request.by))
    elif command == "reload":
        async with reload_lock:
            result = dict(await handler.reload())
    else:
        raise RuntimeError(f"{command} is not a request with one answer")
    result["ok"] = True
    return result


def _short(value: object, limit: int = 40) -> str:
    """repr() of a client's value, cut so that an answer never echoes a huge one."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode() + b"\n"
