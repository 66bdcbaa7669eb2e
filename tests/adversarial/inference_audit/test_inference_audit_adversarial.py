"""Inference-log audit under hostile logs and references.

Guarantees exercised (docs/inference.md): every row of a batched request is checked for OOD and
counted against the rate limit; a line that cannot be attributed (bad JSON, duplicate keys, bad or
future timestamp, wrong types, over-long) is counted and, by default, makes the audit ``error``
(exit 2); case/whitespace/Unicode variants of a client id are one client; exemptions match the
logged id exactly; rotated siblings of the log are read, and one that cannot be read is an error;
a hostile reference is exit 2; outputs onto directories / symlinks are refused.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core import inference_audit as inf
from airflow_aisec.core.inference_audit import logfiles, records
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.strategies import json_values as json_values_of

T0 = 1_760_000_000.0  # 2025-10-09
REF = {"features": [{"name": "a", "low": 0.0, "high": 1.0}, {"name": "b", "low": 0.0, "high": 1.0}]}


def line(t, client="app", features=None, status=200, **extra):
    row = {"ts": inf._iso(T0 + t), "client_id": client, "latency_ms": 3.0, "status": status}
    if features is not None:
        row["features"] = features
    row.update(extra)
    return json.dumps(row)


def calm(n=30, client="app"):
    """Legit traffic: one in-range row every 10 s."""
    return [line(i * 10.0, client, [0.5, 0.5]) for i in range(n)]


# ------------------------------------------------------------------------------ batches: OOD and rate
@settings(max_examples=60)
@given(
    batch=st.integers(2, 40),
    position=st.integers(0, 39),
    value=st.sampled_from([5.0, -3.0, 1e300, -1e-9, 1.0000001]),
)
def test_every_row_of_a_batch_is_checked_for_ood(batch, position, value):
    rows = [[0.5, 0.5] for _ in range(batch)]
    rows[position % batch] = [0.5, value]
    lines = [*calm(), line(5.0, "adv", rows)]
    report = inf.audit_log(lines, reference=REF, max_ood_share=0.0, rate_limit_per_minute=1000)
    ood = [f for f in report.findings if f.id == inf.F_OOD]
    assert report.status == "fail"
    assert ood[0].details["ood"] == 1
    assert ood[0].details["with_features"] == 30 + batch
    assert ood[0].details["top_clients"] == [{"client_id": "adv", "ood": 1}]


@settings(max_examples=60)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=8), spacing=st.floats(0.1, 7.0))
def test_rate_limit_counts_rows_not_requests(sizes, spacing):
    limit = 10
    lines = [*calm(), *(line(i * spacing, "bulk", [[0.5, 0.5]] * n) for i, n in enumerate(sizes))]
    report = inf.audit_log(lines, rate_limit_per_minute=limit)
    times = [i * spacing for i in range(len(sizes))]
    # ground truth: largest number of rows in any 60 s window
    best = max(sum(n for t2, n in zip(times, sizes, strict=True) if t <= t2 < t + 60) for t in times)
    flagged = [f for f in report.findings if f.id == inf.F_RATE_UNENFORCED and f.location == "client:bulk"]
    assert bool(flagged) == (best > limit)
    if flagged:
        assert flagged[0].details["max_per_minute_served"] == best
        assert report.status == "fail"


def test_declared_row_count_is_used_when_features_are_not_logged():
    lines = [*calm(), *(line(i, "bulk", rows=50) for i in range(3))]
    report = inf.audit_log(lines, rate_limit_per_minute=10)
    assert any(f.id == inf.F_RATE_UNENFORCED and f.location == "client:bulk" for f in report.findings)


@settings(max_examples=30)
@given(n=st.integers(20, 40), batch=st.integers(2, 6))
def test_one_row_repeated_inside_varied_batches_is_probing(n, batch):
    probe = [0.25, 0.75]
    lines = [line(i * 70.0, "prober", [[0.1 * (i % 7), 0.5]] * (batch - 1) + [probe]) for i in range(n)]
    report = inf.audit_log([*calm(), *lines], repeat_threshold=20)
    probing = [f for f in report.findings if f.id == inf.F_PROBING and f.location == "client:prober"]
    assert probing and probing[0].details["repeats"] >= n
    assert probing[0].details["input_hash"] == inf.input_hash(probe)


@settings(max_examples=30)
@given(
    spellings=st.lists(
        st.sampled_from([[1, 0], [1.0, 0], [1, 0.0], [1.0, 0.0], [1, -0.0], [1.0, -0.0]]), min_size=20, max_size=30
    )
)
def test_one_probe_in_different_number_spellings_is_one_input(spellings):
    # the model sees the same floats for 1 / 1.0 and 0 / 0.0 / -0.0: the repeat count must not split
    lines = [line(i * 70.0, "prober", row) for i, row in enumerate(spellings)]
    report = inf.audit_log([*calm(), *lines], repeat_threshold=20)
    probing = [f for f in report.findings if f.id == inf.F_PROBING and f.location == "client:prober"]
    assert probing and probing[0].details["repeats"] == len(spellings)
    assert report.status == "warn"


@pytest.mark.parametrize("features", [["x", 1], [[0.5, 0.5], "row"], [[0.5, [1]]], {"a": 1}, "0.5,0.5", [True, 1]])
def test_malformed_features_count_as_out_of_distribution(features):
    lines = [*calm(10), line(3.0, "adv", features)]
    report = inf.audit_log(lines, reference=REF, max_ood_share=0.0)
    ood = next(f for f in report.findings if f.id == inf.F_OOD)
    assert ood.severity == "high"
    assert ood.details["malformed_feature_requests"] == 1


def test_served_requests_without_features_are_reported_when_a_reference_is_given():
    lines = [*calm(10), *(line(100 + i, "quiet") for i in range(3))]
    report = inf.audit_log(lines, reference=REF)
    assert report.metrics["ood_unchecked_requests"] == 3
    assert any(f.id == inf.F_OOD_UNCHECKED and f.severity == "medium" for f in report.findings)
    assert report.status == "warn"


# ------------------------------------------------------------------------------ unattributable lines
hostile_ts = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "not a time",
            "",
            "2025-13-45T00:00:00Z",
            "NaN",
            "1e999",
            "２０２５-10-09T00:00:00Z",
            "2025-10-09T00:00:00+25:00",
            "2025-10-09T00:00:00Z" + " " * 100,
            "x" * 10_000,
        ]
    ),
    st.sampled_from([None, True, False, [], {}, [T0], 1e20, -1.0, 0, 253402300800, 2**70]),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 631152000 <= x <= 1.8e9),
    st.text(max_size=40),
)


@settings(max_examples=150)
@given(ts=hostile_ts, n_bad=st.integers(1, 5))
def test_bad_timestamps_are_counted_and_fail_closed(ts, n_bad):
    bad_lines = []
    for i in range(n_bad):
        row = {"client_id": "scraper", "status": 200, "latency_ms": 1.0}
        if ts is not None:
            row["ts"] = ts
        bad_lines.append(json.dumps(row) if i % 2 == 0 else json.dumps({**row, "timestamp": ts}))
    try:
        inf.parse_timestamp(ts)
        return  # a plausible timestamp is not hostile (st.text may produce one)
    except ValueError:
        pass
    lines = calm() + bad_lines
    report = inf.audit_log(lines)
    assert report.status == "error"
    assert report.metrics["unparseable_lines"] == n_bad
    assert report.metrics["requests"] == 30
    tolerant = inf.audit_log(lines, max_bad_line_share=0.5)
    assert tolerant.status == "warn"
    assert any(f.id == inf.F_BAD_LINES for f in tolerant.findings)


def test_far_future_burst_cannot_leave_the_rate_window_silently():
    burst = [line(0, "scraper", [0.5, 0.5], ts="9999-01-01T00:00:00Z") for _ in range(50)]
    report = inf.audit_log([*calm(), *burst])
    assert report.status == "error"
    assert report.metrics["unparseable_lines"] == 50


def test_out_of_order_lines_are_still_one_window():
    burst = [line(30.0 - i * 0.5, "scraper", [0.5, 0.5]) for i in range(20)]  # written newest first
    report = inf.audit_log([*burst[::2], *calm(), *burst[1::2]])
    assert any(f.id == inf.F_RATE_UNENFORCED and f.location == "client:scraper" for f in report.findings)


hostile_lines = st.sampled_from(
    [
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "client_id": "b"}',
        '{"ts": "2025-10-09T00:00:01Z", "ts": "2025-10-09T00:00:02Z", "client_id": "a"}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "latency_ms": NaN}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "latency_ms": ' + "9" * 400 + "}",
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "latency_ms": 1e999}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "x": ' + "[" * 500 + "]" * 500 + "}",
        '{"ts": "2025-10-09T00:00:01Z", "client_id": 7}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": ""}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "\u200b \u200b"}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "' + "a" * 300 + '"}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "status": [200]}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "status": 99999}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "latency_ms": "fast"}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "latency_ms": -5}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "rows": -1}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "rows": true}',
        '{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "input_hash": 5}',
        '{"ts": "2025-10-09T00:00:01Z", "client": "a", "client_id": "b"}',
        "\ufeff{}",
        "[1, 2, 3]",
        '"just a string"',
        "{",
        "\x00\x01\x02",
    ]
) | st.binary(min_size=1, max_size=60).filter(lambda b: b.strip() != b"")


@settings(max_examples=120)
@given(bad=st.lists(hostile_lines, min_size=1, max_size=6), where=st.integers(0, 30))
def test_hostile_lines_are_counted_never_crash(bad, where):
    lines: list = list(calm())
    for b in bad:
        lines.insert(where % (len(lines) + 1), b)
    n_bad = 0
    for b in bad:
        try:
            records._parse_line(b.strip() if isinstance(b, (str, bytes)) else b, "probe")
        except ValueError:
            n_bad += 1
    report = inf.audit_log(lines)
    assert report.metrics["unparseable_lines"] == n_bad
    assert report.metrics["requests"] == 30 + len(bad) - n_bad
    assert report.status == ("error" if n_bad else report.status)


def test_huge_line_in_a_file_is_bounded_and_counted(tmp_path):
    log = tmp_path / "app.jsonl"
    with open(log, "w") as fh:
        fh.write("\n".join(calm()) + "\n")
        fh.write('{"ts": "2025-10-09T00:00:01Z", "client_id": "a", "pad": "' + "x" * (inf.MAX_LINE_BYTES + 10) + '"}\n')
        fh.write(line(1.0, "after", [0.5, 0.5]) + "\n")
    report = inf.audit_log(log, max_bad_line_share=0.2)
    assert report.metrics["unparseable_lines"] == 1
    assert report.metrics["requests"] == 31  # the line after the long one is still read
    bad = next(f for f in report.findings if f.id == inf.F_BAD_LINES)
    assert "longer than" in json.dumps(bad.details["reasons"])
    assert "xxxx" not in json.dumps(report.to_dict())  # never line content


# ------------------------------------------------------------------------------ client identity
def _variants(base):
    return st.sampled_from(
        [
            base,
            base.upper(),
            base.title(),
            f" {base}",
            f"{base}\t",
            base[:3] + "\u200b" + base[3:],
            base[:2] + "\u00ad" + base[2:],
            "".join(chr(ord(c) + 0xFEE0) for c in base),  # fullwidth
            base.replace("s", "\u017f"),  # long s: casefolds to s
            f"\u202e{base}",
            # invisible default-ignorable characters that are not Cf: variation selectors, combining
            # grapheme joiner, Hangul fillers, Mongolian selectors, variation-selector supplement
            base[:4] + "\ufe0f" + base[4:],
            base[:1] + "\u034f" + base[1:],
            base[:5] + "\u3164" + base[5:],
            base[:3] + "\u180b" + base[3:],
            f"{base}\U000e0100",
        ]
    )


@settings(max_examples=60)
@given(ids=st.lists(_variants("scraper"), min_size=2, max_size=10, unique=True))
def test_client_id_variants_are_one_client(ids):
    burst = [line(i * 0.5, ids[i % len(ids)], [0.5, 0.5]) for i in range(len(ids) * 3)]  # 3 each, >= 6 total
    limit = 5
    report = inf.audit_log([*calm(), *burst], rate_limit_per_minute=limit)
    flagged = [f for f in report.findings if f.id == inf.F_RATE_UNENFORCED and f.location == "client:scraper"]
    assert flagged, [f.location for f in report.findings]
    assert flagged[0].details["max_per_minute_served"] == len(burst)
    assert flagged[0].details["n_id_variants"] == len(set(ids))


@pytest.mark.parametrize(
    "variant", ["AISEC-LOADTEST", " aisec-loadtest", "aisec-loadtest\u200b", "ａｉｓｅｃ-loadtest"]
)
def test_a_variant_of_an_exempt_id_is_not_exempt(variant):
    burst = [line(i * 0.5, variant, [0.5, 0.5]) for i in range(30)]
    report = inf.audit_log([*calm(), *burst], exempt_clients=["aisec-loadtest"])
    assert report.status == "fail"
    assert report.metrics["exempt_requests"] == 0


# ------------------------------------------------------------------------------ rotated logs, directories
def test_rotated_siblings_are_read_so_a_split_burst_is_seen(tmp_path):
    burst = [line(100 + i * 0.5, "scraper", [0.5, 0.5]) for i in range(24)]
    (tmp_path / "app.log").write_text("\n".join(calm() + burst[:8]) + "\n")
    (tmp_path / "app.log.1").write_text("\n".join(burst[8:16]) + "\n")
    with gzip.open(tmp_path / "app.log.2.gz", "wt") as fh:
        fh.write("\n".join(burst[16:]) + "\n")
    report = inf.audit_log(tmp_path / "app.log")
    flagged = [f for f in report.findings if f.id == inf.F_RATE_UNENFORCED]
    assert flagged[0].details["max_per_minute_served"] == 24
    assert sorted(report.details["sources"]["read"]) == ["app.log", "app.log.1", "app.log.2.gz"]


@pytest.mark.parametrize("name", ["app.log.3.zst", "app.log.4.gz", "app.log-20251008.bz2"])
def test_rotated_sibling_that_cannot_be_read_is_an_error(tmp_path, name):
    (tmp_path / "app.log").write_text("\n".join(calm()) + "\n")
    (tmp_path / name).write_bytes(b"\x28\xb5\x2f\xfd garbage" if name.endswith(".zst") else b"not compressed")
    report = inf.audit_log(tmp_path / "app.log")
    assert report.status == "error"
    assert any(f.id == inf.F_NOT_READ for f in report.findings)
    assert main(["inference-audit", str(tmp_path / "app.log")]) == 2


def test_directory_reads_rotated_and_compressed_logs_and_lists_the_rest(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n".join(calm(10)) + "\n")
    (tmp_path / "a.jsonl.1").write_text("\n".join(calm(5, "other")) + "\n")
    (tmp_path / "b.log.2.bz2").write_bytes(bz2.compress(("\n".join(calm(4, "third")) + "\n").encode()))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.jsonl").write_text("\n".join(calm(50, "ghost")) + "\n")
    report = inf.audit_log(tmp_path)
    assert report.metrics["requests"] == 19
    assert sorted(report.details["sources"]["ignored"]) == [".hidden.jsonl", "notes.txt"]
    assert any(f.id == inf.F_IGNORED_FILES for f in report.findings)


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_a_log_named_entry_of_a_directory_that_cannot_be_read_is_an_error_not_ignored(tmp_path, kind):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("\n".join(calm(10)) + "\n")
    burst = tmp_path / "elsewhere.jsonl"  # the scraper's traffic, behind a link the audit does not follow
    burst.write_text("\n".join(line(i * 0.5, "scraper", [0.5, 0.5]) for i in range(50)) + "\n")
    if kind == "symlink":
        (logs / "b.jsonl").symlink_to(burst)
    elif kind == "directory":
        (logs / "b.jsonl").mkdir()
    else:
        os.mkfifo(logs / "b.jsonl")
    report = inf.audit_log(logs, rate_limit_per_minute=10)
    assert report.status == "error"
    assert [d["file"] for d in report.details["sources"]["not_read"]] == ["b.jsonl"]
    assert "b.jsonl" not in report.details["sources"]["ignored"]


def test_decompression_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(logfiles, "MAX_TOTAL_BYTES", 10_000)
    (tmp_path / "app.log").write_text("\n".join(calm(5)) + "\n")
    with gzip.open(tmp_path / "app.log.1.gz", "wb") as fh:
        fh.write(b"\n" * 1_000_000)
    with pytest.raises(AisecInputError, match="more than 10000 bytes"):
        inf.audit_log(tmp_path / "app.log")
    assert main(["inference-audit", str(tmp_path / "app.log")]) == 2


def test_line_count_is_bounded(monkeypatch):
    monkeypatch.setattr(records, "MAX_LINES", 50)
    with pytest.raises(AisecInputError, match="more than 50 log lines"):
        inf.audit_log(calm(60))
    assert inf.audit_log(calm(50)).metrics["requests"] == 50


# ------------------------------------------------------------------------------ hostile reference JSON
@pytest.mark.parametrize(
    "text",
    [
        '{"features": [{"name": "a", "low": 0, "high": 1}], "features": []}',
        '{"features": [{"name": "a", "low": 0, "low": -1e9, "high": 1}]}',
        '{"features": [{"name": "a", "low": NaN, "high": 1}]}',
        '{"features": [{"name": "a", "low": 0, "high": ' + "9" * 400 + "}]}",
        '{"features": [{"name": "a", "low": 0, "high": 1e999}]}',
        '{"features": [{"name": "a", "low": "0", "high": 1}]}',
        '{"features": [{"name": "a", "low": true, "high": 1}]}',
        '{"features": [{"name": "a", "low": 0, "high": 1}, {"name": "a", "low": 0, "high": 1}]}',
        '{"features": [{"name": 5, "low": 0, "high": 1}]}',
        '{"features": {"a": [0, 1]}}',
        '{"features": []}',
        '{"schema": "aisec.inference-reference/v9", "features": [{"name": "a", "low": 0, "high": 1}]}',
        '{"features": [{"name": "a", "low": 0, "high": 1, "x": ' + "[" * 100 + "]" * 100 + "}]}",
        "[]",
        "\ufeff{}",
    ],
)
def test_hostile_reference_is_exit_2(tmp_path, text):
    ref = tmp_path / "ref.json"
    ref.write_text(text)
    log = tmp_path / "app.jsonl"
    log.write_text("\n".join(calm()) + "\n")
    with pytest.raises(AisecInputError, match="reference|JSON|features|schema"):
        inf.load_reference(ref)
    assert main(["inference-audit", str(log), "--profile", str(ref)]) == 2


# ------------------------------------------------------------------------------ inference-reference outputs
@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,label\n" + "\n".join(f"{i * 0.1},{i * 0.2},{i % 2}" for i in range(20)) + "\n")
    return path


@pytest.mark.parametrize("exclude", ["Label", "label ", "lab", "nope"])
def test_exclude_naming_an_absent_column_is_exit_2(tmp_path, csv, exclude, capsys):
    out = tmp_path / "ref.json"
    assert main(["inference-reference", str(csv), "-o", str(out), "--exclude", exclude]) == 2
    assert "does not have" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["dir", "symlink", "under_file"])
def test_reference_output_refuses_bad_destinations(tmp_path, csv, kind):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    dest = {"dir": tmp_path / "d", "symlink": tmp_path / "l.json", "under_file": victim / "x.json"}[kind]
    if kind == "dir":
        dest.mkdir()
    if kind == "symlink":
        dest.symlink_to(victim)
    before = sorted(os.listdir(tmp_path))
    assert main(["inference-reference", str(csv), "-o", str(dest), "--exclude", "label"]) == 2
    assert victim.read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == before


json_values = json_values_of(int_bound=10**20)
log_objects = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.one_of(st.just("2025-10-09T00:00:05Z"), st.just(T0 + 3), json_values),
        "client_id": st.one_of(st.just("Mallory"), json_values),
        "features": st.one_of(st.just([[0.5, 0.5], [2.0, 0.5]]), json_values),
        "status": st.one_of(st.just(200), json_values),
        "latency_ms": json_values,
        "rows": json_values,
        "input_hash": json_values,
    },
)


@settings(max_examples=60)
@given(objs=st.lists(log_objects, min_size=1, max_size=8))
def test_generated_log_objects_never_crash_and_every_line_is_accounted_for(objs):
    extra = [json.dumps(o) for o in objs]
    lines = [*calm(5), *extra]
    report = inf.audit_log(lines, reference=REF, max_bad_line_share=1.0)
    assert report.metrics["requests"] + report.metrics["unparseable_lines"] == len(lines)
    assert report.status in ("pass", "warn", "fail")
    strict = inf.audit_log(lines, reference=REF)
    assert strict.status == ("error" if report.metrics["unparseable_lines"] else report.status)
