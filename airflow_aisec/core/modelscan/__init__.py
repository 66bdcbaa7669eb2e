"""Malicious-model scan: find code hidden in model files without ever loading them.

A pickle (``model_weights.pkl``, a joblib dump, the ``data.pkl`` inside a PyTorch checkpoint, an
object array in ``.npy``) is a program for a small stack machine whose ``GLOBAL``/``STACK_GLOBAL``
opcodes import any callable and whose ``REDUCE``/``NEWOBJ``/``OBJ``/``INST``/``BUILD`` opcodes call it.
The walker (:mod:`.pickle_vm`) decodes the opcodes itself, exactly as CPython's C unpickler (``_pickle``) and the
pure-Python one (``pickle._Unpickler``, used by joblib) frame them, and runs a **symbolic** stack
machine over them: it tracks literal strings through the stack and the memo (so ``STACK_GLOBAL``
operands built with ``SHORT_BINUNICODE``/``MEMOIZE``/``BINGET`` are resolved), never imports an
attacker-named module, never calls, never unpickles.

The decoder accepts a superset of what either unpickler accepts (an argument one of them might parse
is never a reason to stop), so no opcode a loader reaches is skipped. Every declared length is checked
against the bytes that remain before anything is read; nothing is allocated by declared size.

Policy is **default-deny by identity**: a global is allowed only when its ``module.name`` is the
canonical location of a known-safe class or function (a bundled, generated table: numpy, scikit-learn,
scipy.sparse, joblib, torch tensor rebuilders, plain-data builtins), or matches a user allowlist entry
(glob matches are resolved to the object's real ``__module__``/``__qualname__``; re-exports are not
trusted). Known-dangerous globals (``os``, ``subprocess``, ``builtins.eval``/``exec``/``getattr``,
``importlib``, ``marshal``, ``runpy`` …) are ``critical``; anything else — including a global whose name
cannot be resolved statically — is ``high``. Malformed, truncated or out-of-bounds input is an error
finding (the report's status is ``error`` unless something unsafe was already seen, then ``fail``):
never a crash, never a pass.

Formats are recognised by content, not by extension: raw pickle (protocols 0–5, every pickle in the
stream up to the end of the file), joblib (raw array data interleaved with the pickle is skipped
exactly as joblib reads it, object arrays' nested pickles are walked), gzip/bz2/xz/lzma/zlib/lz4
compressed files (total decompressed bytes bounded across all nesting levels), PyTorch zip checkpoints
(``*/data.pkl``; raw storages are data), numpy ``.npy`` (object arrays carry a pickle) and ``.npz``, any
zip archive (layout checked, every member scanned recursively), and safetensors (validated
structurally). Keras (``.keras`` config.json, legacy ``.h5`` model_config), ONNX and GGUF are parsed
without loading (Lambda layers, custom objects, custom operator domains, external data leaving the
model directory, oversized tensors, chat-template gadgets are findings). A file is "text" only when no
unpickler would get as far as importing anything from it; every other format (other HDF5 content,
unknown magic) is ``unknown`` and fails unless allowed.

Layout: :mod:`.policy` (allowed and dangerous globals, finding severities), :mod:`.pickle_vm` (the
symbolic pickle machine, one handler per opcode), :mod:`.formats` (one scanner per format behind a
common interface, tried in registry order), :mod:`.engine` (one stream: registry loop plus the
bypass gate), :mod:`.report` (files and directories into a ``model_scan`` report).
"""

from airflow_aisec.core.modelscan.context import (
    DEFAULT_MAX_DECOMPRESSED,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_MARKS,
    DEFAULT_MAX_OPCODES,
    DEFAULT_MAX_ZIP_MEMBERS,
    MAX_PICKLES_PER_STREAM,
)
from airflow_aisec.core.modelscan.engine import IN_MEMORY_LIMIT, scan_bytes, scan_file
from airflow_aisec.core.modelscan.formats import SAFETENSORS_MAX_HEADER
from airflow_aisec.core.modelscan.pickle_vm import PICKLE_OPCODE_BYTES, PickleWalker
from airflow_aisec.core.modelscan.policy import (
    DANGEROUS_MODULES,
    DANGEROUS_NAMES,
    F_AMBIGUOUS,
    F_DANGEROUS,
    F_GGUF_TEMPLATE,
    F_KERAS_CUSTOM,
    F_KERAS_LAMBDA,
    F_MALFORMED,
    F_ONNX_CUSTOM_DOMAIN,
    F_ONNX_EXTERNAL_DATA,
    F_ONNX_TENSOR,
    F_SKIPPED,
    F_TEXT,
    F_TORCHSCRIPT,
    F_UNKNOWN,
    F_UNKNOWN_FORMAT,
    SAFE_GLOBALS,
    TAGS,
    Policy,
    is_dangerous,
    normalize_global,
)
from airflow_aisec.core.modelscan.report import iter_model_files, scan_paths
from airflow_aisec.core.modelscan.results import UNINSPECTED_FORMATS, FileScan, GlobalRef

__all__ = [
    "DANGEROUS_MODULES",
    "DANGEROUS_NAMES",
    "DEFAULT_MAX_DECOMPRESSED",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_MARKS",
    "DEFAULT_MAX_OPCODES",
    "DEFAULT_MAX_ZIP_MEMBERS",
    "F_AMBIGUOUS",
    "F_DANGEROUS",
    "F_GGUF_TEMPLATE",
    "F_KERAS_CUSTOM",
    "F_KERAS_LAMBDA",
    "F_MALFORMED",
    "F_ONNX_CUSTOM_DOMAIN",
    "F_ONNX_EXTERNAL_DATA",
    "F_ONNX_TENSOR",
    "F_SKIPPED",
    "F_TEXT",
    "F_TORCHSCRIPT",
    "F_UNKNOWN",
    "F_UNKNOWN_FORMAT",
    "IN_MEMORY_LIMIT",
    "MAX_PICKLES_PER_STREAM",
    "PICKLE_OPCODE_BYTES",
    "SAFETENSORS_MAX_HEADER",
    "SAFE_GLOBALS",
    "TAGS",
    "UNINSPECTED_FORMATS",
    "FileScan",
    "GlobalRef",
    "PickleWalker",
    "Policy",
    "is_dangerous",
    "iter_model_files",
    "normalize_global",
    "scan_bytes",
    "scan_file",
    "scan_paths",
]
