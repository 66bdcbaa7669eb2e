"""Keras v3 archives and legacy HDF5 models: the configuration is judged, the model never loaded."""

from __future__ import annotations

import json

import pytest

from airflow_aisec.core import modelscan as ms
from tests import model_format_helpers as h


def _ids(scan: ms.FileScan) -> list[str]:
    return [i.id for leaf in [scan, *scan.members] for i in leaf.issues]


def test_plain_sequential_keras_archive_passes(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(h.keras_archive(h.keras_v3_config()))
    scan = ms.scan_file(path)
    assert (scan.format, scan.verdict) == ("keras", "safe")
    assert {m.location.rsplit("!", 1)[1]: m.format for m in scan.members}["model.weights.h5"] == "hdf5-weights"
    report = ms.scan_paths([path])
    assert report.status == "pass", report.summary
    assert {f.severity for f in report.findings} <= {"info"}  # config/metadata members are text


def test_lambda_layer_in_keras_archive_is_critical():
    scan = ms.scan_bytes(h.keras_archive(h.keras_v3_config(h.lambda_v3_layer())), "m.keras")
    assert scan.verdict == "unsafe"
    assert _ids(scan) == [ms.F_KERAS_LAMBDA]
    assert scan.issues[0].severity == "critical"
    assert scan.issues[0].details["path"].startswith("config.json")


def test_custom_object_and_registered_function_are_reported_and_allowlistable():
    custom = {"module": "acme.layers", "class_name": "Gate", "config": {"name": "g"}, "registered_name": "acme>Gate"}
    fn = {"module": "builtins", "class_name": "function", "config": "my_act", "registered_name": "function"}
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 1, "activation": fn}}
    data = h.keras_archive(h.keras_v3_config(custom, dense))
    scan = ms.scan_bytes(data, "m.keras")
    assert scan.verdict == "unsafe"
    assert _ids(scan) == [ms.F_KERAS_CUSTOM, ms.F_KERAS_CUSTOM]
    titles = " ".join(i.title for i in scan.issues)
    assert "acme.layers.Gate" in titles and "builtins.my_act" in titles
    policy = ms.Policy(allow=("acme.layers.Gate", "builtins.my_act"))
    assert ms.scan_bytes(data, "m.keras", policy).verdict == "safe"


def test_keras_builtin_class_with_a_foreign_registered_name_is_custom():
    spoof = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}, "registered_name": "evil>Dense"}
    scan = ms.scan_bytes(h.keras_archive(h.keras_v3_config(spoof)), "m.keras")
    assert _ids(scan) == [ms.F_KERAS_CUSTOM]


@pytest.mark.parametrize("config", ["{not json", "[1, 2", '{"a": 1, "a": 2}'])
def test_keras_archive_with_unreadable_config_is_an_error(config):
    scan = ms.scan_bytes(h.keras_archive(config), "m.keras")
    assert scan.verdict == "malformed"
    assert any("config.json" in e for e in scan.errors)


def test_keras_archive_without_config_is_an_error():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.weights.h5", h.weights_h5())
    scan = ms.scan_bytes(buf.getvalue(), "m.keras")
    assert scan.format == "keras"
    assert scan.verdict == "malformed"


def test_legacy_h5_model_of_builtin_layers_passes(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(
        h.keras_h5(
            h.keras_legacy_config(), training={"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {}}}
        )
    )
    scan = ms.scan_file(path)
    assert (scan.format, scan.verdict) == ("keras-h5", "safe")
    assert ms.scan_paths([path]).status == "pass"


def test_legacy_h5_lambda_and_custom_layer_are_reported():
    lam = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"},
    }
    custom = {"class_name": "Custom>Gate", "config": {"name": "g"}}
    act = {"class_name": "Dense", "config": {"name": "d", "units": 1, "activation": "my_registered_act"}}
    scan = ms.scan_bytes(h.keras_h5(h.keras_legacy_config(lam, custom, act)), "m.h5")
    assert scan.format == "keras-h5"
    assert sorted(_ids(scan)) == sorted([ms.F_KERAS_LAMBDA, ms.F_KERAS_CUSTOM, ms.F_KERAS_CUSTOM])


def test_weights_only_hdf5_passes_and_other_hdf5_stays_uninspected():
    assert ms.scan_bytes(h.weights_h5(), "w.h5").verdict == "safe"

    def strings(f):
        f.create_dataset("names", data=[b"a", b"bb"], dtype=__import__("h5py").string_dtype())

    scan = ms.scan_bytes(h.weights_h5(strings), "w.h5")
    assert scan.format == "hdf5"
    assert scan.verdict == "unrecognised"
    assert ms.scan_bytes(h.weights_h5(strings), "w.h5", allow_formats=["hdf5"]).verdict == "safe"


def test_hdf5_external_link_leaves_the_file_so_it_is_not_vouched_for():
    def link(f):
        f["escape"] = __import__("h5py").ExternalLink("/etc/passwd", "/x")

    scan = ms.scan_bytes(h.weights_h5(link), "w.h5")
    assert scan.format == "hdf5"
    assert scan.verdict == "unrecognised"
    assert any("external link" in n for n in scan.notes)


def test_missing_h5py_is_an_error_naming_the_extra(monkeypatch):
    import sys

    data = h.weights_h5()
    monkeypatch.setitem(sys.modules, "h5py", None)
    scan = ms.scan_bytes(data, "w.h5")
    assert scan.verdict == "malformed"
    assert "airflow-aisec[formats]" in scan.errors[0]
    assert json.loads(json.dumps(scan.to_dict()))["verdict"] == "malformed"


def test_function_reference_into_a_keras_module_is_reported_but_builtin_activation_is_not():
    # config.json naming a keras helper as a function: a loader imports and resolves it
    helper = {
        "module": "keras.src.utils.file_utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": "function",
    }
    relu = {"module": "keras.src.activations", "class_name": "function", "config": "relu", "registered_name": "relu"}
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d", "units": 1, "activation": relu, "bias": helper},
    }
    scan = ms.scan_bytes(h.keras_archive(h.keras_v3_config(dense)), "m.keras")
    assert _ids(scan) == [ms.F_KERAS_CUSTOM]
    assert "keras.src.utils.file_utils.get_file" in scan.issues[0].title
