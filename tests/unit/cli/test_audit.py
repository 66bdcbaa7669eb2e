"""``aisec audit`` and ``aisec osv-sync``: exit codes 0/1/2, JSON reports, no tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from airflow_aisec.cli import main
from airflow_aisec.report import validate
from tests.osv_helpers import snapshot_path


@pytest.fixture
def snapshot():
    return str(snapshot_path())


def run_json(capsys, argv):
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr()
    return code, validate(json.loads(out.out)), out.err


def test_audit_vulnerable_exit_1(tmp_path, capsys, snapshot):
    req = tmp_path / "r.txt"
    req.write_text("requests==2.19.0\n")
    code, data, _ = run_json(capsys, ["audit", "-r", str(req), "--osv-db", snapshot])
    assert code == 1
    assert data["check"] == "dependency_audit"
    assert {f["id"] for f in data["findings"]} == {"PYSEC-2018-28", "PYSEC-2023-74"}


def test_audit_clean_exit_0_with_sbom_and_env_database(tmp_path, capsys, snapshot, monkeypatch):
    monkeypatch.setenv("AISEC_OSV_DB", snapshot)
    req = tmp_path / "r.txt"
    req.write_text("requests==2.32.3\n")
    sbom = tmp_path / "bom.json"
    code, data, _ = run_json(capsys, ["audit", "-r", str(req), "--sbom", str(sbom)])
    assert code == 0
    assert data["status"] == "pass"
    assert data["details"]["database"]["source"] == snapshot
    assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"


def test_audit_fail_on_and_ignore_file(tmp_path, capsys, snapshot):
    req = tmp_path / "r.txt"
    req.write_text("jinja2==2.11.2\n")
    assert run_json(capsys, ["audit", "-r", str(req), "--osv-db", snapshot, "--fail-on", "critical"])[0] == 0
    ignore = tmp_path / "ignore.toml"
    ignore.write_text('[[ignore]]\nid = "PYSEC-2021-66"\nreason = "templates are trusted"\nexpires = 2999-01-01\n')
    code, data, _ = run_json(capsys, ["audit", "-r", str(req), "--osv-db", snapshot, "--ignore-file", str(ignore)])
    assert code == 0 and data["metrics"]["ignored"] == 1


def test_audit_errors_exit_2_without_traceback(tmp_path, capsys, snapshot, monkeypatch):
    monkeypatch.setenv("AISEC_OSV_DB", snapshot)  # as under `make`: --osv-url must still win over it
    unpinned = tmp_path / "r.txt"
    unpinned.write_text("requests>=2\n")
    code, data, err = run_json(capsys, ["audit", "-r", str(unpinned), "--osv-db", snapshot])
    assert code == 2 and data["status"] == "error" and "not pinned" in data["summary"]
    assert "Traceback" not in err
    ok = tmp_path / "ok.txt"
    ok.write_text("six==1.16.0\n")
    corrupt = tmp_path / "db.zip"
    corrupt.write_bytes(b"garbage")
    code, data, _ = run_json(capsys, ["audit", "-r", str(ok), "--osv-db", str(corrupt)])
    assert code == 2 and "not a valid zip" in data["summary"]
    code, data, _ = run_json(capsys, ["audit", "-r", str(ok), "--osv-db", str(tmp_path / "missing.zip")])
    assert code == 2 and data["summary"].startswith("AisecInputError: offline OSV database")
    with socket.socket() as s:  # bound but not listening: refused, and no other server can take the port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        code, data, err = run_json(
            capsys, ["audit", "-r", str(ok), "--osv-url", f"http://127.0.0.1:{port}/v1/query", "--timeout", "5"]
        )
    assert code == 2 and "unreachable" in data["summary"]
    assert "Traceback" not in err


def test_audit_markdown_format(tmp_path, capsys, snapshot):
    req = tmp_path / "r.txt"
    req.write_text("jinja2==2.11.2\n")
    assert main(["audit", "-r", str(req), "--osv-db", snapshot, "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "## dependency_audit: FAIL" in out and "PYSEC-2021-66" in out


def test_osv_sync(tmp_path, capsys, snapshot):
    code, data, _ = run_json(capsys, ["osv-sync", "--source", snapshot, "--dest", str(tmp_path / "cache")])
    assert code == 0
    assert data["details"]["osv_sync"]["records"] == 2661
    assert (tmp_path / "cache" / "osv-pypi.zip").is_file()
    code, data, _ = run_json(capsys, ["osv-sync", "--source", str(tmp_path / "none.zip"), "--dest", str(tmp_path)])
    assert code == 2 and "is not a file" in data["summary"]


def test_console_script_exit_codes(tmp_path, snapshot):
    """The installed ``aisec`` entry point, as CI would call it."""
    req = tmp_path / "r.txt"
    req.write_text("requests==2.19.0\n")
    aisec = os.path.join(os.path.dirname(sys.executable), "aisec")
    proc = subprocess.run(
        [aisec, "audit", "-r", str(req), "--osv-db", snapshot], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "PYSEC-2018-28" in proc.stdout
