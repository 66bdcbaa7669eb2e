"""Dataset provenance in the standard formats: the statement in a DSSE envelope, the decision as a VSA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_aisec.core import dsse, signing
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.integrity.helpers import run


def _dataset(tmp_path: Path) -> Path:
    data = tmp_path / "allowed" / "data"
    data.mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n1,2\n")
    return data


def _digest(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    code, report = run(capsys, ["hash", str(path)])
    assert code == 0 and report is not None
    return f"sha256:{report['details']['digest']}"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_statement_envelope_and_vsa_for_a_verified_dataset(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    (signing.generate_ed25519_keypair if kind == "ed25519" else signing.generate_ecdsa_keypair)(priv, pub)
    data = _dataset(tmp_path)
    digest = _digest(capsys, data)
    statement, vsa = tmp_path / "s.intoto.json", tmp_path / "vsa.json"
    argv = ["provenance", str(data), "--allow-source", str(data.parent), "--digest", digest]
    code, report = run(capsys, [*argv, "-o", str(statement), "--sign-key", str(priv), "--vsa", str(vsa)])
    assert code == 0 and report is not None
    key = signing.load_verify_key(pub)
    signed = dsse.verify_statement_envelope(Path(f"{statement}.dsse.json").read_bytes(), key)
    assert signed == json.loads(statement.read_text())
    assert signed["predicateType"] == "https://slsa.dev/provenance/v1"  # what was accepted: provenance
    decision = dsse.verify_statement_envelope(Path(f"{vsa}.dsse.json").read_bytes(), key)
    assert decision["predicateType"] == "https://slsa.dev/verification_summary/v1"  # the decision: a VSA
    assert decision["predicate"]["verificationResult"] == "PASSED"
    assert decision["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}


def test_refused_dataset_gets_a_failed_vsa_and_no_statement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    data = _dataset(tmp_path)
    statement, vsa = tmp_path / "s.json", tmp_path / "vsa.json"
    argv = ["provenance", str(data), "--allow-source", str(data.parent), "--digest", "sha256:" + "0" * 64]
    code, report = run(capsys, [*argv, "-o", str(statement), "--sign-key", str(priv), "--vsa", str(vsa)])
    assert code == 1 and report is not None
    assert not statement.exists() and not Path(f"{statement}.dsse.json").exists()
    decision = dsse.verify_statement_envelope(Path(f"{vsa}.dsse.json").read_bytes(), signing.load_verify_key(pub))
    assert decision["predicate"]["verificationResult"] == "FAILED"
    assert decision["predicate"]["verifiedLevels"] == ["FAILED"]


def test_statement_envelope_from_another_key_or_edited_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    other_priv, other_pub = tmp_path / "o.key", tmp_path / "o.pub"
    signing.generate_ed25519_keypair(other_priv, other_pub)
    data = _dataset(tmp_path)
    statement = tmp_path / "s.json"
    argv = ["provenance", str(data), "--allow-source", str(data.parent), "--digest", _digest(capsys, data)]
    assert run(capsys, [*argv, "-o", str(statement), "--sign-key", str(priv)])[0] == 0
    envelope = Path(f"{statement}.dsse.json").read_bytes()
    with pytest.raises(AisecInputError, match="no signature in the envelope verifies"):
        dsse.verify_statement_envelope(envelope, signing.load_verify_key(other_pub))
    doc = json.loads(envelope)
    doc["payloadType"] = "application/vnd.in-toto+jsonl"
    with pytest.raises(AisecInputError, match="payloadType is"):
        dsse.verify_statement_envelope(json.dumps(doc), signing.load_verify_key(pub))
