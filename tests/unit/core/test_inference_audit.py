"""Inference-log audit: abuse, latency, errors, probing, OOD share; findings carry hashes only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_aisec.core import inference_audit as inf
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

T0 = 1_760_000_000.0  # 2025-10-09: log timestamps in the future are refused


def _line(t, client, features=None, latency=5.0, status=200, **extra):
    row = {"ts": inf._iso(T0 + t), "client_id": client, "latency_ms": latency, "status": status, "output": [1]}
    if features is not None:
        row["features"] = features
        row["input_hash"] = inf.input_hash(features)
    row.update(extra)
    return json.dumps(row)


def _normal_traffic(n_clients=3, per_client=8):
    rng = np.random.default_rng(1)
    lines = []
    for c in range(n_clients):
        for i in range(per_client):
            lines.append(_line(c + i * 7.0, f"app-{c}", rng.normal(size=3).round(4).tolist()))
    return lines


def _ids(report):
    return [f.id for f in report.findings]


def test_abusive_client_and_latency_spike_are_both_found():
    lines = _normal_traffic()
    # a client served 40 requests in 20 s (limit 10/minute not enforced) …
    lines += [_line(100 + i * 0.5, "scraper-7", [float(i), 0.0, 0.0]) for i in range(40)]
    # … and one latency spike from a normal client
    lines.append(_line(50, "app-1", [0.1, 0.2, 0.3], latency=2400.0))
    report = inf.audit_log(lines, latency_slo_ms=500)
    assert report.status == "fail"
    abuse = [f for f in report.findings if f.id == inf.F_RATE_UNENFORCED]
    assert [(f.location, f.severity) for f in abuse] == [("client:scraper-7", "high")]
    assert abuse[0].details["max_per_minute_served"] == 40
    spike = [f for f in report.findings if f.id == inf.F_SPIKE]
    assert len(spike) == 1
    assert spike[0].details["count"] == 1
    assert spike[0].details["max_ms"] == 2400.0
    assert spike[0].details["worst_client_id"] == "app-1"
    assert spike[0].details["worst_input_hash"] == inf.input_hash([0.1, 0.2, 0.3])
    assert report.metrics["clients_over_limit"] == 1
    assert set(report.tags) >= {"AML.T0024", "OWASP-ML01"}


def test_throttled_abuse_is_a_warning_and_normal_traffic_passes():
    normal = inf.audit_log(_normal_traffic())
    assert normal.status == "pass"
    assert normal.findings == []
    lines = _normal_traffic()
    lines += [_line(100 + i, "scraper", [1.0, 2.0, float(i)], status=200 if i < 10 else 429) for i in range(25)]
    report = inf.audit_log(lines)
    assert report.status == "warn"
    assert _ids(report) == [inf.F_RATE_ATTEMPT]
    assert report.findings[0].details["rate_limited_responses"] == 15
    assert report.findings[0].details["max_per_minute_served"] == 10


def test_rate_window_is_sliding_not_calendar_minutes():
    # 8 requests at the end of one minute and 8 at the start of the next: 16 within 60 s
    lines = [_line(50 + i, "c", [float(i)]) for i in range(8)] + [_line(61 + i, "c", [float(i)]) for i in range(8)]
    report = inf.audit_log(lines)
    assert _ids(report) == [inf.F_RATE_UNENFORCED]
    spread = [_line(i * 7.0, "c", [float(i)]) for i in range(16)]
    assert inf.audit_log(spread).status == "pass"


def test_exempt_client_is_not_rate_checked():
    lines = [_line(i * 0.1, "aisec-loadtest", [0.0]) for i in range(100)]
    assert inf.audit_log(lines).status == "fail"
    assert inf.audit_log(lines, exempt_clients=["aisec-loadtest"]).status == "pass"


def test_p95_above_slo_fails():
    lines = [_line(i * 10.0, f"c{i % 5}", [float(i)], latency=900.0 if i % 5 == 0 else 50.0) for i in range(40)]
    report = inf.audit_log(lines, latency_slo_ms=500)
    assert report.status == "fail"
    slo = next(f for f in report.findings if f.id == inf.F_SLO)
    assert slo.details["p95_ms"] == pytest.approx(900.0)
    assert report.metrics["latency_p50_ms"] == pytest.approx(50.0)


def test_error_rate():
    lines = [_line(i * 10.0, f"c{i % 4}", [float(i)], status=500 if i < 4 else 200) for i in range(40)]
    report = inf.audit_log(lines, max_error_rate=0.05)
    assert _ids(report) == [inf.F_ERRORS]
    assert report.metrics["error_rate"] == pytest.approx(0.1)


def test_repeated_input_probing():
    lines = [_line(i * 7.0, "prober", [1.0, 1.0, 1.0]) for i in range(25)]
    report = inf.audit_log(lines, repeat_threshold=20)
    probe = [f for f in report.findings if f.id == inf.F_PROBING]
    assert probe[0].details["repeats"] == 25
    assert probe[0].details["input_hash"] == inf.input_hash([1.0, 1.0, 1.0])


def test_ood_share_against_reference_ranges():
    rng = np.random.default_rng(3)
    ref = inf.build_reference_ranges(rng.normal(size=(1000, 3)))
    assert [f["name"] for f in ref["features"]] == ["f0", "f1", "f2"]
    normal = [_line(i * 7.0, f"c{i % 3}", rng.normal(size=3).round(3).tolist()) for i in range(40)]
    assert inf.audit_log(normal, reference=ref).metrics["ood_share"] == 0.0
    adversarial = normal + [_line(300 + i * 7.0, "adv", [25.0, 0.0, 0.0]) for i in range(10)]
    report = inf.audit_log(adversarial, reference=ref, max_ood_share=0.05)
    ood = next(f for f in report.findings if f.id == inf.F_OOD)
    assert ood.severity == "high"
    assert ood.details["ood"] == 10
    assert ood.details["top_clients"] == [{"client_id": "adv", "ood": 10}]
    assert "25.0" not in json.dumps(report.to_dict()["findings"])  # never raw inputs


def test_ood_needs_features_when_reference_given():
    lines = [json.dumps({"ts": T0 + i, "client_id": "c", "input_hash": "sha256:ab", "status": "ok"}) for i in range(3)]
    ref = {"features": [{"name": "f0", "low": 0, "high": 1}]}
    with pytest.raises(AisecUndecidableError, match="no record carries features"):
        inf.audit_log(lines, reference=ref)


def test_window_and_bad_lines():
    lines = [_line(i * 10.0, "c", [float(i)]) for i in range(10)] + ["not json", '{"ts": "x"}']
    report = inf.audit_log(lines, since=T0 + 45, until=T0 + 75)
    assert report.metrics["requests"] == 3
    assert report.metrics["unparseable_lines"] == 2
    assert inf.F_BAD_LINES in _ids(report)
    with pytest.raises(AisecUndecidableError, match="no inference records"):
        inf.audit_log(lines, since=T0 + 1000)
    with pytest.raises(AisecUndecidableError, match="no parseable records"):
        inf.audit_log(["garbage", "{}"])


def test_log_file_and_directory(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n".join(_normal_traffic(1, 3)) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(_normal_traffic(1, 2)) + "\n")
    assert inf.audit_log(tmp_path).metrics["requests"] == 5
    assert inf.audit_log(tmp_path / "a.jsonl").subject.endswith("a.jsonl")
    with pytest.raises(AisecInputError, match="does not exist"):
        inf.audit_log(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("text", "per_minute"), [("10/minute", 10.0), ("2/second", 120.0), ("600/hour", 10.0), (5, 5.0), ("7", 7.0)]
)
def test_parse_rate(text, per_minute):
    assert inf.parse_rate(text) == pytest.approx(per_minute)


@pytest.mark.parametrize("bad", ["ten/minute", "10/fortnight", "0/minute", -3])
def test_parse_rate_rejects(bad):
    with pytest.raises(AisecInputError, match="rate limit"):
        inf.parse_rate(bad)


def test_reference_validation(tmp_path):
    with pytest.raises(AisecInputError, match="2-D"):
        inf.build_reference_ranges([1.0, 2.0])
    with pytest.raises(AisecInputError, match="low <= high"):
        inf.load_reference({"features": [{"low": 2, "high": 1}]})
    with pytest.raises(AisecInputError, match="does not exist"):
        inf.load_reference(tmp_path / "nope.json")
    const = inf.build_reference_ranges(np.column_stack([np.ones(10), np.arange(10.0)]))
    assert const["features"][0]["low"] < 1.0 < const["features"][0]["high"]


def test_time_arguments():
    assert inf.parse_time_arg("2027-01-15T08:00:00Z", "since") == pytest.approx(1800000000.0)
    assert inf.parse_time_arg(None, "since") is None
    with pytest.raises(AisecInputError, match="until 'yesterday'"):
        inf.parse_time_arg("yesterday", "until")


def test_exempt_synthetic_traffic_does_not_dilute_the_ood_share():
    ref = {"features": [{"name": "f0", "low": -1.0, "high": 1.0}]}
    lines = [_line(i * 0.1, "aisec-loadtest", [0.0]) for i in range(90)]
    lines += [_line(i * 7.0, "user", [5.0 if i < 5 else 0.0]) for i in range(10)]
    report = inf.audit_log(lines, reference=ref, exempt_clients=["aisec-loadtest"], max_ood_share=0.2)
    assert report.metrics["ood_share"] == pytest.approx(0.5)
    assert report.status == "fail"


def test_reference_from_drift_profile_columns():
    """Issue 5's profile columns (duck-typed here: the drift engine lives on another branch)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(5)
    values = np.sort(rng.normal(10.0, 2.0, size=5000))
    grid = values[np.minimum(((np.arange(1000) + 0.5) / 1000 * values.size).astype(int), values.size - 1)]
    columns = {
        "label": SimpleNamespace(meta={"kind": "categorical"}, arrays={}),
        "x": SimpleNamespace(meta={"kind": "numeric", "min": values[0], "max": values[-1]}, arrays={"quantiles": grid}),
        "c": SimpleNamespace(meta={"kind": "numeric", "min": 1.0, "max": 1.0}, arrays={"quantiles": np.ones(1000)}),
    }
    ref = inf.reference_from_profile_columns(columns)
    assert [f["name"] for f in ref["features"]] == ["x", "c"]
    x = ref["features"][0]
    q1, q3 = np.percentile(values, [25, 75])
    assert x["low"] == pytest.approx(q1 - 3 * (q3 - q1), abs=0.05)
    assert x["high"] == pytest.approx(q3 + 3 * (q3 - q1), abs=0.05)
    assert ref["features"][1]["low"] < 1.0 < ref["features"][1]["high"]
    assert inf.load_reference(ref)["features"] == ref["features"]
    with pytest.raises(AisecInputError, match="not a usable numeric column"):
        inf.reference_from_profile_columns(columns, features=["label"])
    with pytest.raises(AisecInputError, match="no column 'y'"):
        inf.reference_from_profile_columns(columns, features=["y"])


def test_drift_profile_file_without_the_drift_engine_is_a_clear_error(tmp_path):
    path = tmp_path / "ref.profile"
    path.write_bytes(inf.DRIFT_PROFILE_MAGIC + b" v1\n" + b"\x00" * 16)
    try:
        import airflow_aisec.core.profile  # noqa: F401
    except ImportError:
        with pytest.raises(AisecInputError, match="drift engine"):
            inf.load_reference(path)
    else:  # merged: the drift engine verifies the file and fails closed on this truncated one
        with pytest.raises(Exception, match="profile"):
            inf.load_reference(path)


def test_old_import_path_still_works_with_a_deprecation_warning():
    import importlib
    import sys

    from airflow_aisec.core.inference_audit import records

    sys.modules.pop("airflow_aisec.core.inference", None)
    with pytest.warns(DeprecationWarning, match="airflow_aisec.core.inference_audit"):
        old = importlib.import_module("airflow_aisec.core.inference")
    assert old.audit_log is inf.audit_log
    assert old._parse_line is records._parse_line
    assert old.F_OOD == inf.F_OOD
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = old.nope


def test_every_finding_id_has_one_registered_check_with_a_docstring():
    ids = [fid for check in inf.CHECKS for fid in check.finds]
    declared = {v for k, v in vars(inf).items() if k.startswith("F_")}
    assert sorted(ids) == sorted(declared)
    assert all(check.doc for check in inf.CHECKS)
    assert inf.CHECKS.names()[:3] == ["rate_limit", "rows_unknown", "latency_slo"]
