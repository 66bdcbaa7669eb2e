"""CycloneDX 1.6 environment SBOM and ML-BOM, validated by cyclonedx-python-lib's own strict validator."""

from __future__ import annotations

import hashlib
import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from airflow_aisec.core.dependency_audit import run_audit
from airflow_aisec.core.integrity import hash_artifact
from airflow_aisec.core.manifest import parse_manifest
from airflow_aisec.core.sbom import DataComponent, ModelComponent, ml_bom, serialize, validate_json
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from tests.osv_helpers import snapshot_path


def strict_errors(text: str):
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The dependency audit's SBOM of an environment with requests 2.19.0 (vulnerable) and six."""
    tmp = tmp_path_factory.mktemp("env")
    reqs = tmp / "requirements.txt"
    reqs.write_text("requests==2.19.0\nsix==1.16.0\n")
    sbom = tmp / "env.cdx.json"
    report = run_audit(requirements=[str(reqs)], osv_db=snapshot_path(), sbom_path=str(sbom))
    assert report.status == "fail"
    return sbom.read_text()


@pytest.fixture
def tiny_model(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(b"weights")
    (model_dir / "metrics.json").write_text('{"accuracy": 0.97}')
    manifest = tmp_path / "model.manifest.json"
    hash_artifact(model_dir, manifest_path=manifest)
    data = manifest.read_bytes()
    return model_dir, parse_manifest(data), hashlib.sha256(data).hexdigest()


def test_environment_sbom_is_strict_cyclonedx_1_6_with_vex_for_requests_2_19_0(environment):
    assert strict_errors(environment) is None
    doc = json.loads(environment)
    assert doc["specVersion"] == "1.6"
    refs = {c["name"]: c["bom-ref"] for c in doc["components"]}
    assert refs == {"requests": "pkg:pypi/requests@2.19.0", "six": "pkg:pypi/six@1.16.0"}
    vex = {v["id"]: v for v in doc["vulnerabilities"]}
    assert set(vex) == {"PYSEC-2018-28", "PYSEC-2023-74"}
    cve = vex["PYSEC-2018-28"]
    assert cve["affects"] == [{"ref": refs["requests"], "versions": [{"version": "2.19.0", "status": "affected"}]}]
    assert cve["analysis"]["state"] == "in_triage"
    assert {r["id"] for r in cve["references"]} >= {"CVE-2018-18074"}
    assert "2.20.0" in cve["recommendation"]
    assert not any(t["ref"] == refs["six"] for v in doc["vulnerabilities"] for t in v["affects"])


def test_ml_bom_of_a_tiny_model_dataset_and_environment_validates_strictly(environment, tiny_model):
    model_dir, manifest, manifest_sha = tiny_model
    data = [
        DataComponent(name="training-dataset", uri="file:///data/ds.csv", sha256="a" * 64),
        DataComponent(
            name="split:train",
            uri="file:///data/train.parquet",
            sha256="b" * 64,
            role="split",
            properties={"rows": 455, "seed": 42},
        ),
    ]
    text = ml_bom(
        model=ModelComponent(
            name="clf",
            manifest=manifest,
            manifest_sha256=manifest_sha,
            metrics={"accuracy": 0.97, "roc_auc": 0.99, "flag": True},
            task="classification",
        ),
        data=data,
        environment=environment,
    )
    assert strict_errors(text) is None
    doc = json.loads(text)
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "clf"
    files = {c["name"]: c["hashes"][0] for c in model["components"]}
    assert files["model.pkl"] == {"alg": "SHA-256", "content": hashlib.sha256(b"weights").hexdigest()}
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["aisec:manifest:sha256"] == manifest_sha
    assert props["aisec:manifest:root_digest"] == manifest["root_digest"]
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": "data:training-dataset"}, {"ref": "data:split:train"}]
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "accuracy", "value": "0.97"},
        {"type": "roc_auc", "value": "0.99"},
    ]
    datas = {c["name"]: c for c in doc["components"] if c["type"] == "data"}
    assert datas["split:train"]["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    assert {"name": "aisec:data:rows", "value": "455"} in datas["split:train"]["properties"]
    assert {d["ref"]: d.get("dependsOn") for d in doc["dependencies"]}["model:clf"] == [
        "data:split:train",
        "data:training-dataset",
    ]
    # the environment's packages and VEX entries are carried over unchanged, into a new document
    assert doc["serialNumber"] != json.loads(environment)["serialNumber"]
    assert {v["id"] for v in doc["vulnerabilities"]} == {"PYSEC-2018-28", "PYSEC-2023-74"}
    assert {c["name"] for c in doc["components"] if c["type"] == "library"} == {"requests", "six"}


def test_single_file_model_carries_its_hash_on_the_model_component(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    hash_artifact(tmp_path / "model.onnx", manifest_path=tmp_path / "m.json")
    manifest = parse_manifest((tmp_path / "m.json").read_bytes())
    doc = json.loads(ml_bom(model=ModelComponent(name="one", manifest=manifest), data=[]))
    assert doc["metadata"]["component"]["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(b"onnx").hexdigest()}
    ]


def test_a_digest_cyclonedx_cannot_express_is_refused_not_dropped():
    manifest = {"algorithm": "sha256", "kind": "file", "entries": [{"path": "m", "type": "file", "digest": "abc"}]}
    with pytest.raises(AisecInputError, match="cannot express a 'sha256' digest of 3 hex digits"):
        ml_bom(model=ModelComponent(name="m", manifest=manifest), data=[])
    with pytest.raises(AisecInputError, match="lists no entries"):
        ml_bom(model=ModelComponent(name="m", manifest={"algorithm": "sha256", "entries": []}), data=[])


def test_malformed_environment_sbom_is_an_input_error(tiny_model):
    _, manifest, _ = tiny_model
    with pytest.raises(AisecInputError, match="not a CycloneDX JSON document"):
        ml_bom(model=ModelComponent(name="m", manifest=manifest), data=[], environment="[1, 2]")


def test_an_invalid_document_is_never_returned():
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    assert validate_json('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": "nope"}') is not None
    bom = Bom()
    bom.components.add(Component(type=ComponentType.MACHINE_LEARNING_MODEL, name="m", bom_ref="m"))
    assert json.loads(serialize(bom))["components"][0]["name"] == "m"
    with pytest.raises(AisecUndecidableError, match="does not validate"):
        serialize(bom, model_card={"m": {"modelParameters": {"datasets": "not a list"}}})
