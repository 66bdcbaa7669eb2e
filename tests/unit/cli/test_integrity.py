from __future__ import annotations

import json

import pytest

from airflow_aisec.cli import main


@pytest.fixture
def model(tmp_path):
    root = tmp_path / "model"
    root.mkdir()
    (root / "w.bin").write_bytes(b"weights")
    return root


def test_hash_and_verify_exit_codes(model, tmp_path, capsys):
    priv, pub, manifest = tmp_path / "k.pem", tmp_path / "k.pub", tmp_path / "m.json"
    assert main(["keygen", str(priv), str(pub)]) == 0
    assert main(["hash", str(model), "-o", str(manifest), "--sign-key", str(priv), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["details"]["signature_path"] == f"{manifest}.sig"
    assert main(["verify", str(model), "--manifest", str(manifest), "--public-key", str(pub)]) == 0
    (model / "w.bin").write_bytes(b"tampered")
    assert main(["verify", str(model), "--manifest", str(manifest), "--public-key", str(pub)]) == 1
    assert "AISEC-INT-CHANGED" in capsys.readouterr().out


def test_digest_mode_and_errors(model, tmp_path, capsys):
    f = model / "w.bin"
    assert main(["hash", str(f), "--format", "json"]) == 0
    digest = json.loads(capsys.readouterr().out)["details"]["digest"]
    assert main(["verify", str(f), "--digest", digest]) == 0
    assert main(["verify", str(f), "--digest", "0" * 64]) == 1
    assert main(["verify", str(f), "--manifest", str(tmp_path / "missing.json")]) == 2
    captured = capsys.readouterr()
    assert "manifest not found" in captured.err
    assert "Traceback" not in captured.err
    assert main(["verify", str(tmp_path / "nope"), "--digest", digest]) == 2
    assert main(["verify", str(f)]) == 2  # usage error: neither --digest nor --manifest
    assert main(["verify", str(f), "--digest", digest, "--public-key", "x"]) == 2


def test_markdown_format(model, capsys):
    assert main(["hash", str(model), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("## integrity: PASS")
