"""What one virtual host sends and runs, made complete from its config.

The state machine decides that a host advertises, announces its addresses,
plumbs them or runs a script; Outbound makes the action that says everything
the runtime needs to do it. The address family's part of an advertisement
(the datagram and its link addresses) is a Wire, picked from WIRES by the
versions of the host's addresses (UNICAST_WIRES for a host with peers).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address
from typing import Literal, Protocol

from pycarp.core.actions import (
    AddAddresses,
    HostKey,
    RemoveAddresses,
    RunScript,
    SendAdvertisement,
    SendAnnouncement,
    SendUnicast,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.ipv4 import Ipv4Wire
from pycarp.core.ipv6 import Ipv6Wire
from pycarp.core.packet import Address, Advertisement, Frame
from pycarp.core.packet6 import CARP_GROUP6
from pycarp.core.unicast import Unicast6Wire, UnicastWire
from pycarp.core.vrrp import VrrpAdvertisement

AnyAdvertisement = Advertisement | VrrpAdvertisement


class Wire(Protocol):
    """One host's advertisements in one address family, to the group."""

    def frame(self, message: bytes) -> Frame: ...


class UnicastWireType(Protocol):
    """One host's advertisements in one address family, to each of its peers there."""

    def datagrams(self, message: bytes) -> tuple[tuple[Address, bytes], ...]: ...


class WireFactory(Protocol):
    def __call__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> Wire: ...


class UnicastWireFactory(Protocol):
    def __call__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> UnicastWireType: ...


# By IP version: a host advertises in the family of each of its virtual addresses.
WIRES: dict[int, WireFactory] = {4: Ipv4Wire, 6: Ipv6Wire}
UNICAST_WIRES: dict[int, UnicastWireFactory] = {4: UnicastWire, 6: Unicast6Wire}


class Outbound:
    """The actions of one host, made once at its start (the config is frozen)."""

    def __init__(
        self,
        config: VirtualHostConfig,
        *,
        mac: bytes,
        ident: int,
        link_local: IPv6Address | None = None,
    ) -> None:
        key = HostKey(config.interface, config.vhid)
        self._key = key
        versions = () if config.unicast else config.versions
        self._wires = tuple(
            WIRES[v](config, mac=mac, link_local=link_local, ident=ident) for v in versions
        )
        versions = config.versions if config.unicast else ()
        self._unicast = tuple(
            UNICAST_WIRES[v](config, mac=mac, link_local=link_local, ident=ident) for v in versions
        )
        # VRRP's checksum covers the pseudo-header: (source, group) of each family
        self._ends: dict[int, tuple[Address, Address]] = {}
        if config.srcip is not None:
            self._ends[4] = (config.srcip, config.group)
        if link_local is not None:
            self._ends[6] = (link_local, CARP_GROUP6)
        link_mac = config.address_mac
        announcer = link_mac or mac
        self._announcement = SendAnnouncement(key, announcer, config.addresses, link_local)
        self._scripts = {
            "up": _script(key, "up", config.upscript, config),
            "down": _script(key, "down", config.downscript, config),
        }
        plumbs = config.plumbs
        self._add = (AddAddresses(key, config.networks, link_mac),) if plumbs else ()
        self._remove = (RemoveAddresses(key, config.networks, link_mac),) if plumbs else ()
        self._versions = config.versions

    def advertisement(self, adverts: Sequence[AnyAdvertisement]) -> SendAdvertisement | SendUnicast:
        """One action for every family: `adverts` has one for each, in config.versions' order."""
        messages = [
            a.encode(*self._ends[v]) if isinstance(a, VrrpAdvertisement) else a.encode()
            for a, v in zip(adverts, self._versions, strict=True)
        ]
        if self._unicast:
            pairs = zip(self._unicast, messages, strict=True)
            datagrams = tuple(d for wire, message in pairs for d in wire.datagrams(message))
            return SendUnicast(self._key, adverts[0], datagrams)
        frames = tuple(w.frame(m) for w, m in zip(self._wires, messages, strict=True))
        return SendAdvertisement(self._key, adverts[0], frames)

    def announcement(self) -> SendAnnouncement:
        return self._announcement

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
