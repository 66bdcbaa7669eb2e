"""core.partition: the partitioning rule, planning, hashing a partition and the exact merge."""

from __future__ import annotations

import json

import pytest

from airflow_aisec.core import hashing, partition
from airflow_aisec.core.partition import (
    FILE_COST_BYTES,
    assign,
    hash_partition,
    merge_parts,
    parse_part,
    parse_partition,
    plan_partitions,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "big.bin").write_bytes(b"x" * 300_000)
    (root / "a" / "b" / "mid.bin").write_bytes(b"y" * 200_000)
    (root / "small.txt").write_bytes(b"z" * 100)
    (root / "zero").write_bytes(b"")
    (root / "link").symlink_to("a/big.bin")
    return root


def test_lpt_rule_heaviest_first_to_the_least_loaded_ties_to_the_lowest_partition():
    # weights 100+c, 60+c, 50+c, 40+c: 100→1, 60→2, 50→2 (2 lighter than 1), 40→1
    assert assign([50, 100, 40, 60], ["c", "a", "d", "b"], 2) == [2, 1, 1, 2]
    assert assign([5, 5], ["b", "a"], 2) == [2, 1]  # equal weights: path order, then lowest partition
    assert assign([], [], 3) == []
    assert assign([0] * 4, list("abcd"), 2) == [1, 2, 1, 2]  # the per-file cost spreads empty files


def test_plan_balances_bytes_and_counts_every_file(tree):
    specs = plan_partitions(tree, 2)
    assert [s["partition"] for s in specs] == ["1/2", "2/2"]
    assert len({s["listing_digest"] for s in specs}) == 1
    assert sum(s["files"] for s in specs) == 5
    assert sorted(s["bytes"] for s in specs) == [200_100, 300_000]
    assert FILE_COST_BYTES == 65536


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_merge_is_byte_identical_to_a_single_pass(tree, n):
    parts = [parse_part(hash_partition(tree, f"{k}/{n}").to_bytes()) for k in range(1, n + 1)]
    assert merge_parts(reversed(parts)).to_bytes() == hashing.hash_manifest(tree).to_bytes()


def test_single_file_artifact(tree):
    f = tree / "a" / "big.bin"
    parts = [hash_partition(f, f"{k}/3") for k in (1, 2, 3)]
    assert merge_parts(parts).to_bytes() == hashing.hash_manifest(f).to_bytes()


def test_directories_are_recorded_by_partition_one_only(tree):
    one, two = hash_partition(tree, "1/2"), hash_partition(tree, "2/2")
    assert one.directories == ("a", "a/b", "empty") and two.directories == ()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0/2", "1 <= K <= N"),
        ("3/2", "1 <= K <= N"),
        ("1/0", "1 <= K <= N"),
        ("1/10001", "1 <= K <= N"),
        ("1-2", "must be 'K/N'"),
        ("a/2", "whole numbers"),
        ("1/2/3", "must be 'K/N'"),
        (" 1/2", "whole numbers"),
        ("١/٢", "whole numbers"),
        (3, "must be 'K/N'"),
        ({"partition": "1/2", "extra": 1}, "unexpected"),
        ({"listing_digest": "ab"}, "needs 'partition'"),
    ],
)
def test_partition_syntax_is_strict(value, match):
    with pytest.raises(AisecInputError, match=match):
        parse_partition(value)


def test_a_planned_spec_refuses_a_changed_artifact(tree):
    spec = plan_partitions(tree, 2)[0]
    assert hash_partition(tree, spec).listing_digest == spec["listing_digest"]
    (tree / "new.bin").write_bytes(b"added after planning")
    with pytest.raises(AisecUndecidableError, match="changed between planning and hashing"):
        hash_partition(tree, spec)


def test_a_file_resized_between_listing_and_hashing_is_refused(tree, monkeypatch):
    real = hashing.digest_file

    def grow(path, *args, **kwargs):
        if str(path).endswith("mid.bin"):
            with open(path, "ab") as fh:
                fh.write(b"more")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "digest_file", grow)
    with pytest.raises(AisecUndecidableError, match="changed size since it was listed: a/b/mid.bin"):
        hash_partition(tree, "1/1")


def test_special_files_are_refused_like_a_single_pass(tree):
    import os

    os.mkfifo(tree / "pipe")
    with pytest.raises(AisecUndecidableError, match=r"special file\(s\).*pipe \(fifo\)"):
        hash_partition(tree, "1/2")
    with pytest.raises(AisecUndecidableError, match="special file"):
        plan_partitions(tree, 2)


def test_part_document_is_strict(tree):
    doc = json.loads(hash_partition(tree, "1/2").to_bytes())
    doc["extra"] = 1
    with pytest.raises(AisecInputError, match=r"unexpected field\(s\) \['extra'\]"):
        parse_part(json.dumps(doc))
    with pytest.raises(AisecInputError, match="is not an aisec.manifest-part/v1"):
        parse_part(hashing.hash_manifest(tree).to_bytes())
    assert partition.PART_SCHEMA == "aisec.manifest-part/v1"
