"""Interface facts (index, MAC, RUNNING) through the classic SIOCGIF* ioctls.

ioctls on a socket opened at call time answer for the network namespace the
calling thread is in, with no library and no sysfs (which `ip netns exec`
remounts but a setns() caller would not see). The IPv6 link-local address
comes from procfs, through /proc/thread-self for the same reason: /proc/net
is the namespace of the process's main thread, not of the caller.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from ipaddress import IPv6Address

from pycarp.platform.base import InterfaceError, InterfaceInfo

IFNAMSIZ = 16
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
IFF_RUNNING = 0x40
ARPHRD_ETHER = 1
IF_INET6_PATHS = ("/proc/thread-self/net/if_inet6", "/proc/net/if_inet6")
IPV6_ADDR_LINKLOCAL = 0x20  # the scope column of if_inet6 (IPV6_ADDR_LINKLOCAL)
IFA_F_DADFAILED = 0x08  # <linux/if_addr.h>: duplicate address detection found a clash

_IFREQ = struct.Struct(f"{IFNAMSIZ}s24x")  # struct ifreq: name + 24-byte union


def _check_name(name: str) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) >= IFNAMSIZ or b"\0" in raw or b"/" in raw:
        raise InterfaceError(f"invalid interface name {name!r} (1 to {IFNAMSIZ - 1} bytes)")
    return raw


def _ioctl(sock: socket.socket, request: int, raw_name: bytes, name: str) -> bytes:
    try:
        return fcntl.ioctl(sock.fileno(), request, _IFREQ.pack(raw_name))
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise InterfaceError(f"interface {name!r} does not exist") from exc
        raise InterfaceError(f"cannot query interface {name!r}: {exc.strerror}") from exc


def parse_link_local(text: str, name: str) -> IPv6Address | None:
    """The first link-local address of `name` in an if_inet6 text that has not failed DAD.

    A line is: address (32 hex digits), ifindex, prefix length, scope and
    flags (hex), interface name. A tentative address counts: DAD still runs,
    and it is the address the interface will have. Malformed lines are skipped.
    """
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or fields[5] != name or len(fields[0]) != 32:
            continue
        try:
            address = IPv6Address(bytes.fromhex(fields[0]))
            scope, flags = int(fields[3], 16), int(fields[4], 16)
        except ValueError:
            continue
        if scope == IPV6_ADDR_LINKLOCAL and not flags & IFA_F_DADFAILED:
            return address
    return None


def link_local(name: str) -> IPv6Address | None:
    """The interface's IPv6 link-local address; None when it has none (IPv6 off on it or here)."""
    for path in IF_INET6_PATHS:
        try:
            with open(path, encoding="ascii", errors="replace") as file:
                text = file.read()
        except FileNotFoundError:
            continue  # no thread-self (old kernel), or no IPv6 at all
        return parse_link_local(text, name)
    return None


def interface_info(name: str) -> InterfaceInfo:
    """Index, MAC, RUNNING flag and link-local address of an Ethernet interface.

    InterfaceError if it is unusable.
    """
    raw = _check_name(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        (index,) = struct.unpack_from("i", _ioctl(sock, SIOCGIFINDEX, raw, name), IFNAMSIZ)
        hw = _ioctl(sock, SIOCGIFHWADDR, raw, name)
        (flags,) = struct.unpack_from("H", _ioctl(sock, SIOCGIFFLAGS, raw, name), IFNAMSIZ)
    (hwtype,) = struct.unpack_from("H", hw, IFNAMSIZ)  # sockaddr.sa_family = ARPHRD_*
    if hwtype != ARPHRD_ETHER:
        # CARP here sends hand-built Ethernet frames: nothing else can work.
        raise InterfaceError(f"interface {name!r} is not Ethernet (ARPHRD type {hwtype})")
    mac = hw[IFNAMSIZ + 2 : IFNAMSIZ + 8]
    return InterfaceInfo(
        name=name,
        index=index,
        mac=mac,
        running=bool(flags & IFF_RUNNING),
        link_local=link_local(name),
    )
