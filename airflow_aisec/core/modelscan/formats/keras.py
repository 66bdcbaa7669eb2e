"""Keras models: the v3 ``.keras`` archive (``config.json``) and legacy HDF5 ``.h5`` files (``model_config``).

Only the model *configuration* is read (JSON; HDF5 through h5py, attributes and dataset dtypes only): the
model is never deserialised. ``Lambda`` layers carry marshalled Python bytecode and are reported as
code; classes outside Keras (custom objects) and registered-function references are reported because a
loader resolves them to code registered in its own process. A user allowlist entry
``module.ClassName`` (``--allow``) accepts a custom object; a Lambda layer is never accepted.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed, missing_library
from airflow_aisec.core.modelscan.policy import F_KERAS_CUSTOM, F_KERAS_LAMBDA, FORMAT_FINDINGS, Policy
from airflow_aisec.core.modelscan.results import FileScan, FormatIssue
from airflow_aisec.exceptions import AisecInputError

MAX_CONFIG_BYTES = 64 * 1024 * 1024
MAX_CONFIG_NODES = 2_000_000
MAX_HDF5_OBJECTS = 200_000

#: classes whose config carries code (marshalled bytecode or a function source)
_CODE_CLASSES = frozenset({"Lambda", "__lambda__"})
#: Keras 3 serialisation markers for plain values (tensors, tuples, slices…)
_VALUE_MARKERS = frozenset(
    {
        "__keras_tensor__",
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__tuple__",
        "__slice__",
        "__ellipsis__",
        "__typespec__",
    }
)
#: built-in class names of legacy (Keras 2 / tf.keras) configs, which carry no module
_LEGACY_BUILTINS = frozenset(
    {
        # models and inputs
        *("Sequential", "Functional", "Model", "InputLayer", "InputSpec"),
        # core, convolution, pooling, reshaping, merging, normalisation, regularisation
        *("Dense", "EinsumDense", "Activation", "Embedding", "Masking", "Identity", "Dropout", "SpatialDropout1D"),
        *("SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Flatten"),
        *("Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D"),
        *("ZeroPadding2D", "ZeroPadding3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Conv1D", "Conv2D"),
        *("Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D"),
        *("DepthwiseConv1D", "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D"),
        *("AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"),
        *("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Add", "Subtract"),
        *("Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "BatchNormalization"),
        *("LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization", "Rescaling"),
        *("ActivityRegularization", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"),
        # recurrent and attention
        *("SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "Bidirectional"),
        *("TimeDistributed", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Attention", "AdditiveAttention"),
        *("MultiHeadAttention", "StackedRNNCells"),
        # initializers, regularizers, constraints
        *("GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Zeros"),
        *("Ones", "Constant", "RandomUniform", "RandomNormal", "TruncatedNormal", "Orthogonal"),
        *("VarianceScaling", "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg"),
        *("UnitNorm", "RadialConstraint"),
        # optimizers, losses, metrics (training_config)
        *("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion"),
        *("MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy"),
        *("SparseCategoricalCrossentropy", "Huber", "Hinge", "KLDivergence", "Mean", "MeanMetricWrapper"),
        *("Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "AUC"),
        *("Precision", "Recall", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay", "PolynomialDecay"),
        # dtype policies
        *("DTypePolicy", "Policy", "FloatDTypePolicy"),
    }
)
#: activation names Keras resolves to its own functions
_BUILTIN_ACTIVATIONS = frozenset(
    {
        *("relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus", "softsign", "swish", "silu"),
        *("gelu", "exponential", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu", "relu6", "log_softmax"),
        *("mish", "celu", "glu", "hard_tanh", "log_sigmoid", "sparse_plus", "soft_shrink", "hard_shrink"),
        *("tanh_shrink", "squareplus", "sparsemax", "threshold"),
    }
)
_ACTIVATION_KEYS = frozenset({"activation", "recurrent_activation"})


def inspect_keras_config(config: Any, scan: FileScan, policy: Policy, where: str) -> None:
    """Walk a Keras model configuration (parsed JSON) and record code and custom objects as issues."""
    stack: list[tuple[Any, str]] = [(config, where)]
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            scan.errors.append(f"{where}: more than {MAX_CONFIG_NODES} values in the Keras config (bound)")
            return
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        if isinstance(cls, str) and _check_class(node, cls, scan, policy, path):
            continue  # a Lambda layer: its whole config is code, reported once
        for key, value in node.items():
            if key in _ACTIVATION_KEYS and isinstance(value, str) and value not in _BUILTIN_ACTIVATIONS:
                _custom(scan, f"function {value!r}", f"{path}.{key}", "registered-function reference")
            elif isinstance(value, str) and ">" in value and key in ("registered_name", "class_name", "config"):
                pass  # judged with its class_name
            else:
                stack.append((value, f"{path}.{key}"))


def _check_class(node: dict[str, Any], cls: str, scan: FileScan, policy: Policy, path: str) -> bool:
    """Judge one serialised object; True when it is code (its subtree is not walked further)."""
    module = node.get("module")
    cfg = node.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    if cls in _CODE_CLASSES:
        scan.issues.append(
            FormatIssue(
                F_KERAS_LAMBDA,
                FORMAT_FINDINGS[F_KERAS_LAMBDA],
                f"Keras Lambda layer carries Python code ({name or cls}): load_model would run it",
                {"path": path, "class": cls},
            )
        )
        return True
    if cls in _VALUE_MARKERS:
        return False
    registered = node.get("registered_name")
    if module is not None:
        builtin = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
        is_fn = cls in ("function", "__function__")
        if builtin and (cfg in _BUILTIN_ACTIVATIONS if is_fn else registered in (None, cls)):
            return False
        # a function reference names a module and a function a loader imports and resolves: any module
        # (keras' own included: its file and config helpers have been used to bypass safe mode)
        kind = "registered-function reference" if is_fn else "custom object"
        qual = f"{module}.{cfg if is_fn else cls}"
        if not (qual in policy.allow or qual in policy.force_allow):
            _custom(scan, f"{qual}" + (f" (registered as {registered!r})" if registered else ""), path, kind)
        return False
    if ">" in cls or cls not in _LEGACY_BUILTINS:
        if not (f"keras.{cls}" in policy.allow or cls in policy.allow):
            _custom(scan, cls, path, "custom object")
    return False


def _custom(scan: FileScan, what: str, path: str, kind: str) -> None:
    scan.issues.append(
        FormatIssue(
            F_KERAS_CUSTOM,
            FORMAT_FINDINGS[F_KERAS_CUSTOM],
            f"Keras {kind} {what}: resolved to code registered in the loading process",
            {"path": path, "kind": kind},
        )
    )


def _parse_json(raw: bytes | str, scan: FileScan, source: str) -> Any:
    from airflow_aisec.utils import strictjson

    try:
        return strictjson.loads(raw, source=source, max_bytes=MAX_CONFIG_BYTES)
    except (AisecInputError, RecursionError, ValueError) as exc:
        scan.errors.append(f"{source}: not valid JSON ({exc})")
        return None


# ------------------------------------------------------------------------------ Keras v3 archive
def inspect_keras_archive(zf: zipfile.ZipFile, names: list[str], scan: FileScan, ctx: ScanContext) -> None:
    """``.keras``: ``config.json`` is the model (walked); ``model.weights.h5`` is scanned as a member."""
    scan.format = "keras"
    if "config.json" not in names:
        scan.errors.append("Keras archive without config.json: cannot tell which layers it builds")
        return
    info = zf.getinfo("config.json")
    if info.file_size > MAX_CONFIG_BYTES:
        scan.errors.append(f"Keras config.json of {info.file_size} bytes exceeds the {MAX_CONFIG_BYTES}-byte bound")
        return
    ctx.spend(info.file_size)
    config = _parse_json(zf.read(info), scan, "Keras config.json")
    if config is None:
        return
    inspect_keras_config(config, scan, ctx.policy, "config.json")
    if "metadata.json" in names and zf.getinfo("metadata.json").file_size <= MAX_CONFIG_BYTES:
        meta = _parse_json(zf.read("metadata.json"), scan, "Keras metadata.json")
        if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
            scan.notes.append(f"Keras {meta['keras_version']} archive: config.json inspected")


# ------------------------------------------------------------------------------ HDF5 / Keras .h5
class Hdf5Scanner(FormatScanner):
    """HDF5: a legacy Keras model (root attribute ``model_config``), plain numeric weights, or other HDF5
    content (uninspected: a finding unless ``hdf5`` is allowed)."""

    name = "hdf5"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.head[:8] == b"\x89HDF\r\n\x1a\n"

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        try:
            import h5py
        except ImportError:
            missing_library(scan, "hdf5", "h5py")
            return True
        scan.format = "hdf5"
        try:
            with h5py.File(io.BytesIO(bytes(sniffed.buf)), "r") as f:
                _scan_hdf5(h5py, f, scan, ctx)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            scan.parsed = True  # malformed (an error), not an uninspected format
            scan.errors.append(f"HDF5: cannot be read ({type(exc).__name__}: {str(exc)[:200]})")
        return True


def _scan_hdf5(h5py: Any, f: Any, scan: FileScan, ctx: ScanContext) -> None:
    """Attributes and dtypes only: no dataset is read, no link leaving the file is followed."""
    for key in ("model_config", "training_config"):
        if key in f.attrs:
            raw = f.attrs[key]
            raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            if not isinstance(raw, str):
                scan.errors.append(f"HDF5 attribute {key} is not a JSON string")
                continue
            config = _parse_json(raw, scan, f"Keras HDF5 {key}")
            if config is not None:
                inspect_keras_config(config, scan, ctx.policy, key)
    unusual = _hdf5_unusual(h5py, f)
    if unusual:
        scan.notes.append(f"HDF5 content not inspected: {unusual}")
        return  # stays "hdf5": uninspected, a finding unless allowed
    if "model_config" in f.attrs:
        scan.format = "keras-h5"
        scan.notes.append("Keras HDF5 model: model_config inspected, datasets are numeric arrays")
    else:
        scan.format = "hdf5-weights"
        scan.notes.append("HDF5 of numeric arrays only (no model config): weights")


def _hdf5_unusual(h5py: Any, f: Any) -> str:
    """Why the file is more than groups of numeric datasets ('' when it is not)."""
    stack = [f]
    count = 0
    while stack:
        group = stack.pop()
        for name in group:
            count += 1
            if count > MAX_HDF5_OBJECTS:
                return f"more than {MAX_HDF5_OBJECTS} objects (bound)"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                return f"external link {name!r} to {link.filename!r} (outside this file)"
            if isinstance(link, h5py.SoftLink):
                continue
            obj = group[name]
            if isinstance(obj, h5py.Group):
                stack.append(obj)
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual or obj.external:
                    return f"dataset {obj.name!r} stores its data in other files"
                if obj.dtype.kind not in "biufc" or obj.dtype.fields is not None or obj.dtype.hasobject:
                    return f"dataset {obj.name!r} of non-numeric type {obj.dtype}"
            else:
                return f"object {name!r} of type {type(obj).__name__}"
    return ""
