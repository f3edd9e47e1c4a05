"""HTTP probes against real servers on 127.0.0.1: status, latency, and a hung endpoint that times out."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from opsnb.checks.http import Prober


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/hang":
            time.sleep(3)
        status = 500 if self.path == "/boom" else 200
        body = b'{"status":"ok"}' if status == 200 else b"Internal Server Error"
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on /hang: that is the point of the test

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_probe_records_status_and_latency(server) -> None:
    with Prober() as p:
        ok = p.probe(f"{server}/api/health")
        bad = p.probe(f"{server}/boom")
        assert ok.ok and ok.status == 200 and ok.json() == {"status": "ok"} and ok.latency_ms > 0
        assert not bad.ok and bad.status == 500 and "Internal" in bad.body
        assert list(p.table()["status"]) == [200, 500]


def test_hung_endpoint_times_out(server) -> None:
    with Prober(timeout_s=0.5) as p:
        probe = p.probe(f"{server}/hang")
    assert probe.status is None and not probe.ok and "timed out" in probe.error


def test_refused_connection_is_a_result_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Prober(connect_timeout_s=0.5) as p:
        probe = p.probe(f"http://127.0.0.1:{port}/")
    assert probe.status is None and "ConnectError" in probe.error


def test_a_vendor_api_failure_makes_a_check_inconclusive_not_an_error() -> None:
    from opsnb.checks import findings
    from opsnb.checks.http import APIError

    @findings.check("test.vendor-api", hint="check the token")
    def check_vendor() -> None:
        raise APIError("GET /v6/deployments → HTTP 401: Not authorized")

    assert check_vendor() is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and "HTTP 401" in c.detail and "check the token" in c.detail
