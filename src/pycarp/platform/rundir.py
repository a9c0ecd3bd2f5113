"""Where pycarp keeps its control sockets: one run directory per network namespace.

Lab hosts (and the end-to-end tests) run daemons in network namespaces that
share one filesystem; a directory per namespace keeps their default sockets
apart, and a client run in a namespace (``ip netns exec X pycarp status``)
finds that namespace's daemons.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "ILLUMOS_RUN_DIR",
    "LINUX_RUN_DIR",
    "in_initial_netns",
    "named_netns_inodes",
    "netns_inode",
    "netns_run_directory",
    "run_directory",
]

LINUX_RUN_DIR = "/run/pycarp"
ILLUMOS_RUN_DIR = "/var/run/pycarp"  # illumos has no /run; /var/run is its tmpfs

# thread-self, not self: a thread that entered a namespace with setns() (the
# lab's netns_entered) is in it while the process's first thread is not.
OWN_NETNS = "/proc/thread-self/ns/net"
INITIAL_NETNS = "/proc/1/ns/net"
NAMED_NETNS_DIR = "/run/netns"  # where `ip netns add` keeps its namespaces
# The initial namespace's fixed inode on kernels that fix it (6.x); dynamic
# inodes start at 0xF0000000, so no other namespace can have this one.
INITIAL_NETNS_INODE = 0xEFFFFFF9


def run_directory(system: str | None = None) -> str:
    """The run directory for this process (``system`` defaults to sys.platform).

    Linux: /run/pycarp in the machine's initial network namespace, else
    /run/pycarp/netns-<inode of this namespace>. illumos: /var/run/pycarp.
    Elsewhere: /run/pycarp.
    """
    system = sys.platform if system is None else system
    if system.startswith("sunos"):
        return ILLUMOS_RUN_DIR
    if not system.startswith("linux"):
        return LINUX_RUN_DIR
    inode = netns_inode()
    if inode is None or in_initial_netns(inode):
        return LINUX_RUN_DIR
    return netns_run_directory(inode)


def netns_run_directory(inode: int) -> str:
    """The run directory of a namespace other than the initial one, by its inode."""
    return f"{LINUX_RUN_DIR}/netns-{inode}"


def in_initial_netns(inode: int) -> bool:
    """Whether the namespace with this inode is the machine's initial one.

    The answer is /proc/1/ns/net's. When that cannot be read (EACCES when not
    root, or in a sandbox whose pid 1 is not ours to inspect) it is taken to
    be the initial one, unless it is a namespace of `ip netns` (the lab's).
    """
    initial = netns_inode(INITIAL_NETNS)
    if initial is not None:
        return inode == initial
    return inode == INITIAL_NETNS_INODE or inode not in named_netns_inodes()


def netns_inode(path: str = OWN_NETNS) -> int | None:
    """The inode of a network namespace file, None if it cannot be read."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        if path == OWN_NETNS:  # a kernel before 3.17 has no thread-self
            return netns_inode("/proc/self/ns/net")
        return None
    except OSError:
        return None


def named_netns_inodes() -> set[int]:
    """The inodes of the namespaces in /run/netns (readable by anyone, unlike /proc/1)."""
    try:
        names = os.listdir(NAMED_NETNS_DIR)
    except OSError:
        return set()
    inodes = (netns_inode(os.path.join(NAMED_NETNS_DIR, name)) for name in names)
    return {inode for inode in inodes if inode is not None}
