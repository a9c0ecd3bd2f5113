"""Platform adapters behind the Protocols of base.py; select_platform() picks one."""

from __future__ import annotations

import sys

from pycarp.platform.base import Platform


class UnsupportedPlatformError(RuntimeError):
    """No adapter exists for this operating system."""


def select_platform(name: str | None = None) -> Platform:
    """The adapters for this OS (name defaults to sys.platform)."""
    name = sys.platform if name is None else name
    if name.startswith("linux"):
        # Imported here: the Linux modules need Linux-only socket constants.
        from pycarp.platform.linux import LinuxPlatform

        return LinuxPlatform()
    if name.startswith("sunos"):  # illumos (and Solaris) report "sunos5"
        from pycarp.platform.illumos import IllumosPlatform

        return IllumosPlatform()
    raise UnsupportedPlatformError(
        f"pycarp has no platform adapter for {name!r} (supported: linux, illumos)"
    )
