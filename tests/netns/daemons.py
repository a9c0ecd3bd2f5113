"""Daemons in lab hosts for the end-to-end tests: pycarp (either way) and the real ucarp.

Each runs in a lab Host with a work directory of its own, its stdout and
stderr captured in ``daemon.log`` there:

- `Peer`: the ucarp command line, run by ucarp or by pycarp as a drop-in. Its
  up and down scripts plumb or unplumb the VIP, then append one line per call
  to ``scripts.log``: the state history as a ucarp user observes it (the VIP
  is plumbed before the call is logged: "last call was up" means "in place").
- `TomlDaemon`: pycarp with a TOML file (`[[vhost]]`s, built-in plumbing).
- `Daemon`: any other command line, spelled out by the test.

None gets --control-socket unless its test is about that option: each has
the default an operator gets, in the run directory of its namespace, so
daemons in different lab hosts never clash although they share the
filesystem. The `daemons` fixture (a `Daemons`) makes them, and kills what is
left once the test is over, passed or failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, TypedDict, Unpack

from pycarp.lab import Host, Lab
from pycarp.lab.nsexec import program
from pycarp.lab.wait import wait_until
from tests.netns.observe import ask_status, control_socket_of, pycarp_cli, status_json, text_of

Impl = Literal["ucarp", "pycarp"]

TOML_PASSWORD = "multi"  # a TOML daemon's [defaults] password unless its test gives one
READY = 10.0  # seconds for a fresh daemon to answer
UCARP_STARTED = "Local advertised ethernet address"  # ucarp's first line, its interface open


class PeerOptions(TypedDict, total=False):
    """ucarp's options besides vhid, password and VIP; absent ones are ucarp's defaults."""

    advbase: int  # 1
    advskew: int  # 0
    preempt: bool
    neutral: bool
    nomcast: bool
    shutdown: bool
    extra: Sequence[str]  # more options, after all the others


# $1 interface, $2 vip, $3 optional xparam.
_SCRIPT = """#!/bin/sh
{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null
echo "$(date +%s.%N) {name} $*" >> "{log}"
exit 0
"""


def which(name: str) -> str:
    return program(name)


def python_env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


@dataclass(kw_only=True)
class Daemon:
    """One process in a lab host, its output in <workdir>/daemon.log."""

    host: Host
    workdir: Path
    name: str  # "<program>@<host role>", in its description
    argv: tuple[str, ...]
    env: dict[str, str] | None = None  # the whole environment; None inherits ours
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def daemon_log(self) -> Path:
        return self.workdir / "daemon.log"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, *, wait: bool = True) -> Self:
        """Start it; with wait, also wait (bounded) until it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.daemon_log, "ab") as out:
            self.proc = self.host.spawn(
                *self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        if wait:
            ready = wait_until(lambda: not self.alive() or self.ready(), READY)
            assert ready and self.alive(), f"not ready within {READY} s\n{self.describe()}"
        return self

    def ready(self) -> bool:
        """Whether it does its job yet; a plain process does once it runs."""
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int | None:
        """Its exit status, None if it still runs after timeout seconds."""
        assert self.proc is not None, f"{self.name} was never started"
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a service stop); the exit status, None if it did not exit in time."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL it and whatever it runs (a script): no hand-over, no cleanup.

        host.spawn() made it a session leader: its pid is its process group id,
        ours as long as it is not reaped.
        """
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5.0)

    def log(self) -> str:
        return text_of(self.daemon_log)

    def wait_log(self, text: str, timeout: float) -> bool:
        """Wait (bounded) until text is in its log."""
        return wait_until(lambda: text in self.log(), timeout)

    def describe(self, *notes: str) -> str:
        """Everything worth reading when an assertion about this daemon fails."""
        rc = None if self.proc is None else self.proc.poll()
        head = f"--- {self.name} rc={rc} argv={' '.join(self.argv)}"
        return "\n".join([head, *notes, f"log:\n{self.log()}"])


@dataclass(kw_only=True)
class Peer(Daemon):
    """ucarp or a drop-in pycarp: one vhid and VIP, its state told by its scripts."""

    impl: Impl
    vhid: int
    vip: str

    @property
    def script_log(self) -> Path:
        return self.workdir / "scripts.log"

    @property
    def control_socket(self) -> Path:
        return control_socket_of(self.host, self.vhid)

    def write_scripts(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for verb, name in (("add", "up"), ("del", "down")):
            path = self.workdir / f"{name}.sh"
            path.write_text(_SCRIPT.format(ip=which("ip"), verb=verb, name=name,
                                           log=self.script_log))  # fmt: skip
            path.chmod(0o755)

    def ready(self) -> bool:
        """ucarp has opened its interface; pycarp's control socket answers."""
        if self.impl == "ucarp":
            return UCARP_STARTED in self.log()
        return ask_status(self.control_socket) is not None

    def events(self) -> list[tuple[float, str]]:
        """(wall-clock time, "up eth0 <vip>" or "down ...") per script call."""
        out: list[tuple[float, str]] = []
        for line in text_of(self.script_log).splitlines():
            stamp, _, call = line.partition(" ")
            if call:  # a half-written last line has no call yet
                out.append((float(stamp), call))
        return out

    def state_history(self) -> list[str]:
        return [call for _, call in self.events()]

    def is_master(self) -> bool:
        history = self.state_history()
        return bool(history) and history[-1].startswith("up ")

    def wait_history(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """Wait (bounded) until predicate(the script calls so far) holds."""
        return wait_until(lambda: predicate(self.state_history()), timeout)

    def wait_master(self, timeout: float) -> bool:
        return self.wait_history(lambda h: bool(h) and h[-1].startswith("up "), timeout)

    def wait_backup(self, timeout: float) -> bool:
        return self.wait_history(lambda h: bool(h) and h[-1].startswith("down "), timeout)

    def host_status(self) -> dict[str, Any]:
        """The status object of this pycarp peer's one virtual host; fails if no answer."""
        hosts = ask_status(self.control_socket)
        assert hosts is not None and len(hosts) == 1, self.describe()
        host = hosts[0]
        assert isinstance(host, dict)
        return host

    def unplumb(self) -> None:
        """Remove the VIP a killed daemon left plumbed (ucarp never cleans up when killed)."""
        self.host.run("ip", "addr", "del", f"{self.vip}/32", "dev", self.host.ifname, check=False)

    def crash_host(self) -> None:
        """Crash the daemon as a dying host would: SIGKILL, and the carrier lost.

        SIGKILL alone would leave the VIP answering ARP and ping from this
        host, even if no backup ever took over. It is removed too, so that the
        host comes back clean if its link does.
        """
        self.kill()
        self.host.link_down()
        self.unplumb()

    def describe(self, *notes: str) -> str:
        return super().describe(f"scripts: {self.state_history()}", *notes)


@dataclass(frozen=True)
class VHost:
    """One `[[vhost]]` table; interface, srcip and password come from `[defaults]`."""

    vhid: int
    addresses: tuple[str, ...]  # "a.b.c.d/len"
    advskew: int = 0
    preempt: bool = False
    password: str | None = None  # None: the [defaults] one
    extra: tuple[str, ...] = ()  # more lines of the table, such as 'track = ["web"]'


def all_vips(vhosts: Sequence[VHost]) -> list[str]:
    return [a for vh in vhosts for a in vh.addresses]


def toml_config(
    host: Host, vhosts: Sequence[VHost], password: str, head: str = "", tail: str = ""
) -> str:
    """The file; `head` is more process options, `tail` more tables (such as [[check]]s)."""
    quote = json.dumps  # a JSON string of printable ASCII is a TOML basic string
    lines = ['facility = "none"  # stderr, captured in daemon.log', head, "", "[defaults]"]
    lines += [f"interface = {quote(host.ifname)}", f"srcip = {quote(host.ip)}"]
    lines.append(f"password = {quote(password)}")
    for vh in vhosts:
        lines += ["", "[[vhost]]", f"vhid = {vh.vhid}"]
        lines.append(f"addresses = [{', '.join(quote(a) for a in vh.addresses)}]")
        if vh.advskew:
            lines.append(f"advskew = {vh.advskew}")
        if vh.preempt:  # else the default: CARP's false, VRRP's true
            lines.append("preempt = true")
        if vh.password is not None:
            lines.append(f"password = {quote(vh.password)}")
        lines += vh.extra
    return "\n".join([*lines, "", tail]) + "\n"


@dataclass(kw_only=True)
class TomlDaemon(Daemon):
    """pycarp with a TOML file; `pycarp status`, `stepdown`, `reload` run in its host."""

    vhosts: list[VHost]
    password: str = TOML_PASSWORD
    head: str = ""  # more process options
    tail: str = ""  # more tables

    @property
    def config_path(self) -> Path:
        return self.workdir / "pycarp.toml"

    @property
    def control_socket(self) -> Path:
        """The default of a TOML file: <run dir of the host's namespace>/pycarp.sock."""
        return control_socket_of(self.host)

    def write_config(self, vhosts: Sequence[VHost] | None = None) -> None:
        if vhosts is not None:
            self.vhosts = list(vhosts)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Written then renamed: a reload never reads half a file.
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(toml_config(self.host, self.vhosts, self.password, self.head, self.tail))
        tmp.replace(self.config_path)

    def ready(self) -> bool:
        return self.try_status() is not None

    def try_status(self) -> list[dict[str, Any]] | None:
        return ask_status(self.control_socket)

    def status(self) -> dict[int, dict[str, Any]]:
        """vhid -> status object (there is one interface); fails if no answer."""
        hosts = self.try_status()
        assert hosts is not None, f"no status answer\n{self.describe()}"
        return {h["vhid"]: h for h in hosts}

    def status_cli(self) -> list[dict[str, Any]]:
        """This daemon's hosts from `pycarp status --json`, the documented interface for scripts."""
        daemons = status_json(self.host, self.describe())
        ours = [d for d in daemons if d["socket"] == str(self.control_socket)]
        assert len(ours) == 1 and ours[0]["pid"] == self.pid, (daemons, self.describe())
        hosts = ours[0]["hosts"]
        assert isinstance(hosts, list)
        return hosts

    def wait_host(
        self, vhid: int, condition: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Poll the status until vhid's object satisfies condition; returns it."""
        found: list[dict[str, Any]] = []

        def met() -> bool:
            host = next((h for h in self.try_status() or [] if h["vhid"] == vhid), None)
            if host is not None and condition(host):
                found.append(host)
            return bool(found)

        met_in_time = wait_until(met, timeout)
        assert met_in_time, f"vhid {vhid}: condition not met in {timeout} s\n{self.describe()}"
        return found[-1]

    def wait_state(self, vhid: int, state: str, timeout: float) -> dict[str, Any]:
        return self.wait_host(vhid, lambda h: h["state"] == state, timeout)

    def wait_all(self, state: str, timeout: float) -> dict[int, dict[str, Any]]:
        """Poll the status until every vhid of the file is in state; vhid -> its object."""
        vhids = {vh.vhid for vh in self.vhosts}
        found: list[dict[int, dict[str, Any]]] = []

        def met() -> bool:
            got = {h["vhid"]: h for h in self.try_status() or []}
            if set(got) == vhids and all(h["state"] == state for h in got.values()):
                found.append(got)
            return bool(found)

        assert wait_until(met, timeout), f"not all {state} in {timeout} s\n{self.describe()}"
        return found[-1]

    def entered(self, state: str, timeout: float) -> tuple[float, float]:
        """(earliest, latest) wall-clock time at which the hosts entered `state`, once all
        have; none of them faulted."""
        hosts = self.wait_all(state, timeout)
        now = time.time()
        starts = [now - h["for"] for h in hosts.values()]
        assert not any(h["fault"] for h in hosts.values()), self.describe()
        return min(starts), max(starts)

    def stepdown(self, vhid: int | None = None) -> subprocess.CompletedProcess[str]:
        args = [] if vhid is None else [str(vhid)]
        return pycarp_cli(self.host, "stepdown", *args)

    def reload(self) -> subprocess.CompletedProcess[str]:
        return pycarp_cli(self.host, "reload")

    def describe(self, *notes: str) -> str:
        return super().describe(f"addresses: {self.host.addresses()}", *notes)


class Daemons:
    """The daemons of one test, each in a work directory under top; close() kills them."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.made: list[Daemon] = []

    def _workdir(self, host: Host, kind: str) -> Path:
        return self.top / f"{host.role}-{kind}-{len(self.made)}"

    def peer(
        self,
        host: Host,
        impl: Impl,
        *,
        vhid: int,
        password: str,
        vip: str,
        **options: Unpack[PeerOptions],
    ) -> Peer:
        """The same ucarp command line for either implementation, scripts written; not started."""
        workdir = self._workdir(host, impl)
        advbase, advskew = options.get("advbase", 1), options.get("advskew", 0)
        flags = [f"--{f}" for f in ("preempt", "neutral", "nomcast", "shutdown") if options.get(f)]
        # No syslog (--facility=none): both then log to stdio, which we capture.
        opts = [
            f"--interface={host.ifname}", f"--srcip={host.ip}", f"--vhid={vhid}",
            f"--pass={password}", f"--addr={vip}", f"--advbase={advbase}",
            f"--advskew={advskew}", f"--upscript={workdir / 'up.sh'}",
            f"--downscript={workdir / 'down.sh'}", "--facility=none",
            *flags, *options.get("extra", ()),
        ]  # fmt: skip
        # ucarp printf()s its log to stdout, block-buffered into a file and lost
        # on _exit(): force line buffering.
        ucarp = [which("stdbuf"), "-oL", "-eL", which("ucarp")]
        argv = (*(ucarp if impl == "ucarp" else [sys.executable, "-m", "pycarp"]), *opts)
        name, env = f"{impl}@{host.role}", python_env()
        peer = Peer(host=host, workdir=workdir, name=name, argv=argv, env=env, impl=impl,
                    vhid=vhid, vip=vip)  # fmt: skip
        peer.write_scripts()
        self.made.append(peer)
        return peer

    def toml(
        self,
        host: Host,
        vhosts: Sequence[VHost],
        *,
        password: str = TOML_PASSWORD,
        head: str = "",
        tail: Callable[[Path], str] | str = "",
    ) -> TomlDaemon:
        """pycarp --config with a file of these vhosts, written now; not started.

        `tail` may be a function of the daemon's work directory (for paths in [[check]]s).
        """
        workdir = self._workdir(host, "toml")
        argv = (sys.executable, "-m", "pycarp", "--config", str(workdir / "pycarp.toml"))
        tail_text = tail(workdir) if callable(tail) else tail
        daemon = TomlDaemon(host=host, workdir=workdir, name=f"pycarp@{host.role}", argv=argv,
                            env=python_env(), vhosts=list(vhosts), password=password,
                            head=head, tail=tail_text)  # fmt: skip
        daemon.write_config()
        self.made.append(daemon)
        return daemon

    def process(self, host: Host, *argv: str, env: dict[str, str] | None = None) -> Daemon:
        """Any other command line, started at once (nothing to wait for)."""
        workdir, name = self._workdir(host, "process"), f"{Path(argv[0]).name}@{host.role}"
        daemon = Daemon(host=host, workdir=workdir, name=name, argv=argv, env=env)
        self.made.append(daemon)
        return daemon.start(wait=False)

    def describe(self) -> str:
        return "\n".join(d.describe() for d in self.made)

    def close(self) -> None:
        """Kill every daemon still running (the test's end, passed or failed)."""
        for daemon in self.made:
            daemon.kill()


@dataclass
class Net:
    """One bridge reused by a whole module (the `net` fixture); each test takes its own vhid/VIP."""

    lab: Lab
    a: Host  # 198.51.100.11
    b: Host  # 198.51.100.12
    c: Host  # 198.51.100.13
    client: Host  # 198.51.100.10

    @property
    def hosts(self) -> tuple[Host, ...]:
        return (self.a, self.b, self.c, self.client)

    @classmethod
    def on(cls, lab: Lab) -> Net:
        return cls(
            lab,
            a=lab.add_host("a", "198.51.100.11"),
            b=lab.add_host("b", "198.51.100.12"),
            c=lab.add_host("c", "198.51.100.13"),
            client=lab.add_host("client", "198.51.100.10"),
        )
