"""Real model files of the parsed formats, built with the real libraries (h5py, onnx, gguf).

Keras itself needs a heavy backend (TensorFlow/JAX/PyTorch), so ``.keras`` archives are built with h5py
and the documented Keras v3 layout (``config.json``, ``metadata.json``, ``model.weights.h5``), and legacy
``.h5`` models with the ``model_config`` root attribute Keras writes; the configs are those Keras 3 / tf.keras
serialise for a small Dense model.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

NORMAL_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}<|user|>{{ message['content'] | trim }}"
    "{% else %}{% if not loop.last %}{{ raise_exception('bad order') }}{% endif %}"
    "<|assistant|>{{ message.content }}{% endif %}"
    "{% set ns = namespace(n=loop.index0 + 1) %}{{ messages[loop.index0 - 1]['role'] if loop.index0 }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _v3_layer(cls: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
    return {"module": module, "class_name": cls, "config": config, "registered_name": None}


def keras_v3_config(*extra_layers: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 Sequential config: Input(4) -> Dense(8, relu) -> extra layers -> Dense(1)."""
    init = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    }
    dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    layers = [
        _v3_layer("InputLayer", {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"}),
        _v3_layer(
            "Dense", {"name": "dense", "units": 8, "activation": "relu", "kernel_initializer": init, "dtype": dtype}
        ),
        *extra_layers,
        _v3_layer("Dense", {"name": "dense_1", "units": 1, "activation": "linear", "dtype": dtype}),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "dtype": dtype, "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "compile_config": None,
    }


def lambda_v3_layer() -> dict[str, Any]:
    """A Keras 3 Lambda layer: marshalled bytecode in ``function.config.code`` (bytes never decoded here)."""
    fn = {
        "class_name": "__lambda__",
        "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None, "closure": None},
    }
    return _v3_layer("Lambda", {"name": "lambda", "function": fn, "arguments": {}})


def weights_h5(extra: Any = None) -> bytes:
    """A real HDF5 weights file (h5py), laid out as Keras 3 writes ``model.weights.h5``."""
    import h5py
    import numpy as np

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.create_dataset("0", data=np.zeros((4, 8), dtype="float32"))
        g.create_dataset("1", data=np.zeros((8,), dtype="float32"))
        f.create_group("optimizer/vars")
        if extra is not None:
            extra(f)
    return buf.getvalue()


def keras_archive(config: Any, *, weights: bytes | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        zf.writestr("model.weights.h5", weights if weights is not None else weights_h5())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def keras_legacy_config(*extra_layers: dict[str, Any]) -> dict[str, Any]:
    """A tf.keras 2 Sequential ``model_config`` (no ``module`` keys)."""
    init = {"class_name": "GlorotUniform", "config": {"seed": None}}
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "in"}},
        {
            "class_name": "Dense",
            "config": {"name": "dense", "units": 8, "activation": "relu", "kernel_initializer": init},
        },
        *extra_layers,
    ]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def keras_h5(config: Any, training: Any = None) -> bytes:
    """A legacy Keras ``.h5`` model: ``model_config`` as a root attribute, weights under ``model_weights``."""

    def attrs(f: Any) -> None:
        f.attrs["model_config"] = config if isinstance(config, str) else json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        if training is not None:
            f.attrs["training_config"] = json.dumps(training)

    return weights_h5(attrs)


def onnx_model(*, domain: str = "", op: str = "Relu", initializers: list[Any] | None = None) -> Any:
    """A real ONNX model (onnx.helper): Y = op(X + W)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), name="W")
    nodes = [helper.make_node("Add", ["X", "W"], ["S"]), helper.make_node(op, ["S"], ["Y"], domain=domain)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 2])],
        initializer=[w, *(initializers or [])],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets, producer_name="tests")


def external_tensor(location: str, *, dims: tuple[int, ...] = (2, 2), length: int | None = 16) -> Any:
    from onnx import TensorProto

    t = TensorProto(name="E", data_type=TensorProto.FLOAT, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0"} | ({"length": str(length)} if length is not None else {})
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def onnx_bytes(model: Any) -> bytes:
    return bytes(model.SerializeToString())


def gguf_file(path: Any, *, template: str | None = NORMAL_TEMPLATE, extra: dict[str, Any] | None = None) -> bytes:
    """A real GGUF file written by ``gguf.GGUFWriter`` (two small F32 tensors); returns its bytes."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<s>", "</s>", "hi"])
    if template is not None:
        w.add_chat_template(template)
    for k, v in (extra or {}).items():
        w.add_string(k, v)
    w.add_tensor("token_embd.weight", np.zeros((3, 32), dtype=np.float32))
    w.add_tensor("output.weight", np.ones((3, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as fh:
        return fh.read()
