"""``pycarp check``: are these vmadm manifests right for sharing a VIP with CARP?

Reads the zones' ``vmadm create`` manifests and the VIP (from pycarp's
config, or ``--vip``) and explains each problem with the file, the JSON
path and the fix. Nothing here looks at this machine: the config is read
with check_machine=False, as it is meant for the zones, not for this host.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from typing import Any, NoReturn

from pycarp.config.load import TOML_FORMAT, load_file
from pycarp.core.errors import ConfigError

__all__ = ["Problem", "Vip", "Zone", "check", "load_vips", "load_zone", "main"]

PROG = "pycarp check"
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
ERROR = "error"
WARNING = "warning"

# pycarp has no virtual-MAC mode yet; a TOML file may already say it wants one.


@dataclass(frozen=True)
class Problem:
    level: str  # ERROR or WARNING
    where: str  # "zoneA.json: nics[0].allow_ip_spoofing"
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}; fix: {self.fix}"


@dataclass(frozen=True)
class Vip:
    """A virtual address to share, and what the config says about it."""

    address: IPv4Address
    source: str  # where it comes from: "ucarp.cfg" or "--vip"
    vhid: int | None = None
    srcip: IPv4Address | None = None
    password: bytes = b""  # empty: unknown (a password file not read here)
    virtual_mac: bool = False
    key: str = ""  # how the source names the host: "vhost[0]." in TOML


@dataclass
class Nic:
    index: int
    data: dict[str, Any]
    ip: IPv4Address | None = None
    network: IPv4Network | None = None
    gateways: list[IPv4Address] = field(default_factory=list)


@dataclass
class Zone:
    file: str
    data: dict[str, Any]
    nics: list[Nic] = field(default_factory=list)

    def at(self, path: str) -> str:
        return f"{self.file}: {path}"


class _Report:
    """The problems found, each once, in the order found."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, level: str, where: str, message: str, fix: str) -> None:
        if (where, message) not in self._seen:
            self._seen.add((where, message))
            self.problems.append(Problem(level, where, message, fix))

    def error(self, where: str, message: str, fix: str) -> None:
        self.add(ERROR, where, message, fix)

    def warning(self, where: str, message: str, fix: str) -> None:
        self.add(WARNING, where, message, fix)


# --- reading --------------------------------------------------------------------


def load_zone(path: str, report: _Report) -> Zone | None:
    """The manifest at ``path`` with its NICs' addresses checked; None if unreadable."""
    name = os.path.basename(path) if os.path.dirname(path) == "" else path
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as exc:
        report.error(name, f"cannot read: {exc.strerror or exc}", "give the path of a manifest")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.error(name, f"not JSON: {exc}", "fix the syntax (vmadm validate create -f FILE)")
        return None
    zone = Zone(name, data if isinstance(data, dict) else {})
    if not isinstance(data, dict):
        report.error(name, "the manifest is not a JSON object", "write a vmadm manifest { ... }")
        return zone
    nics = data.get("nics")
    if not isinstance(nics, list) or not nics:
        report.error(zone.at("nics"), "no NIC", 'add a NIC in "nics" on the VIP\'s network')
        return zone
    for index, nic in enumerate(nics):
        if not isinstance(nic, dict):
            report.error(zone.at(f"nics[{index}]"), "not an object", "describe the NIC as { ... }")
            continue
        zone.nics.append(_load_nic(zone, index, nic, report))
    return zone


def _load_nic(zone: Zone, index: int, data: dict[str, Any], report: _Report) -> Nic:
    nic = Nic(index, data)
    here = f"nics[{index}]"
    ip_text, mask_text = data.get("ip"), data.get("netmask")
    if ip_text is None:
        report.error(
            zone.at(f"{here}.ip"),
            "no IP address",
            'give the NIC a static "ip" and "netmask" (CARP needs a fixed srcip)',
        )
        return nic
    if ip_text in ("dhcp", "addrconf"):
        report.error(
            zone.at(f"{here}.ip"),
            f"{ip_text!r}: the address is not fixed",
            'give a static "ip" and "netmask": peers and --srcip need a fixed address',
        )
        return nic
    try:
        nic.ip = IPv4Address(str(ip_text))
    except AddressValueError:
        report.error(
            zone.at(f"{here}.ip"),
            f"{ip_text!r} is not an IPv4 address",
            "write a dotted quad such as 198.51.100.201",
        )
        return nic
    try:
        nic.network = IPv4Network(f"{nic.ip}/{mask_text}", strict=False)
    except (AddressValueError, NetmaskValueError, ValueError):
        report.error(
            zone.at(f"{here}.netmask"),
            f"{mask_text!r} is not a netmask",
            'write the mask as a dotted quad such as "255.255.255.0"',
        )
        return nic
    if nic.network.prefixlen < 31 and nic.ip in (
        nic.network.network_address,
        nic.network.broadcast_address,
    ):
        report.error(
            zone.at(f"{here}.ip"),
            f"{nic.ip} is not a host address of {nic.network}",
            "choose an address between the network and broadcast addresses",
        )
    gateway = data.get("gateway")
    if gateway is not None:
        _load_gateway(zone, nic, f"{here}.gateway", gateway, report)
    return nic


def _load_gateway(zone: Zone, nic: Nic, path: str, text: object, report: _Report) -> None:
    assert nic.network is not None and nic.ip is not None
    try:
        gateway = IPv4Address(str(text))
    except AddressValueError:
        report.error(
            zone.at(path),
            f"{text!r} is not an IPv4 address",
            "write the router's address as a dotted quad",
        )
        return
    if gateway == nic.ip:
        report.error(
            zone.at(path),
            f"{gateway} is the NIC's own address",
            "give the router's address, or remove the gateway",
        )
    elif gateway not in nic.network:
        report.error(
            zone.at(path),
            f"{gateway} is outside the NIC's subnet {nic.network}",
            "give a router on that subnet, or fix the netmask",
        )
    else:
        nic.gateways.append(gateway)


def load_vips(configs: Sequence[str], vips: Sequence[str], report: _Report) -> list[Vip]:
    """The virtual addresses the configs (or --vip) describe."""
    found: list[Vip] = []
    for path in configs:
        found += _config_vips(path, report)
    for text in vips:
        try:
            found.append(Vip(IPv4Address(text), "--vip"))
        except AddressValueError:
            report.error(
                "--vip", f"{text!r} is not an IPv4 address", "give the VIP as a dotted quad"
            )
    return found


def _config_vips(path: str, report: _Report) -> list[Vip]:
    name = os.path.basename(path) if os.path.dirname(path) == "" else path
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        report.error(name, f"cannot read: {exc.strerror or exc}", "give the config's path")
        return []
    try:
        kind, settings = load_file(path, check_machine=False)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            report.error(
                name,
                line,
                "correct the config (pycarp check-config FILE --no-machine-checks says the same)",
            )
        return []
    prefix = "vhost[{}]." if kind == TOML_FORMAT else "--"
    return [
        Vip(
            address,
            name,
            vhost.vhid,
            vhost.srcip,
            vhost.password,
            vhost.virtual_mac,
            prefix.format(index),
        )
        for index, vhost in enumerate(settings.vhosts)
        for address in vhost.addresses
    ]


# --- checking ---------------------------------------------------------------------


def check(zones: Sequence[Zone], vips: Sequence[Vip], report: _Report) -> None:
    """Every problem of ``zones`` sharing ``vips``, into ``report``."""
    _check_duplicate_ips(zones, report)
    for vip in vips:
        _check_vip_not_real(zones, vip, report)
        carriers = [(zone, nic) for zone in zones if (nic := _carp_nic(zone, vip, report))]
        for zone, nic in carriers:
            _check_carrier(zone, nic, vip, report)
        _check_one_subnet(carriers, vip, report)
    _check_srcips(zones, vips, report)
    _check_vhids(zones, vips, report)
    for zone in zones:
        _check_routes(zone, report)


def _addressed(zone: Zone) -> Iterator[Nic]:
    return (nic for nic in zone.nics if nic.ip is not None and nic.network is not None)


def _check_duplicate_ips(zones: Sequence[Zone], report: _Report) -> None:
    owners: dict[IPv4Address, str] = {}
    for zone in zones:
        for nic in _addressed(zone):
            assert nic.ip is not None
            where = zone.at(f"nics[{nic.index}].ip")
            if nic.ip in owners:
                report.error(
                    where,
                    f"{nic.ip} is also the address of {owners[nic.ip]}",
                    "give every zone's NIC its own address",
                )
            else:
                owners[nic.ip] = where


def _check_vip_not_real(zones: Sequence[Zone], vip: Vip, report: _Report) -> None:
    for zone in zones:
        for nic in _addressed(zone):
            if nic.ip == vip.address:
                report.error(
                    zone.at(f"nics[{nic.index}].ip"),
                    f"{nic.ip} is the VIP (from {vip.source}) as well as this NIC's real address",
                    "give the VIP an address no zone uses",
                )


def _carp_nic(zone: Zone, vip: Vip, report: _Report) -> Nic | None:
    """The NIC that carries CARP for ``vip``: the one with the srcip, else in its subnet."""
    nics = list(_addressed(zone))
    by_srcip = [nic for nic in nics if vip.srcip is not None and nic.ip == vip.srcip]
    if by_srcip:
        return by_srcip[0]
    in_subnet = [nic for nic in nics if nic.network is not None and vip.address in nic.network]
    if in_subnet:
        return in_subnet[0]
    if nics:
        subnets = ", ".join(str(nic.network) for nic in nics)
        report.error(
            zone.at("nics"),
            f"no NIC is on the subnet of the VIP {vip.address} "
            f"(from {vip.source}); the NICs are on {subnets}",
            "put one NIC of every zone on the VIP's subnet (one broadcast domain), or fix the VIP",
        )
    return None


def _check_carrier(zone: Zone, nic: Nic, vip: Vip, report: _Report) -> None:
    here = f"nics[{nic.index}]"
    assert nic.network is not None
    what = f"the NIC carrying CARP for {vip.address} ({nic.ip})"
    if vip.address not in nic.network:
        report.error(
            zone.at(f"{here}.netmask"),
            f"the VIP {vip.address} is outside {what}'s subnet {nic.network}",
            "put the VIP in the NIC's subnet, or fix the netmask",
        )
    if nic.data.get("allow_ip_spoofing") is not True:
        report.error(
            zone.at(f"{here}.allow_ip_spoofing"),
            f"not true on {what}: the zone drops traffic from the VIP, which can never be answered",
            'set "allow_ip_spoofing": true on this NIC',
        )
    if vip.virtual_mac and nic.data.get("allow_mac_spoofing") is not True:
        report.error(
            zone.at(f"{here}.allow_mac_spoofing"),
            f"not true on {what}, but {vip.source} sets virtual_mac: frames from "
            f"00:00:5e:00:00:{vip.vhid or 0:02x} are dropped",
            'set "allow_mac_spoofing": true on this NIC, or drop virtual_mac',
        )
    allowed = nic.data.get("allowed_ips")
    if allowed is not None and not _allows(allowed, vip.address):
        report.error(
            zone.at(f"{here}.allowed_ips"),
            f"lists addresses but not the VIP {vip.address}: its traffic is dropped",
            f'add "{vip.address}" to allowed_ips, or remove allowed_ips',
        )


def _allows(allowed: object, address: IPv4Address) -> bool:
    if not isinstance(allowed, list):
        return False
    for item in allowed:
        try:
            if address in IPv4Network(str(item), strict=False):
                return True
        except ValueError:
            continue
    return False


def _check_one_subnet(carriers: Sequence[tuple[Zone, Nic]], vip: Vip, report: _Report) -> None:
    if not carriers:
        return
    first_zone, first = carriers[0]
    for zone, nic in carriers[1:]:
        if nic.network != first.network:
            report.error(
                zone.at(f"nics[{nic.index}].netmask"),
                f"subnet {nic.network} differs from {first.network} of "
                f"{first_zone.at(f'nics[{first.index}]')} (VIP {vip.address})",
                "give the zones' CARP NICs the same network and netmask",
            )


def _check_srcips(zones: Sequence[Zone], vips: Sequence[Vip], report: _Report) -> None:
    ips = {nic.ip for zone in zones for nic in zone.nics}
    if None in ips:
        return  # a NIC without a valid address: that error says it already
    for vip in vips:
        if vip.srcip is not None and vip.srcip not in ips:
            report.error(
                f"{vip.source}: {vip.key}srcip",
                f"{vip.srcip} is the address of no NIC in the manifests",
                "set srcip to the zone's own IP on the VIP's subnet",
            )


def _check_vhids(zones: Sequence[Zone], vips: Sequence[Vip], report: _Report) -> None:
    """One vhid per VIP on a network, and one password per vhid."""
    networks = {nic.network for zone in zones for nic in _addressed(zone)}
    seen: dict[tuple[IPv4Network | None, int], Vip] = {}
    for vip in vips:
        if vip.vhid is None:
            continue
        network = next((n for n in networks if n is not None and vip.address in n), None)
        other = seen.setdefault((network, vip.vhid), vip)
        where = f"{vip.source}: {vip.key}vhid"
        if other.address != vip.address:
            report.error(
                where,
                f"vhid {vip.vhid} is also used for {other.address} "
                f"({other.source}) on the same network",
                "give each VIP its own vhid (1-255) on a network",
            )
        elif other.password and vip.password and other.password != vip.password:
            report.error(
                f"{vip.source}: {vip.key}pass",
                f"the password for vhid {vip.vhid} differs from {other.source}'s",
                "use the same password on every host of a vhid",
            )
    by_address: dict[IPv4Address, Vip] = {}
    for vip in vips:
        other = by_address.setdefault(vip.address, vip)
        if None not in (vip.vhid, other.vhid) and other.vhid != vip.vhid:
            report.error(
                f"{vip.source}: {vip.key}vhid",
                f"{vip.address} has vhid {vip.vhid} here but {other.vhid} in {other.source}",
                "use the same vhid for a VIP on every host",
            )


def _check_routes(zone: Zone, report: _Report) -> None:
    nics = list(_addressed(zone))
    if not nics or any(nic.gateways for nic in nics):
        return
    if not any("gateway" in nic.data for nic in zone.nics):
        report.warning(
            zone.at("nics"),
            "no NIC has a gateway: the zone reaches only its own subnets",
            'add "gateway" to the NIC that leads out, if it should',
        )
    resolvers = zone.data.get("resolvers")
    for index, text in enumerate(resolvers if isinstance(resolvers, list) else []):
        try:
            resolver = IPv4Address(str(text))
        except AddressValueError:
            continue
        if not any(nic.network is not None and resolver in nic.network for nic in nics):
            report.warning(
                zone.at(f"resolvers[{index}]"),
                f"{resolver} is outside every NIC's subnet and there is no gateway: "
                "name lookups will fail",
                "add a gateway, or use a resolver on a NIC's subnet",
            )


# --- command line -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check vmadm manifests of zones sharing a VIP with CARP.",
        allow_abbrev=False,
    )
    parser.add_argument("manifests", nargs="+", metavar="MANIFEST.json")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="pycarp's config (ucarp options or TOML); repeat for several",
    )
    parser.add_argument(
        "--vip",
        action="append",
        default=[],
        metavar="ADDR",
        help="the shared address, when there is no --config",
    )
    parser.add_argument(
        "--no-machine-checks",
        action="store_true",
        help="accepted for symmetry with check-config: this command never checks this machine",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """``pycarp check MANIFEST.json... [--config FILE] [--vip ADDR]``."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if not args.config and not args.vip:
        print(
            f"{PROG}: error: give --config FILE or --vip ADDR: the VIP decides which NIC "
            "carries CARP",
            file=sys.stderr,
        )
        return EXIT_USAGE
    report = _Report()
    vips = load_vips(args.config, args.vip, report)
    zones = [zone for path in args.manifests if (zone := load_zone(path, report))]
    check(zones, vips, report)
    for problem in report.problems:
        print(problem)
    errors = sum(p.level == ERROR for p in report.problems)
    warnings = len(report.problems) - errors
    addresses = ", ".join(dict.fromkeys(str(vip.address) for vip in vips)) or "no VIP"
    verdict = "OK" if not errors else "FAILED"
    print(
        f"{verdict}: {len(zones)} manifests, VIP {addresses}: {errors} errors, {warnings} warnings"
    )
    return EXIT_PROBLEMS if errors else EXIT_OK
