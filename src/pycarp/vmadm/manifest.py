"""SmartOS `vmadm create` manifests, read as far as the zone lab needs them.

Only the network part matters here: alias, hostname, resolvers and nics[]
(nic_tag, ip/netmask or ips[], gateway, mac, allow_ip_spoofing,
allow_mac_spoofing). Everything else (brand, memory, dataset...) is ignored.
Every error is a ManifestError whose message names the file and the field.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycarp.lab.netns import ALLOWED_NETWORKS

# The alias becomes part of a namespace name (split on the first "-" after the
# lab name) and of a bridge port name: keep it short and plain.
_ALIAS_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,23}")
_RESERVED_ALIASES = ("br", "client")
_NIC_TAG_RE = re.compile(r"[A-Za-z0-9_]{1,12}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


class ManifestError(ValueError):
    """A manifest the lab cannot use; the message is the whole error line."""


@dataclass(frozen=True)
class NicSpec:
    """One NIC of a manifest; `name` is the zone's interface (net0, net1...)."""

    name: str
    nic_tag: str
    ip: ipaddress.IPv4Address
    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None
    mac: str | None  # None: the lab picks a stable one
    allow_ip_spoofing: bool
    allow_mac_spoofing: bool
    primary: bool

    @property
    def prefix(self) -> int:
        return self.network.prefixlen


@dataclass(frozen=True)
class ZoneManifest:
    alias: str
    hostname: str
    nics: tuple[NicSpec, ...]
    resolvers: tuple[str, ...]
    source: str  # the file it came from, for messages

    @property
    def primary(self) -> NicSpec:
        """The NIC marked primary, else the first."""
        return next((n for n in self.nics if n.primary), self.nics[0])


def _allowed_text() -> str:
    return " or ".join(str(n) for n in ALLOWED_NETWORKS)


def _flag(nic: dict[str, Any], key: str, where: str) -> bool:
    value = nic.get(key, False)  # vmadm's default: no spoofing
    if not isinstance(value, bool):
        raise ManifestError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def _address(text: object, where: str) -> ipaddress.IPv4Address:
    if not isinstance(text, str):
        raise ManifestError(f"{where} must be a string, not {text!r}")
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ManifestError(f"{where}: {text!r} is not an IPv4 address") from None


def _interface(nic: dict[str, Any], where: str) -> ipaddress.IPv4Interface:
    """The NIC's address with its prefix, from ip + netmask or from ips[0] (newer vmadm)."""
    if "ip" not in nic and isinstance(nic.get("ips"), list) and nic["ips"]:
        text = nic["ips"][0]
        if not isinstance(text, str) or "/" not in text:
            raise ManifestError(f'{where}: ips[0] must be like "198.51.100.201/24"')
        try:
            return ipaddress.IPv4Interface(text)
        except ValueError:
            raise ManifestError(f"{where}: ips[0] {text!r} is not an IPv4 address") from None
    ip = nic.get("ip")
    if ip is None:
        raise ManifestError(f"{where}: no ip")
    if ip == "dhcp":
        raise ManifestError(f'{where}: ip "dhcp" is not supported by the lab (give an address)')
    addr = _address(ip, f"{where}: ip")
    mask = nic.get("netmask")
    if mask is None:
        raise ManifestError(f"{where}: no netmask")
    if not isinstance(mask, str):
        raise ManifestError(f"{where}: netmask must be a string, not {mask!r}")
    try:
        return ipaddress.IPv4Interface(f"{addr}/{mask}")
    except ValueError:
        raise ManifestError(f"{where}: netmask {mask!r} is not a valid netmask") from None


def _nic(nic: object, index: int, source: str) -> NicSpec:
    where = f"{source}: nics[{index}]"
    if not isinstance(nic, dict):
        raise ManifestError(f"{where} must be an object")
    tag = nic.get("nic_tag")
    if not isinstance(tag, str) or not _NIC_TAG_RE.fullmatch(tag):
        raise ManifestError(f"{where}: nic_tag must match {_NIC_TAG_RE.pattern}, not {tag!r}")
    iface = _interface(nic, where)
    network = iface.network
    if not any(network.subnet_of(n) for n in ALLOWED_NETWORKS):
        raise ManifestError(
            f"{where}: {iface} is outside the lab's ranges ({_allowed_text()});"
            " use documentation addresses only"
        )
    if iface.ip in (network.network_address, network.broadcast_address):
        raise ManifestError(f"{where}: {iface.ip} is not a host address of {network}")
    gateway = None
    if nic.get("gateway") is not None:
        gateway = _address(nic["gateway"], f"{where}: gateway")
    mac = nic.get("mac")
    if mac is not None and (not isinstance(mac, str) or not _MAC_RE.fullmatch(mac)):
        raise ManifestError(f"{where}: mac {mac!r} is not like 02:00:00:00:00:01")
    if mac is not None and int(mac[:2], 16) & 1:
        raise ManifestError(f"{where}: mac {mac} is a multicast address")
    return NicSpec(
        name=f"net{index}",
        nic_tag=tag,
        ip=iface.ip,
        network=network,
        gateway=gateway,
        mac=mac.lower() if isinstance(mac, str) else None,
        allow_ip_spoofing=_flag(nic, "allow_ip_spoofing", where),
        allow_mac_spoofing=_flag(nic, "allow_mac_spoofing", where),
        primary=nic.get("primary") is True,
    )


def parse_manifest(data: object, source: str = "<manifest>") -> ZoneManifest:
    """A ZoneManifest from the decoded JSON of one manifest; ManifestError if unusable."""
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: a manifest must be a JSON object")
    alias = data.get("alias")
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias):
        raise ManifestError(
            f"{source}: alias must match {_ALIAS_RE.pattern} (it names the zone), not {alias!r}"
        )
    if alias in _RESERVED_ALIASES:
        raise ManifestError(f"{source}: alias {alias!r} is reserved by the lab")
    hostname = data.get("hostname", alias)
    if not isinstance(hostname, str) or not re.fullmatch(r"[A-Za-z0-9.-]{1,63}", hostname):
        raise ManifestError(f"{source}: hostname {hostname!r} is not a valid host name")
    nics = data.get("nics")
    if not isinstance(nics, list) or not nics:
        raise ManifestError(f"{source}: nics must be a non-empty list")
    resolvers = data.get("resolvers", [])
    if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
        raise ManifestError(f"{source}: resolvers must be a list of addresses")
    specs = tuple(_nic(nic, i, source) for i, nic in enumerate(nics))
    tags = [n.nic_tag for n in specs]
    if len(set(tags)) != len(tags):
        raise ManifestError(f"{source}: two NICs on one nic_tag; the lab gives each tag one NIC")
    return ZoneManifest(alias, hostname, specs, tuple(resolvers), source)


def load_manifest(path: str | Path) -> ZoneManifest:
    """Read and check one manifest file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_manifest(data, source)


def check_together(manifests: Sequence[ZoneManifest]) -> None:
    """Checks across the zones of one lab: unique aliases, addresses, MACs, one subnet per tag."""
    if not manifests:
        raise ManifestError("no manifests given")
    aliases: dict[str, str] = {}
    owners: dict[ipaddress.IPv4Address, str] = {}
    macs: dict[str, str] = {}
    tag_nets: dict[str, tuple[ipaddress.IPv4Network, str]] = {}
    for m in manifests:
        if m.alias.lower() in aliases:
            raise ManifestError(
                f"{m.source}: alias {m.alias!r} is also used by {aliases[m.alias.lower()]}"
            )
        aliases[m.alias.lower()] = m.source
        for nic in m.nics:
            who = f"{m.alias}'s {nic.name}"
            if nic.ip in owners:
                raise ManifestError(f"{m.source}: {nic.ip} is also {owners[nic.ip]}'s address")
            owners[nic.ip] = who
            if nic.mac is not None:
                if nic.mac in macs:
                    raise ManifestError(f"{m.source}: mac {nic.mac} is also {macs[nic.mac]}'s")
                macs[nic.mac] = who
            net, first = tag_nets.setdefault(nic.nic_tag, (nic.network, who))
            if net != nic.network:
                raise ManifestError(
                    f"{m.source}: {who} is on nic_tag {nic.nic_tag!r} with {nic.network},"
                    f" but {first} has {net} (one subnet per nic_tag)"
                )
