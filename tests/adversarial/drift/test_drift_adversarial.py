"""Drift test under hostile options, profiles, windows and output paths.

Guarantees exercised (docs/drift.md, "What PASS means / What it does not cover / Fails closed when"):
an option naming a column that does not exist is exit 2; a profile header with duplicate keys, wrong
types or absurd values is exit 2 even when its digest was recomputed; a profiled feature missing,
retyped or empty in the window fails (never passes); hostile column names are escaped in the HTML
report; ``--html`` / ``-o`` onto a directory, through a symlink or under a file is exit 2 and
nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core.drift import DriftConfig, run_drift
from airflow_aisec.core.drift_html import render_html
from airflow_aisec.core.drift_profile import MAGIC, PAYLOAD_ALIGN, build_profile, load_profile, save_profile
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

N = 400
COLUMNS = ("x", "y", "c")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("adv_drift")
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N), "c": rng.choice(["a", "b", "c"], N)})
    same = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N), "c": rng.choice(["a", "b", "c"], N)})
    ref.to_parquet(base / "ref.parquet")
    same.to_parquet(base / "same.parquet")
    save_profile(build_profile(ref), base / "ref.prof")
    return {"base": base, "ref": ref, "same": same, "prof": base / "ref.prof"}


# ------------------------------------------------------------------------------ options naming columns
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: s not in COLUMNS
)


@settings(max_examples=40)
@given(bad=names, option=st.sampled_from(["--critical", "--columns", "--method"]))
def test_option_naming_an_unknown_column_is_exit_2(data, bad, option, capsys):
    value = f"{bad}=ks" if option == "--method" else bad
    if option == "--method" and "=" in bad:
        value = f"{bad.replace('=', '_')}=ks"
        if value.split("=")[0] in COLUMNS:
            return
    code = main(["drift", "--profile", str(data["prof"]), str(data["base"] / "same.parquet"), option, value])
    captured = capsys.readouterr()
    assert code == 2
    assert "are not" in captured.err or "not among" in captured.err


@pytest.mark.parametrize(
    "config",
    [
        {"critical_features": ("Income",)},  # case variant of nothing: still unknown
        {"critical_features": ("x ",)},  # whitespace variant
        {"critical_features": "x"},  # a string, not a list
        {"columns": ["x"], "critical_features": ("y",)},  # exists but not tested: rule would never fire
        {"columns": ["x"], "methods": {"y": "psi"}},
        {"methods": {"nope": "ks"}},
        {"columns": []},
        {"columns": ["x", "y", "y", "y"]},  # a repeated column would dilute the drift share
        {"critical_features": ("x", "x")},
        {"thresholds": {"js": float("nan")}},
        {"thresholds": {"wasserstein": -1}},
    ],
)
def test_config_that_would_be_a_silent_no_op_is_refused(data, config):
    with pytest.raises(AisecInputError, match="not|list|threshold|empty"):
        run_drift(data["same"], profile=data["prof"], config=DriftConfig(**config))
    with pytest.raises(AisecInputError, match="not|list|threshold|empty"):
        run_drift(data["same"], reference=data["ref"], config=DriftConfig(**config))


@pytest.mark.parametrize("columns", [[], ["x", "x"], "x"])
def test_profile_build_column_selection_must_be_distinct_and_non_empty(data, columns):
    with pytest.raises(AisecInputError, match="columns must be"):
        build_profile(data["ref"], columns=columns)


def test_method_override_given_twice_is_refused(data):
    from airflow_aisec.core.drift import parse_methods

    with pytest.raises(AisecInputError, match="given twice"):
        parse_methods(["x=ks", "x=psi"])
    assert parse_methods(["a=b=ks"]) == {"a=b": "ks"}


def test_critical_feature_that_exists_still_decides(data):
    cur = data["same"].assign(x=data["same"]["x"] + 3)
    report = run_drift(cur, profile=data["prof"], config=DriftConfig(critical_features=("x",), drift_share=1.0))
    assert report.status == "fail"


# ------------------------------------------------------------------------------ untrusted profile header
def _split(raw: bytes) -> tuple[dict, bytes]:
    (hlen,) = struct.unpack_from("<Q", raw, len(MAGIC))
    start = len(MAGIC) + 8
    header = json.loads(raw[start : start + hlen])
    payload_start = start + hlen + (-(start + hlen)) % PAYLOAD_ALIGN
    return header, raw[payload_start:]


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _assemble(header_bytes: bytes, payload: bytes) -> bytes:
    start = len(MAGIC) + 8 + len(header_bytes)
    return MAGIC + struct.pack("<Q", len(header_bytes)) + header_bytes + bytes((-start) % PAYLOAD_ALIGN) + payload


def _reseal(header: dict, payload: bytes) -> bytes:
    """What an attacker who can write the profile does: recompute the digest after editing."""
    header = dict(header)
    header.pop("digest", None)
    header["digest"] = "sha256:" + hashlib.sha256(_canonical(header)).hexdigest()
    return _assemble(_canonical(header), payload)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


HOSTILE_VALUES = [None, True, -1, 2**60, 1.5, "x", [], {}, [[[]]], {"a": 1}, 10**31]


@settings(max_examples=120)
@given(choice=st.integers(0, 10_000), value=st.sampled_from(HOSTILE_VALUES))
def test_resealed_header_with_a_wrong_type_or_absurd_value_is_an_input_error(data, tmp_path_factory, choice, value):
    raw = data["prof"].read_bytes()
    header, payload = _split(raw)
    paths = [p for p in _paths(header) if p[0] in ("columns", "arrays", "payload_bytes", "build")]
    path = paths[choice % len(paths)]
    node = header
    for key in path[:-1]:
        node = node[key]
    if node[path[-1]] == value or (
        path[-1] in ("reason", "source", "created_at") or "build" == path[0] and len(path) > 1
    ):
        return  # free-text / informational fields: any string is fine there
    if isinstance(node[path[-1]], float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return  # a different finite number in a statistic is a content change, caught only by pinning
    node[path[-1]] = value
    target = tmp_path_factory.mktemp("reseal") / "p.prof"
    target.write_bytes(_reseal(header, payload))
    try:
        profile = load_profile(target)
    except (AisecInputError, AisecUndecidableError):
        return
    # accepted: it must then be usable without any crash (and give a decision, not a silent skip)
    report = run_drift(data["same"], profile=profile)
    assert report.status in ("pass", "warn", "fail")
    assert report.metrics["n_features"] == len(COLUMNS)


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace(b'"format":', b'"format":"x","format":', 1),  # duplicate key
        lambda t: t.replace(b'"n_null":0', b'"n_null":NaN', 1),
        lambda t: t.replace(b'"n_null":0', b'"n_null":' + b"9" * 400, 1),
        lambda t: t.replace(b'"build":{', b'"build":{"deep":' + b"[" * 200 + b"]" * 200 + b",", 1),
    ],
)
def test_header_json_tricks_are_input_errors(data, tmp_path, edit):
    raw = data["prof"].read_bytes()
    (hlen,) = struct.unpack_from("<Q", raw, len(MAGIC))
    start = len(MAGIC) + 8
    _, payload = _split(raw)
    target = tmp_path / "p.prof"
    target.write_bytes(_assemble(edit(raw[start : start + hlen]), payload))
    with pytest.raises(AisecInputError, match="invalid JSON|nested too deeply"):
        load_profile(target)
    assert main(["drift", "--profile", str(target), str(data["base"] / "same.parquet")]) == 2


def test_duplicate_column_in_resealed_header_is_refused(data, tmp_path):
    header, payload = _split(data["prof"].read_bytes())
    header["columns"].append(header["columns"][0])
    (tmp_path / "p.prof").write_bytes(_reseal(header, payload))
    with pytest.raises(AisecInputError, match="duplicate column"):
        load_profile(tmp_path / "p.prof")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(bin_edges=m["bin_edges"][::-1]), "not sorted"),
        (lambda m: m.update(min=m["max"] + 1.0), "min <= mean <= max"),
        (lambda m: m.update(n_values=m["n_values"] + 1), "n_rows"),
        (lambda m: m.update(storage="grid"), "arrays"),
        (lambda m: m.update(kind="categorical"), "categorical"),
        (lambda m: m.update(constant=True), "constant"),
        (lambda m: m.update(method="psi"), "method"),
    ],
)
def test_resealed_inconsistent_numeric_column_is_refused(data, tmp_path, edit, message):
    header, payload = _split(data["prof"].read_bytes())
    edit(header["columns"][0]["meta"])
    (tmp_path / "p.prof").write_bytes(_reseal(header, payload))
    with pytest.raises(AisecInputError, match=message):
        load_profile(tmp_path / "p.prof")


def test_resealed_skipped_status_cannot_silently_hide_a_feature(data, tmp_path):
    header, payload = _split(data["prof"].read_bytes())
    header["columns"][0]["meta"]["status"] = "skipped"  # kind stays numeric
    (tmp_path / "p.prof").write_bytes(_reseal(header, payload))
    with pytest.raises(AisecInputError, match="status"):
        load_profile(tmp_path / "p.prof")


# ------------------------------------------------------------------------------ window vs profile
def _run_or_error(cur, prof):
    try:
        return run_drift(cur, profile=prof, config=DriftConfig(drift_share=1.0))
    except AisecUndecidableError as exc:
        return str(exc)


@settings(max_examples=30)
@given(
    damage=st.lists(
        st.tuples(st.sampled_from(COLUMNS), st.sampled_from(["drop", "nan", "retype"])), min_size=1, max_size=3
    )
)
def test_a_profiled_feature_missing_retyped_or_empty_never_passes(data, damage):
    cur = data["same"].copy()
    for col, how in damage:
        if col not in cur.columns:
            continue
        if how == "drop":
            cur = cur.drop(columns=[col])
        elif how == "nan":
            cur[col] = np.nan if col != "c" else None
        else:
            cur[col] = [[1]] * len(cur)  # list column: unsupported type
    if (
        list(cur.columns) == list(COLUMNS)
        and cur.notna().all().all()
        and cur.map(lambda v: not isinstance(v, list)).all().all()
    ):
        return
    report = _run_or_error(cur, data["prof"])
    if isinstance(report, str):  # nothing at all testable: error (exit 2), also never a pass
        assert "could be tested" in report
        return
    assert report.status == "fail"
    assert report.to_dict()["details"]["dataset"]["unusable_features"]
    assert any(f.severity == "high" for f in report.findings)


@pytest.mark.parametrize("labels", [["x", "x", "y", "c"], ["x", "y", "c", "c"], [1, "1", "y", "c"]])
def test_duplicate_column_names_are_refused_on_either_side(data, labels):
    import pyarrow as pa

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(N, 4)), columns=labels)
    table = pa.table([pa.array(rng.normal(size=N)) for _ in labels], names=[str(n) for n in labels])
    for current in (frame, table):
        with pytest.raises(AisecInputError, match="duplicate column"):
            run_drift(current, profile=data["prof"])
        with pytest.raises(AisecInputError, match="duplicate column"):
            run_drift(data["same"], reference=current)


def test_one_row_window_with_an_empty_column_fails(data):
    cur = data["same"].head(1).assign(x=np.nan)
    report = run_drift(cur, profile=data["prof"], config=DriftConfig(drift_share=1.0))
    assert report.status == "fail"
    assert any(f.id == "AISEC-DRIFT-EMPTY-COLUMN" for f in report.findings)


# ------------------------------------------------------------------------------ HTML and outputs
hostile_names = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "</td></tr></table><script>x</script>",
        "<svg onload=alert(1)>",
        "&lt;script&gt;",
        "\u202e<script>",
    ]
) | st.text(st.sampled_from("<>\"'&/= scriptonerr"), min_size=1, max_size=20)


@settings(max_examples=40)
@given(name=hostile_names)
def test_html_report_escapes_hostile_column_names(name):
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({name: rng.normal(size=200), "k": rng.choice(["<b>", name], 200)})
    cur = pd.DataFrame({name: rng.normal(size=200) + 2, "k": rng.choice([name, "<i>"], 200)})
    page = render_html(run_drift(cur, reference=ref, subject=name).to_dict())
    assert "<script" not in page.lower()
    assert "onerror=" not in page.lower().replace("onerror=alert", "") or "<img" not in page.lower()
    assert "<img" not in page.lower() and "<svg onload" not in page.lower()
    # the only tags in the page are the renderer's own
    import re

    tags = set(re.findall(r"<\s*([a-zA-Z!/][a-zA-Z0-9]*)", page))
    assert tags <= {
        "!doctype",
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "p",
        "b",
        "table",
        "tr",
        "th",
        "td",
        "br",
        "small",
        "svg",
        "g",
        "rect",
        "text",
        "/title",
        "/style",
        "/head",
        "/h1",
        "/p",
        "/b",
        "/tr",
        "/th",
        "/td",
        "/small",
        "/g",
        "/text",
        "/svg",
        "/table",
        "/body",
        "/html",
    }


@pytest.mark.parametrize("kind", ["dir", "symlink", "under_file", "dangling_symlink"])
def test_html_and_profile_outputs_refuse_bad_destinations(data, tmp_path, kind, capsys):
    secret = tmp_path / "victim.txt"
    secret.write_text("keep")
    if kind == "dir":
        dest = tmp_path / "out"
        dest.mkdir()
    elif kind == "symlink":
        dest = tmp_path / "link.html"
        dest.symlink_to(secret)
    elif kind == "dangling_symlink":
        dest = tmp_path / "dangle.html"
        dest.symlink_to(tmp_path / "created-through-link")
    else:
        dest = secret / "report.html"
    before = sorted(os.listdir(tmp_path))
    code = main(["drift", "--profile", str(data["prof"]), str(data["base"] / "same.parquet"), "--html", str(dest)])
    assert code == 2
    code = main(["profile", "build", str(data["base"] / "ref.parquet"), "-o", str(dest)])
    assert code == 2
    capsys.readouterr()
    assert secret.read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path / "created-through-link").exists()
    if kind == "dir":
        assert os.listdir(dest) == []


def test_operator_refuses_a_bad_html_destination_before_any_work(data, tmp_path, monkeypatch):
    from airflow_aisec.core import drift as drift_module
    from airflow_aisec.operators.drift import DriftTestOperator

    calls = []
    monkeypatch.setattr(drift_module, "run_drift", lambda *a, **k: calls.append(1))
    (tmp_path / "d").mkdir()
    op = DriftTestOperator(
        task_id="drift",
        profile_path=str(data["prof"]),
        current_path=str(data["base"] / "same.parquet"),
        html_report_path=str(tmp_path / "d"),
    )
    with pytest.raises(AisecInputError, match="is a directory"):
        op._check()
    assert calls == []
    op = DriftTestOperator(
        task_id="drift2",
        profile_path=str(data["prof"]),
        current_path=str(data["base"] / "same.parquet"),
        critical_features="xy",  # a string, not a list: refused, never split into characters
    )
    monkeypatch.undo()
    with pytest.raises(AisecInputError, match="list of column names"):
        op._check()


# --------------------------------------------------------------- a time column is not a number column
def _time_or_number(kind: str, n: int = 400) -> object:
    import datetime as dt
    import decimal

    import pyarrow as pa

    rng = np.random.default_rng(7)
    micros = [1_750_000_000_000_000 + int(x) * 1_000_000 for x in rng.integers(0, 10**6, n)]
    if kind == "timestamp":
        return pa.array(micros, type=pa.timestamp("us"))
    if kind == "int_micros":  # the same instants, as plain integers: same values once read as numbers
        return pa.array(micros, type=pa.int64())
    if kind == "date":
        return pa.array([dt.date(2025, 1, 1) + dt.timedelta(days=int(x)) for x in rng.integers(0, 90, n)])
    if kind == "duration":
        return pa.array([dt.timedelta(seconds=int(x)) for x in rng.integers(0, 1000, n)])
    if kind == "float":
        return pa.array(rng.normal(0, 1, n))
    if kind == "decimal":
        return pa.array([decimal.Decimal(int(x)) / 10 for x in rng.integers(0, 1000, n)], type=pa.decimal128(10, 1))
    return pa.array(rng.integers(0, 1000, n))


@pytest.mark.parametrize(
    ("ref_kind", "cur_kind"),
    [
        ("timestamp", "int_micros"),
        ("int", "timestamp"),
        ("float", "date"),
        ("timestamp", "float"),
        ("date", "decimal"),
        ("decimal", "duration"),
    ],
)
def test_time_column_replaced_by_a_number_column_is_a_type_change(tmp_path, ref_kind, cur_kind):
    # numeric "kind" on both sides, but a time and a number do not mean the same thing: neither a
    # silent PASS (µs integers read as a timestamp) nor an Arrow cast traceback
    import pyarrow as pa

    stable = np.random.default_rng(3).normal(0, 1, 400)
    ref = pa.table({"x": _time_or_number(ref_kind), "y": stable})
    cur = pa.table({"x": _time_or_number(cur_kind), "y": stable})
    for reference in (ref, None):
        if reference is None:
            path = tmp_path / f"{ref_kind}.profile"
            save_profile(build_profile(ref), path)
            report = run_drift(cur, profile=path)
        else:
            report = run_drift(cur, reference=reference)
        assert report.status == "fail"
        assert [f.location for f in report.findings if f.id == "AISEC-DRIFT-TYPE-CHANGED"] == ["x"]
