"""ONNX: parsed protobuf; custom domains, external data paths and tensor sizes judged."""

from __future__ import annotations

import pytest

from airflow_aisec.core import modelscan as ms
from tests import model_format_helpers as h


def test_plain_onnx_model_passes(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(h.onnx_bytes(h.onnx_model()))
    scan = ms.scan_file(path)
    assert (scan.format, scan.verdict) == ("onnx", "safe")
    assert ms.scan_paths([path]).status == "pass"


def test_ml_and_microsoft_domains_are_standard():
    for domain in ("ai.onnx.ml", "com.microsoft"):
        assert ms.scan_bytes(h.onnx_bytes(h.onnx_model(domain=domain, op="Gelu")), "m.onnx").verdict == "safe"


def test_custom_operator_domain_fails(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(h.onnx_bytes(h.onnx_model(domain="acme.ops", op="Exfil")))
    report = ms.scan_paths([path])
    assert report.status == "fail"
    (finding,) = report.findings
    assert (finding.id, finding.severity) == (ms.F_ONNX_CUSTOM_DOMAIN, "high")
    assert finding.details["op_types"] == ["Exfil"]


def test_local_function_domain_is_not_custom():
    from onnx import helper

    model = h.onnx_model(domain="local.fn", op="MyRelu")
    fn = helper.make_function(
        "local.fn", "MyRelu", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])], [helper.make_opsetid("", 17)]
    )
    model.functions.append(fn)
    assert ms.scan_bytes(h.onnx_bytes(model), "m.onnx").verdict == "safe"


@pytest.mark.parametrize(
    "location",
    ["../../etc/passwd", "/etc/passwd", "sub/../../x.bin", "C:\\w.bin", "~/.ssh/id_rsa", "file:///etc/passwd", ""],
)
def test_external_data_leaving_the_directory_is_critical(location):
    scan = ms.scan_bytes(h.onnx_bytes(h.onnx_model(initializers=[h.external_tensor(location)])), "m.onnx")
    assert scan.verdict == "unsafe"
    assert [(i.id, i.severity) for i in scan.issues] == [(ms.F_ONNX_EXTERNAL_DATA, "critical")]


def test_external_data_beside_the_model_passes_and_is_named():
    scan = ms.scan_bytes(h.onnx_bytes(h.onnx_model(initializers=[h.external_tensor("weights/w.bin")])), "m.onnx")
    assert scan.verdict == "safe"
    assert "weights/w.bin" in scan.notes[0]


def test_oversized_and_inconsistent_tensors_fail():
    huge = h.external_tensor("w.bin", dims=(1 << 30, 1 << 30))
    wrong_len = h.external_tensor("w.bin", length=7)
    scan = ms.scan_bytes(h.onnx_bytes(h.onnx_model(initializers=[huge, wrong_len])), "m.onnx")
    assert [i.id for i in scan.issues] == [ms.F_ONNX_TENSOR, ms.F_ONNX_TENSOR]
    from onnx import TensorProto

    short = TensorProto(name="S", data_type=TensorProto.FLOAT, dims=[1000], raw_data=b"\0" * 8)
    scan = ms.scan_bytes(h.onnx_bytes(h.onnx_model(initializers=[short])), "m.onnx")
    assert [i.id for i in scan.issues] == [ms.F_ONNX_TENSOR]
    assert "holds 8" in scan.issues[0].title


def test_bytes_that_only_start_like_onnx_are_unknown():
    scan = ms.scan_bytes(b"\x08\x07\x12\x04\x00\xfe\x01" + bytes(range(256)), "m.onnx")
    assert scan.format == "unknown"
    assert scan.verdict == "unrecognised"


def test_missing_onnx_is_an_error_for_an_onnx_named_file(monkeypatch):
    import sys

    data = h.onnx_bytes(h.onnx_model())
    monkeypatch.setitem(sys.modules, "onnx", None)
    scan = ms.scan_bytes(data, "m.onnx")
    assert scan.verdict == "malformed"
    assert "airflow-aisec[formats]" in scan.errors[0]
