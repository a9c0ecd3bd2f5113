"""Virtual addresses on illumos, as logical interfaces managed with ifconfig(8).

Adding uses `ifconfig <if> addif <ip>/<prefix> up` rather than the scenario
scripts' `<if>:N plumb` / `<ip> netmask <mask>` / `up`:

* the kernel picks the next free logical unit atomically (SIOCLIFADDIF), so
  several vhids, a second daemon or the administrator's own `<if>:1` can never
  collide on a hard-coded or guessed N (guessing means a read-then-plumb race);
* address, netmask and UP go in as one command: no half-configured unit is
  left behind when the daemon dies between three commands.

Removing finds the unit holding the address in `ifconfig -a` (so a restarted
daemon needs no memory of N) and runs `down` then `unplumb` on it, like the
scenario's vip-down.sh. The physical interface (unit 0) is never taken down.

Commands run through an injectable async Runner, so tests can record them.
A virtual MAC (`mac`) is refused: logical interfaces
share their physical interface's MAC, and no VNIC is made for them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pycarp.core.actions import Network
from pycarp.platform.base import AddressError

IFCONFIG = "/usr/sbin/ifconfig"  # absolute: SMF and cron give a daemon a thin PATH
COMMAND_TIMEOUT = 10.0  # seconds for one ifconfig run

# (argv) -> (exit status, stdout and stderr together)
Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str]]]

log = logging.getLogger(__name__)

_HEADER_RE = re.compile(
    r"^(?P<name>[^\s:]+)(?::(?P<unit>\d+))?: flags=[0-9a-fA-F]+<(?P<flags>[^>]*)>"
)
# "inet A netmask ffffff00 ...", or "inet A --> PEER netmask ..." on point-to-point links.
_INET_RE = re.compile(
    r"^\s+inet\s+(?P<addr>\d{1,3}(?:\.\d{1,3}){3})(?:\s+-->\s+\S+)?"
    r"\s+netmask\s+(?P<mask>[0-9a-fA-F]{1,8})\b"
)
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.]{1,31}")  # no ":" (that is a logical unit) and no "-"
_UNSPECIFIED = IPv4Address("0.0.0.0")
NO_VIRTUAL_MAC = "a virtual MAC is not supported on illumos"


async def run_command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run argv without a shell; (exit status, output). 127: cannot start; -1: timed out."""
    env = {**os.environ, "LC_ALL": "C"}  # ifconfig's messages in English, as the logs expect
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"timed out after {timeout:g}s"
    except BaseException:  # cancelled: do not leave ifconfig running on its own
        if proc.returncode is None:
            proc.kill()
        raise
    assert proc.returncode is not None  # communicate() waited for the exit
    return proc.returncode, out.decode(errors="replace")


@dataclass(frozen=True)
class LogicalInterface:
    """One block of `ifconfig -a` output."""

    physical: str  # "net0"
    unit: int  # 1 for "net0:1"; 0 for the physical interface itself
    flags: frozenset[str]
    address: IPv4Address | None = None  # None: IPv6, or no inet line
    prefixlen: int | None = None

    @property
    def name(self) -> str:
        return f"{self.physical}:{self.unit}" if self.unit else self.physical

    @property
    def up(self) -> bool:
        return "UP" in self.flags

    @property
    def ipv4(self) -> bool:
        return "IPv4" in self.flags


def _prefixlen(mask_hex: str) -> int:
    mask = int(mask_hex, 16)
    bits = bin(mask).count("1")
    if mask != (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF:
        raise ValueError(f"non-contiguous netmask {mask_hex}")
    return bits


def parse_ifconfig(output: str) -> list[LogicalInterface]:
    """Every interface block of illumos `ifconfig -a` output (IPv4 and IPv6), in order."""
    found: list[LogicalInterface] = []
    current: LogicalInterface | None = None
    for line in output.splitlines():
        header = _HEADER_RE.match(line)
        if header:
            if current is not None:
                found.append(current)
            current = LogicalInterface(
                physical=header["name"],
                unit=int(header["unit"] or 0),
                flags=frozenset(header["flags"].split(",")) - {""},
            )
            continue
        inet = _INET_RE.match(line)
        if inet and current is not None and current.address is None:
            try:
                prefixlen: int | None = _prefixlen(inet["mask"])
            except ValueError:
                prefixlen = None
            current = LogicalInterface(
                current.physical, current.unit, current.flags, IPv4Address(inet["addr"]), prefixlen
            )
    if current is not None:
        found.append(current)
    return found


def _check(interface: str, networks: Sequence[Network], mac: bytes | None = None) -> None:
    if mac is not None:
        raise AddressError(f"{interface}: {NO_VIRTUAL_MAC} (mac {mac.hex(':')})")
    # The name goes into argv: refuse anything that could read as an option or a unit.
    if not _IFNAME_RE.fullmatch(interface):
        raise AddressError(f"{interface!r}: not a physical interface name")
    for address, prefixlen in networks:
        if not 1 <= prefixlen <= 32:  # the config's range
            raise AddressError(f"{address}/{prefixlen}: prefix length must be 1..32")


class IfconfigAddressManager:
    """Implements pycarp.platform.base.AddressManager with ifconfig logical interfaces."""

    def __init__(self, runner: Runner = run_command, ifconfig: str = IFCONFIG) -> None:
        self._runner = runner
        self._ifconfig = ifconfig
        # One change at a time: read `ifconfig -a`, then act on what it said.
        self._lock = asyncio.Lock()

    async def _run(self, *args: str) -> str:
        argv = [self._ifconfig, *args]
        status, output = await self._runner(argv)
        if status != 0:
            said = output.strip() or "no output"
            raise AddressError(f"`{' '.join(argv)}` failed (exit status {status}): {said}")
        return output

    async def _units(self, interface: str) -> list[LogicalInterface]:
        """The IPv4 logical interfaces of `interface`; AddressError if it is not plumbed."""
        blocks = parse_ifconfig(await self._run("-a"))
        if not any(b.physical == interface for b in blocks):
            raise AddressError(f"{interface}: no such interface (not in `ifconfig -a`)")
        return [b for b in blocks if b.physical == interface and b.ipv4]

    async def add(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        _check(interface, networks, mac)
        async with self._lock:
            units = await self._units(interface)
            for address, prefixlen in networks:
                holders = [u for u in units if u.address == address]
                if any(u.up for u in holders):
                    continue  # already serving
                if any(u.unit == 0 for u in holders):
                    raise AddressError(
                        f"{interface} itself holds {address} but is down; "
                        "pycarp does not bring up the physical interface"
                    )
                for stale in holders:  # a logical unit with our address, left down
                    await self._run(stale.name, "unplumb")
                said = await self._run(interface, "addif", f"{address}/{prefixlen}", "up")
                log.debug("%s/%s on %s: %s", address, prefixlen, interface, said.strip())

    async def remove(
        self, interface: str, networks: Sequence[Network], mac: bytes | None = None
    ) -> None:
        _check(interface, networks, mac)
        async with self._lock:
            units = await self._units(interface)
            for address, prefixlen in networks:
                for unit in units:
                    # unit 0 is the physical interface: unplumbing it would take the
                    # whole interface away, and its address is not ours anyway.
                    if unit.unit and unit.address == address and unit.prefixlen == prefixlen:
                        await self._run(unit.name, "down")
                        await self._run(unit.name, "unplumb")

    async def present(
        self, interface: str, mac: bytes | None = None
    ) -> set[IPv4Address | IPv6Address]:
        """Addresses of the interface's IPv4 units that are UP (a down unit does not serve)."""
        _check(interface, (), mac)
        units = await self._units(interface)
        return {
            u.address for u in units if u.up and u.address is not None and u.address != _UNSPECIFIED
        }

    async def virtual_macs(self, interface: str) -> set[bytes]:
        """None: addresses here are never behind a virtual MAC."""
        return set()

    async def close(self) -> None:
        """Nothing to release: every command is a process of its own."""
