"""The Prometheus endpoint over HTTP, inside lab namespaces: IPv4 and IPv6, a port in use,
close(), a failing scrape, and clients that stall. The server runs on an event loop in a
thread of this process (as the daemon's loop is its main thread), its socket bound inside a
lab host's namespace; the clients are `python -c` runs in lab namespaces."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pycarp.config.settings import MetricsAddress
from pycarp.core.errors import CarpError
from pycarp.lab import Host, Lab
from pycarp.runtime.metrics import MAX_CLIENTS, MetricsServer

pytestmark = pytest.mark.netns

T = TypeVar("T")
SERVER_IP = "198.51.100.94"
OTHER_IP = "198.51.100.95"  # a second address of the server's host: nothing listens there
CLIENT_IP = "198.51.100.96"
SERVER_IP6 = "2001:db8:94::1"
PORT = 9406
DOCUMENT: dict[str, Any] = {
    "hosts": [
        {"interface": "eth0", "vhid": 94, "state": "MASTER", "advskew": 0, "adverts_sent": 9,
         "adverts_received": 0, "dropped": {}, "demote": 0, "demoted": False, "promoted": False,
         "transitions": {"MASTER": {"master_down": 1}}, "master_seconds": 3.0},
    ],
    "interfaces": {},
    "checks": [{"name": "web", "type": "http", "group": "web", "state": "healthy",
                "results": {"ok": 4, "failed": 0}}],
    "groups": [{"name": "web", "count": 0}],
}  # fmt: skip
# Run in a lab namespace: first open argv[2] raw connections to argv[3] (host) port argv[4]
# that send half a request head and stall; GET the URL (no proxy) while they are held; then
# drop them and GET it again (a few times, bounded, while the server notices that they left).
# Prints both results: status, body and seconds taken.
FETCH = """
import json, socket, sys, time, urllib.error, urllib.request
def get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.monotonic()
    try:
        with opener.open(url, timeout=10) as answer:
            status, body = answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except OSError as exc:
        status, body = 0, str(getattr(exc, "reason", exc))
    return {"status": status, "body": body, "seconds": time.monotonic() - started}
held = []
for _ in range(int(sys.argv[2])):
    held.append(socket.create_connection((sys.argv[3], int(sys.argv[4])), timeout=5))
    held[-1].sendall(b"GET /metr")
first = get(sys.argv[1])
for sock in held:
    sock.close()
again, deadline = first, time.monotonic() + 5
while held and time.monotonic() < deadline:  # until the server has seen them go
    again = get(sys.argv[1])
    if again["status"] == 200:
        break
    time.sleep(0.1)
print(json.dumps([first, again]))
"""


def fetch_both(host: Host, url: str, stalled: int = 0) -> list[dict[str, Any]]:
    """[while `stalled` clients hold connections, after they left]."""
    argv = (sys.executable, "-c", FETCH, url, str(stalled), SERVER_IP, str(PORT))
    done = host.run(*argv, timeout=60)
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def fetch(host: Host, url: str) -> dict[str, Any]:
    return fetch_both(host, url)[0]


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The daemon's event loop, running in a thread of its own (the test waits on clients)."""
    the_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=the_loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    try:
        yield the_loop
    finally:
        the_loop.call_soon_threadsafe(the_loop.stop)
        thread.join(5)
        the_loop.close()
    assert not thread.is_alive()


class Servers:
    """MetricsServers started on the loop in a host's namespace; all closed after the test."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.made: list[MetricsServer] = []

    def on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    def start(self, host: Host, ip: str, snapshot: Any, timeout: float = 10.0) -> MetricsServer:
        server = MetricsServer(MetricsAddress(ip, PORT), snapshot, timeout=timeout)
        self.made.append(server)

        async def start_inside() -> None:
            with host.enter():  # the loop's thread binds in the host's namespace
                await server.start()

        self.on_loop(start_inside())
        return server

    def close(self, server: MetricsServer) -> None:
        self.on_loop(server.close())

    def close_all(self) -> None:
        for server in self.made:
            self.close(server)


@pytest.fixture
def servers(loop: asyncio.AbstractEventLoop) -> Iterator[Servers]:
    made = Servers(loop)
    try:
        yield made
    finally:
        made.close_all()


def test_scrape_over_ipv4_takes_one_snapshot_on_the_loop(lab: Lab, servers: Servers) -> None:
    server_host = lab.add_host("metrics", SERVER_IP)
    client = lab.add_host("scraper", CLIENT_IP)
    server_host.run("ip", "addr", "add", f"{OTHER_IP}/24", "dev", "eth0")
    calls: list[int | None] = []

    def snapshot() -> dict[str, Any]:
        calls.append(threading.get_ident())
        return DOCUMENT

    threads = set(threading.enumerate())
    servers.start(server_host, SERVER_IP, snapshot)
    assert set(threading.enumerate()) == threads  # no thread of its own
    answer = fetch(client, f"http://{SERVER_IP}:{PORT}/metrics")
    assert answer["status"] == 200, answer
    found = values(answer["body"])
    vhost = {"interface": "eth0", "vhid": "94"}
    state = frozenset({**vhost, "state": "MASTER"}.items())
    assert found[("pycarp_vhost_state", state)] == 1
    check = frozenset({"check": "web", "type": "http", "group": "web"}.items())
    assert found[("pycarp_check_healthy", check)] == 1
    assert found[("pycarp_vhost_master_seconds_total", frozenset(vhost.items()))] == 3.0
    # Only pycarp's series (a private registry), and one snapshot, taken on the loop's thread.
    assert all(name.startswith("pycarp_") for name, _ in found)
    loop_thread = next(t for t in threading.enumerate() if t.name == "test-loop")
    assert calls == [loop_thread.ident]
    # Bound to the address given only.
    elsewhere = fetch(server_host, f"http://{OTHER_IP}:{PORT}/metrics")
    assert elsewhere["status"] == 0 and "refused" in elsewhere["body"], elsewhere
    assert fetch(client, f"http://{SERVER_IP}:{PORT}/nothing")["status"] == 404


def test_scrape_over_ipv6_and_an_ipv6_socket_is_ipv6_only(lab: Lab, servers: Servers) -> None:
    host = lab.add_host("metrics6", SERVER_IP)
    host.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0")
    host.run("ip", "-6", "addr", "add", f"{SERVER_IP6}/64", "dev", "eth0", "nodad")
    server = servers.start(host, SERVER_IP6, lambda: DOCUMENT)
    assert server.serving
    answer = fetch(host, f"http://[{SERVER_IP6}]:{PORT}/metrics")
    assert answer["status"] == 200, answer
    assert "pycarp_vhost_state{" in answer["body"]
    servers.close(server)
    # "::" is every IPv6 address, and not the IPv4 ones (IPV6_V6ONLY).
    servers.start(host, "::", lambda: DOCUMENT)
    assert fetch(host, f"http://[{SERVER_IP6}]:{PORT}/metrics")["status"] == 200
    v4 = fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")
    assert v4["status"] == 0 and "refused" in v4["body"], v4


def test_a_port_in_use_is_one_clear_error(lab: Lab, servers: Servers) -> None:
    host = lab.add_host("busy", SERVER_IP)
    first = servers.start(host, SERVER_IP, lambda: DOCUMENT)
    with pytest.raises(CarpError) as caught:
        servers.start(host, SERVER_IP, lambda: DOCUMENT)
    expected = f"cannot serve metrics on {SERVER_IP}:{PORT}: Address already in use"
    assert str(caught.value) == expected
    assert first.serving and not servers.made[-1].serving
    assert fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")["status"] == 200


def test_close_twice_frees_the_port(lab: Lab, servers: Servers) -> None:
    host = lab.add_host("closing", SERVER_IP)
    server = servers.start(host, SERVER_IP, lambda: DOCUMENT)
    assert fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")["status"] == 200
    servers.close(server)
    servers.close(server)
    assert not server.serving
    refused = fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")
    assert refused["status"] == 0 and "refused" in refused["body"], refused
    servers.start(host, SERVER_IP, lambda: DOCUMENT)  # the port is free again
    assert fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")["status"] == 200


def test_a_failing_snapshot_answers_503_quickly(lab: Lab, servers: Servers) -> None:
    host = lab.add_host("failing", SERVER_IP)

    def broken() -> dict[str, Any]:
        raise RuntimeError("state unavailable")

    servers.start(host, SERVER_IP, broken)
    answer = fetch(host, f"http://{SERVER_IP}:{PORT}/metrics")
    assert answer["status"] == 503, answer
    reason = "the status could not be read: RuntimeError: state unavailable"
    assert answer["body"] == f"scrape failed: {reason}\n"
    assert answer["seconds"] < 2.0


def test_stalled_clients_never_hold_a_scrape(lab: Lab, servers: Servers) -> None:
    host = lab.add_host("stalled", SERVER_IP)
    servers.start(host, SERVER_IP, lambda: DOCUMENT)
    url = f"http://{SERVER_IP}:{PORT}/metrics"
    # Fewer than the limit: the scrape is served while they stall.
    during, after = fetch_both(host, url, stalled=MAX_CLIENTS - 1)
    assert during["status"] == 200 and during["seconds"] < 2.0, during
    assert after["status"] == 200, after
    # As many as the limit: one more is closed at once, and served once they have gone.
    during, after = fetch_both(host, url, stalled=MAX_CLIENTS)
    assert during["status"] == 0 and during["seconds"] < 2.0, during
    assert after["status"] == 200, after
