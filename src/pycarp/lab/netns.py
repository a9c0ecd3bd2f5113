"""A throw-away Ethernet segment made of network namespaces.

Every host is a namespace whose "eth0" is one end of a veth pair; the other
end is a port of the bridge "br0", which lives in a namespace of its own so
that nothing of the lab is ever visible in (or able to leak into) the root
namespace. Needs root and iproute2.

Ownership: a Lab writes "<pid> <start time>" to OWNER_DIR/<tag> before it
creates anything, so cleanup_stale() can tell the namespaces of a lab that is
still running (maybe in another test process) from real leftovers.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import IO, Any

from pycarp.platform.rundir import netns_run_directory

PREFIX = "pycarp-"
BRIDGE = "br0"
HOST_IFNAME = "eth0"
OWNER_DIR = "/run/pycarp-lab"
NETNS_DIR = "/run/netns"

# Addresses the lab may put on its hosts: documentation ranges only.
ALLOWED_NETWORKS = (
    ipaddress.IPv4Network("198.51.100.0/24"),
    ipaddress.IPv4Network("203.0.113.0/24"),
)

TERM_GRACE = 3.0  # seconds between SIGTERM and SIGKILL in close()
_CMD_TIMEOUT = 10.0
_LINK_WAIT = 5.0
_CLONE_NEWNET = 0x40000000

_TAG_RE = re.compile(r"[A-Za-z0-9_]{1,16}")  # no "-": a namespace name splits unambiguously
_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,23}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")

log = logging.getLogger(__name__)


class LabError(Exception):
    """The lab could not be built or changed; the message says what failed."""


def _ip_binary() -> str:
    path = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise LabError("iproute2 `ip` not found in PATH")
    return path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip args...`; with check, a failure becomes a LabError with ip's message."""
    argv = [_ip_binary(), *args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_CMD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv)}` timed out") from exc
    if check and done.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done


def _ip_json(*args: str) -> list[dict[str, Any]]:
    out = _ip("-j", *args).stdout
    data = json.loads(out) if out.strip() else []
    if not isinstance(data, list):
        raise LabError(f"unexpected output of `ip -j {' '.join(args)}`")
    return data


# --- entering a namespace from this process ------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def netns_entered(netns: str) -> Iterator[None]:
    """Run the block with the calling thread inside `netns`.

    Sockets opened in the block stay in that namespace after it ends, which is
    how tests open platform sockets "on a host". sysfs is not remounted: use
    netlink or ioctl inside the block, not /sys.
    """
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(os.path.join(NETNS_DIR, netns), "rb") as target,
    ):
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


# --- processes ------------------------------------------------------------


def _start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 of proc(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def _netns_id(netns: str) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.join(NETNS_DIR, netns))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _pids_in(ns_ids: set[tuple[int, int]]) -> list[int]:
    """Processes whose network namespace is one of ns_ids (what `ip netns pids` does)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in ns_ids:
            pids.append(int(entry))
    return pids


def _signal_ns_processes(ns_ids: set[tuple[int, int]], sig: int) -> int:
    """Signal every process still inside these namespaces; returns how many."""
    count = 0
    for pid in _pids_in(ns_ids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            count += 1
    return count


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, without reaping it.

    Not reaping keeps its pid (= its process group id) reserved, so killpg()
    can still reach the rest of the group safely afterwards.
    """
    if proc.returncode is not None:
        return True
    try:
        res = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return res is not None


def _killpg(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is not None:  # reaped: its pgid may belong to someone else now
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_processes(
    procs: Iterable[subprocess.Popen[bytes]], ns_ids: set[tuple[int, int]], grace: float
) -> None:
    """SIGTERM, bounded wait, SIGKILL: our process groups and whatever runs in our namespaces."""
    procs = list(procs)
    for proc in procs:
        _killpg(proc, signal.SIGTERM)
    _signal_ns_processes(ns_ids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if all(_leader_exited(p) for p in procs) and not _pids_in(ns_ids):
            break
        time.sleep(0.05)
    # Also reaches group members that outlived a leader which obeyed SIGTERM.
    for proc in procs:
        _killpg(proc, signal.SIGKILL)
    _signal_ns_processes(ns_ids, signal.SIGKILL)
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("process %d did not die after SIGKILL", proc.pid)


# --- ownership registry ---------------------------------------------------


def _owner_path(tag: str) -> str:
    return os.path.join(OWNER_DIR, tag)


def _owner_alive(tag: str) -> bool:
    # A zone lab (pycarp.lab.zones) outlives its creator: its run directory
    # owns the tag until `pycarp lab down` removes it.
    if os.path.isdir(_owner_path(tag)):
        return os.path.exists(os.path.join(_owner_path(tag), "state.json"))
    try:
        with open(_owner_path(tag), encoding="ascii") as f:
            pid_s, start_s = f.read().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return False
    return _start_time(pid) == start


def _tag_of(netns: str) -> str | None:
    if not netns.startswith(PREFIX):
        return None
    return netns[len(PREFIX) :].split("-", 1)[0]


def _list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _delete_netns(netns: str) -> bool:
    """Delete a named namespace; False if it was already gone."""
    if not os.path.exists(os.path.join(NETNS_DIR, netns)):
        return False
    done = _ip("netns", "del", netns, check=False)
    if done.returncode != 0 and os.path.exists(os.path.join(NETNS_DIR, netns)):
        log.warning("could not delete netns %s: %s", netns, done.stderr.strip())
        return False
    return True


def cleanup_stale(prefix: str = PREFIX, *, include_live: bool = False) -> list[str]:
    """Delete leftover namespaces whose name starts with prefix; returns their names.

    Processes still running inside them are killed first (SIGKILL). A namespace
    that belongs to a Lab whose process is alive is kept unless include_live,
    so a session start can call this while other test runs are going on.
    """
    if not prefix.startswith(PREFIX):
        raise ValueError(f"prefix must start with {PREFIX!r}, got {prefix!r}")
    stale = []
    for name in _list_netns():
        if not name.startswith(prefix):
            continue
        tag = _tag_of(name)
        if not include_live and tag is not None and _owner_alive(tag):
            continue
        stale.append(name)
    ids = {i for i in (_netns_id(n) for n in stale) if i is not None}
    if ids:
        _signal_ns_processes(ids, signal.SIGKILL)
    # Bridge namespaces last, like Lab.close().
    removed = [n for n in sorted(stale, key=lambda n: n.endswith("-br")) if _delete_netns(n)]
    for name in removed:
        tag = _tag_of(name)
        if tag is not None and not _owner_alive(tag):
            with contextlib.suppress(OSError):
                os.unlink(_owner_path(tag))
    return removed


# --- the lab --------------------------------------------------------------

# Strong references: a forgotten Lab stays reachable so atexit can still close it.
_open_labs: set[Lab] = set()


def close_all_labs() -> list[str]:
    """Close every Lab of this process that is still open; returns their tags."""
    tags = []
    for lab in list(_open_labs):
        tags.append(lab.tag)
        lab.close()
    return tags


atexit.register(close_all_labs)


def run_in(
    netns: str,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = _CMD_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ip netns exec` argv and wait; text mode, output captured."""
    return subprocess.run(
        [_ip_binary(), "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        input=input,
    )


def spawn_in(
    netns: str,
    argv: Sequence[str],
    *,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`ip netns exec` argv in the background, in a session of its own.

    `ip netns exec` execs argv, so the pid is argv's own process and its
    process group holds everything it forks.
    """
    return subprocess.Popen(
        [_ip_binary(), "netns", "exec", netns, *argv],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def _port_name(role: str) -> str:
    """Bridge-side veth name: "v-<role>", hashed when over IFNAMSIZ-1 (15)."""
    name = f"v-{role}"
    if len(name) <= 15:
        return name
    digest = hashlib.sha1(role.encode()).hexdigest()[:6]
    return f"v-{role[:6]}-{digest}"


class Lab:
    """A bridge namespace plus host namespaces attached to it; close() undoes it all."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag if tag is not None else secrets.token_hex(3)
        if not _TAG_RE.fullmatch(self.tag):
            raise ValueError(f"lab tag must match {_TAG_RE.pattern}, got {self.tag!r}")
        self.bridge_netns = f"{PREFIX}{self.tag}-br"
        self._hosts: dict[str, Host] = {}
        self._netns: list[str] = []  # namespaces we created, in creation order
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False
        self._owned = False
        try:
            self._claim_tag()
            self._make_netns(self.bridge_netns)
            _ip("-n", self.bridge_netns, "link", "set", "lo", "up")
            # Snooping off: every multicast frame floods, like a dumb switch.
            bridge_opts = ["type", "bridge", "mcast_snooping", "0", "stp_state", "0"]
            _ip("-n", self.bridge_netns, "link", "add", BRIDGE, *bridge_opts)
            _ip("-n", self.bridge_netns, "link", "set", BRIDGE, "up")
        except BaseException:
            self.close()
            raise
        _open_labs.add(self)

    def _claim_tag(self) -> None:
        if _owner_alive(self.tag):
            raise LabError(f"lab tag {self.tag!r} is in use by a running process")
        os.makedirs(OWNER_DIR, exist_ok=True)
        start = _start_time(os.getpid())
        with open(_owner_path(self.tag), "w", encoding="ascii") as f:
            f.write(f"{os.getpid()} {start}\n")
        self._owned = True

    def _make_netns(self, name: str) -> None:
        done = _ip("netns", "add", name, check=False)
        if done.returncode != 0:
            hint = " (leftover? see pycarp.lab.cleanup_stale)" if "exists" in done.stderr else ""
            raise LabError(f"cannot create netns {name}: {done.stderr.strip()}{hint}")
        self._netns.append(name)

    @property
    def hosts(self) -> dict[str, Host]:
        return dict(self._hosts)

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab created and has not deleted yet."""
        return list(self._netns)

    def add_host(self, role: str, ip: str, prefix: int = 24, mac: str | None = None) -> Host:
        """A new namespace "<PREFIX><tag>-<role>" whose eth0 is plugged into br0."""
        if self._closed:
            raise LabError("lab is closed")
        if not _ROLE_RE.fullmatch(role):
            raise ValueError(f"host role must match {_ROLE_RE.pattern}, got {role!r}")
        if role in self._hosts or role == "br":
            raise ValueError(f"host role {role!r} already used in lab {self.tag}")
        addr = ipaddress.IPv4Address(ip)
        if not any(addr in net for net in ALLOWED_NETWORKS):
            allowed = ", ".join(str(n) for n in ALLOWED_NETWORKS)
            raise ValueError(f"lab addresses must be in {allowed}, got {ip}")
        if not 1 <= prefix <= 32:
            raise ValueError(f"bad prefix length {prefix}")
        if mac is not None and not _MAC_RE.fullmatch(mac):
            raise ValueError(f"bad MAC address {mac!r}")
        port = _port_name(role)
        if any(h.port == port for h in self._hosts.values()):
            raise ValueError(f"bridge port name {port} for role {role!r} collides")

        netns = f"{PREFIX}{self.tag}-{role}"
        self._make_netns(netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        # Created inside the host namespace with the peer placed straight into
        # the bridge namespace: no interface ever appears in the root namespace.
        address = ["address", mac] if mac else []
        peer = ["peer", "name", port, "netns", self.bridge_netns]
        _ip("-n", netns, "link", "add", HOST_IFNAME, *address, "type", "veth", *peer)
        _ip("-n", self.bridge_netns, "link", "set", port, "master", BRIDGE)
        _ip("-n", self.bridge_netns, "link", "set", port, "up")
        _ip("-n", netns, "addr", "add", f"{ip}/{prefix}", "dev", HOST_IFNAME)
        _ip("-n", netns, "link", "set", HOST_IFNAME, "up")
        host = Host(self, role, netns, ip, prefix, port)
        self._hosts[role] = host
        host.wait_running(True)
        return host

    def _track(self, proc: subprocess.Popen[bytes]) -> None:
        self._procs.append(proc)

    def close(self) -> None:
        """Stop every process, delete every namespace (bridge last). Idempotent."""
        if self._closed:
            return
        self._closed = True
        _open_labs.discard(self)
        ids: set[tuple[int, int]] = set()
        try:
            ids = {i for i in (_netns_id(n) for n in self._netns) if i is not None}
            stop_processes(self._procs, ids, TERM_GRACE)
        except Exception:
            log.exception("lab %s: stopping processes failed", self.tag)
        for _, inode in ids:  # what killed daemons left: stale sockets
            shutil.rmtree(netns_run_directory(inode), ignore_errors=True)
        for name in [n for n in self._netns if n != self.bridge_netns] + [
            n for n in self._netns if n == self.bridge_netns
        ]:
            try:
                _delete_netns(name)
            except Exception:
                log.exception("lab %s: deleting netns %s failed", self.tag, name)
        self._netns = [n for n in self._netns if os.path.exists(os.path.join(NETNS_DIR, n))]
        if self._owned:
            with contextlib.suppress(OSError):
                os.unlink(_owner_path(self.tag))
            self._owned = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"hosts={sorted(self._hosts)}"
        return f"<Lab {self.tag} {state}>"


class Host:
    """One namespace of a Lab, with eth0 on the shared segment."""

    def __init__(self, lab: Lab, role: str, netns: str, ip: str, prefix: int, port: str) -> None:
        self.lab = lab
        self.role = role
        self.netns = netns
        self.ifname = HOST_IFNAME
        self.ip = ip
        self.prefix = prefix
        self.port = port  # the bridge-side end of the veth, in lab.bridge_netns

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 10.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in this namespace and wait; text mode, output captured."""
        return run_in(self.netns, argv, check=check, timeout=timeout, input=input)

    def spawn(
        self,
        *argv: str,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start argv in this namespace in its own session; Lab.close() stops it.

        `ip netns exec` execs argv, so the Popen's pid is argv's own process
        and its process group holds everything it forks (unless it setsid()s;
        close() also kills whatever is left inside the lab's namespaces).
        env is the whole environment (Popen semantics); None inherits ours.
        """
        if self.lab._closed:
            raise LabError("lab is closed")
        proc = spawn_in(self.netns, argv, stdout=stdout, stderr=stderr, env=env)
        self.lab._track(proc)
        return proc

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """This thread inside the host's namespace for the block (see netns_entered)."""
        with netns_entered(self.netns):
            yield

    def _link(self) -> dict[str, Any]:
        links = _ip_json("-n", self.netns, "link", "show", "dev", self.ifname)
        if not links:
            raise LabError(f"{self.netns}: no {self.ifname}")
        return links[0]

    def addresses(self) -> list[str]:
        """IPv4 addresses on eth0 as "a.b.c.d/len"."""
        links = _ip_json("-n", self.netns, "-4", "addr", "show", "dev", self.ifname)
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in links
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        ]

    def mac(self) -> str:
        return str(self._link()["address"])

    def running(self) -> bool:
        """Whether eth0 has IFF_RUNNING (up and carrier, operstate UP)."""
        # ip hides IFF_RUNNING itself; it prints NO-CARRIER for "UP but not RUNNING".
        flags = self._link().get("flags", [])
        return "UP" in flags and "NO-CARRIER" not in flags

    def wait_running(self, running: bool, timeout: float = _LINK_WAIT) -> None:
        """Wait (bounded) until eth0's RUNNING flag is `running`; LabError if it is not."""
        deadline = time.monotonic() + timeout
        while True:
            if self.running() == running:
                return
            if time.monotonic() >= deadline:
                raise LabError(f"{self.netns}: {self.ifname} RUNNING did not become {running}")
            time.sleep(0.02)

    def link_down(self, wait: bool = True) -> None:
        """Pull the cable: the bridge end goes down, so eth0 loses carrier."""
        _ip("-n", self.lab.bridge_netns, "link", "set", self.port, "down")
        if wait:
            self.wait_running(False)

    def link_up(self, wait: bool = True) -> None:
        """Plug the cable back in."""
        _ip("-n", self.lab.bridge_netns, "link", "set", self.port, "up")
        # An eth0 set down inside the host can never get RUNNING: nothing to wait for.
        if wait and "UP" in self._link().get("flags", []):
            self.wait_running(True)

    def cut(self) -> None:
        """Partition: take the port off the bridge; eth0 keeps its carrier."""
        _ip("-n", self.lab.bridge_netns, "link", "set", self.port, "nomaster")

    def uncut(self) -> None:
        _ip("-n", self.lab.bridge_netns, "link", "set", self.port, "master", BRIDGE)

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True if ip answers at least one of count echo requests."""
        limit = count * (timeout + 0.2) + 5.0
        try:
            argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", f"{timeout:g}", ip]
            done = self.run(*argv, check=False, timeout=limit)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def __repr__(self) -> str:
        return f"<Host {self.role} {self.netns} {self.ip}/{self.prefix}>"
