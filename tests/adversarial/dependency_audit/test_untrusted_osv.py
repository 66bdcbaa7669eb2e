"""The offline OSV database is untrusted input: odd records are errors naming the member, never skipped.

Every mutation below (wrong type at any field the matcher reads, duplicate keys, absurd values, deep
nesting, huge numbers, bad encodings) applied to a database that would otherwise FAIL the audit must
turn it into an ERROR (exit 2) whose summary names the advisory file — never a pass. The archive is
bounded (members, per-member and total decompressed bytes, compression ratio) and a malformed zip is
an error, never a traceback.
"""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import osv
from airflow_aisec.core.osv import OsvDatabase
from airflow_aisec.exceptions import AisecError
from tests.adversarial.dependency_audit.conftest import run_cli

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
VICTIM: dict[str, Any] = {
    "id": "T-VICTIM-1",
    "modified": "2024-01-02T03:04:05Z",
    "published": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2024-0001"],
    "summary": "victim is vulnerable",
    "details": "details",
    "severity": [{"type": "CVSS_V3", "score": CRITICAL}],
    "affected": [
        {
            "package": {"name": "victim", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            "versions": ["1.0"],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}
OTHER: dict[str, Any] = {
    "id": "T-OTHER-1",
    "modified": "2024-01-03T00:00:00Z",
    "affected": [
        {
            "package": {"name": "other", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.0"}]}],
        }
    ],
}
#: (path into VICTIM, the JSON type the field must have)
FIELDS: list[tuple[tuple[Any, ...], type]] = [
    (("id",), str),
    (("modified",), str),
    (("published",), str),
    (("aliases",), list),
    (("aliases", 0), str),
    (("summary",), str),
    (("details",), str),
    (("severity",), list),
    (("severity", 0), dict),
    (("severity", 0, "score"), str),
    (("severity", 0, "type"), str),
    (("affected",), list),
    (("affected", 0), dict),
    (("affected", 0, "package"), dict),
    (("affected", 0, "package", "name"), str),
    (("affected", 0, "package", "ecosystem"), str),
    (("affected", 0, "ranges"), list),
    (("affected", 0, "ranges", 0), dict),
    (("affected", 0, "ranges", 0, "type"), str),
    (("affected", 0, "ranges", 0, "events"), list),
    (("affected", 0, "ranges", 0, "events", 0), dict),
    (("affected", 0, "ranges", 0, "events", 0, "introduced"), str),
    (("affected", 0, "ranges", 0, "events", 1, "fixed"), str),
    (("affected", 0, "versions"), list),
    (("affected", 0, "versions", 0), str),
    (("database_specific",), dict),
    (("database_specific", "severity"), str),
]
VALUES = {
    str: st.text(max_size=5),
    int: st.integers(-(10**6), 10**6),
    float: st.floats(allow_nan=False, allow_infinity=False),
    bool: st.booleans(),
    list: st.lists(st.integers(), max_size=2),
    dict: st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
    type(None): st.none(),
}


def write_zip(path: Path, records: list[Any], raw: dict[str, bytes] | None = None) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return str(path)


def found(report: dict[str, Any]) -> set[str]:
    """Every advisory ID and alias the report's findings name."""
    return {i for f in report["findings"] for i in (f["id"], *f["details"].get("aliases", []))}


def audit(capsys: pytest.CaptureFixture[str], db: str, reqs: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    return run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", db, *extra])


@pytest.fixture(scope="module")
def reqs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("r") / "requirements.txt"
    path.write_text("victim==1.0\nother==1.0\n")
    return path


def test_the_unmodified_database_fails_the_audit(tmp_path, capsys, reqs):
    """The control: without a mutation the audit finds both advisories (so every test below can fail)."""
    code, report = audit(capsys, write_zip(tmp_path / "db.zip", [VICTIM, OTHER]), reqs)
    assert code == 1
    assert found(report) >= {"T-OTHER-1", "T-VICTIM-1"}


def _set(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@settings(max_examples=90)
@given(data=st.data())
def test_wrong_types_anywhere_are_errors_naming_the_advisory(data, tmp_path_factory, capsys, reqs):
    path, expected = data.draw(st.sampled_from(FIELDS))
    wrong = [t for t in VALUES if t is not expected and not (expected is float and t is int)]
    if path[-1] in ("published",):
        wrong.remove(type(None))  # an explicit null optional timestamp means "absent"
    value = data.draw(st.sampled_from(wrong).flatmap(lambda t: VALUES[t]))
    record = copy.deepcopy(VICTIM)
    _set(record, path, value)
    db = write_zip(tmp_path_factory.mktemp("db") / "db.zip", [record, OTHER])
    code, report = audit(capsys, db, reqs)
    assert (code, report["status"]) == (2, "error"), (path, value, report["summary"])
    assert "T-VICTIM-1" in report["summary"] or "'id'" in report["summary"] or ".id" in report["summary"]


def _dup_key_text(draw: st.DrawFn) -> str:
    """VICTIM's JSON with one object holding a key twice (the second value would silently win)."""
    text = json.dumps(VICTIM)
    target = draw(
        st.sampled_from(
            [
                ('{"id": "T-VICTIM-1"', '{"id": "T-VICTIM-1", "id": "T-DECOY"'),
                ('"versions": ["1.0"]', '"versions": ["1.0"], "versions": []'),
                ('{"introduced": "0"}', '{"introduced": "0", "introduced": "9"}'),
                ('"name": "victim"', '"name": "victim", "name": "decoy"'),
                (
                    '"modified": "2024-01-02T03:04:05Z"',
                    '"modified": "2024-01-02T03:04:05Z", "withdrawn": "2024-01-05T00:00:00Z", "withdrawn": null',
                ),
            ]
        )
    )
    assert target[0] in text
    return text.replace(target[0], target[1], 1)


@settings(max_examples=60)
@given(data=st.data())
def test_duplicate_keys_huge_numbers_deep_nesting_and_bad_bytes_are_errors(data, tmp_path_factory, capsys, reqs):
    kind = data.draw(st.sampled_from(["dup", "bignum", "deep", "nan", "bom", "utf8", "trailing"]))
    text = json.dumps(VICTIM)
    if kind == "dup":
        blob = _dup_key_text(data.draw).encode()
    elif kind == "bignum":
        digits = "9" * data.draw(st.integers(33, 400))
        blob = text.replace('"details": "details"', f'"details": "details", "x": {digits}').encode()
    elif kind == "deep":
        depth = data.draw(st.integers(65, 5000))
        blob = text.replace('"details": "details"', '"details": "details", "x": ' + "[" * depth + "]" * depth).encode()
    elif kind == "nan":
        blob = text.replace(
            '"details": "details"',
            f'"details": "details", "x": {data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))}',
        ).encode()
    elif kind == "bom":
        blob = b"\xef\xbb\xbf" + text.encode()
    elif kind == "utf8":
        blob = text.replace("victim is vulnerable", "victim \udcff").encode("utf-8", "surrogateescape")
    else:
        blob = (text + data.draw(st.sampled_from([" {}", ",", "]", "x"]))).encode()
    db = write_zip(tmp_path_factory.mktemp("db") / "db.zip", [OTHER], {"T-VICTIM-1.json": blob})
    code, report = audit(capsys, db, reqs)
    assert (code, report["status"]) == (2, "error"), (kind, report["summary"])
    assert "T-VICTIM-1.json" in report["summary"]


NOW = datetime.now(timezone.utc)


@settings(max_examples=60)
@given(
    field=st.sampled_from(["modified", "published", "withdrawn"]),
    value=st.one_of(
        st.sampled_from(
            [
                "9999-12-31T23:59:59Z",
                "2999-01-01T00:00:00Z",
                "10000-01-01T00:00:00Z",
                "yesterday",
                "",
                "2024-13-45T00:00:00Z",
            ]
        ),
        st.integers(2, 10**5).map(lambda d: (NOW + timedelta(days=d)).isoformat()),
    ),
)
def test_absurd_and_future_dates_are_errors(field, value, tmp_path_factory, capsys, reqs):
    record = copy.deepcopy(VICTIM)
    record[field] = value
    db = write_zip(tmp_path_factory.mktemp("db") / "db.zip", [record, OTHER])
    code, report = audit(capsys, db, reqs)
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert "T-VICTIM-1" in report["summary"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["affected"][0]["ranges"][0].update(type="WHATEVER"), "unknown range type"),
        (lambda r: r["affected"][0]["ranges"][0]["events"][1].update(introduced="1.5"), "exactly one of"),
        (lambda r: r["affected"][0]["ranges"][0]["events"].append({"fixd": "3.0"}), "exactly one of"),
        (lambda r: r["affected"][0]["ranges"][0].update(events=[]), "empty"),
        (lambda r: r["affected"][0]["versions"].append("9" * 300), "longer than"),
        (lambda r: r["affected"][0]["package"].update(name=""), "empty"),
        (lambda r: r.pop("modified"), "missing 'modified'"),
        (lambda r: r.update(id="T-1\n[PASS] all clear"), "not an advisory identifier"),
    ],
)
def test_structurally_odd_records_are_errors(tmp_path, capsys, reqs, mutate, message):
    record = copy.deepcopy(VICTIM)
    mutate(record)
    code, report = audit(capsys, write_zip(tmp_path / "db.zip", [record, OTHER]), reqs)
    assert (code, report["status"]) == (2, "error") and message in report["summary"], report["summary"]


def test_a_second_record_with_the_same_id_is_an_error(tmp_path, capsys, reqs):
    decoy = copy.deepcopy(VICTIM)
    decoy["withdrawn"] = "2024-01-05T00:00:00Z"
    db = write_zip(tmp_path / "db.zip", [VICTIM, OTHER], {"decoy/T-VICTIM-1.json": json.dumps(decoy).encode()})
    code, report = audit(capsys, db, reqs)
    assert (code, report["status"]) == (2, "error") and "also defined by" in report["summary"]


def test_miscased_ecosystem_is_still_indexed_and_other_members_are_counted(tmp_path, capsys, reqs):
    record = copy.deepcopy(VICTIM)
    record["affected"][0]["package"]["ecosystem"] = "pypi"
    db = write_zip(tmp_path / "db.zip", [record, OTHER], {"README.md": b"hi", "x/notes.txt": b"x"})
    code, report = audit(capsys, db, reqs)
    assert code == 1 and "T-VICTIM-1" in found(report)
    assert report["details"]["database"]["members_ignored"] == 2


# ------------------------------------------------------------------------------------- the zip
def test_archive_bounds_members_member_bytes_total_bytes_and_ratio(tmp_path, capsys, reqs, monkeypatch):
    db = write_zip(tmp_path / "db.zip", [VICTIM, OTHER, {**OTHER, "id": "T-OTHER-2"}])
    cases = [
        ("MAX_DB_BYTES", 100, "larger than"),
        ("MAX_MEMBERS", 2, "members"),
        ("MAX_RECORD_BYTES", 200, "implausibly large"),
        ("MAX_TOTAL_BYTES", 900, "total"),
    ]
    for attr, value, message in cases:
        with monkeypatch.context() as m:
            m.setattr(osv.database, attr, value)  # the archive bounds live with the loader
            code, report = audit(capsys, db, reqs)
            assert (code, report["status"]) == (2, "error") and message in report["summary"], (attr, report["summary"])
    bomb = copy.deepcopy(VICTIM)
    bomb["details"] = " " * (3 * 1024 * 1024)  # 3 MiB that deflates to a few KiB
    code, report = audit(capsys, write_zip(tmp_path / "bomb.zip", [bomb, OTHER]), reqs)
    assert (code, report["status"]) == (2, "error") and "compression ratio" in report["summary"]


@settings(max_examples=80)
@given(data=st.data())
def test_malformed_zips_are_errors_never_tracebacks(data, tmp_path_factory):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in (VICTIM, OTHER):
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    good = buf.getvalue()
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "empty"]))
    if how == "truncate":
        blob = good[: data.draw(st.integers(0, len(good) - 1))]
    elif how == "flip":
        blob = bytearray(good)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
        blob = bytes(blob)
    elif how == "random":
        blob = b"PK\x03\x04" + data.draw(st.binary(max_size=300))
    else:
        blob = b""
    path = tmp_path_factory.mktemp("z") / "db.zip"
    path.write_bytes(blob)
    try:
        db = OsvDatabase.load(path)
    except AisecError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert "db.zip" in error
        return
    # it loaded: then it must be the very same data (CRCs protect every member)
    assert db.records == 2 and {m.advisory.id for m in db.query("victim", "1.0")} == {"T-VICTIM-1"}


def test_a_malformed_database_through_the_cli_is_exit_2(tmp_path, capsys, reqs):
    for blob in (b"", b"PK\x05\x06" + b"\x00" * 18, b"not a zip at all"):
        path = tmp_path / "db.zip"
        path.write_bytes(blob)
        code, report = audit(capsys, str(path), reqs)
        assert (code, report["status"]) == (2, "error")
        assert "Traceback" not in report["summary"]


def test_special_files_in_a_database_directory_never_hang(tmp_path, capsys, reqs):
    d = tmp_path / "osvdb"
    d.mkdir()
    for r in (VICTIM, OTHER):
        (d / f"{r['id']}.json").write_text(json.dumps(r))
    os.mkfifo(d / "T-FIFO.json")
    code, report = audit(capsys, str(d), reqs)
    assert (code, report["status"]) == (2, "error") and "not a regular file" in report["summary"]
    (d / "T-FIFO.json").unlink()
    (d / "T-DEV.json").symlink_to("/dev/zero")
    code, report = audit(capsys, str(d), reqs)
    assert (code, report["status"]) == (2, "error") and "T-DEV.json" in report["summary"]
