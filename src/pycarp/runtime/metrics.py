"""The optional Prometheus endpoint: one status document per scrape, in prometheus_client's formats.

A small HTTP/1.x server on the daemon's own event loop (no thread: the
daemon drops its capabilities after opening sockets, and capabilities are
per thread). Each connection sends one request head and gets one answer,
then is closed; every read and write is bounded in size and time, so a slow
client never holds the loop. A scrape takes the status document once, turns
it into metric families and encodes them with prometheus_client.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from pycarp.config.settings import MetricsAddress
from pycarp.core.errors import CarpError

__all__ = ["MetricsServer", "Refused", "ScrapeError", "SnapshotCollector", "families", "render"]

REQUEST_TIMEOUT = 10.0  # seconds a client has to send its request head, and to take the answer
MAX_HEAD = 8192  # bytes of a request head (the limit of its StreamReader)
MAX_CLIENTS = 8  # connections served at once; more are closed at once
CLOSE_TIMEOUT = 1.0  # seconds close() waits for the connections it cancels
STATES = ("INIT", "BACKUP", "MASTER")
CHECK_STATES = ("starting", "healthy", "failing")
VHOST = ("interface", "vhid")
HTTP_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
TEXT = "text/plain; charset=utf-8"
INDEX = b"pycarp: the metrics are at /metrics\n"

Snapshot = Callable[[], dict[str, Any]]

log = logging.getLogger(__name__)


def families(document: dict[str, Any]) -> list[Metric]:
    """The metric families of one status document (see docs/metrics.md)."""
    built = _Families()
    for host in document.get("hosts", []):
        built.host(host)
    for name, interface in sorted(document.get("interfaces", {}).items()):
        for reason, count in sorted(interface.get("dropped", {}).items()):
            built.interface_drops.add_metric([str(name), str(reason)], count)
    for check in document.get("checks", []):
        built.check(check)
    for group in document.get("groups", []):
        built.group_demotion.add_metric([str(group["name"])], group["count"])
    return built.all()


def _gauge(name: str, documentation: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _counter(name: str, documentation: str, labels: Iterable[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=list(labels))


def _flag(value: Any) -> float:
    return 1.0 if value else 0.0


class _Families:
    """The families of one scrape, filled host by host and check by check."""

    def __init__(self) -> None:
        self.vhost_state = _gauge(
            "pycarp_vhost_state",
            "1 for the state the virtual host is in (INIT, BACKUP, MASTER), 0 for the others.",
            (*VHOST, "state"),
        )
        self.transitions = _counter(
            "pycarp_vhost_transitions_total",
            "Transitions into a state, by the reason's code.",
            (*VHOST, "state", "reason"),
        )
        self.adverts_sent = _counter(
            "pycarp_vhost_adverts_sent_total", "Advertisements sent by this host.", VHOST
        )
        self.adverts_received = _counter(
            "pycarp_vhost_adverts_received_total",
            "Advertisements accepted from other hosts.",
            VHOST,
        )
        self.vhost_drops = _counter(
            "pycarp_vhost_drops_total",
            "Received advertisements for this virtual host that were rejected, by reason.",
            (*VHOST, "reason"),
        )
        self.interface_drops = _counter(
            "pycarp_interface_drops_total",
            "Received packets rejected before they matched a virtual host, by reason.",
            ("interface", "reason"),
        )
        self.demote = _gauge(
            "pycarp_vhost_demote", "The demote count advertised now (0..255).", VHOST
        )
        self.advskew = _gauge("pycarp_vhost_advskew", "The advskew advertised now.", VHOST)
        self.priority = _gauge(
            "pycarp_vhost_priority", "The VRRP priority advertised now (VRRP hosts).", VHOST
        )
        self.demoted = _gauge(
            "pycarp_vhost_demoted", "1 while the virtual host is demoted by its groups.", VHOST
        )
        self.promoted = _gauge(
            "pycarp_vhost_promoted", "1 while the virtual host is promoted (pycarp promote).", VHOST
        )
        self.master_seconds = _counter(
            "pycarp_vhost_master_seconds_total",
            "Seconds spent as MASTER since the daemon started, the current stretch included.",
            VHOST,
        )
        self.check_healthy = _gauge(
            "pycarp_check_healthy",
            "1 while the health check is healthy, 0 while it is starting or failing.",
            ("check", "type", "group"),
        )
        self.check_state = _gauge(
            "pycarp_check_state",
            "1 for the state the check is in (starting, healthy, failing), 0 for the others.",
            ("check", "state"),
        )
        self.check_results = _counter(
            "pycarp_check_results_total",
            "Runs of the health check, by result (ok, failed).",
            ("check", "result"),
        )
        self.group_demotion = _gauge(
            "pycarp_group_demotion",
            "The demotion group's count: its checks not healthy plus the manual adjustment.",
            ("group",),
        )

    def all(self) -> list[Metric]:
        return [value for value in vars(self).values() if isinstance(value, Metric)]

    def host(self, host: dict[str, Any]) -> None:
        key = [str(host["interface"]), str(host["vhid"])]
        for state in STATES:
            self.vhost_state.add_metric([*key, state], _flag(host["state"] == state))
        for state, reasons in sorted(host.get("transitions", {}).items()):
            for reason, count in sorted(reasons.items()):
                self.transitions.add_metric([*key, str(state), str(reason)], count)
        for reason, count in sorted(host.get("dropped", {}).items()):
            self.vhost_drops.add_metric([*key, str(reason)], count)
        # Fields an older document lacks are left out rather than shown as 0.
        numbers = (
            (self.adverts_sent, "adverts_sent"),
            (self.adverts_received, "adverts_received"),
            (self.demote, "demote"),
            (self.advskew, "advskew"),
            (self.priority, "priority"),
            (self.master_seconds, "master_seconds"),
        )
        for family, field in numbers:
            if host.get(field) is not None:
                family.add_metric(key, host[field])
        for flag, field in ((self.demoted, "demoted"), (self.promoted, "promoted")):
            if field in host:
                flag.add_metric(key, _flag(host[field]))

    def check(self, check: dict[str, Any]) -> None:
        name, state = str(check["name"]), check["state"]
        group = check.get("group") or name
        self.check_healthy.add_metric(
            [name, str(check.get("type", "")), str(group)], _flag(state == "healthy")
        )
        for each in CHECK_STATES:
            self.check_state.add_metric([name, each], _flag(state == each))
        results = check.get("results", {})
        for result in ("ok", "failed"):
            self.check_results.add_metric([name, result], results.get(result, 0))


class _Fixed:
    """A collector of families made already."""

    def __init__(self, made: list[Metric]) -> None:
        self.made = made

    def collect(self) -> Iterable[Metric]:
        return self.made


def render(document: dict[str, Any]) -> bytes:
    """The exposition text (Prometheus text format 0.0.4) of one status document."""
    return generate_latest(_Fixed(families(document)))


class ScrapeError(CarpError):
    """One scrape could not get a status document from the daemon."""


class SnapshotCollector:
    """Each collect() builds the families from one snapshot(); ScrapeError if that fails."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        """The families without samples: the registry learns their names (for name[])."""
        return families({})

    def collect(self) -> Iterable[Metric]:
        try:
            # Built at once: the document may share dicts the daemon goes on changing.
            return families(self.snapshot())
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            raise ScrapeError(f"the status could not be read: {reason}") from exc


class Refused(Exception):
    """A request that gets an error status and one line of text."""

    def __init__(self, status: str, line: str, *extra: tuple[str, str]) -> None:
        super().__init__(line)
        self.answer = Answer(status, f"{line}\n".encode(), TEXT, extra)


@dataclass(frozen=True)
class Answer:
    status: str
    body: bytes
    content_type: str = TEXT
    extra: tuple[tuple[str, str], ...] = ()  # more header fields


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """The method, target and header fields (names in lower case) of one HTTP/1.x request head
    no longer than the reader's limit (MAX_HEAD); Refused if it is not one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")  # IncompleteReadError if the client stops
    except asyncio.LimitOverrunError:
        raise Refused("431 Request Header Fields Too Large", "request head too large") from None
    first, *fields = head.decode("latin-1").split("\r\n")[:-2]
    parts = first.split(" ")
    if len(parts) != 3 or parts[2] not in HTTP_VERSIONS or not parts[1].startswith("/"):
        raise Refused("400 Bad Request", "malformed request line")
    headers: dict[str, str] = {}
    for each in fields:
        name, colon, text = each.partition(":")
        if not colon or not name.strip():
            raise Refused("400 Bad Request", "malformed header line")
        headers[name.strip().lower()] = text.strip()
    return parts[0], parts[1], headers


def _listening_socket(address: MetricsAddress) -> socket.socket:
    """A TCP socket listening on the IP literal of address (an IPv6 one may carry a %zone)."""
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV | socket.AI_PASSIVE
    sock = None
    try:
        # AI_NUMERICHOST: a name is refused before any lookup.
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=flags)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "::" means IPv6 only, not every IPv4 address as well.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen()
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise CarpError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
    return sock


class MetricsServer:
    """The /metrics endpoint of one daemon, on its event loop: start() binds and serves."""

    def __init__(
        self,
        address: MetricsAddress,
        snapshot: Snapshot,
        *,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(snapshot))
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._used = False

    async def start(self) -> None:
        """Bind now and serve; CarpError (one line) if the address cannot be had."""
        if self._used:
            raise RuntimeError("a MetricsServer starts once")
        self._used = True
        # Bound before the first await: in the namespace (and with the rights) of the caller.
        sock = _listening_socket(self.address)
        try:
            self._server = await asyncio.start_server(self.handle, sock=sock, limit=MAX_HEAD)
        except BaseException:
            sock.close()
            raise
        log.info("serving metrics on http://%s/metrics", self.address)

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def close(self) -> None:
        """Stop listening and drop the connections being served; idempotent."""
        self._used = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in self._clients:
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=CLOSE_TIMEOUT)
        if server is not None:
            await server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: read one request, answer it, close. Never raises but on cancel."""
        task = asyncio.current_task()
        if task is None or len(self._clients) >= MAX_CLIENTS:
            writer.close()  # too many at once: hang up
            return
        self._clients.add(task)
        answered = False
        try:
            # drain() then waits until the kernel holds the whole answer.
            writer.transport.set_write_buffer_limits(high=0)
            await self._serve(reader, writer)
            answered = True
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("metrics: a client stalled or went away: %r", exc)
        except Exception:
            log.debug("metrics: a request failed", exc_info=True)  # never a traceback on stderr
        finally:
            self._clients.discard(task)
            if not answered:
                writer.transport.abort()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head_only = False
        try:
            async with asyncio.timeout(self.timeout):
                method, target, headers = await read_request(reader)
            head_only = method == "HEAD"
            answer = self.answer(method, target, headers)
        except Refused as refused:
            answer = refused.answer
        lines = [f"HTTP/1.1 {answer.status}", f"Content-Type: {answer.content_type}"]
        lines += [f"{name}: {text}" for name, text in answer.extra]
        lines += [f"Content-Length: {len(answer.body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        if not head_only:
            writer.write(answer.body)
        async with asyncio.timeout(self.timeout):
            await writer.drain()

    def answer(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        """The answer to one request (a scrape takes one snapshot); Refused for an error."""
        path, _, query = target.partition("?")
        if path not in ("/", "/metrics"):
            raise Refused("404 Not Found", f"no such path: {path} (see /metrics)")
        if method not in ("GET", "HEAD"):
            allow = ("Allow", "GET, HEAD")
            raise Refused("405 Method Not Allowed", "only GET and HEAD are served", allow)
        if path == "/":
            return Answer("200 OK", INDEX)
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        names = urllib.parse.parse_qs(query).get("name[]")
        chosen = self.registry.restricted_registry(names) if names else self.registry
        try:
            body = encoder(chosen)
        except ScrapeError as exc:
            log.warning("metrics scrape failed: %s", exc)
            raise Refused("503 Service Unavailable", f"scrape failed: {exc}") from None
        return Answer("200 OK", body, content_type)
