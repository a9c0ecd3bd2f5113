"""What `pycarp status`, `demote` and `reload` print: the status table and its notes.

Every value comes from a daemon, maybe an older or newer one than this
client: a missing or odd field is shown as "-", never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

from pycarp.client.instances import Instance

__all__ = [
    "COLUMNS",
    "describe_group",
    "human_duration",
    "render_reload",
    "render_table",
]

COLUMNS = (
    *("INSTANCE", "INTERFACE", "VHID", "STATE", "FOR", "DEMOTE", "REASON", "MASTER"),
    *("SENT/RECV", "DROPS"),
)
FAULT_INDENT = "  "


def render_table(instances: Sequence[Instance]) -> str:
    """The status table: one row per virtual host of each daemon, columns aligned.

    INSTANCE names the daemon by its socket (``eth0-101`` for
    /run/pycarp/eth0-101.sock). A host with a fault gets a line of its own
    under its row. Below the table, a line for each check, each demotion group
    with a count, and each interface that dropped packets before they reached
    a virtual host; named by daemon when there are several.
    """
    hosts = [(instance.name, host) for instance in instances for host in instance.hosts]
    lines = _host_lines(hosts) if hosts else ["no virtual hosts"]
    several = len(instances) > 1
    notes = [
        f"{instance.name}: {note}" if several else note
        for instance in instances
        for note in _notes(instance)
    ]
    return "\n".join([*lines, "", *notes] if notes else lines)


def _host_lines(hosts: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [COLUMNS, *(_row(name, host) for name, host in hosts)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [_line(COLUMNS, widths)]
    for row, (_, host) in zip(rows[1:], hosts, strict=True):
        lines.append(_line(row, widths))
        if host.get("fault"):  # absent, null or empty: no fault
            lines.append(f"{FAULT_INDENT}fault: {host['fault']}")
    return lines


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _row(name: str, host: dict[str, Any]) -> tuple[str, ...]:
    return (
        name,
        _cell(host.get("interface")),
        _cell(host.get("vhid")),
        _cell(host.get("state")),
        human_duration(host.get("for")),
        _demote(host),
        _cell(host.get("reason")),
        _master(host),
        f"{_cell(host.get('adverts_sent'))}/{_cell(host.get('adverts_received'))}",
        _drops(host.get("dropped")),
    )


def _demote(host: dict[str, Any]) -> str:
    """``promoted``; the demote count, with ``stepdown`` when that is what it does; or "-"."""
    if host.get("promoted") is True:
        return "promoted"
    count = host.get("demote")
    if not _is_number(count) or count <= 0:
        return "-"
    return f"{count} stepdown" if host.get("demotion") == "stepdown" else str(count)


def _master(host: dict[str, Any]) -> str:
    address = host.get("master")
    if address is None:
        return "-"
    timing = f"{_cell(host.get('master_advbase'))}/{_cell(host.get('master_advskew'))}"
    if host.get("protocol") == "vrrp3":  # VRRP: the priority, and the interval in seconds
        timing = f"priority {_cell(host.get('master_priority'))}"
        timing += f" every {_cell(host.get('master_advert_int'))} s"
    if host.get("state") == "MASTER":
        return f"{address} {timing} (this host)"
    seen = host.get("master_seen_ago")
    return f"{address} {timing}" + ("" if seen is None else f", seen {human_duration(seen)} ago")


def _drops(dropped: Any) -> str:
    if not isinstance(dropped, dict) or not dropped:
        return "-"
    return " ".join(f"{reason}={count}" for reason, count in sorted(dropped.items()))


# --- below the table ---------------------------------------------------------------


def _notes(instance: Instance) -> list[str]:
    notes = [_check(check) for check in instance.checks]
    notes += (
        f"group {describe_group(group, group.get('name'))}"
        for group in instance.groups
        if _is_number(group.get("count")) and group["count"] > 0
    )
    for name, interface in sorted(instance.interfaces.items()):
        dropped = interface.get("dropped") if isinstance(interface, dict) else None
        if isinstance(dropped, dict) and dropped:
            notes.append(f"interface {name}: dropped {_drops(dropped)}")
    return notes


def _check(check: dict[str, Any]) -> str:
    """``check web (http, group web): healthy for 5m07s, last: HTTP 200``."""
    head = f"check {_cell(check.get('name'))} ({_cell(check.get('type'))}, group "
    text = f"{head}{_cell(check.get('group'))}): {_cell(check.get('state'))}"
    if _is_number(check.get("for")):
        text += f" for {human_duration(check['for'])}"
    ok = check.get("ok")
    if ok is None:
        return f"{text}, no result yet"
    return f"{text}, last: {check.get('detail') or ('passed' if ok else 'failed')}"


def describe_group(group: dict[str, Any], name: Any) -> str:
    """``web: count 2 (manual 1; failing: web)  hosts: eth0/vhid 7``."""
    parts = [f"manual {_cell(group.get('manual'))}"]
    failing = _names(group.get("failing"))
    if failing:
        parts.append(f"failing: {', '.join(failing)}")
    hosts = ", ".join(_names(group.get("hosts"))) or "none"
    return f"{_cell(name)}: count {_cell(group.get('count'))} ({'; '.join(parts)})  hosts: {hosts}"


# --- values ------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and isinstance(value, int | float)


def human_duration(seconds: Any) -> str:
    """42s, 5m07s, 2h03m, 3d04h; tenths under 10 s; "-" when unknown."""
    if not _is_number(seconds):
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{int(seconds * 10) / 10:.1f}s"  # cut, not rounded: 9.96 s is not 10.0 s
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def render_reload(answer: dict[str, Any]) -> str:
    """What a reload did: a summary line, then one line per host added, removed, changed."""
    groups = {kind: _names(answer.get(kind)) for kind in ("added", "removed", "changed")}
    unchanged = _names(answer.get("unchanged"))
    counts = ", ".join(f"{len(names)} {kind}" for kind, names in groups.items())
    lines = [f"reloaded: {counts}, {len(unchanged)} unchanged"]
    for kind, names in groups.items():
        lines += (f"  {kind:<8} {name}" for name in names)
    return "\n".join(lines)


def _names(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
