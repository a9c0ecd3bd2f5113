"""What one virtual host sends and runs, made complete from its config.

The state machine decides that a host advertises, announces its addresses,
plumbs them or runs a script; Outbound makes the action that says everything
the runtime needs to do it. The address family's part (the advertisement's
datagram and link addresses, the announcement) is a Wire, picked from WIRES
by the type of the host's addresses (UNICAST_WIRES for a host with peers).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Literal, Protocol

from pycarp.core.actions import (
    AddAddresses,
    HostKey,
    RemoveAddresses,
    RunScript,
    SendAdvertisement,
    SendGratuitousArp,
    SendUnicast,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.ipv4 import Ipv4Wire
from pycarp.core.packet import Advertisement
from pycarp.core.unicast import UnicastWire


class Wire(Protocol):
    """One host's advertisements and announcements in one address family."""

    def advertisement(self, advert: Advertisement) -> SendAdvertisement | SendUnicast: ...

    def announcement(self) -> SendGratuitousArp: ...


class WireFactory(Protocol):
    def __call__(
        self, key: HostKey, config: VirtualHostConfig, *, mac: bytes, ident: int
    ) -> Wire: ...


WIRES: dict[type, WireFactory] = {IPv4Address: Ipv4Wire}
UNICAST_WIRES: dict[type, WireFactory] = {IPv4Address: UnicastWire}


class Outbound:
    """The actions of one host, made once at its start (the config is frozen)."""

    def __init__(self, config: VirtualHostConfig, *, mac: bytes, ident: int) -> None:
        key = HostKey(config.interface, config.vhid)
        wires = UNICAST_WIRES if config.unicast else WIRES
        self._wire = wires[type(config.srcip)](key, config, mac=mac, ident=ident)
        self._scripts = {
            "up": _script(key, "up", config.upscript, config),
            "down": _script(key, "down", config.downscript, config),
        }
        plumbs = config.plumbs
        self._add = (AddAddresses(key, config.networks),) if plumbs else ()
        self._remove = (RemoveAddresses(key, config.networks),) if plumbs else ()

    def advertisement(self, advert: Advertisement) -> SendAdvertisement | SendUnicast:
        return self._wire.advertisement(advert)

    def announcement(self) -> SendGratuitousArp:
        return self._wire.announcement()

    def script(self, which: Literal["up", "down"]) -> tuple[RunScript, ...]:
        """The up or down script; nothing when none is configured."""
        return self._scripts[which]

    def add_addresses(self) -> tuple[AddAddresses, ...]:
        """The addresses to configure; nothing without built-in plumbing."""
        return self._add

    def remove_addresses(self) -> tuple[RemoveAddresses, ...]:
        return self._remove


def _script(
    key: HostKey, which: Literal["up", "down"], path: str | None, config: VirtualHostConfig
) -> tuple[RunScript, ...]:
    """ucarp's convention, once per virtual address: `script <interface> <vip> [xparam]`."""
    if not path:
        return ()
    extra = () if config.xparam is None else (config.xparam,)
    commands = tuple((path, config.interface, str(a), *extra) for a in config.addresses)
    return (RunScript(key, which, commands, config.script_timeout),)
