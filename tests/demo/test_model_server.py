"""The demo model server: verify-before-load, per-client rate limit, structured log, bounded process."""

from __future__ import annotations

import json
import os
import pickle
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aisec_demo import model_server as srv

from airflow_aisec.core.inference_audit import audit_log, input_hash
from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), path)
    return path


def _post(url, body, client=None, raw=None):
    headers = {"Content-Type": "application/json"}
    if client:
        headers["X-Client-Id"] = client
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(url + "/predict", data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def test_serves_rate_limits_and_logs(model_file, tmp_path):
    log = tmp_path / "inference.jsonl"
    digest = srv.sha256_file(model_file)
    with srv.ModelServer(model_file, expected_sha256=digest, log_path=log, rate_limit_per_minute=3) as s:
        assert s.url.startswith("http://127.0.0.1:")
        assert s.port > 0
        codes = [_post(s.url, {"features": [1.0, 0.0, 0.0]}, client="alice")[0] for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        status, body, headers = _post(s.url, {"features": [1.0, 0.0, 0.0]}, client="alice")
        assert status == 429
        assert int(headers["Retry-After"]) >= 1
        status, body, _ = _post(s.url, {"instances": [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]}, client="bob")
        assert (status, body) == (200, {"predictions": [1, 0]})
        assert _post(s.url, {"features": ["x"]}, client="carol")[0] == 400
        assert _post(s.url, None, client="dave", raw=b"{" * (srv.MAX_BODY_BYTES + 1))[0] == 413
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in rows] == [200, 200, 200, 429, 429, 429, 200, 400, 413]
    first = rows[0]
    assert set(first) >= {"ts", "client_id", "input_hash", "output", "latency_ms", "status", "model_sha256"}
    assert first["input_hash"] == input_hash([1.0, 0.0, 0.0])
    assert first["output"] == [1]
    assert first["model_sha256"] == digest
    # the audit reads this log as-is
    report = audit_log(log, rate_limit_per_minute=3)
    assert report.metrics["requests"] == 9
    assert report.findings[0].location == "client:alice"


def test_digest_mismatch_refuses_to_load(model_file, tmp_path):
    s = srv.ModelServer(model_file, expected_sha256="0" * 64, log_path=tmp_path / "l.jsonl")
    with pytest.raises(AisecCheckFailed, match="digest mismatch") as exc:
        s.start()
    assert exc.value.report.findings[0].id == "AISEC-SERVE-DIGEST-MISMATCH"
    assert s.model is None


def test_no_expected_digest_refuses(model_file, tmp_path):
    with pytest.raises(AisecInputError, match="expected SHA-256"):
        srv.ModelServer(model_file, log_path=tmp_path / "l.jsonl").start()


def test_malicious_model_with_matching_digest_is_never_loaded(tmp_path):
    sentinel = tmp_path / "PWNED"

    class Trojan:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Trojan()))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [{"path": "models/model.pkl", "sha256": srv.sha256_file(path)}]}))
    s = srv.ModelServer(path, manifest_path=manifest, log_path=tmp_path / "l.jsonl")
    with pytest.raises(AisecCheckFailed, match="did not pass the model scan") as exc:
        s.start()
    assert exc.value.report.status == "fail"
    assert not sentinel.exists()


def test_aisec_manifest_from_the_integrity_engine(model_file, tmp_path):
    from airflow_aisec.core.integrity import hash_artifact

    manifest = tmp_path / "model.manifest.json"
    hash_artifact(model_file, manifest_path=manifest)
    assert srv.expected_digest_from_manifest(manifest, model_file) == srv.sha256_file(model_file)
    doc = json.loads(manifest.read_text())
    doc["entries"][0]["digest"] = "0" * 64  # edited without updating the root digest
    manifest.write_text(json.dumps(doc))
    with pytest.raises(AisecInputError, match="root digest"):
        srv.expected_digest_from_manifest(manifest, model_file)


def test_manifest_lookup(tmp_path):
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"files": {"model.joblib": {"sha256": "sha256:" + "A" * 64}}}))
    assert srv.expected_digest_from_manifest(m, "/x/model.joblib") == "a" * 64
    with pytest.raises(AisecInputError, match="no sha256"):
        srv.expected_digest_from_manifest(m, "/x/other.joblib")


def test_token_bucket_refills_at_the_configured_rate():
    bucket = srv.TokenBucket(rate_per_minute=6, burst=2)  # one token per 10 s
    assert bucket.take("a", now=0.0) == (True, 0.0)
    assert bucket.take("a", now=0.0)[0] is True
    allowed, retry = bucket.take("a", now=1.0)
    assert allowed is False
    assert retry == pytest.approx(9.0)
    assert bucket.take("b", now=1.0)[0] is True  # per client
    assert bucket.take("a", now=10.5)[0] is True


def test_exempt_client_is_not_limited(model_file, tmp_path):
    digest = srv.sha256_file(model_file)
    with srv.ModelServer(
        model_file,
        expected_sha256=digest,
        log_path=tmp_path / "l.jsonl",
        rate_limit_per_minute=1,
        exempt_clients=["lt"],
    ) as s:
        assert [_post(s.url, {"features": [0.0, 0.0, 0.0]}, client="lt")[0] for _ in range(5)] == [200] * 5


def test_lifetime_is_bounded(model_file, tmp_path):
    s = srv.ModelServer(
        model_file, expected_sha256=srv.sha256_file(model_file), log_path=tmp_path / "l.jsonl", max_lifetime_s=0.5
    )
    s.start()
    assert s.stopped.wait(timeout=10)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(s.url + "/healthz", timeout=2)


@pytest.mark.integration
def test_process_helpers_start_and_stop(model_file, tmp_path):
    info = srv.start_server_process(
        model_file,
        log_path=tmp_path / "inference.jsonl",
        state_dir=tmp_path,
        expected_sha256=srv.sha256_file(model_file),
        max_lifetime_s=120,
    )
    try:
        assert info["url"] == f"http://127.0.0.1:{info['port']}"
        with urllib.request.urlopen(info["url"] + "/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
    finally:
        result = srv.stop_server_process(info)
    assert result["stopped"] is True
    assert not Path(f"/proc/{info['pid']}").exists()
    assert srv.stop_server_process(info)["already_gone"] is True


@pytest.mark.integration
def test_process_refusal_is_reported(model_file, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(AisecCheckFailed, match="digest mismatch"):
        srv.start_server_process(
            model_file, log_path=tmp_path / "l.jsonl", state_dir=tmp_path, expected_sha256="1" * 64
        )
    assert time.monotonic() - t0 < 120


def test_peer_address_as_client_id_defeats_id_rotation(model_file, tmp_path):
    with srv.ModelServer(
        model_file,
        expected_sha256=srv.sha256_file(model_file),
        log_path=tmp_path / "l.jsonl",
        rate_limit_per_minute=2,
        client_id_header=None,
    ) as s:
        codes = [_post(s.url, {"features": [0.0, 0.0, 0.0]}, client=f"rotating-{i}")[0] for i in range(4)]
    assert codes == [200, 200, 429, 429]
    assert {json.loads(line)["client_id"] for line in (tmp_path / "l.jsonl").read_text().splitlines()} == {"127.0.0.1"}


def test_a_batch_costs_one_token_per_row_and_cannot_exceed_the_burst() -> None:
    from aisec_demo.model_server import TokenBucket

    bucket = TokenBucket(rate_per_minute=10)
    assert bucket.take("c", now=0.0, cost=8) == (True, 0.0)
    allowed, retry = bucket.take("c", now=0.0, cost=5)  # 2 tokens left: 3 more need 18 s at 10/min
    assert not allowed and retry == pytest.approx(18.0)
    assert bucket.take("c", now=0.0, cost=2) == (True, 0.0)
    allowed, retry = TokenBucket(rate_per_minute=10).take("d", now=0.0, cost=11)
    assert not allowed and retry == float("inf")
