"""Hostile Keras, ONNX and GGUF files built from real benign ones: exact verdicts, nothing executed,
no traceback (every payload would create the sentinel file if a loader or renderer ran it)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms
from tests import model_format_helpers as h

from ._util import cli_exit

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def benign_gguf(tmp_path_factory) -> bytes:
    return h.gguf_file(tmp_path_factory.mktemp("gguf") / "m.gguf")


# ------------------------------------------------------------------ GGUF chat templates
_GADGET_HEADS = ["cycler", "joiner", "lipsum", "self", "''", "messages", "namespace()", "range"]
_GADGET_WALKS = [
    ".__init__.__globals__",
    ".__class__.__base__.__subclasses__()",
    ".__globals__['os'].popen('touch {s}')",
    "|attr('__class__')",
    "|attr('_' ~ '_class_' ~ '_')",
    "['__class__']",
    "['_' * 2 ~ 'globals' ~ '_' * 2]",
    ".mro()",
    ".__init__.__builtins__['__import__']('os').system('touch {s}')",
]


@_SETTINGS
@given(
    head=st.sampled_from(_GADGET_HEADS),
    walk=st.sampled_from(_GADGET_WALKS),
    wrap=st.sampled_from(["{{ @ }}", "{% set x = @ %}", "{% if @ %}y{% endif %}"]),
)
def test_random_template_gadgets_are_refused(tmp_path, sentinel, head, walk, wrap):
    template = "{% for m in messages %}{{ m.content }}{% endfor %}" + wrap.replace("@", head + walk.format(s=sentinel))
    scan = ms.scan_bytes(h.gguf_file(tmp_path / "t.gguf", template=template), "m.gguf")
    assert scan.verdict == "unsafe", template
    assert {i.id for i in scan.issues} == {ms.F_GGUF_TEMPLATE}


def test_imports_and_str_format_gadgets_fail_through_the_cli(tmp_path, sentinel):
    for i, template in enumerate(
        [
            "{% from 'x' import y %}{{ y }}",
            "{% extends 'base' %}",
            "{{ '{0.__init__.__globals__}'.format(cycler) }}",
            "{{ ('{0._' ~ '_class_' ~ '_}').format(messages) }}",
        ]
    ):
        path = tmp_path / f"m{i}.gguf"
        h.gguf_file(path, template=template)
        assert cli_exit(str(path)) == 1, template


@_SETTINGS
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_gguf_is_malformed_never_a_traceback(benign_gguf, cut):
    data = benign_gguf[: min(cut, len(benign_gguf) - 1)]
    scan = ms.scan_bytes(data, "m.gguf")
    expected = ("empty", "malformed") if not data else ("gguf", "malformed") if data[:4] == b"GGUF" else None
    if expected:
        assert (scan.format, scan.verdict) == expected
    else:
        assert scan.verdict in ("unrecognised", "malformed", "safe")
    assert all("Traceback" not in e and "unexpected" not in e for e in scan.errors)


@_SETTINGS
@given(pos=st.integers(min_value=4, max_value=400), value=st.binary(min_size=1, max_size=8))
def test_corrupted_gguf_header_never_passes_silently_or_crashes(benign_gguf, pos, value):
    data = benign_gguf[:pos] + value + benign_gguf[pos + len(value) :]
    scan = ms.scan_bytes(data, "m.gguf")
    assert scan.format == "gguf"
    assert not any(e.startswith("cannot analyse: unexpected") for e in scan.errors)
    if scan.verdict == "safe":
        assert not scan.errors and not scan.issues


# ------------------------------------------------------------------ ONNX
_ESCAPES = st.one_of(
    st.builds(
        lambda n, tail: "../" * n + tail, st.integers(1, 6), st.sampled_from(["etc/passwd", "x.bin", ".ssh/id_rsa"])
    ),
    st.builds(lambda tail: "/" + tail, st.sampled_from(["etc/passwd", "proc/self/environ", "x"])),
    st.builds(lambda a, n: f"{a}/" + "../" * n + "secret", st.sampled_from(["w", "a/b"]), st.integers(2, 5)),
    st.sampled_from(["..", "..\\..\\windows\\win.ini", "C:/x", "\\\\host\\share\\x", "~/x", "http://h/x", "a\x00b"]),
)


@_SETTINGS
@given(location=_ESCAPES)
def test_hostile_external_data_paths_are_critical(location):
    data = h.onnx_bytes(h.onnx_model(initializers=[h.external_tensor(location)]))
    scan = ms.scan_bytes(data, "m.onnx")
    assert scan.verdict == "unsafe", location
    assert [(i.id, i.severity) for i in scan.issues] == [(ms.F_ONNX_EXTERNAL_DATA, "critical")]


@_SETTINGS
@given(dims=st.lists(st.integers(min_value=1 << 12, max_value=1 << 40), min_size=3, max_size=6))
def test_oversized_declared_dims_fail(dims):
    data = h.onnx_bytes(h.onnx_model(initializers=[h.external_tensor("w.bin", dims=tuple(dims), length=None)]))
    scan = ms.scan_bytes(data, "m.onnx")
    assert [i.id for i in scan.issues] == [ms.F_ONNX_TENSOR]


def test_custom_domain_hidden_in_a_subgraph_is_found(tmp_path):
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Steal", ["c"], ["o"], domain="evil")],
        "b",
        [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])],
    )
    model = h.onnx_model()
    cond = helper.make_node("If", ["c"], ["o"], then_branch=body, else_branch=body)
    model.graph.node.append(cond)
    path = tmp_path / "m.onnx"
    path.write_bytes(h.onnx_bytes(model))
    report = ms.scan_paths([path])
    assert report.status == "fail"
    assert [f.id for f in report.findings] == [ms.F_ONNX_CUSTOM_DOMAIN]


@_SETTINGS
@given(cut=st.integers(min_value=1, max_value=400))
def test_truncated_onnx_is_never_safe_onnx_with_missing_parts(cut):
    data = h.onnx_bytes(h.onnx_model(domain="evil", op="X"))
    scan = ms.scan_bytes(data[: min(cut, len(data) - 1)], "m.onnx")
    # a cut either still parses (and the custom domain, declared first in the graph, is reported or
    # the graph is gone and the stream is not ONNX), or does not parse: never a clean ONNX pass
    assert not (
        scan.format == "onnx" and scan.verdict == "safe" and any(n.domain == "evil" for n in _parsed(data[:cut]))
    )
    assert not any(e.startswith("cannot analyse: unexpected") for e in scan.errors)


def _parsed(data: bytes) -> list:
    import onnx

    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception:
        return []
    return list(m.graph.node)


# ------------------------------------------------------------------ Keras
@_SETTINGS
@given(depth=st.integers(0, 12), where=st.sampled_from(["layers", "nested", "initializer"]))
def test_lambda_anywhere_in_the_config_is_found(depth, where):
    lam: dict = h.lambda_v3_layer()
    node: object = lam
    for _ in range(depth):
        node = {
            "module": "keras.layers",
            "class_name": "TimeDistributed",
            "config": {"layer": node},
            "registered_name": None,
        }
    config = h.keras_v3_config(node) if where != "initializer" else h.keras_v3_config()
    if where == "nested":
        config = {
            "module": "keras",
            "class_name": "Functional",
            "config": {"layers": [config]},
            "registered_name": None,
        }
    if where == "initializer":
        config["config"]["layers"][1]["config"]["kernel_initializer"] = node
    scan = ms.scan_bytes(h.keras_archive(config), "m.keras")
    assert ms.F_KERAS_LAMBDA in {i.id for i in scan.issues}
    assert scan.verdict == "unsafe"


def test_keras_archive_with_a_pickle_member_and_lambda_reports_both(sentinel):
    payload = b"cos\nsystem\n(S'touch " + str(sentinel).encode() + b"'\ntR."
    data = h.keras_archive(h.keras_v3_config(h.lambda_v3_layer()), extra={"assets/x.pkl": payload})
    scan = ms.scan_bytes(data, "m.keras")
    assert scan.verdict == "unsafe"
    assert {g.qualname for g in scan.iter_globals()} == {"os.system"}
    assert [i.id for i in scan.issues] == [ms.F_KERAS_LAMBDA]


def test_keras_config_bomb_is_bounded():
    deep = "[" * 5000 + "]" * 5000
    scan = ms.scan_bytes(h.keras_archive(deep), "m.keras")
    assert scan.verdict == "malformed"


@_SETTINGS
@given(cut=st.integers(min_value=8, max_value=3000))
def test_truncated_h5_and_keras_never_crash(cut):
    # cut past the magic bytes (a shorter prefix such as "P" is only text)
    for name, data in (
        ("m.h5", h.keras_h5(h.keras_legacy_config())),
        ("m.keras", h.keras_archive(h.keras_v3_config())),
    ):
        scan = ms.scan_bytes(data[: min(cut, len(data) - 1)], name)
        assert scan.verdict in ("malformed", "unrecognised"), (name, cut, scan.format)
        assert not any(e.startswith("cannot analyse: unexpected") for e in scan.errors)


def test_hostile_h5_model_fails_through_the_cli(tmp_path):
    lam = {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEA", None, None]}}
    path = tmp_path / "model.h5"
    path.write_bytes(h.keras_h5(h.keras_legacy_config(lam)))
    assert cli_exit(str(path)) == 1
    assert cli_exit(str(path), "--allow-format", "hdf5") == 1
    report = ms.scan_paths([path])
    assert json.dumps(report.to_dict()) and report.metrics["format_issues"] == 1


def test_zip_named_keras_with_only_weights_is_an_error():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.weights.h5", h.weights_h5())
    assert ms.scan_bytes(buf.getvalue(), "m.keras").verdict == "malformed"
