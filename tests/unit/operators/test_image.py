"""ContainerImageScanOperator under real Airflow (dag.test): a clean image passes, a hostile one fails with its report."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airflow_aisec.operators.image import ContainerImageScanOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.image_helpers import (
    BENIGN_PICKLE,
    MALICIOUS_PICKLE,
    Image,
    dist_info,
    docker_save_files,
    file,
    oci_files,
    write_tar,
)
from tests.osv_helpers import snapshot_path

SITE = "usr/local/lib/python3.11/site-packages"


def test_operator_passes_a_clean_image_and_fails_a_hostile_one(airflow_db, tmp_path):
    from airflow.sdk import DAG, Asset

    clean = write_tar(
        oci_files(Image(layers=[[*dist_info(SITE, "requests", "2.32.3"), file("m.pkl", BENIGN_PICKLE)]])),
        tmp_path / "clean.tar",
    )
    evil = write_tar(
        docker_save_files(
            Image(layers=[[*dist_info(SITE, "requests", "2.19.0")], [file("app/m.pkl", MALICIOUS_PICKLE)]])
        ),
        tmp_path / "evil.tar",
    )
    with DAG("test_image_operator", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ContainerImageScanOperator(
            task_id="scan_clean",
            image=f"file://{clean}",
            osv_db=str(snapshot_path()),
            report_path=str(tmp_path / "clean.json"),
            outlets=[Asset("file:///images/clean")],
        )
        ContainerImageScanOperator(task_id="scan_evil", image=str(evil), osv_db=str(snapshot_path()))
    run = run_dag(dag)
    assert task_states(run) == {"scan_clean": "success", "scan_evil": "failed"}
    assert xcom(run, "scan_clean")["status"] == "pass"
    assert json.loads((tmp_path / "clean.json").read_text())["metrics"]["python_packages"] == 1
    report = xcom(run, "scan_evil")  # pushed before the task failed
    assert report["status"] == "fail"
    assert {"PYSEC-2018-28", "AISEC-MODEL-DANGEROUS-GLOBAL"} <= {f["id"] for f in report["findings"]}


def test_constructor_validates():
    with pytest.raises(ValueError, match="needs `image`"):
        ContainerImageScanOperator(task_id="x", image="")
    with pytest.raises(ValueError, match="fail_on must be one of"):
        ContainerImageScanOperator(task_id="x", image="a.tar", fail_on="any")
    with pytest.raises(ValueError, match="os_packages must be one of"):
        ContainerImageScanOperator(task_id="x", image="a.tar", os_packages="ignore")
    with pytest.raises(TypeError, match="list of format names"):
        ContainerImageScanOperator(task_id="x", image="a.tar", allow_formats="gguf")
    assert "image" in ContainerImageScanOperator.template_fields
