"""The Prometheus endpoint without a network: the series of a document, and the answers of the
connection handler, driven through an in-memory StreamReader and a fake writer (the listening
server itself: tests/netns/test_metrics_netns.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import pytest
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from pycarp.config.settings import MetricsAddress
from pycarp.core.errors import CarpError
from pycarp.runtime.metrics import (
    MAX_CLIENTS,
    MAX_HEAD,
    MetricsServer,
    ScrapeError,
    SnapshotCollector,
    families,
    render,
)

HOST: dict[str, Any] = {
    "interface": "eth0",
    "vhid": 1,
    "state": "MASTER",
    "reason": "no advertisement within the master-down interval",
    "advbase": 1,
    "advskew": 100,
    "adverts_sent": 120,
    "adverts_received": 3,
    "dropped": {"digest": 4, "ttl": 1},
    "demote": 1,
    "demoted": True,
    "promoted": False,
    "track": ["web"],
    "demotion": "penalty",
    "penalty": 100,
    "transitions": {"MASTER": {"master_down": 2}, "BACKUP": {"started": 1, "preferred_master": 1}},
    "master_seconds": 12.5,
}
DOCUMENT: dict[str, Any] = {
    "hosts": [
        HOST,
        {**HOST, "interface": "eth1", "vhid": 7, "state": "BACKUP", "advskew": 0, "demote": 0,
         "demoted": False, "promoted": True, "dropped": {}, "transitions": {}, "master_seconds": 0},
    ],
    "interfaces": {"eth0": {"dropped": {"ttl": 3, "version": 1}}, "eth1": {"dropped": {}}},
    "checks": [
        {"name": "web", "type": "http", "group": "web", "state": "failing", "ok": False,
         "detail": "HTTP 503", "passes": 0, "fails": 3, "results": {"ok": 10, "failed": 2},
         "last_ago": 0.4, "for": 12.0},
        {"name": "db", "type": "tcp", "group": "backend", "state": "healthy", "ok": True,
         "detail": "connected", "passes": 3, "fails": 0, "results": {"ok": 7, "failed": 0},
         "last_ago": 1.0, "for": 30.0},
    ],
    "groups": [
        {"name": "web", "count": 1, "failing": ["web"], "manual": 0, "hosts": ["eth0/vhid 1"]},
        {"name": "backend", "count": 2, "failing": [], "manual": 2, "hosts": []},
    ],
}  # fmt: skip
SERIES = {
    "pycarp_vhost_state": "gauge",
    "pycarp_vhost_transitions_total": "counter",
    "pycarp_vhost_adverts_sent_total": "counter",
    "pycarp_vhost_adverts_received_total": "counter",
    "pycarp_vhost_drops_total": "counter",
    "pycarp_interface_drops_total": "counter",
    "pycarp_vhost_demote": "gauge",
    "pycarp_vhost_advskew": "gauge",
    "pycarp_vhost_demoted": "gauge",
    "pycarp_vhost_promoted": "gauge",
    "pycarp_vhost_master_seconds_total": "counter",
    "pycarp_check_healthy": "gauge",
    "pycarp_check_state": "gauge",
    "pycarp_check_results_total": "counter",
    "pycarp_group_demotion": "gauge",
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def named(found: Samples, name: str) -> Samples:
    return {key: v for key, v in found.items() if key[0] == name}


def test_every_series_has_help_type_and_its_exact_name() -> None:
    text = render(DOCUMENT).decode()
    for name, kind in SERIES.items():
        assert f"\n# TYPE {name} {kind}\n" in f"\n{text}"
        help_line = next(line for line in text.splitlines() if line.startswith(f"# HELP {name} "))
        assert len(help_line) > len(f"# HELP {name} ") + 10
    sample_names = {key[0] for key in samples(text)}
    assert sample_names == set(SERIES)


def test_vhost_series_values_and_labels() -> None:
    found = samples(render(DOCUMENT).decode())
    eth0, eth1 = {"interface": "eth0", "vhid": "1"}, {"interface": "eth1", "vhid": "7"}
    for state in ("INIT", "BACKUP", "MASTER"):
        assert value(found, "pycarp_vhost_state", **eth0, state=state) == (state == "MASTER")
        assert value(found, "pycarp_vhost_state", **eth1, state=state) == (state == "BACKUP")
    assert named(found, "pycarp_vhost_transitions_total") == {
        ("pycarp_vhost_transitions_total", frozenset({**eth0, **more}.items())): count
        for more, count in (
            ({"state": "MASTER", "reason": "master_down"}, 2),
            ({"state": "BACKUP", "reason": "started"}, 1),
            ({"state": "BACKUP", "reason": "preferred_master"}, 1),
        )
    }
    assert value(found, "pycarp_vhost_adverts_sent_total", **eth0) == 120
    assert value(found, "pycarp_vhost_adverts_received_total", **eth1) == 3
    assert named(found, "pycarp_vhost_drops_total") == {
        ("pycarp_vhost_drops_total", frozenset({**eth0, "reason": "digest"}.items())): 4,
        ("pycarp_vhost_drops_total", frozenset({**eth0, "reason": "ttl"}.items())): 1,
    }
    assert value(found, "pycarp_vhost_demote", **eth0) == 1
    assert value(found, "pycarp_vhost_demote", **eth1) == 0
    assert value(found, "pycarp_vhost_advskew", **eth0) == 100
    assert value(found, "pycarp_vhost_demoted", **eth0) == 1
    assert value(found, "pycarp_vhost_demoted", **eth1) == 0
    assert value(found, "pycarp_vhost_promoted", **eth0) == 0
    assert value(found, "pycarp_vhost_promoted", **eth1) == 1
    assert value(found, "pycarp_vhost_master_seconds_total", **eth0) == 12.5
    assert value(found, "pycarp_vhost_master_seconds_total", **eth1) == 0


def test_interface_check_and_group_series() -> None:
    found = samples(render(DOCUMENT).decode())
    drops = "pycarp_interface_drops_total"
    assert named(found, drops) == {
        (drops, frozenset({"interface": "eth0", "reason": "ttl"}.items())): 3,
        (drops, frozenset({"interface": "eth0", "reason": "version"}.items())): 1,
    }
    assert value(found, "pycarp_check_healthy", check="web", type="http", group="web") == 0
    assert value(found, "pycarp_check_healthy", check="db", type="tcp", group="backend") == 1
    for state in ("starting", "healthy", "failing"):
        assert value(found, "pycarp_check_state", check="web", state=state) == (state == "failing")
        assert value(found, "pycarp_check_state", check="db", state=state) == (state == "healthy")
    assert value(found, "pycarp_check_results_total", check="web", result="ok") == 10
    assert value(found, "pycarp_check_results_total", check="web", result="failed") == 2
    assert value(found, "pycarp_check_results_total", check="db", result="failed") == 0
    assert value(found, "pycarp_group_demotion", group="web") == 1
    assert value(found, "pycarp_group_demotion", group="backend") == 2


def test_a_starting_check_is_not_healthy() -> None:
    check = {"name": "boot", "type": "exec", "group": "boot", "state": "starting", "results": {}}
    found = samples(render({"hosts": [], "checks": [check]}).decode())
    assert value(found, "pycarp_check_healthy", check="boot", type="exec", group="boot") == 0
    assert value(found, "pycarp_check_state", check="boot", state="starting") == 1
    assert value(found, "pycarp_check_results_total", check="boot", result="ok") == 0


def test_a_document_without_checks_or_groups_renders() -> None:
    old = {
        key: HOST[key]
        for key in ("interface", "vhid", "state", "advskew", "adverts_sent", "adverts_received")
    }
    text = render({"hosts": [{**old, "dropped": {}}]}).decode()
    found = samples(text)
    assert value(found, "pycarp_vhost_state", interface="eth0", vhid="1", state="MASTER") == 1
    assert value(found, "pycarp_vhost_adverts_sent_total", interface="eth0", vhid="1") == 120
    # Fields the document lacks are left out, not shown as 0; the families are still declared.
    for name in ("pycarp_vhost_demote", "pycarp_check_healthy", "pycarp_group_demotion"):
        assert not named(found, name)
        assert f"# TYPE {name} gauge" in text
    assert samples(render({}).decode()) == {}


def test_families_are_fresh_objects_per_document() -> None:
    first, second = families(DOCUMENT), families(DOCUMENT)
    assert [f.name for f in first] == [f.name for f in second]
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_the_collector_takes_one_snapshot_per_collect() -> None:
    calls: list[int] = []

    def snapshot() -> dict[str, Any]:
        calls.append(1)
        return DOCUMENT

    collector = SnapshotCollector(snapshot)
    for turn in range(1, 4):
        made = list(collector.collect())
        assert {f.name for f in made} >= {"pycarp_vhost_state", "pycarp_group_demotion"}
        assert len(calls) == turn


def test_a_snapshot_that_raises_or_a_malformed_document_is_a_scrape_error() -> None:
    def snapshot() -> dict[str, Any]:
        raise ValueError("no status\ntoday")

    with pytest.raises(ScrapeError) as caught:
        SnapshotCollector(snapshot).collect()
    assert str(caught.value) == "the status could not be read: ValueError: no status today"
    with pytest.raises(ScrapeError, match="KeyError"):
        SnapshotCollector(lambda: {"hosts": [{"vhid": 1}]}).collect()


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False
        self.high: int | None = None

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = high

    def abort(self) -> None:
        self.aborted = True


class FakeWriter:
    """What the handler uses of a StreamWriter; stall=True: drain() never ends."""

    def __init__(self, stall: bool = False) -> None:
        self.data = bytearray()
        self.closed = False
        self.stall = stall
        self.transport = FakeTransport()

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    async def drain(self) -> None:
        if self.stall:
            await asyncio.Event().wait()

    def close(self) -> None:
        self.closed = True


class Reply:
    def __init__(self, writer: FakeWriter) -> None:
        head, _, self.body = bytes(writer.data).partition(b"\r\n\r\n")
        first, *fields = head.decode("latin-1").split("\r\n")
        self.status = first.removeprefix("HTTP/1.1 ")
        self.headers = dict(f.split(": ", 1) for f in fields)
        self.text = self.body.decode()


class Counting:
    """A snapshot that counts its calls."""

    def __init__(self, document: dict[str, Any] = DOCUMENT) -> None:
        self.document = document
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.document


def make_server(snapshot: Any = None, timeout: float = 5.0) -> MetricsServer:
    # Never started: handle() needs no listening socket.
    return MetricsServer(
        MetricsAddress("198.51.100.1", 9406), snapshot or Counting(), timeout=timeout
    )


def reader_of(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_HEAD)  # as start_server makes it
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def handle(server: MetricsServer, reader: asyncio.StreamReader, writer: FakeWriter) -> float:
    """Run one connection to its end; the seconds it took."""
    started = time.monotonic()
    await asyncio.wait_for(server.handle(reader, cast(asyncio.StreamWriter, writer)), 5.0)
    assert writer.closed
    return time.monotonic() - started


async def ask(server: MetricsServer, request: str | bytes) -> Reply:
    data = request.encode("latin-1") if isinstance(request, str) else request
    writer = FakeWriter()
    await handle(server, reader_of(data), writer)
    assert not writer.transport.aborted
    assert writer.transport.high == 0  # drain() waits for the whole answer
    reply = Reply(writer)
    assert reply.headers["Connection"] == "close"
    assert int(reply.headers["Content-Length"]) == len(reply.body) or reply.body == b""
    return reply


async def test_get_metrics_takes_one_snapshot_and_answers_the_text_format() -> None:
    snapshot = Counting()
    reply = await ask(make_server(snapshot), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.status == "200 OK"
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in reply.headers
    assert samples(reply.text) == samples(render(DOCUMENT).decode())
    assert snapshot.calls == 1


async def test_head_answers_the_same_head_without_a_body() -> None:
    server = make_server()
    got = await ask(server, "GET /metrics HTTP/1.0\r\n\r\n")
    head = await ask(server, "HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head.status == "200 OK" and head.body == b""
    assert head.headers == got.headers
    assert int(head.headers["Content-Length"]) == len(got.body) > 0


async def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    reply = await ask(make_server(), f"GET /metrics HTTP/1.1\r\nAccept: {accept}\r\n\r\n")
    assert reply.status == "200 OK"
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert reply.text.endswith("# EOF\n")
    parsed = openmetrics_parser.text_string_to_metric_families(reply.text)
    states = next(f for f in parsed if f.name == "pycarp_vhost_state")
    assert len(states.samples) == 6


async def test_name_filter_keeps_the_series_asked_for() -> None:
    snapshot = Counting()
    query = "name[]=pycarp_vhost_state&name[]=pycarp_check_results_total"
    reply = await ask(make_server(snapshot), f"GET /metrics?{query} HTTP/1.1\r\n\r\n")
    assert reply.status == "200 OK"
    assert {name for name, _ in samples(reply.text)} == {
        "pycarp_vhost_state",
        "pycarp_check_results_total",
    }
    assert snapshot.calls == 1
    other = await ask(make_server(), "GET /metrics?foo=bar HTTP/1.1\r\n\r\n")
    assert {name for name, _ in samples(other.text)} == set(SERIES)
    unknown = Counting()
    none = await ask(make_server(unknown), "GET /metrics?name[]=nothing_here HTTP/1.1\r\n\r\n")
    assert none.status == "200 OK" and none.body == b""
    assert unknown.calls == 0  # no series asked for that pycarp has


async def test_the_root_points_to_metrics_without_a_snapshot() -> None:
    snapshot = Counting()
    reply = await ask(make_server(snapshot), "GET / HTTP/1.1\r\n\r\n")
    assert reply.status == "200 OK"
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "/metrics" in reply.text and reply.text.count("\n") == 1
    assert snapshot.calls == 0


@pytest.mark.parametrize("path", ["/other", "/metrics/", "/metricsx", "/favicon.ico"])
async def test_other_paths_are_404(path: str) -> None:
    snapshot = Counting()
    reply = await ask(make_server(snapshot), f"GET {path} HTTP/1.1\r\n\r\n")
    assert reply.status == "404 Not Found"
    assert reply.text == f"no such path: {path} (see /metrics)\n"
    assert snapshot.calls == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "get"])
async def test_other_methods_are_405(method: str) -> None:
    snapshot = Counting()
    reply = await ask(make_server(snapshot), f"{method} /metrics HTTP/1.1\r\n\r\n")
    assert reply.status == "405 Method Not Allowed"
    assert reply.headers["Allow"] == "GET, HEAD"
    assert reply.text == "only GET and HEAD are served\n"
    assert snapshot.calls == 0


@pytest.mark.parametrize(
    ("request_head", "line"),
    [
        ("\r\n\r\n", "malformed request line"),
        ("GET /metrics\r\n\r\n", "malformed request line"),
        ("GET /metrics HTTP/2.0\r\n\r\n", "malformed request line"),
        ("GET  /metrics HTTP/1.1\r\n\r\n", "malformed request line"),
        ("GET metrics HTTP/1.1\r\n\r\n", "malformed request line"),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "malformed request line"),
        ("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", "malformed header line"),
        ("GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", "malformed header line"),
    ],
)
async def test_a_malformed_request_is_400(request_head: str, line: str) -> None:
    snapshot = Counting()
    reply = await ask(make_server(snapshot), request_head)
    assert reply.status == "400 Bad Request"
    assert reply.text == f"{line}\n"
    assert snapshot.calls == 0


@pytest.mark.parametrize("shape", ["one long line", "many lines"])
async def test_an_oversized_head_is_431(shape: str) -> None:
    snapshot = Counting()
    if shape == "one long line":
        head = f"GET /metrics?{'x' * MAX_HEAD} HTTP/1.1\r\n\r\n"
    else:
        head = "GET /metrics HTTP/1.1\r\n" + "X-Filler: yyyyyyyyyy\r\n" * 400 + "\r\n"
    reply = await ask(make_server(snapshot), head)
    assert reply.status == "431 Request Header Fields Too Large"
    assert reply.text == "request head too large\n"
    assert snapshot.calls == 0


async def test_a_head_just_under_the_limit_is_served() -> None:
    head = "GET /metrics HTTP/1.1\r\nX-Filler: "
    head += "y" * (MAX_HEAD - len(head) - 4) + "\r\n\r\n"
    assert len(head) == MAX_HEAD
    reply = await ask(make_server(), head)
    assert reply.status == "200 OK"


async def test_a_client_that_stalls_in_its_head_is_dropped_at_the_timeout() -> None:
    snapshot = Counting()
    writer = FakeWriter()
    took = await handle(
        make_server(snapshot, timeout=0.1),
        reader_of(b"GET /metrics HTTP/1.1\r\n", eof=False),
        writer,
    )
    assert 0.1 <= took < 2.0
    assert writer.data == b"" and writer.transport.aborted
    assert snapshot.calls == 0


async def test_a_client_that_does_not_read_is_dropped_at_the_timeout() -> None:
    writer = FakeWriter(stall=True)
    took = await handle(
        make_server(timeout=0.1), reader_of(b"GET /metrics HTTP/1.1\r\n\r\n"), writer
    )
    assert 0.1 <= took < 2.0
    assert bytes(writer.data).startswith(b"HTTP/1.1 200 OK\r\n")
    assert writer.transport.aborted  # what it did not take is thrown away


async def test_a_client_that_leaves_early_gets_nothing_and_no_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    writer = FakeWriter()
    await handle(make_server(), reader_of(b"GET /metr"), writer)
    assert writer.data == b"" and writer.transport.aborted
    assert caplog.records == []


async def test_a_loop_held_by_a_stalled_client_still_runs_others() -> None:
    server = make_server(timeout=2.0)
    stalled = FakeWriter()
    slow = asyncio.create_task(
        server.handle(reader_of(b"GET /met", eof=False), cast(asyncio.StreamWriter, stalled))
    )
    try:
        await asyncio.sleep(0)
        reply = await ask(server, "GET /metrics HTTP/1.1\r\n\r\n")
        assert reply.status == "200 OK"
        assert not slow.done()
    finally:
        await server.close()  # drops the stalled one
    assert slow.done() and stalled.transport.aborted and stalled.closed


async def test_a_failing_snapshot_is_503_with_one_line_and_one_warning(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    def snapshot() -> dict[str, Any]:
        raise RuntimeError("broken")

    reply = await ask(make_server(snapshot), "GET /metrics HTTP/1.1\r\n\r\n")
    reason = "the status could not be read: RuntimeError: broken"
    assert reply.status == "503 Service Unavailable"
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert reply.text == f"scrape failed: {reason}\n"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [f"metrics scrape failed: {reason}"]
    assert warnings[0].exc_info is None
    assert capsys.readouterr().err == ""


async def test_a_malformed_document_is_503() -> None:
    reply = await ask(
        make_server(lambda: {"hosts": [{"vhid": 1}]}), "GET /metrics HTTP/1.1\r\n\r\n"
    )
    assert reply.status == "503 Service Unavailable"
    assert reply.text.startswith("scrape failed: the status could not be read: KeyError")


async def test_an_unexpected_failure_is_no_traceback(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(FakeWriter):
        def write(self, data: bytes) -> None:
            raise RuntimeError("unexpected")

    writer = Broken()
    await handle(make_server(), reader_of(b"GET /metrics HTTP/1.1\r\n\r\n"), writer)
    assert writer.transport.aborted
    assert capsys.readouterr().err == ""
    assert all(r.levelno < logging.WARNING for r in caplog.records)


async def test_more_than_max_clients_at_once_are_closed_at_once() -> None:
    server = make_server(timeout=5.0)
    waiting = [FakeWriter() for _ in range(MAX_CLIENTS)]
    tasks = [
        asyncio.create_task(
            server.handle(reader_of(b"GET /", eof=False), cast(asyncio.StreamWriter, w))
        )
        for w in waiting
    ]
    try:
        await asyncio.sleep(0)
        extra = FakeWriter()
        took = await handle(server, reader_of(b"GET /metrics HTTP/1.1\r\n\r\n"), extra)
        assert took < 1.0 and extra.data == b""
        assert not any(task.done() for task in tasks)
    finally:
        await server.close()
        await server.close()
    assert all(task.done() for task in tasks)
    assert all(w.transport.aborted and w.closed and w.data == b"" for w in waiting)
    # The slots are free again.
    assert (await ask(server, "GET / HTTP/1.1\r\n\r\n")).status == "200 OK"


def test_server_registry_holds_only_pycarp_series() -> None:
    server = make_server()
    names = {f.name for f in server.registry.collect()}
    assert names and all(name.startswith("pycarp_") for name in names)
    assert not server.serving


async def test_close_is_idempotent_and_needs_no_start() -> None:
    server = make_server()
    await server.close()
    await server.close()
    assert not server.serving
    with pytest.raises(RuntimeError):
        await server.start()  # a closed server stays closed


async def test_an_address_that_is_not_an_ip_is_one_clear_error() -> None:
    # AI_NUMERICHOST: refused before any lookup, so nothing leaves this machine.
    server = MetricsServer(MetricsAddress("metrics.example", 9406), Counting())
    with pytest.raises(CarpError) as caught:
        await server.start()
    message = str(caught.value)
    assert message.startswith("cannot serve metrics on metrics.example:9406: ")
    assert "\n" not in message
    assert not server.serving
    await server.close()
