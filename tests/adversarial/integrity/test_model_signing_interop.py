"""OpenSSF model-signing bundles, both ways, with the real ``model-signing`` library.

We sign → their verifier accepts; they sign → ``aisec verify`` and ``ArtifactIntegrityOperator`` accept;
one byte changed, a tampered bundle, a wrong key or a bundle over another directory → both refuse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_aisec.cli import main
from tests.adversarial.integrity.helpers import finding_ids, run

model_signing = pytest.importorskip("model_signing")

CLI = str(Path(sys.executable).with_name("model_signing"))


def _keys(tmp_path: Path, name: str = "k") -> tuple[Path, Path]:
    priv, pub = tmp_path / f"{name}.key", tmp_path / f"{name}.pub"
    assert main(["keygen", "--type", "ecdsa-p256", str(priv), str(pub)]) == 0
    return priv, pub


def _model(tmp_path: Path, name: str = "model") -> Path:
    model = tmp_path / name
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (model / "config.json").write_text('{"layers": 2}')
    (model / "sub" / "tokenizer.txt").write_text("a b c")
    return model


def _their_verify(model: Path, bundle: Path, pub: Path) -> int:
    cmd = [CLI, "verify", "key", str(model), "--signature", str(bundle), "--public_key", str(pub)]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=False).returncode


def _their_sign(model: Path, bundle: Path, priv: Path) -> None:
    model_signing.signing.Config().use_elliptic_key_signer(private_key=priv).sign(model, bundle)


def test_we_sign_their_verify_passes_and_one_byte_fails_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = _keys(tmp_path)
    model = _model(tmp_path)
    code, report = run(capsys, ["hash", str(model), "--sign-key", str(priv)])
    assert code == 0 and report is not None
    assert report["details"]["signature_format"] == "model-signing"
    bundle = tmp_path / "model.sig"
    assert json.loads(bundle.read_text())["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert _their_verify(model, bundle, pub) == 0
    data = bytearray((model / "weights.bin").read_bytes())
    data[100] ^= 1
    (model / "weights.bin").write_bytes(bytes(data))
    assert _their_verify(model, bundle, pub) != 0
    code, report = run(capsys, ["verify", str(model), "--bundle", str(bundle), "--public-key", str(pub)])
    assert code == 1
    assert "AISEC-INT-BAD-SIGNATURE" in finding_ids(report)


def test_they_sign_we_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = _keys(tmp_path)
    model = _model(tmp_path)
    bundle = tmp_path / "theirs.sig"
    _their_sign(model, bundle, priv)
    code, report = run(capsys, ["verify", str(model), "--bundle", str(bundle), "--public-key", str(pub)])
    assert code == 0, report
    assert report is not None and report["details"]["signature_valid"] is True
    (model / "sub" / "extra.txt").write_text("added")
    code, _ = run(capsys, ["verify", str(model), "--bundle", str(bundle), "--public-key", str(pub)])
    assert code == 1
    assert _their_verify(model, bundle, pub) != 0


def test_operator_verifies_their_bundle_and_refuses_a_changed_byte(tmp_path: Path) -> None:
    from airflow_aisec.operators.integrity import ArtifactIntegrityOperator

    priv, pub = _keys(tmp_path)
    model = _model(tmp_path)
    bundle = tmp_path / "theirs.sig"
    _their_sign(model, bundle, priv)
    op = ArtifactIntegrityOperator(task_id="t", path=str(model), bundle_path=str(bundle), public_key_path=str(pub))
    assert op.evidence_paths() == [str(model), str(bundle)]
    assert op.verify().status == "pass"
    (model / "config.json").write_text('{"layers": 3}')
    report = op.verify()
    assert report.status == "fail"
    assert "model-signing bundle rejected" in report.summary
    with pytest.raises(ValueError, match="bundle_path needs public_key_path"):
        ArtifactIntegrityOperator(task_id="t2", path=str(model), bundle_path=str(bundle))
    with pytest.raises(ValueError, match="exactly one of"):
        ArtifactIntegrityOperator(
            task_id="t3", path=str(model), bundle_path=str(bundle), expected_digest="ab", public_key_path=str(pub)
        )


def test_wrong_key_tampered_bundle_and_other_directory_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = _keys(tmp_path)
    _, other_pub = _keys(tmp_path, "other")
    model = _model(tmp_path)
    bundle = tmp_path / "model.sig"
    assert main(["hash", str(model), "--sign-key", str(priv), "--bundle", str(bundle)]) == 0
    verify = ["verify", str(model), "--bundle", str(bundle), "--public-key"]
    # wrong key
    assert run(capsys, [*verify, str(other_pub)])[0] == 1
    assert _their_verify(model, bundle, other_pub) != 0
    # a bundle over a different directory
    other = _model(tmp_path, "other-model")
    (other / "weights.bin").write_bytes(b"different weights")
    assert run(capsys, ["verify", str(other), "--bundle", str(bundle), "--public-key", str(pub)])[0] == 1
    # tampered payload inside the bundle: one digest changed, signature kept
    doc = json.loads(bundle.read_text())
    import base64

    envelope = doc["dsseEnvelope"]
    payload = json.loads(base64.b64decode(envelope["payload"]))
    digest = payload["predicate"]["resources"][0]["digest"]
    payload["predicate"]["resources"][0]["digest"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    tampered = tmp_path / "tampered.sig"
    tampered.write_text(json.dumps(doc))
    assert run(capsys, ["verify", str(model), "--bundle", str(tampered), "--public-key", str(pub)])[0] == 1
    assert _their_verify(model, tampered, pub) != 0
    # swapped payloadType
    doc = json.loads(bundle.read_text())
    doc["dsseEnvelope"]["payloadType"] = "application/json"
    swapped = tmp_path / "swapped.sig"
    swapped.write_text(json.dumps(doc))
    assert run(capsys, ["verify", str(model), "--bundle", str(swapped), "--public-key", str(pub)])[0] == 1
    # garbage bundle: a refusal, never a traceback
    junk = tmp_path / "junk.sig"
    junk.write_text("{not json")
    code, report = run(capsys, ["verify", str(model), "--bundle", str(junk), "--public-key", str(pub)])
    assert code == 1 and report is not None


def test_missing_bundle_key_mismatch_and_format_misuse_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = _keys(tmp_path)
    model = _model(tmp_path)
    assert (
        run(capsys, ["verify", str(model), "--bundle", str(tmp_path / "absent.sig"), "--public-key", str(pub)])[0] == 2
    )
    assert run(capsys, ["verify", str(model), "--bundle", str(tmp_path / "x.sig")])[0] == 2  # no key
    ed_priv, ed_pub = tmp_path / "ed.key", tmp_path / "ed.pub"
    assert main(["keygen", str(ed_priv), str(ed_pub)]) == 0
    # an Ed25519 key cannot make a model-signing bundle: explicit error, nothing written
    code, _ = run(capsys, ["hash", str(model), "--sign-key", str(ed_priv), "--signature-format", "model-signing"])
    assert code == 2
    assert not (tmp_path / "model.sig").exists()
    # an ECDSA key cannot make a legacy signature
    assert run(capsys, ["hash", str(model), "--sign-key", str(priv), "--signature-format", "aisec"])[0] == 2
    # a bundle written inside the model would sign itself
    assert run(capsys, ["hash", str(model), "--sign-key", str(priv), "--bundle", str(model / "in.sig")])[0] == 2
    # an Ed25519 public key does not verify a model-signing bundle
    assert main(["hash", str(model), "--sign-key", str(priv)]) == 0
    code, _ = run(capsys, ["verify", str(model), "--bundle", str(tmp_path / "model.sig"), "--public-key", str(ed_pub)])
    assert code == 2


def test_legacy_ed25519_signatures_still_sign_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = tmp_path / "ed.key", tmp_path / "ed.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    model = _model(tmp_path)
    code, report = run(capsys, ["hash", str(model), "--sign-key", str(priv)])
    assert code == 0 and report is not None and report["details"]["signature_path"].endswith(".manifest.json.sig")
    manifest = str(model) + ".manifest.json"
    assert run(capsys, ["verify", str(model), "--manifest", manifest, "--public-key", str(pub)])[0] == 0
    shutil.copy(model / "config.json", model / "copy.json")
    assert run(capsys, ["verify", str(model), "--manifest", manifest, "--public-key", str(pub)])[0] == 1


def test_keyless_without_identity_token_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyless Sigstore signing is never attempted interactively; the networked path is not tested here."""
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    model = _model(tmp_path)
    code, report = run(capsys, ["hash", str(model), "--sigstore-keyless"])
    assert code == 2 and report is not None and "SIGSTORE_ID_TOKEN" in report["summary"]
    assert not (tmp_path / "model.sig").exists()
    from airflow_aisec.core.model_signing import sign_model
    from airflow_aisec.exceptions import AisecInputError

    with pytest.raises(AisecInputError, match="identity token"):
        sign_model(model, tmp_path / "k.sig", keyless=True)
