from __future__ import annotations

import json

import pytest

from tests.fixtures.moto_server import moto_server  # noqa: F401  (session fixture: real S3 API on loopback)

CONN_ID = "aisec_s3_test"


@pytest.fixture(scope="module")
def aws_conn(moto_server):  # noqa: F811
    """Airflow connection ``aisec_s3_test`` as ``AIRFLOW_CONN_AISEC_S3_TEST`` (JSON form): dummy
    credentials and ``extra.endpoint_url`` = the moto server."""
    mp = pytest.MonkeyPatch()
    mp.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1"},
            }
        ),
    )
    yield CONN_ID
    mp.undo()
