"""DSSE envelopes and SLSA VSAs: verified with securesystemslib (a maintained DSSE implementation), and
refused when tampered, re-typed, re-split (PAE confusion), unsigned or signed with another key."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from airflow_aisec.cli import main
from airflow_aisec.core import dsse, signing
from airflow_aisec.core.provenance.statements import write_statement
from airflow_aisec.core.vsa import VSA_PREDICATE_TYPE, build_vsa, validate_vsa
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.integrity.helpers import run

sslib_dsse = pytest.importorskip("securesystemslib.dsse")
sslib_signer = pytest.importorskip("securesystemslib.signer")

STATEMENT = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
    "predicateType": "https://slsa.dev/provenance/v1",
    "predicate": {
        "buildDefinition": {"buildType": "t", "externalParameters": {}},
        "runDetails": {"builder": {"id": "b"}},
    },
}


@pytest.fixture(params=["ed25519", "ecdsa"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[signing.SigningKey, signing.VerifyKey, Path]:
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    gen = signing.generate_ed25519_keypair if request.param == "ed25519" else signing.generate_ecdsa_keypair
    gen(priv, pub)
    return signing.load_signing_key(priv), signing.load_verify_key(pub), pub


def _sslib_verify(envelope: dict, pub: Path, keyid: str) -> bool:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.exceptions import VerificationError

    key = sslib_signer.SSlibKey.from_crypto(serialization.load_pem_public_key(pub.read_bytes()), keyid=keyid)
    try:
        return bool(sslib_dsse.Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1))
    except VerificationError:
        return False


def test_written_statement_envelope_verifies_with_securesystemslib_and_ours(keys, tmp_path: Path) -> None:
    sk, vk, pub = keys
    out = write_statement(tmp_path / "s.json", STATEMENT, sk)
    envelope = json.loads(Path(out["dsse_path"]).read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == (tmp_path / "s.json").read_bytes()
    assert _sslib_verify(envelope, pub, sk.key_id)
    assert dsse.verify_statement_envelope(json.dumps(envelope), vk)["subject"] == STATEMENT["subject"]
    # the legacy detached signature is still written for Ed25519 (old readers), never for ECDSA
    assert ("signature_path" in out) == (sk.algorithm == "ed25519")


def test_tampered_swapped_unsigned_and_wrong_key_envelopes_are_refused(keys, tmp_path: Path) -> None:
    sk, vk, pub = keys
    envelope = dsse.sign_envelope(json.dumps(STATEMENT).encode(), sk)
    # one payload byte changed
    tampered = dict(
        envelope, payload=base64.b64encode(json.dumps(STATEMENT).encode().replace(b"ab", b"ac", 1)).decode()
    )
    assert not dsse.verify_envelope(tampered, vk)[0]
    assert not _sslib_verify(tampered, pub, sk.key_id)
    # payloadType swapped: refused as the wrong type, and its signature does not cover the new type
    swapped = dict(envelope, payloadType="application/json")
    assert dsse.verify_envelope(swapped, vk)[1].startswith("payloadType is")
    assert not dsse.verify_envelope(swapped, vk, payload_type="application/json")[0]
    assert not _sslib_verify(swapped, pub, sk.key_id)
    # unsigned
    unsigned = dict(envelope, signatures=[])
    assert dsse.verify_envelope(unsigned, vk) == (False, "the envelope is not signed", None)
    # another key
    other_priv, other_pub = tmp_path / "o.key", tmp_path / "o.pub"
    (signing.generate_ed25519_keypair if sk.algorithm == "ed25519" else signing.generate_ecdsa_keypair)(
        other_priv, other_pub
    )
    assert not dsse.verify_envelope(envelope, signing.load_verify_key(other_pub))[0]
    with pytest.raises(AisecInputError, match="no signature in the envelope verifies"):
        dsse.verify_statement_envelope(json.dumps(envelope), signing.load_verify_key(other_pub))


def test_pae_binds_the_type_payload_boundary(keys) -> None:
    """A signature over type "a b" + payload "c" must not verify as type "a" + payload "b c" (PAE confusion)."""
    sk, vk, _ = keys
    envelope = dsse.sign_envelope(b"c", sk, payload_type="a b")
    moved = dict(envelope, payloadType="a", payload=base64.b64encode(b"b c").decode())
    assert not dsse.verify_envelope(moved, vk, payload_type="a")[0]
    assert dsse.pae("a b", b"c") != dsse.pae("a", b"b c")
    assert dsse.pae("x", b"yz") == b"DSSEv1 1 x 2 yz"


def test_hmac_secret_cannot_sign_an_envelope(tmp_path: Path) -> None:
    secret = signing.load_signing_key(b"9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc")
    with pytest.raises(AisecInputError, match="Ed25519 or ECDSA key"):
        dsse.sign_envelope(b"{}", secret)
    out = write_statement(tmp_path / "h.json", STATEMENT, secret)
    assert "dsse_path" not in out and out["signature_path"].endswith(".sig")


def test_malformed_envelopes_are_input_errors() -> None:
    for bad, match in (
        ("[]", "not a JSON object"),
        ('{"payload": "e30="}', "not a DSSE envelope"),
        ('{"payloadType": "t", "payload": "e30=", "signatures": {}}', "signatures must be a list"),
        ('{"payloadType": "t", "payload": "e30=", "signatures": [{"keyid": "k"}]}', "base64 'sig'"),
    ):
        with pytest.raises(AisecInputError, match=match):
            dsse.parse_envelope(bad)


def test_vsa_fields_follow_the_v1_specification() -> None:
    vsa = build_vsa(
        check="provenance",
        subjects=[{"name": "data", "digest": {"sha256": "cd" * 32}}],
        resource_uri="s3://bucket/data",
        passed=False,
        input_attestations=[{"uri": "data.sig", "digest": {"sha256": "ef" * 32}}],
        time_verified="2026-01-01T00:00:00Z",
    )
    assert vsa["predicateType"] == VSA_PREDICATE_TYPE == "https://slsa.dev/verification_summary/v1"
    predicate = vsa["predicate"]
    assert set(predicate) == {
        "verifier", "timeVerified", "resourceUri", "policy", "inputAttestations",
        "verificationResult", "verifiedLevels", "slsaVersion",
    }  # fmt: skip
    assert predicate["verificationResult"] == "FAILED" and predicate["verifiedLevels"] == ["FAILED"]
    for mutate, match in (
        (lambda p: p.__setitem__("verifiedlevels", p.pop("verifiedLevels")), "unknown field"),
        (lambda p: p.__setitem__("timeVerified", "yesterday"), "timestamp"),
        (lambda p: p["verifier"].__setitem__("name", "x"), "no field named"),
        (lambda p: p.__setitem__("verificationResult", "PASSED"), "exactly when"),
        (lambda p: p.pop("policy"), "needs 'policy'"),
    ):
        bad = copy.deepcopy(vsa)
        mutate(bad["predicate"])
        with pytest.raises(AisecInputError, match=match):
            validate_vsa(bad)


def test_cli_verify_records_a_signed_vsa_for_pass_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    manifest = tmp_path / "m.json"
    assert main(["hash", str(model), "-o", str(manifest), "--sign-key", str(priv)]) == 0
    vsa = tmp_path / "vsa.json"
    argv = ["verify", str(model), "--manifest", str(manifest), "--public-key", str(pub), "--vsa", str(vsa)]
    code, report = run(capsys, [*argv, "--vsa-sign-key", str(priv)])
    assert code == 0 and report is not None and report["details"]["vsa"]["verificationResult"] == "PASSED"
    statement = dsse.verify_statement_envelope(Path(f"{vsa}.dsse.json").read_bytes(), signing.load_verify_key(pub))
    assert statement == json.loads(vsa.read_text())
    assert {a["uri"] for a in statement["predicate"]["inputAttestations"]} == {str(manifest), f"{manifest}.sig"}
    (model / "w.bin").write_bytes(b"weightz")
    code, report = run(capsys, [*argv, "--vsa-sign-key", str(priv)])
    assert code == 1
    assert json.loads(vsa.read_text())["predicate"]["verificationResult"] == "FAILED"
    # a VSA key without a VSA path is a usage error
    assert run(capsys, [*argv[:-2], "--vsa-sign-key", str(priv)])[0] == 2
