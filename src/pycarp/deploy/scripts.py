"""``pycarp render scripts``: ucarp-style up/down scripts for Linux and illumos."""

from __future__ import annotations

import os

from pycarp.deploy.common import RenderError

__all__ = ["OS_NAMES", "SCRIPT_NAMES", "render_scripts", "write_scripts"]

SCRIPT_NAMES = ("vip-up.sh", "vip-down.sh")
SCRIPT_MODE = 0o755

_USAGE_CHECK = """\
if [ $# -lt 2 ]; then
    echo "usage: $0 <interface> <vip> [xparam]" >&2
    exit 2
fi
IF=$1
VIP=$2
"""

# The logical unit of $IF holding $VIP, from `ifconfig -a4` (a header line per
# unit, then its "inet ADDR netmask ..." line).
_ILLUMOS_FIND = """\
unit_of_vip() {
    ifconfig -a4 | awk -v ifn="$IF" -v ip="$VIP" '
        /^[^ \\t]/ { unit = $1; sub(/:$/, "", unit) }
        $1 == "inet" && $2 == ip && (unit == ifn || index(unit, ifn ":") == 1) { print unit; exit }'
}
"""

_SCRIPTS: dict[str, dict[str, str]] = {
    "illumos": {
        "vip-up.sh": f"""\
#!/bin/sh
# pycarp/ucarp up script (illumos): plumb the VIP on a new logical interface of
# <interface>. Arguments: <interface> <vip> [xparam]. Does nothing if it is there.
set -eu
{_USAGE_CHECK}{_ILLUMOS_FIND}
if [ -n "$(unit_of_vip)" ]; then
    exit 0
fi
# addif picks a free unit (net0:1, net0:2...) rather than assuming :1 is free.
ifconfig "$IF" addif "$VIP"/32 up
""",
        "vip-down.sh": f"""\
#!/bin/sh
# pycarp/ucarp down script (illumos): remove the logical interface of
# <interface> holding the VIP. Arguments: <interface> <vip> [xparam].
# Does nothing if the VIP is not plumbed.
set -eu
{_USAGE_CHECK}{_ILLUMOS_FIND}
unit=$(unit_of_vip)
if [ -z "$unit" ]; then
    exit 0
fi
case $unit in
    *:*) ;;
    *) echo "$0: $VIP is the address of $unit itself; not removing it" >&2; exit 1 ;;
esac
ifconfig "$unit" down
ifconfig "$unit" unplumb
""",
    },
    "linux": {
        "vip-up.sh": f"""\
#!/bin/sh
# pycarp/ucarp up script (Linux): add the VIP to <interface>.
# Arguments: <interface> <vip> [xparam]. "replace" succeeds if it is there.
set -eu
{_USAGE_CHECK}
ip -4 addr replace "$VIP"/32 dev "$IF"
""",
        "vip-down.sh": f"""\
#!/bin/sh
# pycarp/ucarp down script (Linux): remove the VIP from <interface>.
# Arguments: <interface> <vip> [xparam]. Does nothing if it is not there.
set -eu
{_USAGE_CHECK}
if [ -n "$(ip -4 -o addr show dev "$IF" to "$VIP"/32)" ]; then
    ip -4 addr del "$VIP"/32 dev "$IF"
fi
""",
    },
}
OS_NAMES = tuple(sorted(_SCRIPTS))


def render_scripts(os_name: str) -> dict[str, str]:
    """The up and down scripts for ``os_name`` ("illumos" or "linux"), by file name."""
    try:
        return dict(_SCRIPTS[os_name])
    except KeyError:
        raise RenderError(f"--os: {os_name!r} is not one of {', '.join(_SCRIPTS)}") from None


def write_scripts(scripts: dict[str, str], directory: str, *, force: bool = False) -> list[str]:
    """Write ``scripts`` into ``directory`` with mode 0755; the paths written.

    A name may have a folder ("if-up.d/pycarp"), made if need be.
    """
    if not os.path.isdir(directory):
        raise RenderError(f"--dir: {directory} is not a directory")
    paths = [os.path.join(directory, name) for name in scripts]
    existing = [path for path in paths if os.path.lexists(path)]
    if existing and not force:
        raise RenderError(f"{existing[0]} already exists (--force replaces it)")
    for path, text in zip(paths, scripts.values(), strict=True):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(tmp, SCRIPT_MODE)  # explicit: open()'s mode is cut by the umask
        os.replace(tmp, path)
    return paths
