"""Interface facts on illumos: index from if_nametoindex, RUNNING and MAC from ifconfig(8).

illumos has no SIOCGIFHWADDR; `ifconfig <if>` prints the flags and (to root
only) an `ether` line, with octets lacking leading zeros (2:8:20:aa:bb:c).
The MAC is informative on illumos: the sender hands IP datagrams to the
kernel, which writes the Ethernet header itself. So an unprivileged run,
where ifconfig hides the line, gets a zero MAC rather than an error.

The command runs through an injectable synchronous runner (interface_info is
called from synchronous code), so tests can feed recorded outputs.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.platform.illumos.ifconfig import IFCONFIG

COMMAND_TIMEOUT = 10.0
NO_MAC = bytes(6)

# (argv) -> (exit status, stdout and stderr together)
SyncRunner = Callable[[Sequence[str]], tuple[int, str]]

_IFNAME_RE = re.compile(r"[A-Za-z0-9_.]{1,31}")  # a physical interface: no ":" and no "-"
_HEADER_RE = re.compile(r"^(?P<name>[^\s:]+(?::\d+)?): flags=[0-9a-fA-F]+<(?P<flags>[^>]*)>")
_OCTET_RE = re.compile(r"[0-9a-fA-F]{1,2}")
_ETHER_RE = re.compile(r"^\s+ether\s+(?P<mac>\S+)")  # parse_mac checks the value


def run_sync(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run argv without a shell; (exit status, output). 127: cannot start; -1: timed out."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LC_ALL": "C"},
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:g}s"
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror or exc}"
    return done.returncode, done.stdout.decode(errors="replace")


@dataclass(frozen=True)
class IfconfigStatus:
    flags: frozenset[str]
    mac: bytes | None  # None: no ether line (not root, or not Ethernet)


def parse_mac(text: str) -> bytes:
    """'2:8:20:aa:bb:c' -> 6 bytes; ValueError if it is not six hex octets."""
    parts = text.split(":")
    if len(parts) != 6 or not all(_OCTET_RE.fullmatch(p) for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def parse_status(output: str, name: str) -> IfconfigStatus:
    """Flags and MAC of exactly `name` (unit 0) in `ifconfig <name>` output.

    Other blocks (IPv6, logical units) are skipped; ValueError if `name` is absent.
    """
    flags: frozenset[str] | None = None
    mac: bytes | None = None
    inside = False
    for line in output.splitlines():
        header = _HEADER_RE.match(line)
        if header:
            inside = header["name"] == name and flags is None
            if inside:
                flags = frozenset(header["flags"].split(",")) - {""}
            continue
        ether = _ETHER_RE.match(line)
        if inside and ether and mac is None:
            mac = parse_mac(ether["mac"])
    if flags is None:
        raise ValueError(f"no {name} block in the output")
    return IfconfigStatus(flags, mac)


def interface_info(
    name: str,
    *,
    runner: SyncRunner = run_sync,
    nametoindex: Callable[[str], int] | None = None,
    ifconfig: str = IFCONFIG,
) -> InterfaceInfo:
    """Index, MAC and RUNNING flag of an IPv4-plumbed interface; InterfaceError if unusable."""
    if not _IFNAME_RE.fullmatch(name):  # it goes into argv: no options, no logical units
        raise InterfaceError(f"invalid interface name {name!r}")
    try:
        index = (nametoindex or socket.if_nametoindex)(name)
    except OSError as exc:
        raise InterfaceError(f"interface {name!r} does not exist") from exc
    argv = [ifconfig, name]
    status, output = runner(argv)
    if status != 0:
        said = output.strip() or "no output"
        raise InterfaceError(f"interface {name!r}: `{' '.join(argv)}` failed: {said}")
    try:
        parsed = parse_status(output, name)
    except ValueError as exc:
        raise InterfaceError(f"interface {name!r}: unexpected ifconfig output: {exc}") from exc
    if "IPv4" not in parsed.flags:  # CARP here is IPv4: the interface needs an inet instance
        raise InterfaceError(f"interface {name!r} is not plumbed for IPv4")
    return InterfaceInfo(
        name=name, index=index, mac=parsed.mac or NO_MAC, running="RUNNING" in parsed.flags
    )
