"""Partitioned drift under hostile parts: every merge that cannot prove it saw exactly one source,
one profile and every partition once is exit 2 (never a verdict)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.cli import main

N = 300


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("adv_part")
    rng = np.random.default_rng(5)
    for name, shift in (("ref", 0.0), ("cur", 0.0), ("other", 1.0)):
        table = pa.table({"x": rng.normal(shift, 1, N), "c": rng.choice(["a", "b"], N)})
        pq.write_table(table, base / f"{name}.parquet", row_group_size=50)
    for k in (1, 2, 3):
        for src in ("ref", "other"):
            out = base / f"{src}-{k}.prof"
            assert (
                main(["profile", "build", str(base / f"{src}.parquet"), "--partition", f"{k}/3", "-o", str(out)]) == 0
            )
    assert (
        main(["profile", "merge", *(str(base / f"ref-{k}.prof") for k in (1, 2, 3)), "-o", str(base / "ref.prof")]) == 0
    )
    assert main(["profile", "build", str(base / "other.parquet"), "-o", str(base / "other.prof")]) == 0
    for k in (1, 2, 3):
        for prof in ("ref", "other"):
            args = ["drift", "--profile", str(base / f"{prof}.prof"), str(base / "cur.parquet"), "--partial"]
            assert main([*args, "--partition", f"{k}/3", "-o", str(base / f"{prof}-{k}.json")]) == 0
    return base


def test_complete_parts_merge_with_a_verdict(files):
    assert main(["drift", "merge", *(str(files / f"ref-{k}.json") for k in (1, 2, 3))]) in (0, 1)


@pytest.mark.parametrize(
    "parts",
    [
        ["ref-1", "ref-2"],  # missing partition
        ["ref-1", "ref-2", "ref-2"],  # repeated
        ["ref-1", "ref-2", "ref-3", "ref-3"],  # one too many
        ["ref-1", "ref-2", "other-3"],  # computed against another profile
    ],
)
def test_incomplete_or_mixed_partials_are_exit_2(files, parts, capsys):
    assert main(["drift", "merge", *(str(files / f"{p}.json") for p in parts)]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "parts",
    [["ref-1", "ref-2"], ["ref-1", "ref-2", "ref-2"], ["ref-1", "ref-2", "other-3"]],
)
def test_incomplete_or_mixed_part_profiles_are_exit_2(files, parts, tmp_path):
    out = tmp_path / "m.prof"
    assert main(["profile", "merge", *(str(files / f"{p}.prof") for p in parts), "-o", str(out)]) == 2
    assert not out.exists()


def test_a_tampered_partial_is_exit_2(files, tmp_path):
    doc = json.loads((files / "ref-2.json").read_text())
    doc["features"]["x"]["n_finite"] += 1  # a count changed without its digest
    (tmp_path / "t.json").write_text(json.dumps(doc))
    parts = [str(files / "ref-1.json"), str(tmp_path / "t.json"), str(files / "ref-3.json")]
    assert main(["drift", "merge", *parts]) == 2


def test_a_tampered_partial_with_a_recomputed_digest_is_still_refused_when_inconsistent(files, tmp_path):
    import hashlib

    from airflow_aisec.core.drift_partition import _canonical

    doc = json.loads((files / "ref-2.json").read_text())
    doc["partition"]["row_start"] += 1  # overlapping / shifted rows
    doc.pop("digest")
    doc["digest"] = "sha256:" + hashlib.sha256(_canonical(doc)).hexdigest()
    (tmp_path / "t.json").write_text(json.dumps(doc))
    parts = [str(files / "ref-1.json"), str(tmp_path / "t.json"), str(files / "ref-3.json")]
    assert main(["drift", "merge", *parts]) == 2


def test_negative_ks_counts_that_still_add_up_are_refused(files, tmp_path):
    """Counts moved between cells with a negative entry keep the total but would move D: refused."""
    import hashlib

    import numpy as np

    from airflow_aisec.core.drift_partition import _canonical, _pack, _unpack

    doc = json.loads((files / "ref-2.json").read_text())
    counts = _unpack(doc["features"]["x"]["ks_dense"], "x")
    counts[0] -= 5
    counts[-1] += 5
    doc["features"]["x"]["ks_dense"] = _pack(np.asarray(counts))
    doc.pop("digest")
    doc["digest"] = "sha256:" + hashlib.sha256(_canonical(doc)).hexdigest()
    (tmp_path / "t.json").write_text(json.dumps(doc))
    parts = [str(files / "ref-1.json"), str(tmp_path / "t.json"), str(files / "ref-3.json")]
    assert main(["drift", "merge", *parts]) == 2


def test_a_tampered_part_profile_is_exit_2(files, tmp_path):
    raw = bytearray((files / "ref-2.prof").read_bytes())
    raw[-3] ^= 0xFF
    (tmp_path / "t.prof").write_bytes(bytes(raw))
    parts = [str(files / "ref-1.prof"), str(tmp_path / "t.prof"), str(files / "ref-3.prof")]
    assert main(["profile", "merge", *parts, "-o", str(tmp_path / "m.prof")]) == 2


def test_partials_against_a_replaced_profile_are_exit_2(files, tmp_path):
    import shutil

    shutil.copy(files / "other.prof", tmp_path / "ref.prof")
    parts = [str(files / f"ref-{k}.json") for k in (1, 2, 3)]
    assert main(["drift", "merge", *parts, "--profile", str(tmp_path / "ref.prof")]) == 2


def test_partials_swapped_for_a_clean_window_are_refused_against_their_task_reports(tmp_path):
    """An attacker who can write the partials directory replaces every partial of a drifted window with
    valid partials of a clean window of the same shape (same schema, rows, profile): each passes its own
    digest and the merge says *no drift*. The partition tasks' reports (their XCom) bind the merge to the
    files the tasks wrote, so the swap is an error instead of a false pass."""
    from airflow_aisec.core.drift_partition import merge_partials, write_partial
    from airflow_aisec.exceptions import AisecUndecidableError

    rng = np.random.default_rng(11)
    pq.write_table(pa.table({"x": rng.normal(0, 1, 600)}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": rng.normal(0, 1, 600)}), tmp_path / "clean.parquet")
    pq.write_table(pa.table({"x": rng.normal(2, 1, 600)}), tmp_path / "drifted.parquet")
    assert main(["profile", "build", str(tmp_path / "ref.parquet"), "-o", str(tmp_path / "ref.prof")]) == 0
    paths = [tmp_path / f"part-{k}.json" for k in (1, 2, 3)]
    reports = [
        write_partial(tmp_path / "drifted.parquet", profile=tmp_path / "ref.prof", partition=f"{k}/3", output=p)
        for k, p in zip((1, 2, 3), paths, strict=True)
    ]
    digests = [r.details["partial"]["digest"] for r in reports]
    assert merge_partials(paths).status.value == "fail"  # the drift the tasks saw
    for k, p in zip((1, 2, 3), paths, strict=True):  # the swap, onto the very same paths
        write_partial(tmp_path / "clean.parquet", profile=tmp_path / "ref.prof", partition=f"{k}/3", output=p)
    assert merge_partials(paths).status.value == "pass"  # unbound: the false pass this test is about
    with pytest.raises(AisecUndecidableError, match="is not the partial its partition task reported"):
        merge_partials(paths, part_digests=digests)
    assert merge_partials(paths, part_digests=[None, None, None]).status.value == "pass"  # bare paths: unbound


@pytest.mark.parametrize(
    "bad",
    [
        b"PAR1 not really parquet PAR1",  # garbage under a Parquet name
        "typed",  # the same column with another type, not castable to the window's
    ],
)
def test_a_hostile_file_in_a_directory_window_fails_the_partitions_that_span_it(files, tmp_path, bad, capsys):
    """A window of files with one unreadable or mistyped file: each partition reads only its own row
    groups, so the partitions that span the file are exit 2 and no merge can be complete; never a
    verdict over the rest of the window."""
    window = tmp_path / "window"
    window.mkdir()
    table = pq.read_table(files / "cur.parquet")
    for i in range(3):
        pq.write_table(table.slice(i * 100, 100), window / f"{i}.parquet", row_group_size=50)
    if bad == "typed":
        mistyped = pa.table({"x": pa.array([f"v{v}" for v in range(100)]), "c": pa.array(["a"] * 100)})
        pq.write_table(mistyped, window / "1.parquet")
    else:
        (window / "1.parquet").write_bytes(bad)
    codes = []
    for k in (1, 2, 3):
        out = tmp_path / f"part-{k}.json"
        args = ["drift", "--profile", str(files / "ref.prof"), str(window), "--partial", "--partition", f"{k}/3"]
        codes.append(main([*args, "-o", str(out)]))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert main(["drift", "--profile", str(files / "ref.prof"), str(window)]) == 2  # nor the whole window
    if bad == "typed":  # footers readable: 300 rows, the middle partition reads the mistyped file
        assert codes == [0, 2, 0]
        parts = [str(tmp_path / f"part-{k}.json") for k in (1, 3)]
        assert main(["drift", "merge", *parts]) == 2  # what the other partitions wrote cannot merge alone
    else:  # an unreadable footer: no partition can even count the window
        assert codes == [2, 2, 2]
