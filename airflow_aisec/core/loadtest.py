"""A bounded load test of a model endpoint (like Apache Bench's ``ab -n 1000 -c 10``), stdlib only.

Every run is bounded three ways — request count, concurrency and wall-clock duration (hard caps
below) — and each request has a timeout, so it always stops by itself. Non-loopback targets are
refused unless ``allow_remote=True``: a load test is a denial-of-service tool when pointed at the
wrong host. The guard holds for every request: the URL is validated before anything is sent
(:func:`check_target`), each connection resolves the name once and connects only to a loopback
address, whose peer address is checked again (:func:`guarded_connection`); proxy environment
variables are never used (``http.client``, not ``urllib``) and redirects are never followed (a 3xx
is counted as an error and reported).

:func:`run_load_test` plans (validates), sends, refuses what cannot be decided, then runs the checks
registered in :data:`LOAD_CHECKS` over what it observed.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.checks import CheckRegistry, Outcome
from airflow_aisec.exceptions import AisecInputError, AisecTransientError
from airflow_aisec.report import Report
from airflow_aisec.utils.stats import percentile

TAGS = ("OWASP-ML05", "AML.T0024")
MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 256
MAX_DURATION_S = 600.0
MAX_RESPONSE_BYTES = 1024 * 1024
LOADTEST_CLIENT_ID = "aisec-loadtest"

F_SLO = "AISEC-LOAD-LATENCY-SLO"
F_ERRORS = "AISEC-LOAD-ERROR-RATE"
F_INCOMPLETE = "AISEC-LOAD-INCOMPLETE"


F_REDIRECT = "AISEC-LOAD-REDIRECT"
F_GUARD = "AISEC-LOAD-NON-LOOPBACK-REFUSED"

_LOCALHOST_NAMES = ("localhost", "localhost.")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class NonLoopbackRefused(OSError):
    """A connection to an address outside 127.0.0.0/8 and ::1 was refused (before connecting)."""


def is_loopback_ip(address: str) -> bool:
    """``True`` only for 127.0.0.0/8, ``::1`` and IPv4-mapped ``::ffff:127.x.y.z`` (scope ids ignored)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_loopback)


def _is_localhost_name(host: str) -> bool:
    lowered = host.lower()
    return lowered in _LOCALHOST_NAMES or lowered.rstrip(".").endswith(".localhost")


def check_target(url: str, *, allow_remote: bool) -> urllib.parse.SplitResult:
    """Validate a load-test URL before anything is sent; raise :class:`AisecInputError` otherwise.

    Refused: schemes other than http(s), user information (``http://127.0.0.1@evil/``), a missing or
    non-ASCII host, a bad port, and — unless ``allow_remote`` — any host that is neither a canonical
    loopback address literal (127.0.0.0/8, ``[::1]``, ``[::ffff:127.0.0.1]``) nor a ``localhost``
    name. Numeric shorthands (``127.1``, ``0x7f.1``, ``2130706433``) are refused as non-canonical.
    Names are resolved only when connecting, and every address actually connected to is checked
    again (see :func:`guarded_connection`).
    """
    if not isinstance(url, str) or any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise AisecInputError(f"load-test URL {url!r} must not contain spaces or control characters")
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.hostname  # noqa: B018 - raises ValueError on a malformed bracketed host
    except ValueError as exc:
        raise AisecInputError(f"load-test URL {url!r} is malformed: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise AisecInputError(f"load-test URL {url!r} must be http(s)://host[:port]/path")
    if "@" in parsed.netloc or parsed.username is not None or parsed.password is not None:
        raise AisecInputError(f"load-test URL {url!r} must not carry user information ('user@host')")
    host = parsed.hostname
    if not host.isascii():
        raise AisecInputError(f"load-test URL {url!r}: host must be ASCII (IDNA-encode it)")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise AisecInputError(f"load-test URL {url!r} has an invalid port") from None
    if allow_remote:
        return parsed
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        literal = True
    except ValueError:
        literal = False
    if literal:
        if not is_loopback_ip(host):
            raise AisecInputError(
                f"load-test URL {url!r} is not on loopback; pass allow_remote=True (--allow-remote) to load-test another host"
            )
    elif not _is_localhost_name(host):
        raise AisecInputError(
            f"load-test URL {url!r} is not on loopback (only 127.0.0.0/8, [::1] and localhost names, written "
            "canonically); pass allow_remote=True (--allow-remote) to load-test another host"
        )
    return parsed


def guarded_connection(
    address: tuple[str, int], timeout: float | None = None, source_address: Any = None, *, allow_remote: bool = False
) -> socket.socket:
    """``socket.create_connection`` that resolves once and connects only to loopback addresses.

    Every address the name resolves to is checked before connecting (no second resolution, so DNS
    rebinding between check and connect cannot redirect the socket), and the peer address of the
    connected socket is checked again. Raises :class:`NonLoopbackRefused` (nothing sent).
    """
    host, port = address
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    allowed = [info for info in infos if allow_remote or is_loopback_ip(str(info[4][0]))]
    if not allowed:
        raise NonLoopbackRefused(f"{host!r} resolves to no loopback address; refusing to connect")
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in allowed:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            peer = sock.getpeername()[0]
            if not allow_remote and not is_loopback_ip(str(peer)):
                raise NonLoopbackRefused(f"connected peer {peer!r} is not loopback; closed before sending")
            return sock
        except NonLoopbackRefused:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"could not connect to {host!r}")


def _connection(parsed: urllib.parse.SplitResult, timeout: float, allow_remote: bool) -> http.client.HTTPConnection:
    """A fresh connection that never uses a proxy (http.client ignores *_PROXY) and connects guarded."""
    host = parsed.hostname or ""
    # an explicit port always: http.client would otherwise split an IPv6 host such as "::1" itself
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parsed.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn._create_connection = functools.partial(  # type: ignore[attr-defined]
        guarded_connection, allow_remote=allow_remote
    )
    return conn


def _check_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise AisecInputError(f"load-test header name {name!r} is not a valid HTTP token")
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\x00"):
            raise AisecInputError(f"load-test header {name!r} value must be a string without CR, LF or NUL")


@dataclass(frozen=True)
class LoadPlan:
    """A validated load test: where, what to send, and its bounds and thresholds."""

    url: str
    parsed: urllib.parse.SplitResult
    target: str  # path and query sent on the request line
    method: str
    headers: dict[str, str]
    payload: bytes | None
    requests: int
    concurrency: int
    duration_s: float
    timeout_s: float
    allow_remote: bool
    slo_p95_ms: float | None
    max_error_rate: float
    count_rate_limited_as_errors: bool


def _plan(
    url: str,
    *,
    requests: int,
    concurrency: int,
    duration_s: float,
    timeout_s: float,
    payload: bytes | None,
    method: str | None,
    headers: Mapping[str, str] | None,
    client_id: str,
    slo_p95_ms: float | None,
    max_error_rate: float,
    count_rate_limited_as_errors: bool,
    allow_remote: bool,
) -> LoadPlan:
    """Validate the target (loopback guard) and the bounds before anything is sent."""
    parsed = check_target(url, allow_remote=allow_remote)
    target = parsed.path or "/"
    if parsed.query:
        target += "?" + parsed.query
    if not 1 <= requests <= MAX_REQUESTS:
        raise AisecInputError(f"requests must be between 1 and {MAX_REQUESTS}, not {requests}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise AisecInputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise AisecInputError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds, not {duration_s}")
    if not 0 < timeout_s <= duration_s:
        raise AisecInputError(f"timeout must be in (0, duration] seconds, not {timeout_s}")
    if slo_p95_ms is not None and slo_p95_ms <= 0:
        raise AisecInputError("slo_p95_ms must be positive")
    method = (method or ("POST" if payload is not None else "GET")).upper()
    if not _TOKEN.match(method):
        raise AisecInputError(f"load-test method {method!r} is not a valid HTTP method")
    hdrs = {"User-Agent": "airflow-aisec-loadtest", "X-Client-Id": client_id, **dict(headers or {})}
    if payload is not None:
        hdrs.setdefault("Content-Type", "application/json")
    _check_headers(hdrs)
    return LoadPlan(
        url=url,
        parsed=parsed,
        target=target,
        method=method,
        headers=hdrs,
        payload=payload,
        requests=requests,
        concurrency=concurrency,
        duration_s=duration_s,
        timeout_s=timeout_s,
        allow_remote=allow_remote,
        slo_p95_ms=slo_p95_ms,
        max_error_rate=max_error_rate,
        count_rate_limited_as_errors=count_rate_limited_as_errors,
    )


@dataclass
class LoadRun:
    """What a load test observed: responses by status (or failure kind), latencies, wall time."""

    plan: LoadPlan
    statuses: Counter[str]
    latencies: list[float]  # ms of requests that got an HTTP response, sorted
    wall: float

    @property
    def done(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate_limited(self) -> int:
        return self.statuses.get("429", 0)

    @property
    def redirects(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.isdigit() and 300 <= int(k) < 400)

    @property
    def errors(self) -> int:
        """Failures, 3xx (never followed), 4xx other than 429, 5xx; plus 429 when counted as errors."""
        errors = sum(
            n
            for k, n in self.statuses.items()
            if not k.isdigit() or int(k) >= 500 or (400 <= int(k) < 500 and k != "429") or 300 <= int(k) < 400
        )
        if self.plan.count_rate_limited_as_errors:
            errors += self.rate_limited
        return errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.done if self.done else 1.0

    @property
    def percentiles(self) -> tuple[float | None, float | None, float | None]:
        p50, p95, p99 = (percentile(self.latencies, q) for q in (50, 95, 99))
        return p50, p95, p99


def _send(plan: LoadPlan) -> LoadRun:
    """Run the workers: no request starts after the deadline or beyond the request count."""
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + plan.duration_s

    def take() -> bool:
        nonlocal issued
        with lock:
            if issued >= plan.requests or time.monotonic() >= deadline:
                return False
            issued += 1
            return True

    def one_request() -> str:
        conn = _connection(plan.parsed, plan.timeout_s, plan.allow_remote)
        try:
            conn.request(plan.method, plan.target, body=plan.payload, headers=plan.headers)
            resp = conn.getresponse()
            resp.read(MAX_RESPONSE_BYTES)
            return str(resp.status)  # 3xx included: redirects are never followed
        except NonLoopbackRefused:
            return "refused_non_loopback"
        except TimeoutError:
            return "timeout"
        except (ConnectionError, OSError):
            return "connection_error"
        except http.client.HTTPException:
            return "protocol_error"
        finally:
            conn.close()

    def worker() -> None:
        while take():
            t0 = time.perf_counter()
            try:  # no request starts after the deadline; one in flight ends within timeout_s
                key = one_request()
            except Exception:  # never let a worker die silently: the request is counted as an error
                key = "client_error"
            elapsed = (time.perf_counter() - t0) * 1000.0
            with lock:
                statuses[key] += 1
                if key.isdigit():
                    latencies.append(elapsed)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"aisec-load-{i}", daemon=True) for i in range(plan.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + plan.timeout_s + 1.0)
    wall = time.perf_counter() - start
    return LoadRun(plan, statuses, sorted(latencies), wall)


def _refuse_undecidable(run: LoadRun) -> None:
    """An endpoint that refused every connection is down (retry); a non-loopback address is refused."""
    url, statuses, done = run.plan.url, run.statuses, run.done
    if done and statuses["connection_error"] == done:
        raise AisecTransientError(f"load-test endpoint {url!r} refused every connection (is it up?)")
    refused = statuses.get("refused_non_loopback", 0)
    if refused:
        raise AisecInputError(
            f"load-test target {url!r}: {refused} connection(s) refused because the address was not loopback "
            "(name resolution changed?); nothing was sent to it"
        )


#: The load test's checks, in report order.
LOAD_CHECKS = CheckRegistry[LoadRun]("load test")


@LOAD_CHECKS.register("latency_slo", finds=(F_SLO,))
def latency_slo(run: LoadRun) -> Outcome:
    """Finds a p95 latency above ``slo_p95_ms`` (high); nothing when no SLO is set."""
    out = Outcome()
    p50, p95, p99 = run.percentiles
    slo = run.plan.slo_p95_ms
    if slo is not None and p95 is not None and p95 > slo:
        out.add(
            F_SLO,
            "high",
            f"p95 latency {p95:.1f} ms above the SLO {slo:g} ms",
            run.plan.url,
            {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99},
        )
    return out


@LOAD_CHECKS.register("error_rate", finds=(F_ERRORS,))
def error_rate(run: LoadRun) -> Outcome:
    """Finds an error rate above ``max_error_rate`` (high): failures, 3xx, 4xx other than 429, 5xx
    (429 too with ``count_rate_limited_as_errors``)."""
    out = Outcome()
    if run.error_rate > run.plan.max_error_rate:
        out.add(
            F_ERRORS,
            "high",
            f"Error rate {run.error_rate:.1%} above {run.plan.max_error_rate:.1%}",
            run.plan.url,
            {"status_counts": dict(run.statuses), "errors": run.errors, "sent": run.done},
        )
    return out


@LOAD_CHECKS.register("redirects", finds=(F_REDIRECT,))
def redirects(run: LoadRun) -> Outcome:
    """Finds redirect responses (high): never followed, so only the validated target is tested."""
    out = Outcome()
    if run.redirects:
        out.add(
            F_REDIRECT,
            "high",
            f"{run.redirects} response(s) were redirects: never followed (only the validated target is tested), "
            "counted as errors",
            run.plan.url,
            {"redirects": run.redirects},
        )
    return out


@LOAD_CHECKS.register("incomplete", finds=(F_INCOMPLETE,))
def incomplete(run: LoadRun) -> Outcome:
    """Finds a run stopped by the duration cap before every planned request was sent (info)."""
    out = Outcome()
    if run.done < run.plan.requests:
        out.add(
            F_INCOMPLETE,
            "info",
            f"Duration cap {run.plan.duration_s:g}s reached after {run.done} of {run.plan.requests} requests",
            run.plan.url,
            {"sent": run.done, "planned": run.plan.requests},
        )
    return out


def run_load_test(
    url: str,
    *,
    requests: int = 100,
    concurrency: int = 10,
    duration_s: float = 60.0,
    timeout_s: float = 5.0,
    payload: bytes | None = None,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    client_id: str = LOADTEST_CLIENT_ID,
    slo_p95_ms: float | None = None,
    max_error_rate: float = 0.01,
    count_rate_limited_as_errors: bool = False,
    allow_remote: bool = False,
) -> Report:
    """Send up to ``requests`` requests with ``concurrency`` workers for at most ``duration_s`` seconds.

    Report metrics: p50/p95/p99 latency (ms), throughput (req/s), error rate, status counts. Status
    ``fail`` when p95 exceeds ``slo_p95_ms`` or the error rate exceeds ``max_error_rate``. HTTP 429
    (rate limited) is counted separately and not as an error unless ``count_rate_limited_as_errors``.
    When nothing at all could be sent (connection refused everywhere) the endpoint is down:
    :class:`~airflow_aisec.exceptions.AisecTransientError` (retryable).
    """
    plan = _plan(
        url,
        requests=requests,
        concurrency=concurrency,
        duration_s=duration_s,
        timeout_s=timeout_s,
        payload=payload,
        method=method,
        headers=headers,
        client_id=client_id,
        slo_p95_ms=slo_p95_ms,
        max_error_rate=max_error_rate,
        count_rate_limited_as_errors=count_rate_limited_as_errors,
        allow_remote=allow_remote,
    )
    report = Report.start("load_test", url, tags=TAGS)
    run = _send(plan)
    _refuse_undecidable(run)
    p50, p95, p99 = run.percentiles
    report.metrics.update(
        {
            "requests_planned": requests,
            "requests_sent": run.done,
            "concurrency": concurrency,
            "wall_seconds": round(run.wall, 4),
            "throughput_rps": round(run.done / run.wall, 2) if run.wall > 0 else None,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "latency_max_ms": run.latencies[-1] if run.latencies else None,
            "error_rate": run.error_rate,
            "rate_limited": run.rate_limited,
            "slo_p95_ms": slo_p95_ms,
        }
    )
    report.details["status_counts"] = dict(sorted(run.statuses.items()))
    report.details["bounds"] = {"requests": requests, "concurrency": concurrency, "duration_s": duration_s}
    LOAD_CHECKS.run(run, report)
    tput = report.metrics["throughput_rps"]
    p95_txt = f"{p95:.1f}" if p95 is not None else "n/a"
    return report.finish(
        None,
        f"{run.done} requests, c={concurrency}: p95 {p95_txt} ms"
        + (f" (SLO {slo_p95_ms:g})" if slo_p95_ms else "")
        + f", {tput} req/s, errors {run.error_rate:.1%}, 429s {run.rate_limited}",
    )
