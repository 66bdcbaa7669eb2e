"""The model server loads only through the verify-before-load path: swap, mismatch, malicious model."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import urllib.request
from pathlib import Path

import pytest
from aisec_demo import model_server as srv
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan
from airflow_aisec.exceptions import AisecCheckFailed


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[bytes, bytes]:
    """Two different valid joblib models (the verified one predicts 1, the swapped-in one 0 on the probe)."""
    import io

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(80, 2))
    y = (x[:, 0] > 0).astype(int)
    blobs = []
    for labels in (y, 1 - y):
        buf = io.BytesIO()
        joblib.dump(LogisticRegression().fit(x, labels), buf)
        blobs.append(buf.getvalue())
    return blobs[0], blobs[1]


def _predict(url: str) -> list:
    req = urllib.request.Request(url + "/predict", data=json.dumps({"features": [3.0, 0.0]}).encode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["predictions"]


def test_server_serves_the_verified_model_even_if_the_file_is_swapped_during_the_scan(tmp_path, models, monkeypatch):
    good, other = models
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    real_scan = modelscan.scan_bytes

    def swap_then_scan(*a, **kw):
        path.write_bytes(other)  # a valid model, but not the verified one
        return real_scan(*a, **kw)

    monkeypatch.setattr(modelscan, "scan_bytes", swap_then_scan)
    digest = hashlib.sha256(good).hexdigest()
    with srv.ModelServer(path, expected_sha256=digest, log_path=tmp_path / "l.jsonl") as s:
        with urllib.request.urlopen(s.url + "/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["model_sha256"] == digest
        assert _predict(s.url) == [1]  # the swapped-in model would answer 0
    assert path.read_bytes() == other


@settings(max_examples=25)
@given(flip=st.integers(0, 10_000))
def test_cli_digest_mismatch_exits_1_with_a_fail_report_and_no_model(tmp_path_factory, models, flip):
    good, _ = models
    d = tmp_path_factory.mktemp("cli")
    path = d / "model.joblib"
    i = flip % len(good)
    path.write_bytes(good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1 :])
    ready = d / "ready.json"
    rc = srv._main(
        [
            "--model",
            str(path),
            "--sha256",
            hashlib.sha256(good).hexdigest(),
            "--log",
            str(d / "l"),
            "--ready-file",
            str(ready),
        ]
    )
    info = json.loads(ready.read_text())
    assert rc == 1
    assert "digest mismatch" in info["error"]
    assert info["report"]["status"] == "fail"
    assert "url" not in info


def test_cli_malicious_model_listed_in_a_manifest_is_refused(tmp_path):
    sentinel = tmp_path / "PWNED"

    class Trojan:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps({"model": 1, "hook": Trojan()}, protocol=4))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": {"model.joblib": hashlib.sha256(path.read_bytes()).hexdigest()}}))
    ready = tmp_path / "ready.json"
    rc = srv._main(
        ["--model", str(path), "--manifest", str(manifest), "--log", str(tmp_path / "l"), "--ready-file", str(ready)]
    )
    info = json.loads(ready.read_text())
    assert rc == 1
    assert "did not pass the model scan" in info["error"]
    assert info["report"]["status"] == "fail"
    assert not sentinel.exists()


def test_server_without_evidence_refuses(tmp_path, models):
    good, _ = models
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    ready = tmp_path / "ready.json"
    rc = srv._main(["--model", str(path), "--log", str(tmp_path / "l"), "--ready-file", str(ready)])
    assert rc == 2
    assert "is required" in json.loads(ready.read_text())["error"]


def test_server_refuses_a_manifest_signed_with_another_key(tmp_path, models):
    from airflow_aisec.core.signing import generate_ed25519_keypair, load_signing_key, sign

    good, _ = models
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"files": {"model.joblib": hashlib.sha256(good).hexdigest()}}))
    generate_ed25519_keypair(tmp_path / "a", tmp_path / "a.pub")
    generate_ed25519_keypair(tmp_path / "b", tmp_path / "b.pub")
    sig = tmp_path / "m.sig"
    sig.write_text(json.dumps(sign(manifest.read_bytes(), load_signing_key(tmp_path / "b"))))
    s = srv.ModelServer(
        path, manifest_path=manifest, signature_path=sig, verify_key=tmp_path / "a.pub", log_path=tmp_path / "l"
    )
    with pytest.raises(AisecCheckFailed, match="signature invalid"):
        s.start()
    assert s.model is None
    s2 = srv.ModelServer(
        path, manifest_path=manifest, signature_path=sig, verify_key=Path(tmp_path / "b.pub"), log_path=tmp_path / "l"
    )
    with s2:
        assert s2.model_sha256 == hashlib.sha256(good).hexdigest()
