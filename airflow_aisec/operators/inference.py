"""Inference security: audit a model endpoint's inference log; load-test the endpoint (bounded)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import SEVERITIES, parse_fail_on

if TYPE_CHECKING:
    from airflow.sdk import Context


def _is_remote(uri: str) -> bool:
    from airflow_aisec.utils.uri import is_remote

    return is_remote(uri)


class InferenceLogAuditOperator(AisecBaseOperator):
    """Audit a window of structured inference logs (JSON lines) for abuse, latency, errors, probing and OOD.

    Per-client request rate over any 60-second window against ``rate_limit`` (served above it → the limit
    is not enforced, high, AML.T0024; attempted above it but throttled → medium), latency p50/p95/p99
    against ``latency_slo_ms``, error rate, repeated-input probing, and the share of out-of-distribution
    inputs against ``reference`` (per-feature robust ranges, see
    :func:`airflow_aisec.core.inference_audit.build_reference_ranges`). Findings carry input hashes, never
    raw inputs. The task fails when a finding reaches ``fail_severity`` (default ``high``); lower
    findings make the report ``warn`` and the task succeeds.

    :param inference_log: JSON-lines file or directory, local or an object-storage URI (``s3://…``, read with
        ``ObjectStoragePath``; ``storage_conn_id`` names its connection). (templated)
    :param rate_limit: per-client limit, ``"10/minute"`` style or a number per minute. (templated)
    :param latency_slo_ms: latency SLO in milliseconds (p95 above it fails).
    :param max_error_rate: highest acceptable share of 5xx/error responses.
    :param repeat_threshold: same input hash this many times from one client = probing.
    :param reference: reference ranges (path/URI of the JSON, or the dict) for the OOD share. (templated)
    :param max_ood_share: highest acceptable share of out-of-distribution inputs.
    :param exempt_clients: client ids excluded from the rate, probing and OOD checks (synthetic traffic such as the
        load tester), matched exactly (a case or Unicode variant is not exempt); still counted in latency and
        error rate. Rate limits count rows: a batch of 50 rows is 50 against ``rate_limit``.
    :param since: only records at or after this ISO-8601 time (e.g. ``{{ data_interval_start }}``). (templated)
    :param until: only records up to this ISO-8601 time. (templated)
    :param fail_severity: lowest finding severity that fails the task.
    :param storage_conn_id: Airflow connection for an object-storage ``inference_log``/``reference``
        (required for ``s3://`` …: credentials are never taken from the worker's environment). (templated)
    :param log_conn_id: older name of ``storage_conn_id`` (still accepted).
    :param max_bad_line_share: share of log lines that may be unattributable (bad JSON, bad timestamp,
        missing client id, over-long) before the audit is ``error`` (cannot decide). Default 0: any.
    """

    aisec_check = "inference_audit"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "inference_log",
        "rate_limit",
        "reference",
        "since",
        "until",
        "storage_conn_id",
    )
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        inference_log: str,
        rate_limit: str | float = "10/minute",
        latency_slo_ms: float = 500.0,
        max_error_rate: float = 0.05,
        repeat_threshold: int = 20,
        reference: str | Mapping[str, Any] | None = None,
        max_ood_share: float = 0.05,
        exempt_clients: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        fail_severity: str = "high",
        log_conn_id: str | None = None,
        max_bad_line_share: float = 0.0,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not inference_log:
            raise ValueError("InferenceLogAuditOperator needs `inference_log` (a JSON-lines file, directory or URI)")
        parse_fail_on(fail_severity, choices=SEVERITIES, name="fail_severity")
        if isinstance(exempt_clients, str):
            raise TypeError("`exempt_clients` takes a list of client ids, not a string")
        self.inference_log = inference_log
        self.rate_limit = rate_limit
        self.latency_slo_ms = latency_slo_ms
        self.max_error_rate = max_error_rate
        self.repeat_threshold = repeat_threshold
        self.reference = reference
        self.max_ood_share = max_ood_share
        self.exempt_clients = list(exempt_clients)
        self.since = since
        self.until = until
        self.fail_severity = fail_severity
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        self.storage_conn_id = pick_conn_id(storage_conn_id, log_conn_id, "log_conn_id")
        self.max_bad_line_share = max_bad_line_share

    def _read_remote(self, uri: str, sources: dict[str, Any] | None = None) -> list[tuple[str, bytes]]:
        """Lines of an object-storage log (a file, or every log file of a "directory"), bounded.

        Compressed files (``.gz``, ``.bz2``, ``.xz``) are decompressed within the total budget; other
        files are listed in ``sources`` (``ignored`` / ``not_read``) so the report shows them.
        """
        from airflow_aisec.core import inference_audit as inference
        from airflow_aisec.hooks.storage import resolve_storage

        path = resolve_storage(uri, self.storage_conn_id, what="inference log")
        sources = sources if sources is not None else {}
        sources.update(read=[], not_read=[], ignored=[])
        files: list[Any] = []
        if path.is_dir():
            for p in sorted(path.iterdir(), key=lambda p: p.name):
                if inference.is_log_name(p.name) and p.is_file():
                    files.append(p)
                else:
                    sources["ignored"].append(p.name)
        else:
            files = [path]
        lines: list[tuple[str, bytes]] = []
        budget = inference.MAX_TOTAL_BYTES
        for f in files:
            data = f.read_bytes()
            if len(data) > budget:
                raise inference.AisecInputError(f"inference log {uri}: more than {inference.MAX_TOTAL_BYTES} bytes")
            try:
                data = inference.decompress_bounded(data, f.name, budget + 1)
            except inference.AisecInputError as exc:
                sources["not_read"].append({"file": f.name, "reason": str(exc)[:200]})
                continue
            budget -= len(data)
            if budget < 0:
                raise inference.AisecInputError(f"inference log {uri}: more than {inference.MAX_TOTAL_BYTES} bytes")
            sources["read"].append(f.name)
            lines.extend((f"{f.name}:{i}", line) for i, line in enumerate(data.split(b"\n"), 1) if line.strip())
        return lines

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core import inference_audit as inference

        def check() -> Any:
            from airflow_aisec.utils.strictjson import loads
            from airflow_aisec.utils.uri import local_path

            reference = self.reference
            if isinstance(reference, str) and _is_remote(reference):
                raw = b"\n".join(line for _, line in self._read_remote(reference))
                reference = loads(raw, source=f"reference profile {reference}")
            elif isinstance(reference, str):
                reference = local_path(reference)
            kwargs: dict[str, Any] = {
                "reference": reference,
                "rate_limit_per_minute": inference.parse_rate(self.rate_limit),
                "latency_slo_ms": self.latency_slo_ms,
                "max_error_rate": self.max_error_rate,
                "repeat_threshold": self.repeat_threshold,
                "max_ood_share": self.max_ood_share,
                "exempt_clients": self.exempt_clients,
                "since": inference.parse_time_arg(self.since, "since"),
                "until": inference.parse_time_arg(self.until, "until"),
                "fail_severity": self.fail_severity,
                "max_bad_line_share": self.max_bad_line_share,
            }
            if _is_remote(self.inference_log):
                sources: dict[str, Any] = {}
                lines = self._read_remote(self.inference_log, sources)
                return inference.audit_log(lines, subject=self.inference_log, sources=sources, **kwargs)
            return inference.audit_log(local_path(self.inference_log), **kwargs)

        report = self.run_check(context, subject=str(self.inference_log), check=check)
        self.emit_asset_events(
            context,
            {"check": "inference_audit", "status": report["status"], **_pick(report["metrics"], _AUDIT_KEYS)},
        )
        return report


_AUDIT_KEYS = ("requests", "clients_over_limit", "latency_p95_ms", "error_rate", "ood_share")
_LOAD_KEYS = ("requests_sent", "latency_p95_ms", "throughput_rps", "error_rate")


def _pick(metrics: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in keys}


class EndpointLoadTestOperator(AisecBaseOperator):
    """A bounded load test of a model endpoint: p50/p95/p99 latency, throughput, error rate vs an SLO.

    Always stops by itself: at most ``requests`` requests, ``concurrency`` workers and ``duration_s``
    seconds (hard caps 100 000 / 256 / 600 s), each request with ``timeout_s``. Non-loopback URLs are
    refused unless ``allow_remote=True``. An endpoint refusing every connection is a transient error
    (the task retries); an SLO or error-rate breach fails the task.

    :param url: endpoint URL, e.g. ``http://127.0.0.1:8080/predict``. (templated)
    :param requests: total requests to send.
    :param concurrency: parallel workers.
    :param duration_s: wall-clock cap in seconds.
    :param timeout_s: per-request timeout in seconds.
    :param payload: request body (JSON string or dict; sent with POST). (templated)
    :param payload_path: file whose bytes are the request body (instead of ``payload``). (templated)
    :param method: HTTP method (default POST with a payload, else GET).
    :param headers: extra request headers. Never put secrets here: they are rendered in the UI.
    :param client_id: ``X-Client-Id`` header value (default ``aisec-loadtest``).
    :param slo_p95_ms: p95 latency SLO in milliseconds (``None``: report only).
    :param max_error_rate: highest acceptable error share (HTTP 429 excluded unless ``count_rate_limited_as_errors``).
    :param count_rate_limited_as_errors: treat HTTP 429 as errors.
    :param allow_remote: allow a non-loopback target.
    """

    aisec_check = "load_test"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "url", "payload", "payload_path")
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        url: str,
        requests: int = 100,
        concurrency: int = 10,
        duration_s: float = 60.0,
        timeout_s: float = 5.0,
        payload: str | Mapping[str, Any] | None = None,
        payload_path: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        client_id: str = "aisec-loadtest",
        slo_p95_ms: float | None = None,
        max_error_rate: float = 0.01,
        count_rate_limited_as_errors: bool = False,
        allow_remote: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not url:
            raise ValueError("EndpointLoadTestOperator needs `url`")
        if payload is not None and payload_path is not None:
            raise ValueError("give `payload` or `payload_path`, not both")
        self.url = url
        self.requests = requests
        self.concurrency = concurrency
        self.duration_s = duration_s
        self.timeout_s = timeout_s
        self.payload = payload
        self.payload_path = payload_path
        self.method = method
        self.headers = dict(headers or {})
        self.client_id = client_id
        self.slo_p95_ms = slo_p95_ms
        self.max_error_rate = max_error_rate
        self.count_rate_limited_as_errors = count_rate_limited_as_errors
        self.allow_remote = allow_remote

    def _body(self) -> bytes | None:
        from airflow_aisec.exceptions import AisecInputError

        if self.payload_path:
            try:
                with open(self.payload_path, "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise AisecInputError(f"load-test payload {self.payload_path!r} is unreadable: {exc.strerror}") from exc
        if self.payload is None:
            return None
        if isinstance(self.payload, Mapping):
            return json.dumps(dict(self.payload)).encode()
        return str(self.payload).encode()

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.loadtest import run_load_test

        report = self.run_check(
            context,
            subject=self.url,
            check=lambda: run_load_test(
                self.url,
                requests=self.requests,
                concurrency=self.concurrency,
                duration_s=self.duration_s,
                timeout_s=self.timeout_s,
                payload=self._body(),
                method=self.method,
                headers=self.headers,
                client_id=self.client_id,
                slo_p95_ms=self.slo_p95_ms,
                max_error_rate=self.max_error_rate,
                count_rate_limited_as_errors=self.count_rate_limited_as_errors,
                allow_remote=self.allow_remote,
            ),
        )
        self.emit_asset_events(
            context, {"check": "load_test", "status": report["status"], **_pick(report["metrics"], _LOAD_KEYS)}
        )
        return report
