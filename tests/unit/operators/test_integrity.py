"""Integrity operators and sensor, run for real through ``dag.test()``."""

from __future__ import annotations

import json
import threading
import time

import pendulum
import pytest
from airflow.sdk import DAG, Asset

from airflow_aisec.core import signing
from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from tests.airflow_helpers import run_dag, task_states, xcom

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@pytest.fixture
def model(tmp_path):
    root = tmp_path / "model"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"w" * 10_000)
    (root / "config.json").write_text("{}")
    return root


@pytest.fixture
def keypair(tmp_path):
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    return priv, pub


def test_hash_sign_verify_and_asset_event(airflow_db, model, keypair, tmp_path):
    manifest = tmp_path / "model.manifest.json"
    asset = Asset("aisec://test/model")
    with DAG("t_integrity_ok", schedule=None, start_date=START) as dag:
        h = ArtifactHashOperator(
            task_id="hash",
            path=str(model),
            manifest_path=str(manifest),
            signing_key_path=str(keypair[0]),
            outlets=[asset],
        )
        v = ArtifactIntegrityOperator(
            task_id="verify", path=str(model), manifest_path=str(manifest), public_key_path=str(keypair[1])
        )
        h >> v
    dr = run_dag(dag)
    assert task_states(dr) == {"hash": "success", "verify": "success"}
    hashed = xcom(dr, "hash")
    assert hashed["status"] == "pass"
    assert xcom(dr, "hash", "return_value") == hashed
    assert json.loads(manifest.read_text())["root_digest"] == hashed["details"]["digest"]
    assert xcom(dr, "verify")["details"]["signature_valid"] is True

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        event = session.query(AssetEvent).filter(AssetEvent.source_run_id == dr.run_id).one()
        assert event.extra["digest"] == hashed["details"]["digest"]
        assert event.extra["signed"] is True


def test_mismatch_fails_task_after_pushing_report(airflow_db, model, tmp_path):
    manifest = tmp_path / "m.json"
    with DAG("t_integrity_tamper", schedule=None, start_date=START) as dag:
        ArtifactHashOperator(task_id="hash", path=str(model), manifest_path=str(manifest)) >> ArtifactIntegrityOperator(
            task_id="verify",
            path=str(model),
            manifest_path=str(manifest),
            pre_execute=lambda ctx: (model / "config.json").write_text("evil"),
        )
    dr = run_dag(dag)
    assert task_states(dr)["verify"] == "failed"
    report = xcom(dr, "verify")
    assert report["status"] == "fail"
    assert [f["location"] for f in report["findings"]] == ["config.json"]


def test_missing_manifest_and_bad_digest_fail_closed(airflow_db, model, tmp_path):
    with DAG("t_integrity_missing", schedule=None, start_date=START) as dag:
        ArtifactIntegrityOperator(task_id="no_manifest", path=str(model), manifest_path=str(tmp_path / "absent.json"))
        ArtifactIntegrityOperator(task_id="bad_digest", path=str(model / "config.json"), expected_digest="0" * 64)
        ArtifactIntegrityOperator(
            task_id="templated",
            path="{{ params.p }}",
            expected_digest="{{ params.d }}",
            params={
                "p": str(model / "config.json"),
                "d": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            },
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"no_manifest": "failed", "bad_digest": "failed", "templated": "success"}
    err = xcom(dr, "no_manifest")
    assert err["status"] == "error"
    assert "manifest not found" in err["summary"]
    assert xcom(dr, "bad_digest")["findings"][0]["id"] == "AISEC-INT-DIGEST-MISMATCH"


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="exactly one of expected_digest or manifest_path"):
        ArtifactIntegrityOperator(task_id="x", path="/p")
    with pytest.raises(ValueError, match="not both"):
        ArtifactHashOperator(task_id="y", path="/p", signing_key_path="k", signing_conn_id="c")


def test_signing_key_from_connection(airflow_db, model, keypair, tmp_path, monkeypatch):
    conn = {"conn_type": "aisec_signing_key", "password": keypair[0].read_text(), "extra": {"algorithm": "ed25519"}}
    monkeypatch.setenv("AIRFLOW_CONN_AISEC_TEST_KEY", json.dumps(conn))
    manifest = tmp_path / "m.json"
    with DAG("t_integrity_conn", schedule=None, start_date=START) as dag:
        ArtifactHashOperator(
            task_id="hash", path=str(model), manifest_path=str(manifest), signing_conn_id="aisec_test_key"
        ) >> ArtifactIntegrityOperator(
            task_id="verify", path=str(model), manifest_path=str(manifest), signing_conn_id="aisec_test_key"
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"hash": "success", "verify": "success"}
    assert xcom(dr, "verify")["details"]["key_id"] == signing.load_verify_key(keypair[1]).key_id
    assert keypair[0].read_text().splitlines()[1] not in json.dumps(xcom(dr, "hash"))


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_waits_for_artifact_then_verifies(airflow_db, tmp_path, mode):
    target = tmp_path / f"late-{mode}.bin"
    digest = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # sha256("x")

    def land_later():
        time.sleep(1.5)
        target.write_bytes(b"x")

    kwargs = {"deferrable": True} if mode == "deferrable" else {"mode": mode}
    with DAG(f"t_integrity_sensor_{mode}", schedule=None, start_date=START) as dag:
        ArtifactIntegritySensor(
            task_id="wait", path=str(target), expected_digest=digest, poke_interval=0.5, timeout=60, **kwargs
        )
    writer = threading.Thread(target=land_later)
    writer.start()
    try:
        dr = run_dag(dag)
    finally:
        writer.join()
    assert task_states(dr) == {"wait": "success"}
    assert xcom(dr, "wait")["status"] == "pass"


def test_sensor_fails_on_mismatch_and_times_out(airflow_db, tmp_path):
    present = tmp_path / "present.bin"
    present.write_bytes(b"y")
    with DAG("t_integrity_sensor_fail", schedule=None, start_date=START) as dag:
        ArtifactIntegritySensor(
            task_id="mismatch", path=str(present), expected_digest="0" * 64, poke_interval=0.2, timeout=30
        )
        ArtifactIntegritySensor(
            task_id="never", path=str(tmp_path / "never.bin"), expected_digest="0" * 64, poke_interval=0.2, timeout=1
        )
        ArtifactIntegritySensor(
            task_id="soft", path=str(present), expected_digest="0" * 64, poke_interval=0.2, timeout=30, soft_fail=True
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"mismatch": "failed", "never": "failed", "soft": "skipped"}
    assert xcom(dr, "mismatch")["status"] == "fail"
    assert xcom(dr, "never") is None


def test_model_signing_bundle_hash_then_verify(airflow_db, model, tmp_path):
    priv, pub = tmp_path / "ec.key", tmp_path / "ec.pub"
    signing.generate_ecdsa_keypair(priv, pub)
    bundle = tmp_path / "model.sig"
    with DAG("t_integrity_model_signing", schedule=None, start_date=START) as dag:
        h = ArtifactHashOperator(task_id="hash", path=str(model), signing_key_path=str(priv), bundle_path=str(bundle))
        v = ArtifactIntegrityOperator(
            task_id="verify", path=str(model), bundle_path=str(bundle), public_key_path=str(pub)
        )
        # the sensor takes a bundle too (it waits for the artifact and the bundle, then verifies)
        w = ArtifactIntegritySensor(
            task_id="wait", path=str(model), bundle_path=str(bundle), public_key_path=str(pub), poke_interval=0.2
        )
        h >> [v, w]
    dr = run_dag(dag)
    assert task_states(dr) == {"hash": "success", "verify": "success", "wait": "success"}
    assert xcom(dr, "wait")["details"]["signature_valid"] is True
    assert xcom(dr, "hash")["details"]["signature_format"] == "model-signing"
    assert xcom(dr, "verify")["details"]["signature_valid"] is True
