"""opsnb.checks.triage.health against a real HTTP server on 127.0.0.1: the health endpoint (P0) and the routes
users reported (P1), probed in rounds."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from opsnb.checks import findings
from opsnb.checks.triage import health


class Shop(BaseHTTPRequestHandler):
    """/api/health answers ``health_statuses`` in turn (then 200); /boom 500; anything else 200."""

    health_statuses: list[int] = []

    def do_GET(self):  # noqa: N802
        if self.path == "/api/health":
            status = self.health_statuses.pop(0) if self.health_statuses else 200
        else:
            status = 500 if self.path == "/boom" else 200
        body = b'{"status":"ok"}' if status == 200 else b'{"error":"Internal Server Error"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_healthy(app):
    probes = health.check_health(app, rounds=3, pause_s=0)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.title) == ("triage.health", "pass", "/api/health answers 200")
    assert (
        probes["round"].tolist() == [1, 2, 3]
        and probes["ok"].all()
        and probes.loc[0, "body"] == '{"status":"ok"}'
    )


def test_one_bad_round_is_p0_site_down(app):
    Shop.health_statuses = [200, 503]
    health.check_health(app, rounds=3, pause_s=0)
    [c] = findings.all_conclusions()
    assert (c.status, c.severity, c.title) == ("fail", "P0", "/api/health is not 200: 1 of 3 probes failed")
    assert "status 200, 503, 200" in c.detail and "Internal Server Error" in c.detail


def test_no_answer_is_p0_not_a_crash():
    probes = health.check_health(closed_port(), rounds=2, pause_s=0)
    [c] = findings.all_conclusions()
    assert c.severity == "P0" and "no answer, no answer" in c.detail and "ConnectError" in c.detail
    assert probes["status"].isna().all()


def test_failing_routes_are_one_p1(app):
    probes = health.check_routes(app, ["/boom", "api/products", f"{app}/ok"], rounds=2, pause_s=0)
    [c] = findings.all_conclusions()
    assert (c.check, c.status, c.severity, c.title) == (
        "triage.routes",
        "fail",
        "P1",
        "Partial outage: /boom fails",
    )
    assert c.detail.startswith("/boom: 2 of 2 probes not 200 (status 500, 500;")
    assert sorted(set(probes["url"])) == sorted({f"{app}/boom", f"{app}/api/products", f"{app}/ok"})


def test_routes_all_answering_and_none_given(app):
    health.check_routes(app, ["/api/products"], rounds=1)
    assert [(c.status, c.title) for c in findings.all_conclusions()] == [
        ("pass", "Every probed route answers 200 (/api/products)")
    ]
    findings.clear()
    assert health.check_routes(app, [], rounds=1) is None
    [c] = findings.all_conclusions()
    assert c.status == "inconclusive" and not c.essential and "extra_urls" in c.detail
    assert findings.verdict() == "PASS", "an optional step left out is not a blind spot"
