"""SmartOS `vmadm create` manifests: the one reader for `pycarp check` and the zone lab.

read_manifest() reads all it can and keeps what it could not use as a Flaw,
for `pycarp check` to explain. parse_manifest() and load_manifest() make of a
manifest a ZoneManifest the lab can build, or raise a ManifestError (the file,
the field, what is wrong) for the first thing the lab cannot use.

Only the network part matters: alias, hostname, resolvers and nics[] (nic_tag,
ip/netmask or ips[], gateway, mac, primary, allow_ip_spoofing,
allow_mac_spoofing, allowed_ips). Everything else (brand, memory...) is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

# What a Flaw is about.
MISSING = "missing"
NOT_FIXED = "not fixed"  # "dhcp" or "addrconf": vmadm picks the address at boot
NOT_STRING = "not a string"
NO_PREFIX = "no prefix"  # an ips[] entry without "/prefix"
BAD_ADDRESS = "bad address"
BAD_NETMASK = "bad netmask"
DYNAMIC = ("dhcp", "addrconf")

# The addresses a lab zone may have: documentation ranges only (the lab's
# ALLOWED_NETWORKS is this list).
LAB_NETWORKS = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))

# The alias becomes part of a namespace name (split on the first "-" after the
# lab name) and of a bridge port name: keep it short and plain.
_ALIAS_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,23}")
_RESERVED_ALIASES = ("br", "client")
_NIC_TAG_RE = re.compile(r"[A-Za-z0-9_]{1,12}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


# --- the manifest as read ------------------------------------------------------


@dataclass(frozen=True)
class Flaw:
    """A NIC field the reader could not use."""

    key: str  # the field of the NIC: "ip", "netmask", "ips[0]" or "gateway"
    kind: str  # MISSING, NOT_FIXED, ...
    value: object


@dataclass(frozen=True)
class Nic:
    """One object of nics[] as read; `data` is the object itself."""

    index: int
    data: dict[str, Any]
    ip_key: str  # where the address is: "ip" (with "netmask") or "ips[0]"
    address: IPv4Interface | Flaw
    gateway: IPv4Address | Flaw | None
    allowed_ips: tuple[IPv4Network, ...] | None  # None: no allowed_ips

    @property
    def name(self) -> str:
        """The zone's interface for this NIC: net0, net1..."""
        return f"net{self.index}"

    @property
    def netmask_key(self) -> str:
        return "netmask" if self.ip_key == "ip" else self.ip_key

    @property
    def ip(self) -> IPv4Address | None:
        """The NIC's address, known even if its netmask is not."""
        if isinstance(self.address, IPv4Interface):
            return self.address.ip
        return IPv4Address(self.data["ip"]) if self.address.key == "netmask" else None

    @property
    def network(self) -> IPv4Network | None:
        return self.address.network if isinstance(self.address, IPv4Interface) else None

    @property
    def primary(self) -> bool:
        return self.data.get("primary") is True

    def flag(self, key: str) -> bool | None:
        """A true/false field, false when absent (vmadm's default); None if neither."""
        value = self.data.get(key, False)
        return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class Manifest:
    """One manifest as read, flaws and all."""

    source: str  # the file it came from, for messages
    data: dict[str, Any] | None  # None: the JSON is not an object
    entries: tuple[Nic | None, ...]  # nics[] in order; None for an entry that is not an object

    @property
    def nics(self) -> tuple[Nic, ...]:
        return tuple(nic for nic in self.entries if nic is not None)


def read_json(path: str | Path) -> object:
    """The decoded JSON of a file: OSError, UnicodeDecodeError or JSONDecodeError if none."""
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def read_manifest(data: object, source: str) -> Manifest:
    """The manifest in decoded JSON; never fails, keeps what it cannot use as flaws."""
    if not isinstance(data, dict):
        return Manifest(source, None, ())
    nics = data.get("nics")
    entries = nics if isinstance(nics, list) else []
    return Manifest(source, data, tuple(_read_nic(i, nic) for i, nic in enumerate(entries)))


def _read_nic(index: int, data: object) -> Nic | None:
    if not isinstance(data, dict):
        return None
    ips = data.get("ips")
    if "ip" not in data and isinstance(ips, list) and ips:  # newer vmadm: ips[] of CIDRs
        key, address = "ips[0]", _cidr(ips[0])
    else:
        key, address = "ip", _ip_and_netmask(data.get("ip"), data.get("netmask"))
    gateway = data.get("gateway")
    return Nic(
        index,
        data,
        key,
        address,
        None if gateway is None else _ipv4("gateway", gateway),
        _networks(data.get("allowed_ips")),
    )


def _ipv4(key: str, value: object) -> IPv4Address | Flaw:
    if not isinstance(value, str):
        return Flaw(key, NOT_STRING, value)
    try:
        return IPv4Address(value)
    except AddressValueError:
        return Flaw(key, BAD_ADDRESS, value)


def _ip_and_netmask(ip: object, netmask: object) -> IPv4Interface | Flaw:
    if ip is None:
        return Flaw("ip", MISSING, ip)
    if ip in DYNAMIC:
        return Flaw("ip", NOT_FIXED, ip)
    address = _ipv4("ip", ip)
    if isinstance(address, Flaw):
        return address
    if netmask is None:
        return Flaw("netmask", MISSING, netmask)
    try:
        return IPv4Interface(f"{address}/{netmask}")
    except ValueError:
        return Flaw("netmask", BAD_NETMASK, netmask)


def _cidr(text: object) -> IPv4Interface | Flaw:
    if text in DYNAMIC:
        return Flaw("ips[0]", NOT_FIXED, text)
    if not isinstance(text, str) or "/" not in text:
        return Flaw("ips[0]", NO_PREFIX, text)
    try:
        return IPv4Interface(text)
    except ValueError:
        return Flaw("ips[0]", BAD_ADDRESS, text)


def _networks(value: object) -> tuple[IPv4Network, ...] | None:
    """allowed_ips: addresses or CIDRs; entries that are neither are skipped."""
    if value is None:
        return None
    networks = []
    for item in value if isinstance(value, list) else []:
        try:
            networks.append(IPv4Network(str(item), strict=False))
        except ValueError:
            continue
    return tuple(networks)


# --- what the lab builds -----------------------------------------------------------


class ManifestError(ValueError):
    """A manifest the lab cannot use; the message is the whole error line."""


@dataclass(frozen=True)
class NicSpec:
    """One NIC of a manifest; `name` is the zone's interface (net0, net1...)."""

    name: str
    nic_tag: str
    ip: IPv4Address
    network: IPv4Network
    gateway: IPv4Address | None
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


def _lab_message(flaw: Flaw, where: str) -> str:
    key, value = flaw.key, flaw.value
    if key == "ips[0]":
        if flaw.kind == BAD_ADDRESS:
            return f"{where}: ips[0] {value!r} is not an IPv4 address"
        return f'{where}: ips[0] must be like "198.51.100.201/24"'
    if flaw.kind == MISSING:
        return f"{where}: no {key}"
    if flaw.kind == NOT_FIXED:
        return f'{where}: {key} "{value}" is not supported by the lab (give an address)'
    if flaw.kind == NOT_STRING:
        return f"{where}: {key} must be a string, not {value!r}"
    if flaw.kind == BAD_NETMASK:
        return f"{where}: netmask {value!r} is not a valid netmask"
    return f"{where}: {key}: {value!r} is not an IPv4 address"


def _lab_interface(nic: Nic, where: str) -> IPv4Interface:
    address = nic.address
    if isinstance(address, Flaw) and address.kind != BAD_NETMASK:
        raise ManifestError(_lab_message(address, where))
    mask = nic.data.get("netmask")
    if nic.ip_key == "ip" and not isinstance(mask, str):  # the check takes 24, the lab does not
        raise ManifestError(f"{where}: netmask must be a string, not {mask!r}")
    if isinstance(address, Flaw):
        raise ManifestError(_lab_message(address, where))
    return address


def _flag(nic: Nic, key: str, where: str) -> bool:
    value = nic.flag(key)
    if value is None:
        raise ManifestError(f"{where}: {key} must be true or false, not {nic.data[key]!r}")
    return value


def _nic_spec(nic: Nic | None, index: int, source: str) -> NicSpec:
    where = f"{source}: nics[{index}]"
    if nic is None:
        raise ManifestError(f"{where} must be an object")
    tag = nic.data.get("nic_tag")
    if not isinstance(tag, str) or not _NIC_TAG_RE.fullmatch(tag):
        raise ManifestError(f"{where}: nic_tag must match {_NIC_TAG_RE.pattern}, not {tag!r}")
    iface = _lab_interface(nic, where)
    network = iface.network
    if not any(network.subnet_of(n) for n in LAB_NETWORKS):
        allowed = " or ".join(str(n) for n in LAB_NETWORKS)
        raise ManifestError(
            f"{where}: {iface} is outside the lab's ranges ({allowed});"
            " use documentation addresses only"
        )
    if (problem := host_address_problem(iface.ip, network)) is not None:
        raise ManifestError(f"{where}: {problem}")
    if isinstance(nic.gateway, Flaw):
        raise ManifestError(_lab_message(nic.gateway, where))
    mac = nic.data.get("mac")
    if mac is not None and (not isinstance(mac, str) or not _MAC_RE.fullmatch(mac)):
        raise ManifestError(f"{where}: mac {mac!r} is not like 02:00:00:00:00:01")
    if mac is not None and int(mac[:2], 16) & 1:
        raise ManifestError(f"{where}: mac {mac} is a multicast address")
    return NicSpec(
        name=nic.name,
        nic_tag=tag,
        ip=iface.ip,
        network=network,
        gateway=nic.gateway,
        mac=mac.lower() if isinstance(mac, str) else None,
        allow_ip_spoofing=_flag(nic, "allow_ip_spoofing", where),
        allow_mac_spoofing=_flag(nic, "allow_mac_spoofing", where),
        primary=nic.primary,
    )


def parse_manifest(data: object, source: str = "<manifest>") -> ZoneManifest:
    """A ZoneManifest from the decoded JSON of one manifest; ManifestError if unusable."""
    manifest = read_manifest(data, source)
    if manifest.data is None:
        raise ManifestError(f"{source}: a manifest must be a JSON object")
    alias = manifest.data.get("alias")
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias):
        raise ManifestError(
            f"{source}: alias must match {_ALIAS_RE.pattern} (it names the zone), not {alias!r}"
        )
    if alias in _RESERVED_ALIASES:
        raise ManifestError(f"{source}: alias {alias!r} is reserved by the lab")
    hostname = manifest.data.get("hostname", alias)
    if not isinstance(hostname, str) or not re.fullmatch(r"[A-Za-z0-9.-]{1,63}", hostname):
        raise ManifestError(f"{source}: hostname {hostname!r} is not a valid host name")
    if not manifest.entries:
        raise ManifestError(f"{source}: nics must be a non-empty list")
    resolvers = manifest.data.get("resolvers", [])
    if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
        raise ManifestError(f"{source}: resolvers must be a list of addresses")
    specs = tuple(_nic_spec(nic, i, source) for i, nic in enumerate(manifest.entries))
    tags = [n.nic_tag for n in specs]
    if len(set(tags)) != len(tags):
        raise ManifestError(f"{source}: two NICs on one nic_tag; the lab gives each tag one NIC")
    return ZoneManifest(alias, hostname, specs, tuple(resolvers), source)


def load_manifest(path: str | Path) -> ZoneManifest:
    """Read and check one manifest file."""
    source = str(path)
    try:
        data = read_json(Path(path))  # Path: "" is "." here, as it always was for the lab
    except OSError as exc:
        raise ManifestError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_manifest(data, source)


def check_together(manifests: Sequence[ZoneManifest]) -> None:
    """Checks across the zones of one lab: unique aliases, addresses, MACs, one subnet per tag."""
    if not manifests:
        raise ManifestError("no manifests given")
    aliases: dict[str, str] = {}
    owners: dict[IPv4Address, str] = {}
    macs: dict[str, str] = {}
    tag_nets: dict[str, tuple[IPv4Network, str]] = {}
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


def host_address_problem(ip: IPv4Address, network: IPv4Network) -> str | None:
    """Why `ip` cannot be a host's address in `network`, or None.

    The network and broadcast addresses are not, except on a /31 or /32,
    which have neither (RFC 3021).
    """
    if network.prefixlen < 31 and ip in (network.network_address, network.broadcast_address):
        return f"{ip} is not a host address of {network}"
    return None
