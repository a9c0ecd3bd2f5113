"""What `pycarp check` finds wrong with zones sharing VIPs with CARP.

Pure functions over manifests as read (pycarp.vmadm.manifest) and the VIPs;
each problem names the file, the JSON path and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Network

from pycarp.core.packet import virtual_mac
from pycarp.vmadm.manifest import MISSING, NOT_FIXED, Flaw, Manifest, Nic, host_address_problem

ERROR = "error"
WARNING = "warning"


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
    # empty: unknown (a password file not read here)
    password: bytes = field(default=b"", repr=False)
    virtual_mac: bool = False
    key: str = ""  # how the source names the host: "vhost[0]." in TOML


def error(where: str, message: str, fix: str) -> Problem:
    return Problem(ERROR, where, message, fix)


def warning(where: str, message: str, fix: str) -> Problem:
    return Problem(WARNING, where, message, fix)


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """Each problem once (by place and message), in the order first found."""
    seen: dict[tuple[str, str], Problem] = {}
    for problem in problems:
        seen.setdefault((problem.where, problem.message), problem)
    return list(seen.values())


def _at(manifest: Manifest, path: str) -> str:
    return f"{manifest.source}: {path}"


def _addressed(manifest: Manifest) -> Iterator[Nic]:
    return (nic for nic in manifest.nics if nic.network is not None)


# --- what reading found ---------------------------------------------------------


def reading_problems(manifest: Manifest) -> Iterator[Problem]:
    """What the manifest's own fields get wrong, NIC by NIC."""
    if manifest.data is None:
        yield error(
            manifest.source, "the manifest is not a JSON object", "write a vmadm manifest { ... }"
        )
        return
    if not manifest.entries:
        yield error(_at(manifest, "nics"), "no NIC", 'add a NIC in "nics" on the VIP\'s network')
        return
    for index, nic in enumerate(manifest.entries):
        if nic is None:
            yield error(
                _at(manifest, f"nics[{index}]"), "not an object", "describe the NIC as { ... }"
            )
        else:
            yield from _nic_problems(manifest, nic)


def _nic_problems(manifest: Manifest, nic: Nic) -> Iterator[Problem]:
    here = f"nics[{nic.index}]"
    if isinstance(nic.address, Flaw):
        yield _address_problem(_at(manifest, f"{here}.{nic.address.key}"), nic.address)
        return
    ip, network = nic.address.ip, nic.address.network
    if (problem := host_address_problem(ip, network)) is not None:
        yield error(
            _at(manifest, f"{here}.{nic.ip_key}"),
            problem,
            "choose an address between the network and broadcast addresses",
        )
    where = _at(manifest, f"{here}.gateway")
    if isinstance(nic.gateway, Flaw):
        yield error(
            where,
            f"{nic.gateway.value!r} is not an IPv4 address",
            "write the router's address as a dotted quad",
        )
    elif nic.gateway == ip:
        yield error(
            where,
            f"{nic.gateway} is the NIC's own address",
            "give the router's address, or remove the gateway",
        )
    elif nic.gateway is not None and nic.gateway not in network:
        yield error(
            where,
            f"{nic.gateway} is outside the NIC's subnet {network}",
            "give a router on that subnet, or fix the netmask",
        )


def _address_problem(where: str, flaw: Flaw) -> Problem:
    value = flaw.value
    if flaw.kind == NOT_FIXED:
        wanted = '"ip" and "netmask"' if flaw.key == "ip" else 'address such as "198.51.100.201/24"'
        return error(
            where,
            f"{value!r}: the address is not fixed",
            f"give a static {wanted}: peers and --srcip need a fixed address",
        )
    if flaw.key == "ips[0]":
        return error(
            where,
            f"{value!r} is not an IPv4 address with its prefix",
            'write it like "198.51.100.201/24"',
        )
    if flaw.key == "netmask":
        return error(
            where,
            f"{value!r} is not a netmask",
            'write the mask as a dotted quad such as "255.255.255.0"',
        )
    if flaw.kind == MISSING:
        return error(
            where,
            "no IP address",
            'give the NIC a static "ip" and "netmask" (CARP needs a fixed srcip)',
        )
    return error(
        where, f"{value!r} is not an IPv4 address", "write a dotted quad such as 198.51.100.201"
    )


# --- the zones together -------------------------------------------------------------


def check(manifests: Sequence[Manifest], vips: Sequence[Vip]) -> Iterator[Problem]:
    """Every problem of the zones of ``manifests`` sharing ``vips``."""
    yield from _duplicate_ips(manifests)
    for vip in vips:
        yield from _vip_not_real(manifests, vip)
        carriers = []
        for manifest in manifests:
            nic = _carp_nic(manifest, vip)
            if isinstance(nic, Problem):
                yield nic
            elif nic is not None:
                carriers.append((manifest, nic))
        for manifest, nic in carriers:
            yield from _carrier(manifest, nic, vip)
        yield from _one_subnet(carriers, vip)
    yield from _srcips(manifests, vips)
    yield from _vhids(manifests, vips)
    for manifest in manifests:
        yield from _routes(manifest)


def _duplicate_ips(manifests: Sequence[Manifest]) -> Iterator[Problem]:
    owners: dict[IPv4Address, str] = {}
    for manifest in manifests:
        for nic in _addressed(manifest):
            assert nic.ip is not None
            where = _at(manifest, f"nics[{nic.index}].{nic.ip_key}")
            if nic.ip in owners:
                yield error(
                    where,
                    f"{nic.ip} is also the address of {owners[nic.ip]}",
                    "give every zone's NIC its own address",
                )
            else:
                owners[nic.ip] = where


def _vip_not_real(manifests: Sequence[Manifest], vip: Vip) -> Iterator[Problem]:
    for manifest in manifests:
        for nic in _addressed(manifest):
            if nic.ip == vip.address:
                yield error(
                    _at(manifest, f"nics[{nic.index}].{nic.ip_key}"),
                    f"{nic.ip} is the VIP (from {vip.source}) as well as this NIC's real address",
                    "give the VIP an address no zone uses",
                )


def _carp_nic(manifest: Manifest, vip: Vip) -> Nic | Problem | None:
    """The NIC that carries CARP for ``vip``: the one with the srcip, else in its subnet."""
    nics = list(_addressed(manifest))
    by_srcip = [nic for nic in nics if vip.srcip is not None and nic.ip == vip.srcip]
    if by_srcip:
        return by_srcip[0]
    in_subnet = [nic for nic in nics if nic.network is not None and vip.address in nic.network]
    if in_subnet:
        return in_subnet[0]
    if not nics:
        return None
    subnets = ", ".join(str(nic.network) for nic in nics)
    return error(
        _at(manifest, "nics"),
        f"no NIC is on the subnet of the VIP {vip.address} "
        f"(from {vip.source}); the NICs are on {subnets}",
        "put one NIC of every zone on the VIP's subnet (one broadcast domain), or fix the VIP",
    )


def _carrier(manifest: Manifest, nic: Nic, vip: Vip) -> Iterator[Problem]:
    here = f"nics[{nic.index}]"
    assert nic.network is not None
    what = f"the NIC carrying CARP for {vip.address} ({nic.ip})"
    if vip.address not in nic.network:
        yield error(
            _at(manifest, f"{here}.{nic.netmask_key}"),
            f"the VIP {vip.address} is outside {what}'s subnet {nic.network}",
            "put the VIP in the NIC's subnet, or fix the netmask",
        )
    if nic.flag("allow_ip_spoofing") is not True:
        yield error(
            _at(manifest, f"{here}.allow_ip_spoofing"),
            f"not true on {what}: the zone drops traffic from the VIP, which can never be answered",
            'set "allow_ip_spoofing": true on this NIC',
        )
    if vip.virtual_mac and nic.flag("allow_mac_spoofing") is not True:
        yield error(
            _at(manifest, f"{here}.allow_mac_spoofing"),
            f"not true on {what}, but {vip.source} sets virtual_mac: frames from "
            f"{virtual_mac(vip.vhid or 0).hex(':')} are dropped",
            'set "allow_mac_spoofing": true on this NIC, or drop virtual_mac',
        )
    allowed = nic.allowed_ips
    if allowed is not None and not any(vip.address in network for network in allowed):
        yield error(
            _at(manifest, f"{here}.allowed_ips"),
            f"lists addresses but not the VIP {vip.address}: its traffic is dropped",
            f'add "{vip.address}" to allowed_ips, or remove allowed_ips',
        )


def _one_subnet(carriers: Sequence[tuple[Manifest, Nic]], vip: Vip) -> Iterator[Problem]:
    if not carriers:
        return
    first_manifest, first = carriers[0]
    for manifest, nic in carriers[1:]:
        if nic.network != first.network:
            yield error(
                _at(manifest, f"nics[{nic.index}].{nic.netmask_key}"),
                f"subnet {nic.network} differs from {first.network} of "
                f"{_at(first_manifest, f'nics[{first.index}]')} (VIP {vip.address})",
                "give the zones' CARP NICs the same network and netmask",
            )


def _srcips(manifests: Sequence[Manifest], vips: Sequence[Vip]) -> Iterator[Problem]:
    ips = {nic.ip for manifest in manifests for nic in manifest.nics}
    if None in ips:
        return  # a NIC without a valid address: that error says it already
    for vip in vips:
        if vip.srcip is not None and vip.srcip not in ips:
            yield error(
                f"{vip.source}: {vip.key}srcip",
                f"{vip.srcip} is the address of no NIC in the manifests",
                "set srcip to the zone's own IP on the VIP's subnet",
            )


def _vhids(manifests: Sequence[Manifest], vips: Sequence[Vip]) -> Iterator[Problem]:
    """One vhid per VIP on a network, and one password per vhid."""
    networks = {nic.network for manifest in manifests for nic in _addressed(manifest)}
    seen: dict[tuple[IPv4Network | None, int], Vip] = {}
    for vip in vips:
        if vip.vhid is None:
            continue
        network = next((n for n in networks if n is not None and vip.address in n), None)
        other = seen.setdefault((network, vip.vhid), vip)
        if other.address != vip.address:
            yield error(
                f"{vip.source}: {vip.key}vhid",
                f"vhid {vip.vhid} is also used for {other.address} "
                f"({other.source}) on the same network",
                "give each VIP its own vhid (1-255) on a network",
            )
        elif other.password and vip.password and other.password != vip.password:
            yield error(
                f"{vip.source}: {vip.key}pass",
                f"the password for vhid {vip.vhid} differs from {other.source}'s",
                "use the same password on every host of a vhid",
            )
    by_address: dict[IPv4Address, Vip] = {}
    for vip in vips:
        other = by_address.setdefault(vip.address, vip)
        if None not in (vip.vhid, other.vhid) and other.vhid != vip.vhid:
            yield error(
                f"{vip.source}: {vip.key}vhid",
                f"{vip.address} has vhid {vip.vhid} here but {other.vhid} in {other.source}",
                "use the same vhid for a VIP on every host",
            )


def _leads_out(nic: Nic) -> bool:
    """A gateway that is an address on the NIC's subnet, other than the NIC's own."""
    gateway, network = nic.gateway, nic.network
    return (
        isinstance(gateway, IPv4Address)
        and network is not None
        and gateway != nic.ip
        and gateway in network
    )


def _routes(manifest: Manifest) -> Iterator[Problem]:
    nics = list(_addressed(manifest))
    if not nics or any(_leads_out(nic) for nic in nics):
        return
    if not any("gateway" in nic.data for nic in manifest.nics):
        yield warning(
            _at(manifest, "nics"),
            "no NIC has a gateway: the zone reaches only its own subnets",
            'add "gateway" to the NIC that leads out, if it should',
        )
    resolvers = manifest.data.get("resolvers") if manifest.data is not None else None
    for index, text in enumerate(resolvers if isinstance(resolvers, list) else []):
        try:
            resolver = IPv4Address(str(text))
        except AddressValueError:
            continue
        if not any(nic.network is not None and resolver in nic.network for nic in nics):
            yield warning(
                _at(manifest, f"resolvers[{index}]"),
                f"{resolver} is outside every NIC's subnet and there is no gateway: "
                "name lookups will fail",
                "add a gateway, or use a resolver on a NIC's subnet",
            )
