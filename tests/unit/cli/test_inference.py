"""``aisec inference-audit``, ``aisec load-test``, ``aisec inference-reference``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_aisec.cli import main
from airflow_aisec.core.inference_audit import _iso, input_hash
from tests.http_helpers import ok_endpoint

T0 = 1_760_000_000.0  # 2025-10-09: log timestamps in the future are refused


def _write_log(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def _row(t, client, feats, latency=4.0, status=200):
    return {
        "ts": _iso(T0 + t),
        "client_id": client,
        "input_hash": input_hash(feats),
        "features": feats,
        "latency_ms": latency,
        "status": status,
    }


def test_inference_audit_exit_codes(tmp_path, capsys):
    log = tmp_path / "inference.jsonl"
    _write_log(log, [_row(i * 10.0, "app", [0.1 * i, 0.0]) for i in range(12)])
    assert main(["inference-audit", str(log)]) == 0
    capsys.readouterr()
    _write_log(log, [_row(i * 0.5, "scraper", [float(i), 0.0]) for i in range(30)])
    assert main(["inference-audit", str(log), "--rate-limit", "10/minute", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["location"] == "client:scraper"
    assert main(["inference-audit", str(log), "--rate-limit", "100/minute"]) == 0
    capsys.readouterr()
    assert main(["inference-audit", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_reference_then_profile_ood(tmp_path, capsys):
    rng = np.random.default_rng(0)
    csv = tmp_path / "ref.csv"
    rows = ["a,b,label"] + [f"{x:.4f},{y:.4f},1" for x, y in rng.normal(size=(200, 2))]
    csv.write_text("\n".join(rows) + "\n")
    ref = tmp_path / "ref.json"
    assert main(["inference-reference", str(csv), "-o", str(ref), "--exclude", "label"]) == 0
    assert [f["name"] for f in json.loads(ref.read_text())["features"]] == ["a", "b"]
    log = tmp_path / "inference.jsonl"
    _write_log(log, [_row(i * 10.0, f"c{i % 3}", [40.0, 0.0] if i % 2 else [0.0, 0.0]) for i in range(12)])
    capsys.readouterr()
    assert main(["inference-audit", str(log), "--profile", str(ref), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["metrics"]["ood_share"] == pytest.approx(0.5)
    assert main(["inference-reference", str(tmp_path / "nope.csv"), "-o", str(ref)]) == 2


def test_load_test_cli(tmp_path, capsys):
    with ok_endpoint() as url:
        payload = tmp_path / "payload.json"
        payload.write_text('{"features": [1, 2]}')
        argv = ["load-test", url, "--requests", "20", "--concurrency", "2", "--payload", str(payload)]
        assert main([*argv, "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["metrics"]["requests_sent"] == 20
        assert main([*argv, "--slo-p95-ms", "0.0001"]) == 1
    capsys.readouterr()
    assert main(["load-test", "http://192.0.2.1/predict", "--requests", "1", "--concurrency", "1"]) == 2
    assert "not on loopback" in capsys.readouterr().err
