"""bench/scale.py's pure parts: /proc parsing, CPU arithmetic, pycarp's config, states,
summaries and the targets (tests/bench/test_bench_scalecalc.py)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycarp.lab import ALLOWED_NETWORKS

IMPLS = ("pycarp", "ucarp")
ROLES = ("master", "backup")
REFERENCE_S = 30.0  # CPU is reported per this many seconds
PASSWORD = "bench"

# Measured before issue 8 (ms per 30 s, MiB): the baseline the targets improve on.
BEFORE: dict[str, dict[int, dict[str, float]]] = {
    "pycarp": {
        1: {"master": 13.7, "backup": 9.0, "rss": 35.0},
        255: {"master": 110.0, "backup": 451.0, "rss": 40.0},
    },
    "ucarp": {
        1: {"master": 3.4, "backup": 1.6, "rss": 5.3},
        255: {"master": 1641.0, "backup": 1509.0, "rss": 1346.0},
    },
}


def vip_for(vhid: int) -> str:
    """The virtual address of a vhid: 203.0.113.<vhid>, and 198.51.100.254 for vhid 255."""
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid {vhid} is outside 1..255")
    address = f"203.0.113.{vhid}" if vhid <= 254 else "198.51.100.254"
    assert any(ipaddress.IPv4Address(address) in net for net in ALLOWED_NETWORKS)
    return address


def parse_schedstat(text: str) -> int:
    """Nanoseconds on CPU: the first field of /proc/PID/task/TID/schedstat."""
    fields = text.split()
    if not fields or not fields[0].isdigit():
        raise ValueError(f"not a schedstat line: {text!r}")
    return int(fields[0])


def parse_status_kib(text: str, key: str = "VmRSS") -> int:
    """A "Key:   1234 kB" line of /proc/PID/status (or smaps_rollup), in KiB."""
    match = re.search(rf"^{re.escape(key)}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {key} line")
    return int(match[1])


def cpu_delta_ns(start: Mapping[int, int], end: Mapping[int, int]) -> int:
    """CPU time (ns) of a process's threads between two snapshots {tid: ns}.

    A thread born during the window counts in full; one that died during it
    is lost (its time is no longer readable), never counted negative.
    """
    return sum(max(0, ns - start.get(tid, 0)) for tid, ns in end.items())


def per_reference(ns: int, elapsed: float, reference: float = REFERENCE_S) -> float:
    """ns of CPU over `elapsed` seconds as ms per `reference` seconds."""
    if elapsed <= 0:
        raise ValueError("elapsed must be positive")
    return ns / 1e6 * reference / elapsed


def pycarp_toml(
    *, interface: str, srcip: str, vhids: Iterable[int], advskew: int, control_socket: Path
) -> str:
    """pycarp's TOML for one host: a [[vhost]] per vhid, one address each, built-in plumbing."""
    lines = [
        'facility = "none"',
        f"control_socket = {json.dumps(str(control_socket))}",
        "",
        "[defaults]",
        f"interface = {json.dumps(interface)}",
        f"srcip = {json.dumps(srcip)}",
        f"password = {json.dumps(PASSWORD)}",
        f"advskew = {advskew}",
    ]
    for vhid in vhids:
        lines += ["", "[[vhost]]", f"vhid = {vhid}", f'addresses = ["{vip_for(vhid)}"]']
    return "\n".join(lines) + "\n"


def pycarp_states(hosts: Sequence[Mapping[str, Any]], master_ip: str) -> dict[int, str]:
    """vhid -> state from pycarp's status; a BACKUP that has not heard master_ip is flagged."""
    states = {}
    for h in hosts:
        state = str(h.get("state"))
        if state == "BACKUP" and h.get("master") != master_ip:
            state = "BACKUP (master not heard)"
        states[int(h["vhid"])] = state
    return states


def ucarp_states(events: str, vhid_of: Mapping[str, int]) -> dict[int, str]:
    """vhid -> state from the up/down scripts' log ("up <vip>" / "down <vip>" lines)."""
    states = {}
    for line in events.splitlines():
        verb, _, vip = line.partition(" ")
        if vip in vhid_of and verb in ("up", "down"):
            states[vhid_of[vip]] = "MASTER" if verb == "up" else "BACKUP"
    return states


def state_problem(states: Mapping[int, str], vhids: Iterable[int], want: str) -> str | None:
    """None if every vhid is in state `want`; else what is not, briefly."""
    wrong = [(v, states.get(v, "no state yet")) for v in vhids if states.get(v) != want]
    if not wrong:
        return None
    shown = ", ".join(f"vhid {v}: {s}" for v, s in wrong[:3])
    more = f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""
    return f"{len(wrong)} not {want}: {shown}{more}"


def address_problem(present: Iterable[str], vips: Iterable[str], *, plumbed: bool) -> str | None:
    """None if all `vips` are on the interface (plumbed) or none is; `present` as "a.b.c.d/len"."""
    here = {p.split("/")[0] for p in present}
    wrong = [v for v in vips if (v in here) != plumbed]
    if not wrong:
        return None
    what = "missing" if plumbed else "still plumbed"
    return f"{len(wrong)} VIPs {what}: {', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _role_value(case: Mapping[str, Any] | None, role: str, key: str) -> float | None:
    if case is None or case.get("status") not in ("ok", "unstable"):
        return None
    value = case.get(role, {}).get(key)
    return float(value) if value is not None else None


def summarise(cases: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """A row per (vhosts, role): pycarp's and ucarp's CPU and RSS, and the ratios."""
    by = {(c["impl"], c["vhosts"]): c for c in cases}
    rows = []
    for size in sizes:
        for role in ROLES:
            row: dict[str, Any] = {"vhosts": size, "role": role}
            for metric, key in (("cpu", "cpu_ms_per_30s"), ("rss", "rss_mib")):
                p = _role_value(by.get(("pycarp", size)), role, key)
                u = _role_value(by.get(("ucarp", size)), role, key)
                row[f"pycarp_{metric}"], row[f"ucarp_{metric}"] = p, u
                row[f"{metric}_ratio"] = ratio(p, u)
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Target:
    """A goal for pycarp's row (vhosts, role): under an absolute limit or a multiple of ucarp's."""

    vhosts: int
    role: str
    metric: str  # "cpu" (ms per 30 s) or "rss" (MiB)
    limit: float
    of_ucarp: bool = False  # limit is a factor of ucarp's value
    strict: bool = True  # "under" (<) rather than "at most" (<=)

    @property
    def name(self) -> str:
        what = "CPU" if self.metric == "cpu" else "RSS"
        size = f"{self.vhosts} vhost{'s' if self.vhosts > 1 else ''}"
        op = "<" if self.strict else "<="
        unit = "ms/30 s" if self.metric == "cpu" else "MiB"
        bound = f"{self.limit:g}x ucarp" if self.of_ucarp else f"{self.limit:g} {unit}"
        return f"pycarp {what}, {size}, {self.role}: {op} {bound}"


TARGETS = (
    Target(255, "master", "cpu", 150.0),
    Target(255, "backup", "cpu", 150.0),
    Target(1, "master", "cpu", 2.0, of_ucarp=True, strict=False),
    Target(1, "backup", "cpu", 2.0, of_ucarp=True, strict=False),
    Target(1, "master", "rss", 35.0, strict=False),
    Target(1, "backup", "rss", 35.0, strict=False),
    Target(255, "master", "rss", 45.0),
    Target(255, "backup", "rss", 45.0),
)


def check_targets(
    rows: Sequence[Mapping[str, Any]], targets: Sequence[Target] = TARGETS
) -> list[dict[str, Any]]:
    """Each target with pycarp's value, the bound it had to meet and whether it did (None: not
    measured)."""
    by = {(r["vhosts"], r["role"]): r for r in rows}
    out = []
    for t in targets:
        row = by.get((t.vhosts, t.role), {})
        value = row.get(f"pycarp_{t.metric}")
        bound: float | None = t.limit
        if t.of_ucarp:
            ucarp = row.get(f"ucarp_{t.metric}")
            bound = None if ucarp is None else t.limit * ucarp
        met = None
        if value is not None and bound is not None:
            met = value < bound if t.strict else value <= bound
        out.append(
            {
                "target": t.name,
                "vhosts": t.vhosts,
                "role": t.role,
                "metric": t.metric,
                "value": value,
                "bound": bound,
                "met": met,
            }
        )
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a Markdown table (for the terminal and the README)."""
    lines = [
        "| vhosts | role | pycarp CPU | ucarp CPU | CPU pycarp/ucarp "
        "| pycarp RSS | ucarp RSS (sum) | RSS pycarp/ucarp |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['vhosts']} | {r['role']} | {_fmt(r['pycarp_cpu'])} ms"
            f" | {_fmt(r['ucarp_cpu'])} ms | {_fmt(r['cpu_ratio'], 2)}"
            f" | {_fmt(r['pycarp_rss'])} MiB"
            f" | {_fmt(r['ucarp_rss'])} MiB | {_fmt(r['rss_ratio'], 3)} |"
        )
    return "\n".join(lines)


def format_targets(checks: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in checks:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[c["met"]]
        unit = " ms" if c["metric"] == "cpu" else " MiB"
        detail = "" if c["value"] is None else f": {c['value']:.1f}{unit}"
        bound = "" if c["bound"] is None else f" (bound {c['bound']:.1f}{unit})"
        lines.append(f"- {verdict}: {c['target']}{detail}{bound}")
    return "\n".join(lines)
