"""The macvlans that give virtual addresses a virtual MAC (VRRP's, BSD CARP's), over rtnetlink.

One macvlan per (parent interface, virtual MAC), named by device_name():
"pcv" + the parent's ifindex in hex + "-" + the MAC's last byte but one (one
hex digit: 1 for IPv4 VRRP and CARP, 2 for IPv6 VRRP) and its last byte.
That fits IFNAMSIZ for any ifindex, two vhids or the two families of one
VRID never share a name, and a restarted daemon finds what a killed one
left. A device of that name is used only if it is a macvlan of that parent
with that MAC; anything else is not ours and is left alone.

Mode bridge: clients on the wire reach the macvlan in every mode, and the
host itself reaches its virtual addresses through the local table in every
mode, but only bridge lets the host's other bridge-mode macvlans
(containers on the same NIC, Docker's default) reach them too: private, as
keepalived uses, drops those frames.

Sysctls. On the macvlan, before it goes up: no IPv6 link-local address and
no router advertisements (addr_gen_mode=1, accept_ra=0), so the virtual
MAC sends no DAD, router solicitations or SLAAC of its own (its addresses
go on with IFA_F_NODAD and need none); arp_ignore=1, because it hears every
broadcast of the parent and would otherwise answer for the parent's
addresses with the virtual MAC; arp_announce=2, so an ARP request it sends
names one of its own addresses; rp_filter=2 where strict mode (1) is in
force, since replies to clients leave by the parent and strict mode would
drop every packet that arrives on the macvlan. On the parent, when IPv4
addresses go behind the MAC: arp_ignore=1 (with 0 it answers ARP for any
local address, the macvlan's included, with its own MAC) and
arp_announce=2 (else its own ARP requests for a client, sent for replies
from a virtual address, tell the client that address is at the parent's
MAC). Those two are logged at info and stay after pycarp stops: other
instances may still rely on them. IPv6 needs nothing on the parent: a
neighbour solicitation is answered only by the device that holds the
address, with its MAC as the target link-layer address.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from pycarp.platform.base import AddressError
from pycarp.platform.linux.nlerror import OP_TIMEOUT, error_code, reason
from pycarp.platform.linux.sysctl import Sysctls

NAME_PREFIX = "pcv"
IFNAMSIZ = 16  # with the NUL: names of at most 15 characters
MAX_IFINDEX = 0x7FFFFFFF  # an int in the kernel
VIRTUAL_OUI = b"\x00\x00\x5e\x00"  # IANA's 00:00:5e, then 00: the VRRP/CARP block
MODE = "bridge"
IFF_UP = 0x1
RTM_DELLINK = 17
NLMSG_ERROR = 2
NLM_F_REQUEST_ACK = 0x1 | 0x4
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change

log = logging.getLogger(__name__)

# (family, sysctl, value) on the macvlan, written before it goes up.
QUIET = (
    ("ipv6", "addr_gen_mode", 1),
    ("ipv6", "accept_ra", 0),
    ("ipv4", "arp_ignore", 1),
    ("ipv4", "arp_announce", 2),
)
ARP_IGNORE_OK = (1, 2, 8)  # answer only for the incoming interface's addresses, or never


def is_virtual_mac(mac: bytes) -> bool:
    """00:00:5e:00:0X:YY: VRRP's and CARP's (X 1 or 2), ucarp's (X 0)."""
    return len(mac) == 6 and mac[:4] == VIRTUAL_OUI and mac[4] < 0x10


def mac_text(mac: bytes) -> str:
    return mac.hex(":")


def device_name(parent_index: int, mac: bytes) -> str:
    """The name of pycarp's macvlan with `mac` on the interface of index `parent_index`."""
    if not is_virtual_mac(mac):
        raise AddressError(f"{mac.hex(':') or 'empty'}: not a virtual MAC (00:00:5e:00:0X:YY)")
    if not 1 <= parent_index <= MAX_IFINDEX:
        raise AddressError(f"{parent_index}: not an interface index")
    name = f"{NAME_PREFIX}{parent_index:x}-{mac[4]:x}{mac[5]:02x}"
    assert len(name) < IFNAMSIZ
    return name


def _mac_of(msg: Any) -> bytes:
    try:
        return bytes.fromhex(str(msg.get_attr("IFLA_ADDRESS") or "").replace(":", ""))
    except ValueError:  # not a hardware address of bytes
        return b""


def _kind(msg: Any) -> str | None:
    info = msg.get_attr("IFLA_LINKINFO")
    return None if info is None else info.get_attr("IFLA_INFO_KIND")


@dataclass(frozen=True)
class Macvlan:
    index: int
    name: str
    up: bool


class Macvlans:
    """Finds, makes and deletes pycarp's macvlans through an AsyncIPRoute."""

    def __init__(self, ipr: Any, sysctls: Sysctls) -> None:
        self._ipr = ipr
        self._sysctls = sysctls
        # Deleting a link waits for an RCU grace period inside sendmsg (20 ms and
        # more): that goes through a socket of its own, from a worker thread.
        self._deleter = _Deleter()

    def close(self) -> None:
        self._deleter.close()

    async def find(self, parent: str, parent_index: int, mac: bytes) -> Macvlan | None:
        """Ours for (parent, mac) if it exists; AddressError if its name is someone else's."""
        name = device_name(parent_index, mac)
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                msg = (await self._ipr.link("get", ifname=name))[0]
        except (NetlinkError, OSError, TimeoutError) as exc:
            if error_code(exc) == errno.ENODEV:
                return None
            raise AddressError(f"{name}: lookup failed: {reason(exc)}") from exc
        if (
            _kind(msg) != "macvlan"
            or msg.get_attr("IFLA_LINK") != parent_index
            or msg.get_attr("IFLA_ADDRESS") != mac_text(mac)
        ):
            raise AddressError(
                f"{name} exists but is not a macvlan of {parent} with MAC {mac_text(mac)}: "
                "not pycarp's, left alone"
            )
        return Macvlan(int(msg["index"]), name, bool(msg["flags"] & IFF_UP))

    async def macs(self, parent: str, parent_index: int) -> set[bytes]:
        """The MACs of our macvlans on the parent: one dump of the links."""
        found: set[bytes] = set()
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                async for msg in await self._ipr.get_links():
                    mac = _mac_of(msg)
                    if (
                        is_virtual_mac(mac)
                        and msg.get_attr("IFLA_LINK") == parent_index
                        and msg.get_attr("IFLA_IFNAME") == device_name(parent_index, mac)
                        and _kind(msg) == "macvlan"
                    ):
                        found.add(mac)
        except (NetlinkError, OSError, TimeoutError) as exc:
            raise AddressError(f"{parent}: cannot list the links: {reason(exc)}") from exc
        return found

    async def ensure(self, parent: str, parent_index: int, mac: bytes, *, ipv4: bool) -> Macvlan:
        """Ours for (parent, mac), made if need be, quiet (see the module docstring) and up.

        ``ipv4``: IPv4 addresses go on it, so the parent's ARP is set for that.
        """
        found = await self.find(parent, parent_index, mac)
        if found is None:
            await self._create(parent, parent_index, mac)
            found = await self.find(parent, parent_index, mac)
            if found is None:
                raise AddressError(f"{device_name(parent_index, mac)}: gone as soon as made")
        self._quiet(parent, found.name)
        if ipv4:
            self._parent_arp(parent, found.name)
        if not found.up:
            try:
                async with asyncio.timeout(OP_TIMEOUT):
                    await self._ipr.link("set", index=found.index, state="up")
            except (NetlinkError, OSError, TimeoutError) as exc:
                raise AddressError(f"{found.name}: cannot bring it up: {reason(exc)}") from exc
        return found

    async def _create(self, parent: str, parent_index: int, mac: bytes) -> None:
        name = device_name(parent_index, mac)
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                await self._ipr.link(
                    "add",
                    ifname=name,
                    kind="macvlan",
                    link=parent_index,
                    macvlan_mode=MODE,
                    address=mac_text(mac),
                )
        except (NetlinkError, OSError, TimeoutError) as exc:
            if error_code(exc) == errno.EEXIST:  # made meanwhile: find() checks it
                return
            raise AddressError(
                f"{parent}: cannot make macvlan {name} with MAC {mac_text(mac)}: {reason(exc)}"
            ) from exc
        log.info("%s: made macvlan %s with MAC %s (mode %s)", parent, name, mac_text(mac), MODE)

    def _quiet(self, parent: str, name: str) -> None:
        for family, key, value in QUIET:
            self._set(family, name, key, value)
        if self._effective(name, "rp_filter") == 1:
            self._set("ipv4", name, "rp_filter", 2)
        # IPv6 as on the parent: a macvlan inherits `default`, which may have it off.
        if self._sysctls.read("ipv6", parent, "disable_ipv6") == 0:
            self._set("ipv6", name, "disable_ipv6", 0)

    def _effective(self, interface: str, key: str) -> int:
        """An IPv4 setting the kernel takes as the larger of `all`'s and the interface's."""
        values = (self._sysctls.read("ipv4", i, key) for i in ("all", interface))
        return max((v for v in values if v is not None), default=0)

    def _set(self, family: str, name: str, key: str, value: int) -> None:
        current = self._sysctls.read(family, name, key)
        if current is not None and current != value:
            self._sysctls.write(family, name, key, value)
            log.debug("%s: net.%s.conf.%s.%s %d -> %d", name, family, name, key, current, value)

    def _parent_arp(self, parent: str, name: str) -> None:
        changed = []
        for key, value, good in (("arp_ignore", 1, ARP_IGNORE_OK), ("arp_announce", 2, (2,))):
            if self._effective(parent, key) not in good:
                was = self._sysctls.read("ipv4", parent, key)
                self._sysctls.write("ipv4", parent, key, value)
                changed.append(f"{key} {was} -> {value}")
        if changed:
            log.info(
                "%s: set net.ipv4.conf.%s %s, so that only %s's virtual MAC answers ARP "
                "for the virtual addresses (left so when pycarp stops)",
                parent,
                parent,
                ", ".join(changed),
                name,
            )
        if (ignore := self._effective(parent, "arp_ignore")) not in ARP_IGNORE_OK:
            log.warning(
                "%s: net.ipv4.conf.all.arp_ignore=%d lets %s answer ARP for the virtual "
                "addresses with its own MAC too",
                parent,
                ignore,
                parent,
            )

    async def delete(self, macvlan: Macvlan, parent: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(OP_TIMEOUT + 1.0):
                code = await loop.run_in_executor(None, self._deleter.delete, macvlan.index)
        except (OSError, TimeoutError) as exc:
            raise AddressError(f"{macvlan.name}: cannot delete it: {reason(exc)}") from exc
        if code == errno.ENODEV:
            return
        if code:
            raise AddressError(f"{macvlan.name}: cannot delete it: {reason(OSError(code, ''))}")
        log.info("%s: deleted macvlan %s (no virtual address left on it)", parent, macvlan.name)


class _Deleter:
    """RTM_DELLINK on a blocking netlink socket of its own, opened in this thread's namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self._sock.settimeout(OP_TIMEOUT)
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    def delete(self, index: int) -> int:
        """0, or the errno the kernel answered."""
        with self._lock:
            seq = next(self._sequence)
            body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
            size = _NLMSGHDR.size + len(body)
            self._sock.send(_NLMSGHDR.pack(size, RTM_DELLINK, NLM_F_REQUEST_ACK, seq, 0) + body)
            while True:  # until our acknowledgement (a late one of a timed-out request: skipped)
                data = self._sock.recv(65536)
                offset = 0
                while offset + _NLMSGHDR.size + 4 <= len(data):
                    length, kind, _, got, _ = _NLMSGHDR.unpack_from(data, offset)
                    if kind == NLMSG_ERROR and got == seq:
                        return -int(struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0])
                    offset += max((length + 3) & ~3, _NLMSGHDR.size)

    def close(self) -> None:
        self._sock.close()
