"""Interface facts (index, MAC, RUNNING) through the classic SIOCGIF* ioctls.

ioctls on a socket opened at call time answer for the network namespace the
calling thread is in, with no library and no sysfs (which `ip netns exec`
remounts but a setns() caller would not see).
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct

from pycarp.platform.base import InterfaceError, InterfaceInfo

IFNAMSIZ = 16
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
IFF_RUNNING = 0x40
ARPHRD_ETHER = 1

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


def interface_info(name: str) -> InterfaceInfo:
    """Index, MAC and RUNNING flag of an Ethernet interface; InterfaceError if unusable."""
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
    return InterfaceInfo(name=name, index=index, mac=mac, running=bool(flags & IFF_RUNNING))
