from __future__ import annotations

import hashlib
import json

import pytest

from airflow_aisec.cli import main
from airflow_aisec.core.integrity import hash_artifact
from airflow_aisec.core.signing import generate_ed25519_keypair, load_signing_key


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "ds" / "train.csv"
    path.parent.mkdir()
    path.write_text("x,y\n1,0\n2,1\n")
    return path


def test_verified_exit_0_and_statement_written(data, tmp_path, capsys):
    out = tmp_path / "stmt.intoto.json"
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    code = main(["provenance", str(data), "--allow-source", str(data.parent), "--digest", digest, "-o", str(out)])
    assert code == 0
    assert "[PASS] provenance" in capsys.readouterr().out
    statement = json.loads(out.read_text())
    assert statement["subject"] == [{"name": "train.csv", "digest": {"sha256": digest}}]


def test_refused_exit_1_json(data, capsys):
    code = main(
        [
            "provenance",
            str(data),
            "--allow-source",
            "/elsewhere",
            "--allow-source",
            "/srv",
            "--digest",
            "0" * 64,
            "--format",
            "json",
        ]  # fmt: skip
    )
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"][0]["id"] == "AISEC-PROV-SOURCE"


def test_signed_manifest_and_bad_signature(data, tmp_path, capsys):
    generate_ed25519_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    generate_ed25519_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    manifest = tmp_path / "m.json"
    hash_artifact(data, manifest_path=manifest, signing_key=load_signing_key(tmp_path / "k.pem"))
    base = ["provenance", str(data), "--allow-source", str(data.parent), "--manifest", str(manifest)]
    assert main([*base, "--public-key", str(tmp_path / "k.pub")]) == 0
    assert main([*base, "--public-key", str(tmp_path / "o.pub")]) == 1
    assert "AISEC-PROV-SIGNATURE" in capsys.readouterr().out
    out = tmp_path / "s.intoto.json"
    signed = [*base, "--public-key", str(tmp_path / "k.pub"), "-o", str(out), "--sign-key", str(tmp_path / "k.pem")]
    assert main(signed) == 0
    from airflow_aisec.core.signing import load_verify_key, parse_signature, verify

    ok, _ = verify(out.read_bytes(), parse_signature(open(f"{out}.sig").read()), load_verify_key(tmp_path / "k.pub"))
    assert ok


def test_bad_arguments_exit_2_without_traceback(data, capsys):
    code = main(["provenance", str(data), "--allow-source", str(data.parent), "--digest", "nothex"])
    assert code == 2
    captured = capsys.readouterr()
    assert "not a sha256 hex digest" in captured.err
    assert "Traceback" not in captured.err
    assert main(["provenance", str(data), "--digest", "0" * 64]) == 2  # --allow-source is required


def test_unpinned_s3_refused_before_any_client(capsys):
    code = main(
        ["provenance", "s3://bucket/k.csv", "--allow-source", "s3://bucket", "--digest", "0" * 64, "--require-version"]
    )
    assert code == 1
    assert "AISEC-PROV-UNPINNED" in capsys.readouterr().out
