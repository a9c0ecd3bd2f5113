"""Settings of one virtual host, validated once when built."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Literal

from pycarp.core import vrrp
from pycarp.core.checkconfig import name_problem
from pycarp.core.errors import ConfigError
from pycarp.core.packet import Address, virtual_mac

DEFAULT_GROUP = IPv4Address("224.0.0.18")
MAX_PASSWORD = 19  # ucarp keeps the key in 20 bytes including the final NUL
SCRIPT_TIMEOUT = 10  # seconds an up or down script may run before it is killed
MAX_SCRIPT_TIMEOUT = 3600
BROADCAST = IPv4Address("255.255.255.255")
DEFAULT_PENALTY = 100
VHID_RANGE = range(1, 256)  # the one vhid rule: config, control requests and the client use it
PROTOCOLS = ("carp", "vrrp3")
MACS = ("interface", "ucarp", "virtual")
DEFAULT_PRIORITY = 100  # VRRP's, as keepalived's
DEFAULT_ADVERT_INT = 100  # VRRP: centiseconds
MAX_PREEMPT_DELAY = 1000  # seconds, as keepalived's bound
Protocol = Literal["carp", "vrrp3"]
Mac = Literal["interface", "ucarp", "virtual"]


def address_problem(address: Address, prefix: int | None = None) -> str | None:
    """Why ``address``/``prefix`` cannot be a virtual address ("a multicast address"), or None.

    A /31 or /32 has no broadcast address of its own (RFC 3021).
    """
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address (write the IPv4 address)"
        return None
    if address == BROADCAST:
        return "the broadcast address"
    if prefix is not None and address == broadcast_of(address, prefix):
        return f"the broadcast address of {IPv4Network((address, prefix), strict=False)}"
    return None


def broadcast_of(address: IPv4Address, prefixlen: int) -> IPv4Address | None:
    """The broadcast address of address/prefixlen, None for none.

    Like iproute2's `brd +`: only up to /30; a /31 is point-to-point (RFC 3021)
    and a /32 has no subnet to broadcast on.
    """
    if prefixlen > 30:
        return None
    return IPv4Network((address, prefixlen), strict=False).broadcast_address


@dataclass(frozen=True)
class VirtualHostConfig:
    """One vhid on one interface.

    The protocol fields are checked here, and a ConfigError names the field
    at fault by its name here; paths and interfaces (facts of the machine, not
    of the protocol) are checked by pycarp.config.machine.
    """

    interface: str
    # The source of IPv4 advertisements; IPv6 ones go from the interface's link-local address.
    srcip: IPv4Address | None
    vhid: int
    addresses: tuple[Address, ...]  # IPv4 and IPv6 may be mixed, as BSD CARP allows
    password: bytes = field(default=b"", repr=False)  # never in logs or tracebacks
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
    # Prefix length of each address when pycarp plumbs it (same order); () means /32 and /128.
    prefixes: tuple[int, ...] = ()
    # Built-in plumbing of the addresses; None: on when there is neither up nor down script.
    plumb: bool | None = None
    # The MAC the host's frames come from: the NIC's; ucarp's 00:00:5e:00:00:<vhid>
    # for advertisements only; or the virtual MAC (VRRP's, BSD CARP's) for advertisements,
    # announcements and the addresses themselves (a macvlan answers ARP and ND from it).
    mac: Mac = "interface"
    # Seconds before a still running up or down script's process group is killed.
    script_timeout: int = SCRIPT_TIMEOUT
    # Replay protection (core/replay.py): "strict" also needs each peer's counter to grow.
    replay: Literal["on", "strict", "off"] = "on"
    # Demotion (core/health.py): the groups whose count demotes this host, and what it does then.
    track: tuple[str, ...] = ()
    demotion: Literal["penalty", "stepdown"] = "penalty"
    penalty: int = DEFAULT_PENALTY  # added to advskew while demoted (the sum clamped to 0..255)
    # Unicast (FreeBSD's format): advertisements to each peer instead of the group,
    # accepted only from them, with a TTL of at least min_ttl (routed peers: below 255).
    # Link-local IPv6 peers are on `interface` (a scope given must name it; it is dropped).
    peers: tuple[Address, ...] = ()
    min_ttl: int = 1
    # The protocol spoken: CARP (ucarp's and BSD's) or VRRPv3 (RFC 5798), which
    # uses vhid as its VRID and the fields below instead of advbase, advskew and password.
    protocol: Protocol = "carp"
    priority: int = DEFAULT_PRIORITY  # VRRP: 1-254, 255 for the address owner
    advert_int: int = DEFAULT_ADVERT_INT  # VRRP: centiseconds, 1..4095
    preempt_delay: float = 0.0  # VRRP: seconds a lower-priority master is left before preempting

    @property
    def vrrp(self) -> bool:
        return self.protocol == "vrrp3"

    def advert_mac(self, nic: bytes, version: int) -> bytes:
        """The source MAC of advertisements in IP `version` (the NIC's is `nic`)."""
        if self.mac == "ucarp":
            return virtual_mac(self.vhid)
        return self.link_mac(version) or nic

    @property
    def address_mac(self) -> bytes | None:
        """The virtual MAC that carries all the host's addresses (one family with VRRP)."""
        return self.link_mac(self.versions[0])

    def link_mac(self, version: int) -> bytes | None:
        """The virtual MAC that carries the addresses, None for the NIC's own."""
        if self.mac != "virtual":
            return None
        return vrrp.virtual_mac(self.vhid, version if self.vrrp else 4)

    @property
    def plumbs(self) -> bool:
        if self.plumb is None:
            return not (self.upscript or self.downscript)
        return self.plumb

    @property
    def unicast(self) -> bool:
        return bool(self.peers)

    @property
    def networks(self) -> tuple[tuple[Address, int], ...]:
        """(address, prefix length) of each virtual address."""
        prefixes = self.prefixes or tuple(a.max_prefixlen for a in self.addresses)
        return tuple(zip(self.addresses, prefixes, strict=True))

    @property
    def versions(self) -> tuple[int, ...]:
        """The IP versions of the virtual addresses, 4 first: the families advertised in."""
        return tuple(v for v in (4, 6) if any(a.version == v for a in self.addresses))

    def __post_init__(self) -> None:
        # Each error names the field at fault; a front-end says it in its own words.
        if not self.interface:
            raise ConfigError("interface", "required")
        if self.vhid not in VHID_RANGE:
            raise ConfigError("vhid", f"{self.vhid} is outside 1..255")
        if not 0 <= self.advbase <= 255:
            raise ConfigError("advbase", f"{self.advbase} is outside 0..255")
        if not 0 <= self.advskew <= 255:
            raise ConfigError("advskew", f"{self.advskew} is outside 0..255")
        if self.advbase == 0 and self.advskew == 0:
            raise ConfigError("advbase", "0 needs an advskew above 0 (the interval would be 0)")
        if self.advbase == 255 and self.advskew == 255:
            reserved = "255/255 is reserved for the 'leaving master' signal"
            raise ConfigError(("advbase", "advskew"), reserved)
        if self.deadratio < 1:
            raise ConfigError("deadratio", f"{self.deadratio} is below 1")
        if not 1 <= self.script_timeout <= MAX_SCRIPT_TIMEOUT:
            limit = f"outside 1..{MAX_SCRIPT_TIMEOUT}"
            raise ConfigError("script_timeout", f"{self.script_timeout} is {limit}")
        if len(self.password) > MAX_PASSWORD:
            size = len(self.password)
            raise ConfigError("password", f"{size} bytes; at most {MAX_PASSWORD} are allowed")
        if not self.addresses:
            raise ConfigError("addresses", "at least one virtual address is required")
        if len(set(self.addresses)) != len(self.addresses):
            raise ConfigError("addresses", "the same virtual address is listed twice")
        if self.prefixes and len(self.prefixes) != len(self.addresses):
            raise ConfigError("prefixes", "one prefix length per virtual address is needed")
        for address, prefix in self.networks:
            if not 1 <= prefix <= address.max_prefixlen:
                limit = f"outside 1..{address.max_prefixlen}"
                raise ConfigError("prefixes", f"{address}/{prefix}: the prefix length is {limit}")
            if (problem := address_problem(address, prefix)) is not None:
                raise ConfigError("addresses", f"{address} is {problem}")
        self._check_srcip()
        if self.nomcast and 6 in self.versions:
            reason = "is IPv4's (Ethernet broadcast): IPv6 advertisements go to ff02::12"
            raise ConfigError("nomcast", reason)
        if self.replay not in ("on", "strict", "off"):
            raise ConfigError("replay", f"{self.replay!r} is not one of on, strict, off")
        if self.demotion not in ("penalty", "stepdown"):
            raise ConfigError("demotion", f"{self.demotion!r} is not one of penalty, stepdown")
        if not 0 <= self.penalty <= 255:
            raise ConfigError("penalty", f"{self.penalty} is outside 0..255")
        for name in self.track:
            if (problem := name_problem(name)) is not None:
                raise ConfigError("track", problem)
        if len(set(self.track)) != len(self.track):
            raise ConfigError("track", "the same group is listed twice")
        if not self.group.is_multicast:
            raise ConfigError("group", f"{self.group} is not a multicast address")
        self._check_peers()
        self._check_protocol()

    def _check_srcip(self) -> None:
        srcip = self.srcip
        if srcip is None:
            if 4 in self.versions:
                raise ConfigError("srcip", "required with IPv4 virtual addresses")
            return
        if 4 not in self.versions:
            reason = "means nothing without IPv4 virtual addresses (IPv6 advertisements go "
            raise ConfigError("srcip", reason + "from the interface's link-local address)")
        if srcip.is_multicast or srcip == BROADCAST or srcip.is_unspecified:
            raise ConfigError("srcip", f"{srcip} cannot be a host's own address")
        if srcip in self.addresses:
            raise ConfigError("srcip", f"{srcip} is also a virtual address")

    def _check_peers(self) -> None:
        if not 1 <= self.min_ttl <= 255:
            raise ConfigError("min_ttl", f"{self.min_ttl} is outside 1..255")
        if not self.peers:
            return
        if self.nomcast:
            raise ConfigError("nomcast", "means nothing for a unicast host (with peers)")
        peers = tuple(self._unscoped(peer) for peer in self.peers)
        object.__setattr__(self, "peers", peers)  # frozen: this is the one normalisation
        if len(set(self.peers)) != len(self.peers):
            raise ConfigError("peers", "the same peer is listed twice")
        for peer in self.peers:
            # the address family's own rules: 198.51.100.224 is not multicast
            if (problem := address_problem(peer)) is not None:
                raise ConfigError("peers", f"{peer} is {problem}, not a peer's own address")
            if peer == self.srcip:
                raise ConfigError("peers", f"{peer} is this host's own srcip")
            if peer in self.addresses:
                raise ConfigError("peers", f"{peer} is a virtual address")
            if peer.version not in self.versions:
                family = f"IPv{peer.version}"
                reason = f"{peer} is an {family} peer, and no virtual address is {family}"
                raise ConfigError("peers", reason)
        for version in self.versions:
            if not any(p.version == version for p in self.peers):
                reason = f"no IPv{version} peer for the IPv{version} virtual addresses"
                raise ConfigError("peers", f"{reason} (each family advertises to its own peers)")

    def _check_protocol(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol", f"{self.protocol!r} is not one of carp, vrrp3")
        if self.mac not in MACS:
            raise ConfigError("mac", f"{self.mac!r} is not one of {', '.join(MACS)}")
        if self.mac == "virtual" and not self.plumbs:
            reason = "virtual needs pycarp to plumb the addresses (on a macvlan): with up/down "
            raise ConfigError("mac", reason + "scripts, set plumb = true or mac = interface")
        if not self.vrrp:
            return
        if len(self.versions) != 1:
            reason = "a VRRP virtual router is IPv4 or IPv6, not both (RFC 5798): use two vhids"
            raise ConfigError("addresses", reason)
        if not 1 <= self.priority <= vrrp.OWNER:
            raise ConfigError("priority", f"{self.priority} is outside 1..255")
        if not 1 <= self.advert_int <= vrrp.MAX_INTERVAL:
            limit = f"outside 0.01..{vrrp.MAX_INTERVAL / 100} seconds"
            raise ConfigError("advert_int", f"{self.advert_int / 100} is {limit}")
        if not 0 <= self.preempt_delay <= MAX_PREEMPT_DELAY:
            raise ConfigError("preempt_delay", f"{self.preempt_delay} is outside 0..1000")
        if self.password:
            raise ConfigError("password", "VRRPv3 has no authentication (RFC 5798, 9.2)")
        if self.peers:
            raise ConfigError("peers", "unicast VRRP is not supported: VRRP uses the group")
        if self.mac == "ucarp":
            raise ConfigError("mac", "ucarp is CARP's: a VRRP host uses virtual or interface")
        if self.nomcast:
            raise ConfigError("nomcast", "VRRP advertisements go to the group (RFC 5798)")

    def _unscoped(self, peer: Address) -> Address:
        """A peer without its scope, which must be this host's interface (link-local only)."""
        if not isinstance(peer, IPv6Address) or peer.scope_id is None:
            return peer
        bare = IPv6Address(peer.packed)
        if not bare.is_link_local:
            raise ConfigError("peers", f"{peer}: only a link-local address has a scope")
        if peer.scope_id != self.interface:
            reason = f"{peer}: the scope is not this virtual host's interface {self.interface}"
            raise ConfigError("peers", reason)
        return bare


def with_protocol_defaults(config: VirtualHostConfig, given: Collection[str]) -> VirtualHostConfig:
    """`config` with VRRP's defaults for the fields a front-end was not `given`: it
    preempts (RFC 5798's Preempt_Mode) and, when pycarp plumbs the addresses,
    answers from the virtual MAC as the RFC requires. CARP keeps the dataclass's."""
    if not config.vrrp:
        return config
    changes: dict[str, object] = {}
    if "preempt" not in given:
        changes["preempt"] = True
    if "mac" not in given and config.plumbs:
        changes["mac"] = "virtual"
    return replace(config, **changes) if changes else config  # type: ignore[arg-type]
