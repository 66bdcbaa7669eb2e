"""Bounded load test against a loopback HTTP server started by the test itself."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_aisec.core.loadtest import F_ERRORS, F_INCOMPLETE, F_SLO, run_load_test
from airflow_aisec.exceptions import AisecInputError, AisecTransientError


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None, bytes]] = []

    def log_message(self, *args):
        return

    def _reply(self, code, body=b"{}"):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, self.headers.get("X-Client-Id"), body))
        if self.path == "/slow":
            time.sleep(0.15)
        if self.path == "/flaky" and len(type(self).seen) % 2:
            self._reply(500)
            return
        if self.path == "/limited" and len(type(self).seen) > 3:
            self._reply(429)
            return
        self._reply(200, b'{"predictions": [1]}')

    do_GET = do_POST


@pytest.fixture
def endpoint():
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_counts_latency_and_payload(endpoint):
    payload = json.dumps({"features": [1, 2]}).encode()
    report = run_load_test(endpoint + "/fast", requests=60, concurrency=4, payload=payload, slo_p95_ms=2000)
    assert report.status == "pass"
    assert report.metrics["requests_sent"] == 60
    assert report.metrics["error_rate"] == 0.0
    assert report.metrics["latency_p50_ms"] <= report.metrics["latency_p95_ms"] <= report.metrics["latency_p99_ms"]
    assert report.metrics["throughput_rps"] > 0
    assert report.details["status_counts"] == {"200": 60}
    assert len(_Handler.seen) == 60
    assert {(p, c, b) for p, c, b in _Handler.seen} == {("/fast", "aisec-loadtest", payload)}


def test_slo_breach_fails(endpoint):
    report = run_load_test(endpoint + "/slow", requests=6, concurrency=3, slo_p95_ms=50)
    assert report.status == "fail"
    assert [f.id for f in report.findings] == [F_SLO]
    assert report.metrics["latency_p95_ms"] >= 150


def test_error_rate_fails_and_429_is_separate(endpoint):
    flaky = run_load_test(endpoint + "/flaky", requests=20, concurrency=2, max_error_rate=0.1)
    assert flaky.status == "fail"
    assert F_ERRORS in [f.id for f in flaky.findings]
    _Handler.seen = []
    limited = run_load_test(endpoint + "/limited", requests=10, concurrency=1)
    assert limited.status == "pass"
    assert limited.metrics["rate_limited"] == 7
    _Handler.seen = []
    strict = run_load_test(endpoint + "/limited", requests=10, concurrency=1, count_rate_limited_as_errors=True)
    assert strict.status == "fail"


def test_duration_cap_stops_the_run(endpoint):
    t0 = time.monotonic()
    report = run_load_test(endpoint + "/slow", requests=10_000, concurrency=2, duration_s=0.6, timeout_s=0.5)
    assert time.monotonic() - t0 < 3.0
    assert report.metrics["requests_sent"] < 20
    assert F_INCOMPLETE in [f.id for f in report.findings]
    assert report.status == "pass"


def test_endpoint_down_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AisecTransientError, match="refused every connection"):
        run_load_test(f"http://127.0.0.1:{port}/predict", requests=3, concurrency=1, timeout_s=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://example.com/predict"}, "not on loopback"),
        ({"url": "ftp://127.0.0.1/x"}, "http"),
        ({"requests": 0}, "requests"),
        ({"requests": 10**6}, "requests"),
        ({"concurrency": 1000}, "concurrency"),
        ({"duration_s": 3600}, "duration"),
        ({"timeout_s": 0}, "timeout"),
    ],
)
def test_bounds_and_targets_are_validated(kwargs, message):
    args = {"url": "http://127.0.0.1:9/x", **kwargs}
    url = args.pop("url")
    with pytest.raises(AisecInputError, match=message):
        run_load_test(url, **args)


def test_checks_are_registered_in_report_order():
    from airflow_aisec.core.loadtest import LOAD_CHECKS

    assert LOAD_CHECKS.names() == ["latency_slo", "error_rate", "redirects", "incomplete"]
    assert all(check.doc and check.finds for check in LOAD_CHECKS)
