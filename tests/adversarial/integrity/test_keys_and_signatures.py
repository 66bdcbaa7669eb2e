"""Keys are bound to algorithms; signatures are untrusted strict JSON; no algorithm confusion."""

from __future__ import annotations

import base64
import json
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import signing
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.integrity.helpers import finding_ids, run


@pytest.fixture(scope="module")
def ed_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    priv, pub = base / "k.pem", base / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    return priv, pub


def _public_material(pub_pem: bytes) -> list[bytes]:
    """The same public key in every encoding an operator might paste as a "secret"."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(pub_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")})
    return [pub_pem, der, base64.b64encode(der), der.hex().encode(), ssh, ssh + b" user@host\n", jwk.encode()]


@settings(max_examples=60)
@given(st.integers(0, 6), st.sampled_from(["", " ", "\n", "\r\n", "\t"]), st.sampled_from(["", "\n", "  \n"]))
def test_public_key_material_is_never_an_hmac_secret(ed_pair, which, prefix, suffix):
    material = prefix.encode() + _public_material(ed_pair[1].read_bytes())[which] + suffix.encode()
    for loader in (signing.load_verify_key, signing.load_signing_key):
        with pytest.raises(AisecInputError, match="HMAC secret is|must be a PEM key"):
            loader(material, "hmac-sha256")
    if b"-----BEGIN" not in material:  # without a PEM header the default is HMAC: still refused
        with pytest.raises(AisecInputError, match="HMAC secret is"):
            signing.load_verify_key(material)


@settings(max_examples=60)
@given(
    st.one_of(
        st.binary(max_size=15),
        st.builds(lambda c, n: c * n, st.binary(min_size=1, max_size=3), st.integers(6, 40)),
        st.text("0123", min_size=16, max_size=30).map(str.encode),
    )
)
def test_short_and_low_entropy_secrets_are_refused(secret):
    with pytest.raises(AisecInputError, match="too short|low-entropy|HMAC secret is"):
        signing.load_signing_key(secret, "hmac-sha256")


@settings(max_examples=40)
@given(st.integers(0, 2**32), st.integers(32, 64))
def test_random_secrets_are_accepted(seed, size):
    secret = random.Random(seed).randbytes(size)  # a real PRNG: hypothesis' own bytes are not random
    # hex- or base64-encoded random bytes: what the docs tell users to create
    for encoded in (secret.hex().encode(), base64.b64encode(secret)):
        key = signing.load_signing_key(encoded, "hmac-sha256")
        assert key.algorithm == "hmac-sha256" and encoded.decode() not in repr(key)


def test_other_pem_material_as_hmac_secret_and_raw_secret_as_ed25519(ed_pair, tmp_path):
    for pem in (ed_pair[0].read_bytes(), b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"):
        with pytest.raises(AisecInputError, match="PEM key material"):
            signing.load_verify_key(pem, "hmac-sha256")
    with pytest.raises(AisecInputError, match="must be a PEM key"):
        signing.load_verify_key(os.urandom(32).hex().encode(), "ed25519")


def test_algorithm_confusion_is_a_bad_signature(ed_pair, tmp_path, capsys):
    """An HMAC signature made with the (public) PEM as secret never verifies with the public key."""
    import hashlib
    import hmac

    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest)])[0] == 0
    pub_pem = ed_pair[1].read_bytes()
    vk = signing.load_verify_key(pub_pem)
    forged = {
        "schema": signing.SIGNATURE_SCHEMA,
        "algorithm": "hmac-sha256",
        "key_id": vk.key_id,
        "signature": base64.b64encode(hmac.new(pub_pem, manifest.read_bytes(), hashlib.sha256).digest()).decode(),
    }
    sig = tmp_path / "m.json.sig"
    sig.write_text(json.dumps(forged))
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(ed_pair[1])])
    assert code == 1 and "AISEC-INT-BAD-SIGNATURE" in finding_ids(report)
    forged["algorithm"] = "ed25519"  # claims ed25519 but carries 32 HMAC bytes
    sig.write_text(json.dumps(forged))
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(ed_pair[1])])
    assert code == 1 and report["status"] == "fail"
    # and an ed25519 signature never verifies with an HMAC key
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    assert run(capsys, ["hash", str(model), "-o", str(manifest), "--sign-key", str(ed_pair[0])])[0] == 0
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(secret)])
    assert code == 1 and "does not match the key" in json.dumps(report)
    code, _ = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(ed_pair[1])])
    assert code == 0


SIG_MUTATIONS = [
    lambda d: '{"schema": "x", ' + json.dumps(d)[1:],  # duplicate key
    lambda d: json.dumps({**d, "signature": 5}),
    lambda d: json.dumps({**d, "algorithm": ["ed25519"]}),
    lambda d: json.dumps({**d, "algorithm": "none"}),
    lambda d: json.dumps({**d, "key_id": "../../etc"}),
    lambda d: json.dumps({**d, "signed_sha256": 10**40}),
    lambda d: json.dumps({**d, "extra": True}),
    lambda d: json.dumps({**d, "signature": "A" * 5000}),
    lambda d: json.dumps(d).replace('"schema"', '"schema": NaN, "x"', 1),
    lambda d: "[" * 200 + "]" * 200,
    lambda d: json.dumps([d]),
    lambda d: b"\xff\xfe".decode("latin-1") + json.dumps(d),
]


@pytest.mark.parametrize("mutate", SIG_MUTATIONS)
def test_malformed_signature_documents_are_errors(ed_pair, tmp_path, capsys, mutate):
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest), "--sign-key", str(ed_pair[0])])[0] == 0
    sig = tmp_path / "m.json.sig"
    sig.write_text(mutate(json.loads(sig.read_text())), encoding="latin-1")
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(ed_pair[1])])
    assert code == 2 and report["status"] == "error"
    code, report = run(
        capsys,
        ["provenance", str(model), "--allow-source", str(tmp_path), "--manifest", str(manifest)]
        + ["--public-key", str(ed_pair[1])],
    )
    assert code == 2 and report["status"] == "error"


def test_signature_over_other_bytes_is_refused(ed_pair, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest), "--sign-key", str(ed_pair[0])])[0] == 0
    data = manifest.read_bytes()
    manifest.write_bytes(data.replace(b"\n", b"\r\n"))  # same JSON, other bytes
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(ed_pair[1])])
    assert code == 1 and "AISEC-INT-BAD-SIGNATURE" in finding_ids(report)


@pytest.mark.parametrize("field", ["public_key", "password"])
def test_connection_declaring_hmac_with_a_public_key_is_refused(ed_pair, monkeypatch, field):
    """The connection path: algorithm=hmac-sha256 plus a public key (extra or password) is not a secret."""
    from types import SimpleNamespace

    from airflow_aisec.hooks.signing import SigningKeyHook

    pem = ed_pair[1].read_text()
    extra = {"algorithm": "hmac-sha256", **({"public_key": pem} if field == "public_key" else {})}
    conn = SimpleNamespace(password=pem if field == "password" else None, extra_dejson=extra)
    monkeypatch.setattr(SigningKeyHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    with pytest.raises(AisecInputError, match="HMAC secret is PEM key material"):
        SigningKeyHook(signing_conn_id="x").get_verify_key()
    if field == "password":
        with pytest.raises(AisecInputError, match="HMAC secret is PEM key material"):
            SigningKeyHook(signing_conn_id="x").get_signing_key()


def _public_material_elsewhere(pub_pem: bytes) -> list[bytes]:
    """Public key material in the places and encodings it is found in practice (none may be a secret)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(pub_pem)
    ssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = ssh.split()[1]
    jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")})
    escaped = jwk.replace('"kty"', '"\\u006bty"').replace('"crv"', '"\\u0063rv"').replace('"x"', '"\\u0078"')
    return [
        b'restrict,from="10.0.0.1" ' + ssh + b" ci@build",  # an authorized_keys line with options
        b"git.example.com,10.0.0.5 " + ssh,  # a known_hosts line (a host's public key)
        blob,  # the base64 blob alone
        base64.b64decode(blob).hex().encode(),  # its hex
        pub_pem.decode().encode("utf-16"),  # PowerShell `>` writes UTF-16 with a BOM
        ssh.decode().encode("utf-16-le"),
        jwk.encode("utf-16"),
        escaped.encode(),  # JWK field names as JSON escapes
    ]


@pytest.mark.parametrize("which", range(8))
def test_public_key_in_other_places_and_encodings_is_never_an_hmac_secret(ed_pair, tmp_path, capsys, which):
    material = _public_material_elsewhere(ed_pair[1].read_bytes())[which]
    for loader in (signing.load_verify_key, signing.load_signing_key):
        with pytest.raises(AisecInputError, match="HMAC secret is (PEM|an SSH|a JWK)"):
            loader(material, "hmac-sha256")
    art = tmp_path / "a.bin"
    art.write_bytes(b"x")
    secret = tmp_path / "secret"
    secret.write_bytes(material)
    manifest = tmp_path / "m.json"
    manifest.write_bytes(b"{}")
    code, _ = run(capsys, ["verify", str(art), "--manifest", str(manifest), "--public-key", str(secret)])
    assert code == 2


def test_random_secrets_with_nul_bytes_are_still_accepted():
    rng = random.Random(7)
    for _ in range(300):
        secret = bytes(rng.randrange(256) for _ in range(32)) + b"\x00\x00"
        assert signing.check_hmac_secret(secret) == secret


@settings(max_examples=60)
@given(
    st.one_of(
        # a run of consecutive bytes (abcdef…, 0123…, \x00\x01…), any start and step
        st.builds(
            lambda start, step, n: bytes((start + i * step) % 256 for i in range(n)),
            st.integers(0, 255),
            st.integers(1, 3),
            st.integers(16, 64),
        ),
        # a short phrase repeated (changeme-changeme-…), however long the result
        st.builds(
            lambda unit, n: (unit * n)[: max(16, len(unit) * 2)] if n < 2 else unit * n,
            st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=8, max_size=12).map(str.encode),
            st.integers(2, 8),
        ),
    )
)
def test_runs_and_repetitions_are_low_entropy(secret):
    with pytest.raises(AisecInputError, match="low-entropy"):
        signing.check_hmac_secret(secret)


@pytest.mark.parametrize("label", [b"PUBLIC KEY", b"PRIVATE KEY"])
def test_pem_key_of_an_unknown_algorithm_is_an_input_error_not_a_crash(tmp_path, capsys, label):
    der = bytes.fromhex("3019300506032a0304" + "0310" + "00" + "11" * 15)  # SPKI, algorithm OID 1.2.3.4
    pem = b"-----BEGIN " + label + b"-----\n" + base64.b64encode(der) + b"\n-----END " + label + b"-----\n"
    for loader in (signing.load_verify_key, signing.load_signing_key):
        with pytest.raises(AisecInputError, match="not a PEM key|not an unencrypted PEM"):
            loader(pem)
    key = tmp_path / "k.pub"
    key.write_bytes(pem)
    art = tmp_path / "a.bin"
    art.write_bytes(b"x")
    manifest = tmp_path / "m.json"
    manifest.write_bytes(b"{}")
    assert run(capsys, ["verify", str(art), "--manifest", str(manifest), "--public-key", str(key)])[0] == 2
