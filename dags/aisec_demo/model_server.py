"""A minimal, hardened stand-in model server for the demo and the tests (stdlib ``http.server``, loopback).

Demo code: it ships with the example DAGs (``dags/aisec_demo/``), not in the ``airflow-aisec`` wheel.
In production the endpoint is your serving deployment; the provider's checks (load test, inference-log
audit) work against any endpoint and any log in the same JSON-lines shape.

It shows the serving-side practices end to end:

* **verify before load** (:func:`airflow_aisec.core.model_loading.load_verified_model`): the model
  file is read once into memory; the SHA-256 of those bytes must equal the expected digest (given
  directly or read from a manifest, optionally signed) and the model scan of those same bytes must
  pass before they are deserialised (from memory, with only the globals the scan approved) — a
  tampered, swapped or malicious ``model.pkl`` is never unpickled;
* **rate limiting**: a token bucket per client (``X-Client-Id`` header, else the peer address),
  default 10 rows per minute (a batch of N rows costs N tokens); excess requests get HTTP 429 with
  ``Retry-After``;
* **structured inference log**: one JSON line per request — ``ts``, ``client_id``, ``input_hash``,
  ``rows``, ``features`` (optional, for the OOD audit), ``output``, ``latency_ms``, ``status`` — the input the
  :mod:`airflow_aisec.core.inference_audit` reads;
* **bounded**: binds 127.0.0.1 by default (port 0 → a free port), caps request bodies, and stops
  itself after ``max_lifetime_s``.

In-process use (tests)::

    with ModelServer("model.joblib", expected_sha256=digest, log_path="inference.jsonl") as srv:
        urllib.request.urlopen(srv.url + "/healthz")

Inside one Airflow task (host-safe: nothing outlives the task): :func:`serving` (start, yield the URL,
stop in ``finally``). A separate process on this host (tests, local experiments):
:func:`start_server_process` / :func:`stop_server_process`, or ``python -m aisec_demo.model_server --help``
with the DAGs folder on ``PYTHONPATH``.

Endpoints: ``GET /healthz``; ``POST /predict`` with ``{"features": [x1, x2, ...]}`` (one row) or
``{"instances": [[...], ...]}`` → ``{"predictions": [...]}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError, AisecUndecidableError

DEFAULT_RATE_PER_MINUTE = 10.0
MAX_BODY_BYTES = 64 * 1024
MAX_ROWS = 1000
_CLIENT_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_SERVER_MODULE = "aisec_demo.model_server"
#: the folder holding the ``aisec_demo`` package (the DAGs folder): the child process imports from it
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file (:func:`airflow_aisec.core.hashing.file_sha256`)."""
    from airflow_aisec.core.hashing import file_sha256

    return file_sha256(path)


def expected_digest_from_manifest(manifest_path: str | os.PathLike[str], model_path: str | os.PathLike[str]) -> str:
    """The SHA-256 a manifest records for ``model_path`` (see
    :func:`airflow_aisec.core.model_loading.digest_from_manifest` for the accepted formats)."""
    from airflow_aisec.core.model_loading import MAX_EVIDENCE_BYTES, digest_from_manifest, read_regular_file

    raw = read_regular_file(manifest_path, max_bytes=MAX_EVIDENCE_BYTES, what="model manifest")
    return digest_from_manifest(raw, model_path, source=f"model manifest {os.fspath(manifest_path)!r}")


def verify_and_load(
    model_path: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    verify_key: Any = None,
    allow: Sequence[str] = (),
    max_bytes: int | None = None,
) -> tuple[Any, str]:
    """Verify, scan and load the model with :func:`airflow_aisec.core.model_loading.load_verified_model`.

    The file is read once; the digest (and the manifest signature, when configured) is checked and
    the scan runs over those bytes, and the model is deserialised from them. Return (model, sha256).

    :raises AisecInputError: no expected digest given, or an unreadable/oversized/special model or manifest.
    :raises AisecCheckFailed: digest mismatch, invalid manifest signature, or the scan did not pass.
    :raises AisecUndecidableError: the loader met a global the scan did not approve.
    """
    from airflow_aisec.core.model_loading import DEFAULT_MAX_BYTES, load_verified_model

    verified = load_verified_model(
        model_path,
        expected_digest=expected_sha256,
        manifest_path=manifest_path,
        signature_path=signature_path,
        verify_key=verify_key,
        allow=allow,
        max_bytes=max_bytes or DEFAULT_MAX_BYTES,
    )
    return verified.model, verified.sha256


class TokenBucket:
    """Per-client token buckets: ``rate_per_minute`` refill, ``burst`` capacity (default: the rate)."""

    def __init__(self, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE, burst: float | None = None) -> None:
        if rate_per_minute <= 0:
            raise AisecInputError("rate limit must be positive")
        self.rate = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else rate_per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None, *, cost: float = 1.0) -> tuple[bool, float]:
        """Take ``cost`` tokens (one per row) for ``client``: (allowed, seconds until enough tokens).

        A batch costs as many tokens as it has rows, so batching cannot multiply a client's quota; a
        batch larger than the bucket's capacity is never allowed (the wait is ``inf``).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[client] = (tokens - cost, now)
                return True, 0.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > 100_000:  # bound memory: forget full buckets
                self._buckets = {c: v for c, v in self._buckets.items() if v[0] < self.capacity}
            if cost > self.capacity:
                return False, math.inf
            return False, (cost - tokens) / self.rate


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr access log
        return

    def _send(self, code: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            app = self.server.app
            self._send(200, {"status": "ok", "model_sha256": app.model_sha256})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        app = self.server.app
        t0 = time.perf_counter()
        if self.path != "/predict":
            self._send(404, {"error": "not found"})
            return
        header = app.client_id_header
        client = (self.headers.get(header) if header else None) or self.client_address[0]
        if not _CLIENT_RE.match(client):
            client = "invalid-client-id"
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= app.max_body_bytes:
            self.close_connection = True
            app.log(client, None, None, None, t0, 413)
            self._send(413, {"error": f"body must be at most {app.max_body_bytes} bytes"})
            return
        body = self.rfile.read(length)
        rows, ihash = _parse_rows(body)
        cost = len(rows) if rows else 1  # rows, not requests: a batch cannot multiply the quota
        allowed, retry = (True, 0.0) if client in app.exempt_clients else app.bucket.take(client, cost=cost)
        if not allowed:
            app.log(client, ihash, None, None, t0, 429, n_rows=cost)
            if math.isinf(retry):
                self._send(429, {"error": f"a batch of {cost} rows exceeds the per-client burst of the rate limit"})
                return
            self._send(429, {"error": "rate limit exceeded"}, {"Retry-After": str(max(1, math.ceil(retry)))})
            return
        if rows is None:
            app.log(client, ihash, None, None, t0, 400)
            self._send(400, {"error": 'body must be JSON {"features": [numbers]} or {"instances": [[numbers], ...]}'})
            return
        try:
            preds = app.predict(rows)
        except Exception as exc:  # the model raised: a 500 for this request, logged, server keeps running
            app.log(client, ihash, rows, None, t0, 500)
            self._send(500, {"error": f"prediction failed: {type(exc).__name__}"})
            return
        app.log(client, ihash, rows, preds, t0, 200)
        self._send(200, {"predictions": preds})


def _parse_rows(body: bytes) -> tuple[list[list[float]] | None, str | None]:
    from airflow_aisec.core.inference_audit import input_hash
    from airflow_aisec.exceptions import AisecInputError
    from airflow_aisec.utils import strictjson

    try:  # untrusted: duplicate keys, NaN, deep nesting are a bad request, never a guess or a crash
        data = strictjson.loads(body or b"null", source="request body", max_depth=8)
    except AisecInputError:
        return None, "sha256:" + hashlib.sha256(body).hexdigest()
    if not isinstance(data, dict):
        return None, input_hash(data)
    rows = [data["features"]] if "features" in data else data.get("instances")
    ihash = input_hash(data.get("features", data.get("instances")))
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
        return None, ihash
    width = None
    for row in rows:
        if not isinstance(row, list) or not row or (width is not None and len(row) != width):
            return None, ihash
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row):
            return None, ihash
        width = len(row)
    return rows, ihash


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: ModelServer


class ModelServer:
    """A verified model behind a rate-limited, logging HTTP endpoint (see the module docstring).

    :param model_path: joblib/pickle model file (scikit-learn estimator with ``predict``).
    :param expected_sha256: its expected SHA-256 (hex); or give ``manifest_path``.
    :param manifest_path: JSON manifest recording the model's SHA-256.
    :param signature_path: detached signature over the manifest bytes (``aisec sign``); needs ``verify_key``.
    :param verify_key: public key (Ed25519) or HMAC secret file/bytes verifying ``signature_path``.
    :param max_model_bytes: refuse model files larger than this (default 2 GiB).
    :param log_path: JSON-lines inference log (appended).
    :param rate_limit_per_minute: per-client token refill rate (default 10/minute).
    :param burst: bucket capacity (default: the per-minute rate).
    :param exempt_clients: client ids not rate-limited (e.g. the load tester; they are still logged).
    :param host: bind address (default loopback).
    :param port: 0 picks a free port (see :attr:`port` after :meth:`start`).
    :param max_lifetime_s: the server stops itself after this many seconds.
    :param log_features: log the feature vector (needed by the OOD audit); hashes are always logged.
    :param allow: extra allowlisted globals for the pre-load scan.
    :param client_id_header: request header naming the client (the demo trusts it; behind an
        authenticating proxy use the header carrying the authenticated identity). ``None``: the peer
        address is the client id (clients cannot dodge the limit by rotating ids).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        expected_sha256: str | None = None,
        manifest_path: str | os.PathLike[str] | None = None,
        signature_path: str | os.PathLike[str] | None = None,
        verify_key: Any = None,
        max_model_bytes: int | None = None,
        log_path: str | os.PathLike[str],
        rate_limit_per_minute: float = DEFAULT_RATE_PER_MINUTE,
        burst: float | None = None,
        exempt_clients: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        max_lifetime_s: float = 900.0,
        log_features: bool = True,
        max_body_bytes: int = MAX_BODY_BYTES,
        allow: Sequence[str] = (),
        client_id_header: str | None = "X-Client-Id",
    ) -> None:
        if not 0 < max_lifetime_s <= 24 * 3600:
            raise AisecInputError("max_lifetime_s must be in (0, 86400]")
        self.model_path = os.fspath(model_path)
        self.expected_sha256 = expected_sha256
        self.manifest_path = manifest_path
        self.signature_path = signature_path
        self.verify_key = verify_key
        self.max_model_bytes = max_model_bytes
        self.log_path = os.fspath(log_path)
        self.bucket = TokenBucket(rate_limit_per_minute, burst)
        self.exempt_clients = frozenset(exempt_clients)
        self.host = host
        self.port = port
        self.max_lifetime_s = max_lifetime_s
        self.log_features = log_features
        self.max_body_bytes = max_body_bytes
        self.allow = tuple(allow)
        self.client_id_header = client_id_header
        self.model: Any = None
        self.model_sha256 = ""
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._log_lock = threading.Lock()
        self._log_fh: Any = None
        self.stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def predict(self, rows: list[list[float]]) -> list[Any]:
        import numpy as np

        from airflow_aisec.report import jsonable

        out = np.asarray(self.model.predict(np.asarray(rows, dtype=float)))
        return [jsonable(v) for v in out.tolist()]

    def log(
        self, client: str, ihash: str | None, rows: Any, output: Any, t0: float, status: int, n_rows: int | None = None
    ) -> None:
        entry: dict[str, Any] = {
            "ts": _now_iso(),
            "client_id": client,
            "input_hash": ihash,
            "output": output,
            "latency_ms": round((time.perf_counter() - t0) * 1000.0, 3),
            "status": status,
            "model_sha256": self.model_sha256,
        }
        if rows is not None or n_rows is not None:
            entry["rows"] = len(rows) if rows is not None else n_rows  # what the audit counts rates in
        if self.log_features and rows is not None:
            entry["features"] = rows[0] if len(rows) == 1 else rows
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._log_lock:
            if self._log_fh is not None:
                self._log_fh.write(line)
                self._log_fh.flush()

    def start(self) -> str:
        """Verify + scan + load the model, bind, serve in a background thread; return the base URL."""
        self.model, self.model_sha256 = verify_and_load(
            self.model_path,
            expected_sha256=self.expected_sha256,
            manifest_path=self.manifest_path,
            signature_path=self.signature_path,
            verify_key=self.verify_key,
            allow=self.allow,
            max_bytes=self.max_model_bytes,
        )
        if not hasattr(self.model, "predict"):
            raise AisecInputError(f"model {self.model_path!r} has no predict()")
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        self._log_fh = open(self.log_path, "a", encoding="utf-8")
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the log (idempotent)."""
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._log_lock:
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None
        self.stopped.set()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(
    model_path: str | os.PathLike[str],
    *,
    manifest_path: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    exempt_clients: Sequence[str] = (),
    rate_limit_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    max_lifetime_s: float = 600.0,
) -> Iterator[ModelServer]:
    """Serve a verified model for the duration of a ``with`` block (one task, one host), then stop.

    The model is verified against the manifest and scanned before it is loaded; the inference log is
    appended to ``log_path`` (shared storage, so a later task on another host can audit it).
    """
    srv = ModelServer(
        model_path,
        manifest_path=manifest_path,
        log_path=log_path,
        exempt_clients=exempt_clients,
        rate_limit_per_minute=rate_limit_per_minute,
        max_lifetime_s=max_lifetime_s,
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------- processes
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def start_server_process(
    model_path: str | os.PathLike[str],
    *,
    log_path: str | os.PathLike[str],
    state_dir: str | os.PathLike[str],
    expected_sha256: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    verify_key_path: str | os.PathLike[str] | None = None,
    rate_limit_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    burst: float | None = None,
    exempt_clients: Sequence[str] = (),
    max_lifetime_s: float = 900.0,
    startup_timeout_s: float = 180.0,
    log_features: bool = True,
) -> dict[str, Any]:
    """Start the server in its own process (outlives the calling task), on 127.0.0.1 and a free port.

    Returns JSON-able info for :func:`stop_server_process` (and XCom): ``url``, ``port``, ``pid``,
    ``token``, ``log_path``, ``model_sha256``. The child verifies and scans the model before loading
    it; if it refuses, this raises :class:`AisecCheckFailed` (digest/scan) or
    :class:`AisecUndecidableError` naming the cause. The child exits by itself after
    ``max_lifetime_s`` even if nobody stops it.
    """
    os.makedirs(state_dir, exist_ok=True)
    token = secrets.token_hex(8)
    ready = os.path.join(os.fspath(state_dir), f"server-{token}.json")
    cmd = [
        sys.executable,
        "-m",
        _SERVER_MODULE,
        "--model",
        os.fspath(model_path),
        "--log",
        os.fspath(log_path),
        "--ready-file",
        ready,
        "--instance-token",
        token,
        "--rate-limit",
        str(rate_limit_per_minute),
        "--max-lifetime",
        str(max_lifetime_s),
    ]
    if expected_sha256:
        cmd += ["--sha256", expected_sha256]
    if manifest_path:
        cmd += ["--manifest", os.fspath(manifest_path)]
    if signature_path:
        cmd += ["--signature", os.fspath(signature_path)]
    if verify_key_path:
        cmd += ["--verify-key", os.fspath(verify_key_path)]
    if burst is not None:
        cmd += ["--burst", str(burst)]
    for c in exempt_clients:
        cmd += ["--exempt-client", c]
    if not log_features:
        cmd.append("--no-log-features")
    # own session: the server outlives the task process; its stderr goes to a file next to the ready file
    with open(os.path.join(os.fspath(state_dir), f"server-{token}.stderr"), "ab") as err:
        path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": path},
        )
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(ready):
            with open(ready, encoding="utf-8") as fh:
                info = json.load(fh)
            if "error" in info:
                proc.wait(timeout=30)
                _CHILDREN.pop(proc.pid, None)
                if info.get("report"):
                    raise AisecCheckFailed(info["report"], f"model server refused to start: {info['error']}")
                raise AisecUndecidableError(f"model server refused to start: {info['error']}")
            info["token"] = token
            return info
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise AisecUndecidableError(f"model server exited with code {proc.returncode} before it was ready")
        time.sleep(0.1)
    _terminate(proc.pid, token, 5.0)
    raise AisecUndecidableError(f"model server not ready within {startup_timeout_s:g}s")


def _is_our_server(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return _SERVER_MODULE.encode() in argv and token.encode() in argv


def _gone(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is not None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # zombie: exited, parent will reap
    except (OSError, IndexError):
        return True


def _terminate(pid: int, token: str, timeout_s: float) -> bool:
    if not _is_our_server(pid, token):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid):
            break
        time.sleep(0.05)
    else:
        if _is_our_server(pid, token):
            os.kill(pid, signal.SIGKILL)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=10)
    return True


def stop_server_process(info: Mapping[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Stop a server started by :func:`start_server_process` (only if the pid is still that server)."""
    pid, token = int(info["pid"]), str(info["token"])
    stopped = _terminate(pid, token, timeout_s)
    return {"pid": pid, "stopped": stopped, "already_gone": not stopped}


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {_SERVER_MODULE}", description="airflow-aisec demo model server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--sha256")
    parser.add_argument("--manifest")
    parser.add_argument("--signature", help="detached signature over the manifest bytes")
    parser.add_argument("--verify-key", help="public key / HMAC secret file verifying --signature")
    parser.add_argument("--log", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=float, default=DEFAULT_RATE_PER_MINUTE, help="requests/minute per client")
    parser.add_argument("--burst", type=float)
    parser.add_argument("--exempt-client", action="append", default=[])
    parser.add_argument("--max-lifetime", type=float, default=900.0)
    parser.add_argument("--no-log-features", action="store_true")
    parser.add_argument("--ready-file", help="write {url, port, pid} (or {error}) here once started")
    parser.add_argument("--instance-token", default="", help="identifies this instance for stop helpers")
    args = parser.parse_args(argv)

    def ready(data: dict[str, Any]) -> None:
        if args.ready_file:
            from airflow_aisec.utils.fs import write_json_atomic

            write_json_atomic(args.ready_file, data)

    srv = ModelServer(
        args.model,
        expected_sha256=args.sha256,
        manifest_path=args.manifest,
        signature_path=args.signature,
        verify_key=args.verify_key,
        log_path=args.log,
        rate_limit_per_minute=args.rate_limit,
        burst=args.burst,
        exempt_clients=args.exempt_client,
        host=args.host,
        port=args.port,
        max_lifetime_s=args.max_lifetime,
        log_features=not args.no_log_features,
    )
    try:
        srv.start()
    except AisecCheckFailed as exc:
        rep = exc.report.to_dict() if hasattr(exc.report, "to_dict") else exc.report
        ready({"error": str(exc), "report": rep})
        print(f"model server: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        ready({"error": f"{type(exc).__name__}: {exc}"})
        print(f"model server: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.stop, daemon=True).start())
    ready(
        {
            "url": srv.url,
            "port": srv.port,
            "pid": os.getpid(),
            "log_path": srv.log_path,
            "model_sha256": srv.model_sha256,
        }
    )
    print(f"serving {args.model} on {srv.url} (max {args.max_lifetime:g}s)", file=sys.stderr)
    srv.stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
