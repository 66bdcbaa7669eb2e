"""Load test: test traffic reaches only the validated loopback target.

Guarantees exercised (docs/inference.md, load test): a non-loopback or tricky URL is refused before
any name resolution or connection; a name is resolved once per connection and only loopback
addresses are connected to (DNS rebinding, a localhost name pointing elsewhere, a peer that is not
loopback: refused, nothing sent); redirects are never followed (counted as errors, high finding);
proxy environment variables are ignored; header/method injection is refused. Every server here
listens on 127.0.0.1; non-loopback addresses are only ever *refused* (socket.connect is recorded).
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core import loadtest
from airflow_aisec.core.loadtest import F_REDIRECT, run_load_test
from airflow_aisec.exceptions import AisecInputError


def _server(handler_factory):
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def do_GET(self):
            seen.append((self.command, self.path))
            code, headers = handler_factory(self)
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return httpd, thread, seen


@pytest.fixture
def servers():
    made = []

    def make(factory=lambda h: (200, {})):
        httpd, thread, seen = _server(factory)
        made.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}", seen

    yield make
    for httpd, thread in made:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def net(monkeypatch):
    """Record every connect / resolution; refuse (never perform) connections outside loopback."""
    record = {"connect": [], "resolve": []}
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        record["connect"].append(address)
        if not loadtest.is_loopback_ip(str(address[0])):
            raise AssertionError(f"test tried to connect to non-loopback {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        record["resolve"].append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    record["real_getaddrinfo"] = real_getaddrinfo
    return record


# ------------------------------------------------------------------------------ refused before anything
HOSTILE_URLS = [
    "http://8.8.8.8/predict",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2001:db8::1]/",
    "http://127.0.0.1@evil.example/",
    "http://user:pw@127.0.0.1/",
    "http://127.0.0.1:80@evil.example/",
    "http://evil.example#@127.0.0.1/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://2130706433/",
    "http://127.0.0.1.nip.io/",
    "http://localhost.evil.example/",
    "http://evil.example/",
    "http://lоcalhost/",  # Cyrillic o
    "http://127.0.0.1 /",
    "http://127.0.0.1\t.evil/",
    "http://127.0.0.1:99999/",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    "http:///predict",
    "gopher://127.0.0.1:6379/_FLUSHALL",
]


@settings(max_examples=60)
@given(url=st.sampled_from(HOSTILE_URLS), path=st.sampled_from(["", "/x", "/a?b=c"]))
def test_hostile_targets_are_refused_before_any_resolution_or_connection(net, url, path):
    net["connect"].clear()
    net["resolve"].clear()
    with pytest.raises(AisecInputError, match="load-test URL"):
        run_load_test(url + path.lstrip("/") if url.endswith("/") else url, requests=1, concurrency=1)
    assert net["connect"] == []
    assert net["resolve"] == []


@settings(max_examples=40)
@given(
    a=st.integers(0, 255),
    b=st.integers(0, 255),
    c=st.integers(0, 255),
    d=st.integers(1, 254),
    v6=st.booleans(),
)
def test_any_non_loopback_literal_is_refused(net, a, b, c, d, v6):
    if a == 127:
        return
    host = f"[::ffff:{a}.{b}.{c}.{d}]" if v6 else f"{a}.{b}.{c}.{d}"
    with pytest.raises(AisecInputError, match="not on loopback"):
        run_load_test(f"http://{host}:8080/predict", requests=1, concurrency=1)
    assert net["connect"] == []


def test_cli_refuses_a_public_target_with_exit_2(net, capsys):
    assert main(["load-test", "http://8.8.8.8/predict", "-n", "1", "-c", "1"]) == 2
    assert "not on loopback" in capsys.readouterr().err
    assert net["connect"] == []


# ------------------------------------------------------------------------------ resolution and peer
def _fake_resolver(net, answers):
    calls = iter(answers)

    def getaddrinfo(host, port, *args, **kwargs):
        net["resolve"].append(host)
        ip = next(calls)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        addr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
        return [(family, socket.SOCK_STREAM, 6, "", addr)]

    return getaddrinfo


def test_localhost_name_resolving_to_a_public_address_is_refused(net, monkeypatch, servers):
    url, seen = servers()
    port = url.rsplit(":", 1)[1]
    monkeypatch.setattr(socket, "getaddrinfo", _fake_resolver(net, ["93.184.216.34"] * 10))
    with pytest.raises(AisecInputError, match="not loopback"):
        run_load_test(f"http://localhost:{port}/x", requests=3, concurrency=1)
    assert net["connect"] == []
    assert seen == []


def test_dns_rebinding_between_requests_never_reaches_the_public_address(net, monkeypatch, servers):
    url, seen = servers()
    port = url.rsplit(":", 1)[1]
    answers = ["127.0.0.1", "127.0.0.1", "8.8.8.8", "127.0.0.1", "8.8.4.4", "::ffff:1.1.1.1"]
    monkeypatch.setattr(socket, "getaddrinfo", _fake_resolver(net, answers))
    with pytest.raises(AisecInputError, match="refused because the address was not loopback"):
        run_load_test(f"http://localhost.:{port}/x", requests=6, concurrency=1)
    assert all(loadtest.is_loopback_ip(a[0]) for a in net["connect"])
    assert len(seen) == 3  # only the loopback answers were connected to
    assert len(net["resolve"]) == 6  # one resolution per request, none between check and connect


def test_peer_that_is_not_loopback_is_closed_before_sending(net, monkeypatch, servers):
    url, seen = servers()
    monkeypatch.setattr(socket.socket, "getpeername", lambda self: ("8.8.8.8", 80))
    with pytest.raises(AisecInputError, match="not loopback"):
        run_load_test(url + "/x", requests=2, concurrency=1)
    assert seen == []


@pytest.mark.parametrize("mapped", ["::1", "::ffff:127.0.0.1", "127.255.0.9"])
def test_loopback_forms_are_loopback(mapped):
    assert loadtest.is_loopback_ip(mapped)


@pytest.mark.parametrize("other", ["::ffff:8.8.8.8", "0.0.0.0", "::", "128.0.0.1", "fe80::1", "::2", "nonsense"])
def test_other_addresses_are_not(other):
    assert not loadtest.is_loopback_ip(other)


# ------------------------------------------------------------------------------ redirects and proxies
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("where", ["other_local", "public", "relative"])
def test_redirects_are_never_followed(net, servers, code, where):
    other, other_seen = servers()
    location = {"other_local": other + "/stolen", "public": "http://8.8.8.8/", "relative": "/elsewhere"}[where]
    url, seen = servers(lambda h: (code, {"Location": location}) if h.path == "/start" else (200, {}))
    report = run_load_test(url + "/start", requests=4, concurrency=2)
    assert report.status == "fail"
    assert any(f.id == F_REDIRECT and f.severity == "high" for f in report.findings)
    assert report.metrics["error_rate"] == 1.0
    assert other_seen == []
    assert [p for _, p in seen] == ["/start"] * 4
    assert all(loadtest.is_loopback_ip(a[0]) for a in net["connect"])


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"])
def test_proxy_environment_is_ignored(net, servers, monkeypatch, var):
    proxy, proxy_seen = servers()
    url, seen = servers()
    monkeypatch.setattr(urllib.request, "_opener", None)  # a urllib-based client would now read the proxy
    monkeypatch.setenv(var, proxy)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    report = run_load_test(url + "/direct", requests=5, concurrency=1)
    assert report.status == "pass"
    assert proxy_seen == []
    assert len(seen) == 5


def test_remote_allowed_still_never_follows_redirects_or_proxies(net, servers, monkeypatch):
    proxy, proxy_seen = servers()
    monkeypatch.setenv("HTTP_PROXY", proxy)
    other, other_seen = servers()
    url, seen = servers(lambda h: (302, {"Location": other + "/x"}))
    report = run_load_test(url + "/a", requests=2, concurrency=1, allow_remote=True)
    assert report.status == "fail"
    assert proxy_seen == [] and other_seen == []


# ------------------------------------------------------------------------------ request injection
@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"X-A": "1\r\nX-Injected: 1"}},
        {"headers": {"X-A\r\nHost": "evil"}},
        {"headers": {"X-A": "v\x00"}},
        {"headers": {"": "v"}},
        {"method": "GET /other HTTP/1.1\r\nX:"},
        {"method": "G ET"},
        {"client_id": "id\r\nHost: evil.example"},
    ],
)
def test_header_and_method_injection_is_refused(net, servers, kwargs):
    url, seen = servers()
    with pytest.raises(AisecInputError, match="header|method"):
        run_load_test(url + "/x", requests=1, concurrency=1, **kwargs)
    assert seen == []
    assert net["connect"] == []


def test_localhost_and_ipv6_loopback_still_work(net, servers):
    url, seen = servers()
    port = url.rsplit(":", 1)[1]
    report = run_load_test(f"http://localhost:{port}/ok", requests=3, concurrency=1)
    assert report.status == "pass"
    assert len(seen) == 3
    assert all(loadtest.is_loopback_ip(a[0]) for a in net["connect"])


@settings(max_examples=200)
@given(
    host=st.text(st.sampled_from("0123456789abcdefxlocahst.:[]@%#/?\\ \t-_=+~ÿ\u0130\u212a"), min_size=1, max_size=30)
)
def test_generated_hosts_pass_the_gate_only_when_loopback(net, host):
    url = f"http://{host}:8080/x"
    try:
        parsed = loadtest.check_target(url, allow_remote=False)
    except AisecInputError:
        return
    name = parsed.hostname or ""
    assert (
        loadtest.is_loopback_ip(name)
        or name.lower().rstrip(".") == "localhost"
        or name.lower().rstrip(".").endswith(".localhost")
    )
    assert "@" not in parsed.netloc
    assert net["connect"] == [] and net["resolve"] == []


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [("http://[::1]/x", "::1", 80), ("https://[::1]/x", "::1", 443), ("http://127.0.0.1/x", "127.0.0.1", 80)],
)
def test_connection_targets_exactly_the_validated_host_and_port(url, host, port):
    conn = loadtest._connection(loadtest.check_target(url, allow_remote=False), 1.0, False)
    assert (conn.host, conn.port) == (host, port)
