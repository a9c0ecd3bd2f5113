"""What the rtnetlink adapters say of a failed request: its errno, in words."""

from __future__ import annotations

import errno
import os
from ipaddress import IPv4Address, IPv6Address

from pyroute2.netlink.exceptions import NetlinkError

OP_TIMEOUT = 5.0  # seconds for one netlink request: a wedged socket must not hang the daemon


def error_code(exc: BaseException) -> int | None:
    """The errno of a netlink or socket error, None for anything else (a timeout)."""
    code = exc.code if isinstance(exc, NetlinkError) else getattr(exc, "errno", None)
    return code if isinstance(code, int) and code > 0 else None


def reason(exc: BaseException, address: IPv4Address | IPv6Address | None = None) -> str:
    code = error_code(exc)
    if code is not None:
        why = f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"
        if code == errno.EACCES and isinstance(address, IPv6Address):
            why += "; is IPv6 disabled on the interface?"  # what disable_ipv6=1 answers
        return why
    if isinstance(exc, TimeoutError):
        return f"no answer from the kernel within {OP_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__
