"""A bounded load test of a model endpoint (the article's ``ab -n 1000 -c 10``), stdlib only.

Every run is bounded three ways — request count, concurrency and wall-clock duration (hard caps
below) — and each request has a timeout, so it always stops by itself. Non-loopback targets are
refused unless ``allow_remote=True``: a load test is a denial-of-service tool when pointed at the
wrong host.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping

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


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise AisecInputError(f"load-test URL {url!r} must be http(s)://host[:port]/path")
    if not allow_remote and not _is_loopback(parsed.hostname):
        raise AisecInputError(
            f"load-test URL {url!r} is not on loopback; pass allow_remote=True (--allow-remote) to load-test another host"
        )
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
    hdrs = {"User-Agent": "airflow-aisec-loadtest", "X-Client-Id": client_id, **dict(headers or {})}
    if payload is not None:
        hdrs.setdefault("Content-Type", "application/json")

    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + duration_s

    def take() -> bool:
        nonlocal issued
        with lock:
            if issued >= requests or time.monotonic() >= deadline:
                return False
            issued += 1
            return True

    def worker() -> None:
        while take():
            req = urllib.request.Request(url, data=payload, method=method, headers=hdrs)
            t0 = time.perf_counter()
            try:  # no request starts after the deadline; one in flight ends within timeout_s
                with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                    resp.read(MAX_RESPONSE_BYTES)
                    key = str(resp.status)
            except urllib.error.HTTPError as exc:
                exc.read(MAX_RESPONSE_BYTES)
                key = str(exc.code)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                key = "timeout" if isinstance(reason, (socket.timeout, TimeoutError)) else "connection_error"
            elapsed = (time.perf_counter() - t0) * 1000.0
            with lock:
                statuses[key] += 1
                if key.isdigit():
                    latencies.append(elapsed)

    report = Report.start("load_test", url, tags=TAGS)
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"aisec-load-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + timeout_s + 1.0)
    wall = time.perf_counter() - start

    done = sum(statuses.values())
    if done and statuses["connection_error"] == done:
        raise AisecTransientError(f"load-test endpoint {url!r} refused every connection (is it up?)")
    rate_limited = statuses.get("429", 0)
    errors = sum(
        n for k, n in statuses.items() if not k.isdigit() or int(k) >= 500 or (400 <= int(k) < 500 and k != "429")
    )
    if count_rate_limited_as_errors:
        errors += rate_limited
    error_rate = errors / done if done else 1.0
    lat = sorted(latencies)
    p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
    report.metrics.update(
        {
            "requests_planned": requests,
            "requests_sent": done,
            "concurrency": concurrency,
            "wall_seconds": round(wall, 4),
            "throughput_rps": round(done / wall, 2) if wall > 0 else None,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "latency_max_ms": lat[-1] if lat else None,
            "error_rate": error_rate,
            "rate_limited": rate_limited,
            "slo_p95_ms": slo_p95_ms,
        }
    )
    report.details["status_counts"] = dict(sorted(statuses.items()))
    report.details["bounds"] = {"requests": requests, "concurrency": concurrency, "duration_s": duration_s}
    if slo_p95_ms is not None and p95 is not None and p95 > slo_p95_ms:
        report.add_finding(
            F_SLO,
            "high",
            f"p95 latency {p95:.1f} ms above the SLO {slo_p95_ms:g} ms",
            url,
            {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99},
        )
    if error_rate > max_error_rate:
        report.add_finding(
            F_ERRORS,
            "high",
            f"Error rate {error_rate:.1%} above {max_error_rate:.1%}",
            url,
            {"status_counts": dict(statuses), "errors": errors, "sent": done},
        )
    if done < requests:
        report.add_finding(
            F_INCOMPLETE,
            "info",
            f"Duration cap {duration_s:g}s reached after {done} of {requests} requests",
            url,
            {"sent": done, "planned": requests},
        )
    tput = report.metrics["throughput_rps"]
    p95_txt = f"{p95:.1f}" if p95 is not None else "n/a"
    return report.finish(
        None,
        f"{done} requests, c={concurrency}: p95 {p95_txt} ms"
        + (f" (SLO {slo_p95_ms:g})" if slo_p95_ms else "")
        + f", {tput} req/s, errors {error_rate:.1%}, 429s {rate_limited}",
    )
