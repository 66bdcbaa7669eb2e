"""Partitioned hashing: any tree, any partition count → the merge is the single-pass manifest, byte for
byte; every inexact set of parts is refused with a named cause (exit 2) and no manifest is written."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import hashing
from airflow_aisec.core.partition import Part, hash_partition, merge_parts, parse_part, plan_partitions
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.integrity.helpers import NAMES, materialise, run

#: Files of varied sizes (a short pattern repeated up to 3000 times), links, nested and empty folders.
LEAF = st.one_of(
    st.tuples(st.just("file"), st.builds(lambda b, k: b * k, st.binary(min_size=1, max_size=5), st.integers(0, 3000))),
    st.tuples(st.just("symlink"), NAMES),
)
NODE = st.recursive(
    LEAF, lambda children: st.dictionaries(NAMES, children, max_size=3).map(lambda d: ("dir", d)), max_leaves=10
)
TREES = st.dictionaries(NAMES, NODE, max_size=5)


@settings(max_examples=60)
@given(tree=TREES, n=st.integers(1, 8), algorithm=st.sampled_from(["sha256", "blake2b"]))
def test_merged_parts_are_the_single_pass_manifest(tree, n, algorithm):
    tmp = Path(tempfile.mkdtemp(prefix="aisec-part-"))
    try:
        root = tmp / "artifact"
        materialise(root, tree)
        parts = [parse_part(hash_partition(root, f"{k}/{n}", algorithm).to_bytes()) for k in range(1, n + 1)]
        assert sum(len(p.entries) for p in parts) == parts[0].listing_files
        merged = merge_parts(parts[::-1]).to_bytes()
        assert merged == hashing.hash_manifest(root, algorithm).to_bytes()
    finally:
        shutil.rmtree(tmp)


@pytest.fixture
def artifact(tmp_path):
    root = tmp_path / "artifact"
    materialise(
        root, {"w.bin": ("file", b"w" * 9000), "cfg": ("dir", {"a.json": ("file", b"{}")}), "l": ("symlink", "w.bin")}
    )
    (root / "t.txt").write_bytes(b"t" * 4000)
    return root


def _parts(capsys, root, n, tmp_path, *extra):
    paths = []
    for k in range(1, n + 1):
        out = tmp_path / f"part-{k}-{n}{''.join(extra)}.json"
        code, report = run(capsys, ["hash", str(root), "--partition", f"{k}/{n}", "-o", str(out), *extra])
        assert code == 0, report
        paths.append(str(out))
    return paths


def _refused(capsys, tmp_path, parts, match):
    out = tmp_path / "manifest.json"
    code, report = run(capsys, ["manifest", "merge", *parts, "-o", str(out)])
    assert code == 2
    assert report["status"] == "error"
    assert match in report["summary"], report["summary"]
    assert not out.exists()


def _rewrite(path, change):
    """Edit a part as an attacker would: change it, then recompute its part digest."""
    part = parse_part(Path(path).read_bytes())
    Path(path).write_bytes(change(part).to_bytes())


def test_cli_merge_equals_cli_single_pass(capsys, artifact, tmp_path):
    single = tmp_path / "single.json"
    assert run(capsys, ["hash", str(artifact), "-o", str(single)])[0] == 0
    merged = tmp_path / "merged.json"
    code, report = run(capsys, ["manifest", "merge", *_parts(capsys, artifact, 3, tmp_path), "-o", str(merged)])
    assert code == 0 and report["details"]["root_digest"] in single.read_text()
    assert merged.read_bytes() == single.read_bytes()


def test_overlapping_partitions_refused(capsys, artifact, tmp_path):
    p1, p2 = _parts(capsys, artifact, 2, tmp_path)
    _refused(capsys, tmp_path, [p1, p2, p1], "partition 1/2 given twice")


def test_missing_partition_refused(capsys, artifact, tmp_path):
    p1, _p2, p3 = _parts(capsys, artifact, 3, tmp_path)
    _refused(capsys, tmp_path, [p1, p3], "missing partition(s) 2/3")


def test_parts_of_different_partition_counts_refused(capsys, artifact, tmp_path):
    a1, _ = _parts(capsys, artifact, 2, tmp_path)
    _, b2, b3 = _parts(capsys, artifact, 3, tmp_path)
    _refused(capsys, tmp_path, [a1, b2, b3], "parts of different runs")


def test_mixed_algorithms_refused(capsys, artifact, tmp_path):
    p1, _ = _parts(capsys, artifact, 2, tmp_path)
    _, q2 = _parts(capsys, artifact, 2, tmp_path, "--algorithm=sha512")
    _refused(capsys, tmp_path, [p1, q2], "has algorithm 'sha512'")


def test_mixed_symlink_options_refused(capsys, artifact, tmp_path):
    p1, _ = _parts(capsys, artifact, 2, tmp_path)
    _, q2 = _parts(capsys, artifact, 2, tmp_path, "--follow-symlinks")
    _refused(capsys, tmp_path, [p1, q2], "has follow_symlinks 'True'")


def test_parts_of_different_roots_refused(capsys, artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy, symlinks=True)
    p1, _ = _parts(capsys, artifact, 2, tmp_path)
    _, q2 = _parts(capsys, copy, 2, tmp_path, "--workers=1")
    _refused(capsys, tmp_path, [p1, q2], "has root")


def test_a_file_added_between_two_parts_refused(capsys, artifact, tmp_path):
    out1 = tmp_path / "late-1.json"
    assert run(capsys, ["hash", str(artifact), "--partition", "1/2", "-o", str(out1)])[0] == 0
    (artifact / "added.bin").write_bytes(b"added between the two workers")
    out2 = tmp_path / "late-2.json"
    assert run(capsys, ["hash", str(artifact), "--partition", "2/2", "-o", str(out2)])[0] == 0
    _refused(capsys, tmp_path, [str(out1), str(out2)], "has listing_digest")


def test_edited_part_refused(capsys, artifact, tmp_path):
    p1, p2 = _parts(capsys, artifact, 2, tmp_path)
    edited = next(p for p in (p1, p2) if any(e["type"] == "file" for e in json.loads(Path(p).read_text())["entries"]))
    doc = json.loads(Path(edited).read_text())
    next(e for e in doc["entries"] if e["type"] == "file")["digest"] = "0" * 64
    Path(edited).write_text(json.dumps(doc))
    _refused(capsys, tmp_path, [p1, p2], "part digest does not match its content (edited part?)")


def test_entry_dropped_from_a_resealed_part_refused(capsys, artifact, tmp_path):
    p1, p2 = _parts(capsys, artifact, 2, tmp_path)
    _rewrite(p2, lambda p: dataclasses.replace(p, entries=p.entries[1:]))
    _refused(capsys, tmp_path, [p1, p2], "do not add up to the listing")


def test_entry_moved_to_another_resealed_part_refused(capsys, artifact, tmp_path):
    p1, p2 = _parts(capsys, artifact, 2, tmp_path)
    moved = parse_part(Path(p2).read_bytes()).entries[0]
    _rewrite(p2, lambda p: dataclasses.replace(p, entries=p.entries[1:]))
    _rewrite(p1, lambda p: dataclasses.replace(p, entries=tuple(sorted((*p.entries, moved), key=lambda e: e.path))))
    _refused(capsys, tmp_path, [p1, p2], "but the rule assigns it to partition 2/2")


def test_duplicate_entry_across_resealed_parts_refused(capsys, artifact, tmp_path):
    p1, p2 = _parts(capsys, artifact, 2, tmp_path)
    copied = parse_part(Path(p2).read_bytes()).entries[0]
    _rewrite(p1, lambda p: dataclasses.replace(p, entries=(*p.entries, copied)))
    _refused(capsys, tmp_path, [p1, p2], f"duplicate entry {copied.path!r}")


def test_directories_outside_partition_one_refused(artifact):
    p1, p2 = hash_partition(artifact, "1/2"), hash_partition(artifact, "2/2")
    moved = dataclasses.replace(p2, directories=p1.directories)
    with pytest.raises(AisecInputError, match="duplicate entry 'cfg'"):
        merge_parts([p1, moved])
    with pytest.raises(AisecInputError, match="lists directories; the rule records them in partition 1/2"):
        merge_parts([dataclasses.replace(p1, directories=()), moved])


def test_not_a_part_and_no_parts_refused(capsys, artifact, tmp_path):
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(artifact), "-o", str(manifest)])[0] == 0
    _refused(capsys, tmp_path, [str(manifest)], "is not an aisec.manifest-part/v1 document")
    _refused(capsys, tmp_path, [str(tmp_path / "absent.json")], "part not found")
    with pytest.raises(AisecInputError, match="no parts to merge"):
        merge_parts([])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--partition", "1/2"], "--partition needs -o PART"),
        (["--partition", "0/2", "-o", "PART"], "need 1 <= K <= N"),
        (["--partition", "1/2", "-o", "PART", "--sign-key", "KEY"], "sign the merged manifest"),
    ],
)
def test_cli_partition_arguments_refused(capsys, artifact, tmp_path, argv, match):
    argv = [a.replace("PART", str(tmp_path / "p.json")).replace("KEY", str(tmp_path / "k")) for a in argv]
    code, report = run(capsys, ["hash", str(artifact), *argv])
    assert code == 2 and match in report["summary"]
    assert not (tmp_path / "p.json").exists()


def test_planned_specs_cover_every_file_once(artifact):
    specs = plan_partitions(artifact, 3)
    parts = [hash_partition(artifact, s) for s in specs]
    assert [len(p.entries) for p in parts] == [s["files"] for s in specs]
    assert isinstance(parts[0], Part)


def test_a_resealed_part_is_refused_against_its_hashing_task_report(capsys, artifact, tmp_path):
    """A part replaced on shared storage with a file digest re-sealed by the attacker passes the part's own
    check (a digest, not a signature) and would be merged and signed; the hashing task's report (XCom)
    binds the merge to the part the task wrote."""
    from airflow_aisec.core.partition import hash_partition_artifact, merge_artifact_parts

    paths = [tmp_path / f"p{k}.json" for k in (1, 2)]
    reports = [hash_partition_artifact(artifact, f"{k}/2", part_path=p) for k, p in zip((1, 2), paths, strict=True)]
    digests = [r.details["part_digest"] for r in reports]
    victim = next(p for p in paths if any(e.type == "file" for e in parse_part(p.read_bytes()).entries))

    def forge(part: Part) -> Part:
        entries = list(part.entries)
        i = next(i for i, e in enumerate(entries) if e.type == "file")
        entries[i] = dataclasses.replace(entries[i], digest="0" * len(entries[i].digest))
        return dataclasses.replace(part, entries=tuple(entries))

    _rewrite(victim, forge)
    # unbound (bare paths): the forged part is merged, a manifest of content nobody hashed
    merge_artifact_parts(paths, manifest_path=tmp_path / "unbound.json")
    assert "0" * 64 in (tmp_path / "unbound.json").read_text()
    # bound to the tasks' reports: refused, nothing written
    with pytest.raises(Exception, match="is not the part its hashing task reported") as info:
        merge_artifact_parts(paths, manifest_path=tmp_path / "m.json", expected_part_digests=digests)
    assert info.type.__name__ == "AisecUndecidableError" and not (tmp_path / "m.json").exists()
    # parts that are what their tasks reported still merge, to the single-pass manifest
    clean = [tmp_path / f"c{k}.json" for k in (1, 2)]
    ok = [hash_partition_artifact(artifact, f"{k}/2", part_path=p) for k, p in zip((1, 2), clean, strict=True)]
    report = merge_artifact_parts(
        clean, manifest_path=tmp_path / "c.json", expected_part_digests=[r.details["part_digest"] for r in ok]
    )
    assert report.status.value == "pass"
    assert (tmp_path / "c.json").read_bytes() == hashing.hash_manifest(artifact).to_bytes()
