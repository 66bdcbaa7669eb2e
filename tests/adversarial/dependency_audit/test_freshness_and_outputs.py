"""Freshness cannot be moved by a few outlier records; the service fails closed; --sbom never writes through.

The freshness date is the FRESHNESS_RANK-th newest ``modified`` date: fewer than that many recent
records (forged or data errors) cannot make an old database pass ``--max-db-age-days``; a record
dated in the future is an error naming it.
"""

from __future__ import annotations

import json
import os
import socket
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.osv import FRESHNESS_RANK
from tests.adversarial.dependency_audit.conftest import run_cli
from tests.osv_helpers import snapshot_path

NOW = datetime.now(timezone.utc)


def record(i: int, modified: str) -> dict:
    return {
        "id": f"T-{i}",
        "modified": modified,
        "affected": [
            {
                "package": {"name": f"pkg{i}", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
            }
        ],
    }


def write_db(path: Path, modified: list[str]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, m in enumerate(modified):
            zf.writestr(f"T-{i}.json", json.dumps(record(i, m)))
    return str(path)


def stamp(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def clean_reqs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("r") / "requirements.txt"
    path.write_text("pkg0==2.0\n")
    return path


@settings(max_examples=60)
@given(
    old=st.lists(st.integers(200, 3000), min_size=1, max_size=40),
    outliers=st.lists(st.integers(0, 24 * 60), min_size=1, max_size=FRESHNESS_RANK - 1),
)
def test_a_few_recent_records_do_not_make_an_old_database_fresh(old, outliers, tmp_path_factory, capsys, clean_reqs):
    dates = [stamp(NOW - timedelta(days=d)) for d in old] + [stamp(NOW - timedelta(minutes=m)) for m in outliers]
    db = write_db(tmp_path_factory.mktemp("db") / "db.zip", dates)
    argv = ["audit", "-r", str(clean_reqs), "--osv-db", db, "--max-db-age-days", "30"]
    code, report = run_cli(capsys, argv)
    if len(outliers) + sum(1 for d in old if d <= 30) >= FRESHNESS_RANK:
        assert code == 0
    else:
        assert (code, report["status"]) == (2, "error"), report["summary"]
        assert "too old" in report["summary"]


def test_enough_recent_records_make_it_fresh(tmp_path, capsys, clean_reqs):
    """The control: a database whose FRESHNESS_RANK newest records are recent passes the gate."""
    dates = [stamp(NOW - timedelta(days=900))] * 20 + [stamp(NOW - timedelta(hours=h)) for h in range(FRESHNESS_RANK)]
    argv = ["audit", "-r", str(clean_reqs), "--osv-db", write_db(tmp_path / "db.zip", dates), "--max-db-age-days", "30"]
    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (0, "pass"), report["summary"]
    assert report["metrics"]["db_age_days"] < 1


@settings(max_examples=40)
@given(
    future=st.one_of(
        st.integers(2, 10**5).map(lambda d: stamp(NOW + timedelta(days=d))),
        st.sampled_from(["9999-12-31T23:59:59Z", "9999-01-01T00:00:00.000000Z", "3000-01-01T00:00:00+14:00"]),
    )
)
def test_a_future_dated_record_is_an_error_naming_it(future, tmp_path_factory, capsys, clean_reqs):
    dates = [stamp(NOW - timedelta(days=900))] * 5 + [future]
    db = write_db(tmp_path_factory.mktemp("db") / "db.zip", dates)
    code, report = run_cli(capsys, ["audit", "-r", str(clean_reqs), "--osv-db", db])  # even without the gate
    assert (code, report["status"]) == (2, "error")
    assert "T-5" in report["summary"] and "implausible" in report["summary"]


def test_zero_time_placeholders_are_matched_but_never_count_as_fresh(tmp_path, capsys):
    """Real PyPA data carries "1-01-01T00:00:00Z" (PYSEC-2024-55, malware): matched, undated."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("pkg0==0.5\n")
    db = write_db(tmp_path / "db.zip", ["1-01-01T00:00:00.000000Z", "0001-01-01T00:00:00Z"])
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", db])
    assert code == 1 and report["details"]["database"]["undated_records"] == 2
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", db, "--max-db-age-days", "100000"])
    assert (code, report["status"]) == (2, "error") and "too old" in report["summary"]


def test_the_real_snapshot_is_dated_by_its_10th_newest_record(snapshot_db):
    assert snapshot_db.freshness is not None and snapshot_db.newest_modified is not None
    assert snapshot_db.freshness < snapshot_db.newest_modified
    assert snapshot_db.freshness.date().isoformat() == "2024-10-08"


# ------------------------------------------------------------------------------ fail closed / outputs
def test_an_unreachable_service_is_an_error_not_a_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AISEC_OSV_DB", raising=False)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\n")
    with socket.socket() as s:  # bound, never listening: refused on loopback
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1/query"
        code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-url", url, "--timeout", "5"])
    assert (code, report["status"]) == (2, "error") and "unreachable" in report["summary"]


@pytest.mark.parametrize("target", ["directory", "symlink", "dangling-symlink", "under-a-file"])
def test_sbom_onto_a_directory_or_symlink_is_exit_2_and_writes_nothing(tmp_path, capsys, target):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    out = tmp_path / "out"
    if target == "directory":
        out.mkdir()
        sbom = out
    elif target == "symlink":
        out.symlink_to(victim)
        sbom = out
    elif target == "dangling-symlink":
        out.symlink_to(tmp_path / "nowhere.json")
        sbom = out
    else:
        sbom = victim / "sbom.json"
    before = sorted(os.listdir(tmp_path))
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", str(snapshot_path()), "--sbom", str(sbom)])
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert victim.read_text() == "untouched"
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path / "nowhere.json").exists()
    if target == "directory":
        assert os.listdir(out) == []


def test_no_sbom_is_published_for_an_incomplete_audit(tmp_path, capsys):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.16.0\n-e ./pkg\n")
    sbom = tmp_path / "sbom.json"
    code, _ = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", str(snapshot_path()), "--sbom", str(sbom)])
    assert code == 2 and not sbom.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf"])
def test_the_freshness_gate_cannot_be_disabled_by_an_odd_number(tmp_path, capsys, clean_reqs, value):
    db = write_db(tmp_path / "db.zip", [stamp(NOW - timedelta(days=900))] * 3)
    code, report = run_cli(capsys, ["audit", "-r", str(clean_reqs), "--osv-db", db, f"--max-db-age-days={value}"])
    assert (code, report["status"]) == (2, "error") and "max_db_age_days" in report["summary"]
