"""Network checks run for real inside a lab namespace: tcp, http(s) and carrier.

A small HTTP server (the status chosen by the path) and a listener that never
answers run in a lab host's namespace; each probe runs in a `python -c`
process in the same namespace (so its connections stay there) and prints its
result as JSON.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab import Host, Lab

pytestmark = pytest.mark.netns

WEB = "198.51.100.10"
NOBODY = "198.51.100.99"  # on the segment, but no host has it
HTTP_PORT = 8080
SILENT_PORT = 8081  # accepts connections (the backlog) and never answers
TLS_PORT = 8443  # the same server over TLS, with a self-signed certificate for WEB
CLOSED_PORT = 8090
READY_WAIT = 10.0
GRACE = 0.5  # what probe may take beyond the check's timeout

SERVER = r"""
import http.server, socket, sys

import ssl

ip, port, silent_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        what, _, arg = self.path.strip("/").partition("/")
        if what == "status":
            code = int(arg)
        elif what == "redirect":
            code = 301
        elif what == "host":  # 200 when the Host header is arg
            code = 200 if self.headers.get("Host") == arg else 400
        else:
            code = 404
        body = b"x" * 65536  # more than a check reads
        self.send_response(code)
        if code == 301:
            self.send_header("Location", "/status/200")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


if silent_port:
    silent = socket.create_server((ip, silent_port))
server = http.server.ThreadingHTTPServer((ip, port), Handler)
if len(sys.argv) > 4:  # certificate and key: TLS
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"""

RUNNER = r"""
import asyncio, json, os, sys, time

if len(sys.argv) > 2:  # the CA file the default TLS context trusts
    os.environ["SSL_CERT_FILE"] = sys.argv[2]
from pycarp.core.checkconfig import CheckConfig
from pycarp.platform.linux import LinuxPlatform
from pycarp.runtime.probes import probe

platform = LinuxPlatform()
check = CheckConfig(**json.loads(sys.argv[1]))


def running(name):
    return platform.interface_info(name).running


started = time.monotonic()
ok, detail = asyncio.run(probe(check, interface_running=running))
print(json.dumps({"ok": ok, "detail": detail, "took": time.monotonic() - started}))
"""


def run_probe(
    where: Host, /, *, trust: Path | None = None, **fields: Any
) -> tuple[bool, str, float]:
    """probe() once, in a process inside the host's namespace: (ok, detail, seconds).

    trust: a certificate file to trust instead of the system's CAs.
    """
    fields.setdefault("name", "check")
    argv = [sys.executable, "-c", RUNNER, json.dumps(fields), *([str(trust)] if trust else [])]
    done = where.run(*argv, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result["ok"], bool) and isinstance(result["detail"], str)
    return result["ok"], result["detail"], float(result["took"])


def wait_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], READY_WAIT)
    assert readable, f"test server not ready within {READY_WAIT:g} s"
    assert proc.stdout.readline() == b"ready\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for WEB (its key beside it, as key.pem)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed (apt-get install openssl)", pytrace=False)
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    argv = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    argv += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=pycarp test"]
    argv += ["-addext", f"subjectAltName=IP:{WEB}"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return cert


@pytest.fixture(scope="module")
def web(certificate: Path) -> Iterator[Host]:
    """A lab host at WEB with the test servers running; all of it gone afterwards."""
    key = certificate.with_name("key.pem")
    with Lab() as lab:
        host = lab.add_host("web", WEB)
        servers = [
            host.spawn(*argv, stdout=subprocess.PIPE)
            for argv in (
                (sys.executable, "-c", SERVER, WEB, str(HTTP_PORT), str(SILENT_PORT)),
                (sys.executable, "-c", SERVER, WEB, str(TLS_PORT), "0", str(certificate), str(key)),
            )
        ]
        try:
            for server in servers:
                wait_ready(server)
            yield host
        finally:
            for server in servers:
                if server.stdout is not None:
                    server.stdout.close()
            # lab.close() (leaving the with) stops the servers' process groups


def test_tcp_to_a_listener_connects(web: Host) -> None:
    ok, detail, _ = run_probe(web, type="tcp", host=WEB, port=HTTP_PORT)
    assert (ok, detail) == (True, f"connected to {WEB}:{HTTP_PORT}")


def test_tcp_to_a_closed_port_is_refused(web: Host) -> None:
    ok, detail, _ = run_probe(web, type="tcp", host=WEB, port=CLOSED_PORT)
    assert (ok, detail) == (False, "connection refused")


def test_tcp_to_nobody_times_out_in_time(web: Host) -> None:
    ok, detail, took = run_probe(web, type="tcp", host=NOBODY, port=80, timeout=0.5)
    assert (ok, detail) == (False, "timed out after 0.5 s")
    assert took < 0.5 + GRACE


@pytest.mark.parametrize(
    ("status", "expect", "result"),
    [
        (200, 200, (True, "HTTP 200")),
        (503, 200, (False, "HTTP 503, expected 200")),
        (503, 503, (True, "HTTP 503")),
        (200, 204, (False, "HTTP 200, expected 204")),
    ],
)
def test_http_passes_when_the_status_is_the_expected_one(
    web: Host, status: int, expect: int, result: tuple[bool, str]
) -> None:
    url = f"http://{WEB}:{HTTP_PORT}/status/{status}"
    ok, detail, _ = run_probe(web, type="http", url=url, expect=expect)
    assert (ok, detail) == result


def test_http_does_not_follow_redirects(web: Host) -> None:
    url = f"http://{WEB}:{HTTP_PORT}/redirect"
    assert run_probe(web, type="http", url=url)[:2] == (False, "HTTP 301, expected 200")
    assert run_probe(web, type="http", url=url, expect=301)[:2] == (True, "HTTP 301")


def test_http_sends_the_host_of_the_url(web: Host) -> None:
    url = f"http://{WEB}:{HTTP_PORT}/host/{WEB}:{HTTP_PORT}"
    assert run_probe(web, type="http", url=url)[:2] == (True, "HTTP 200")


def test_https_to_a_plain_http_port_fails_cleanly(web: Host) -> None:
    ok, detail, took = run_probe(web, type="http", url=f"https://{WEB}:{HTTP_PORT}/status/200")
    assert not ok
    assert detail.startswith("TLS handshake failed: "), detail
    assert "\n" not in detail and len(detail) <= 200
    assert took < 1.0 + GRACE


def test_https_verifies_the_certificate(web: Host, certificate: Path) -> None:
    url = f"https://{WEB}:{TLS_PORT}/status/200"
    ok, detail, _ = run_probe(web, type="http", url=url)
    assert (ok, detail) == (False, "certificate verification failed: self-signed certificate")
    assert run_probe(web, type="http", url=url, trust=certificate)[:2] == (True, "HTTP 200")


def test_http_to_a_closed_port_is_refused(web: Host) -> None:
    url = f"http://{WEB}:{CLOSED_PORT}/"
    assert run_probe(web, type="http", url=url)[:2] == (False, "connection refused")


def test_http_to_a_server_that_never_answers_times_out_in_time(web: Host) -> None:
    url = f"http://{WEB}:{SILENT_PORT}/"
    ok, detail, took = run_probe(web, type="http", url=url, timeout=0.5)
    assert (ok, detail) == (False, "timed out after 0.5 s")
    assert took < 0.5 + GRACE


def test_carrier_follows_the_link(lab: Lab) -> None:
    host = lab.add_host("link", "198.51.100.20")
    assert run_probe(host, type="carrier", interface="eth0")[:2] == (True, "eth0 has carrier")
    try:
        host.link_down()  # its veth peer (the bridge port) goes down: no carrier
        assert run_probe(host, type="carrier", interface="eth0")[:2] == (
            False,
            "eth0 has no carrier",
        )
    finally:
        host.link_up()
    assert run_probe(host, type="carrier", interface="eth0")[:2] == (True, "eth0 has carrier")


def test_carrier_of_a_missing_interface_is_a_failed_check(lab: Lab) -> None:
    host = lab.add_host("nolink", "198.51.100.21")
    assert run_probe(host, type="carrier", interface="eth9")[:2] == (
        False,
        "interface 'eth9' does not exist",
    )
