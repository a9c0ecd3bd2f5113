"""Settings of one virtual host, validated once when built."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from pycarp.core.errors import ConfigError

DEFAULT_GROUP = IPv4Address("224.0.0.18")
MAX_PASSWORD = 19  # ucarp keeps the key in 20 bytes including the final NUL


@dataclass(frozen=True)
class VirtualHostConfig:
    """One vhid on one interface.

    The protocol fields are checked here; paths and interfaces (facts of the
    machine, not of the protocol) are checked by the CLI.
    """

    interface: str
    srcip: IPv4Address
    vhid: int
    addresses: tuple[IPv4Address, ...]
    password: bytes = b""
    advbase: int = 1
    advskew: int = 0
    deadratio: int = 3
    preempt: bool = False
    neutral: bool = False
    group: IPv4Address = DEFAULT_GROUP
    nomcast: bool = False
    ignoreifstate: bool = False
    upscript: str | None = None
    downscript: str | None = None
    xparam: str | None = None
    shutdown: bool = False

    def __post_init__(self) -> None:
        if not self.interface:
            raise ConfigError("interface: required")
        if not 1 <= self.vhid <= 255:
            raise ConfigError(f"vhid: {self.vhid} is outside 1..255")
        if not 0 <= self.advbase <= 255:
            raise ConfigError(f"advbase: {self.advbase} is outside 0..255")
        if not 0 <= self.advskew <= 255:
            raise ConfigError(f"advskew: {self.advskew} is outside 0..255")
        if self.advbase == 0 and self.advskew == 0:
            raise ConfigError("advbase: 0 needs an advskew above 0 (the interval would be 0)")
        if self.advbase == 255 and self.advskew == 255:
            raise ConfigError(
                "advbase/advskew: 255/255 is reserved for the 'leaving master' signal"
            )
        if self.deadratio < 1:
            raise ConfigError(f"deadratio: {self.deadratio} is below 1")
        if len(self.password) > MAX_PASSWORD:
            raise ConfigError(
                f"pass: {len(self.password)} bytes; at most {MAX_PASSWORD} are allowed"
            )
        if not self.addresses:
            raise ConfigError("addr: at least one virtual address is required")
        if len(set(self.addresses)) != len(self.addresses):
            raise ConfigError("addr: the same virtual address is listed twice")
        if not self.group.is_multicast:
            raise ConfigError(f"mcast: {self.group} is not a multicast address")
        if self.srcip in self.addresses:
            raise ConfigError(f"srcip: {self.srcip} is also a virtual address")
