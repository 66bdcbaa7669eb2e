"""Regenerate ``airflow_aisec/core/modelscan/_allowlist.py``: the bundled table of globals a model pickle
may reference, by **canonical identity** (``obj.__module__ + "." + obj.__qualname__``).

A pickler always writes an object's canonical location, so the scanner only needs exact names; a name
that merely *re-exports* something (``sklearn.utils.fixes.GzipFile`` → ``gzip.GzipFile``) is not
canonical and therefore never in the table. Every entry is checked here: importing its module and
looking it up gives back an object whose own ``__module__``/``__qualname__`` are that entry.

Run (imports sklearn, scipy, numpy, joblib; never at scan time)::

    .venv/bin/python scripts/gen_modelscan_allowlist.py --write   # replaces the table in place
    .venv/bin/ruff format airflow_aisec/core/modelscan/_allowlist.py
    .venv/bin/python scripts/gen_modelscan_allowlist.py           # prints it instead
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import pkgutil
import sys
import threading
import warnings

# sklearn modules whose classes are not model state (test helpers, I/O, parallelism, vendored code).
SKIP_PARTS = (
    ".tests",
    "._testing",
    "._mocking",
    ".externals",
    ".datasets",
    ".parallel",
    "._joblib",
    "._build_utils",
    "__check_build",
    "._show_versions",
    ".experimental",
    "conftest",
    "._min_dependencies",
    ".fixes",
    "._openmp_helpers",
    "._distributor_init",
    "._config",
    "._repr_html",
    "._estimator_html_repr",
    ".estimator_checks",
    ".discovery",
    "._user_interface",
    ".utils._plotting",
    ".display",
    "._plot",
)

# Exact canonical names outside sklearn (checked to resolve to themselves when importable).
EXTRA = [
    *(
        f"builtins.{n}"
        for n in (
            "set",
            "frozenset",
            "bytearray",
            "bytes",
            "complex",
            "slice",
            "range",
            "dict",
            "list",
            "tuple",
            "int",
            "float",
            "str",
            "bool",
            "object",
        )
    ),
    "copyreg._reconstructor",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
    "collections.Counter",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "_codecs.encode",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
    "numpy.random._generator.Generator",
    "numpy.random.mtrand.RandomState",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    *(
        f"numpy.{n}"
        for n in (
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
            "longdouble",
            "complex64",
            "complex128",
            "clongdouble",
            "bool",
            "str_",
            "bytes_",
            "object_",
            "void",
            "datetime64",
            "timedelta64",
        )
    ),
    "joblib.numpy_pickle.NumpyArrayWrapper",
]

# Names a pickle written by numpy 1.x uses (aliases of the canonical numpy 2 names above; numpy 2
# resolves them through its ``numpy.core`` compatibility shim to the very same objects).
NUMPY1_ALIASES = [
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
]

# PyTorch (not importable here): the set ``torch.load(weights_only=True)`` admits for plain tensors,
# parameters and typed storages, by canonical name. Hand-maintained.
TORCH = [
    *(
        f"torch._utils.{n}"
        for n in (
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_qtensor",
            "_rebuild_sparse_tensor",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_meta_tensor_no_storage",
        )
    ),
    "torch.Size",
    "torch.device",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.nn.parameter.Parameter",
    *(
        f"torch.{n}Storage"
        for n in (
            "Double",
            "Float",
            "Half",
            "BFloat16",
            "Long",
            "Int",
            "Short",
            "Char",
            "Byte",
            "Bool",
            "ComplexDouble",
            "ComplexFloat",
            "QUInt8",
            "QInt8",
            "QInt32",
            "QUInt4x2",
            "QUInt2x4",
            "Untyped",
        )
    ),
    *(
        f"torch.{n}"
        for n in (
            "uint8",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
            "bfloat16",
            "complex32",
            "complex64",
            "complex128",
            "bool",
            "half",
            "double",
            "long",
            "short",
            "cfloat",
            "cdouble",
            "float8_e4m3fn",
            "float8_e5m2",
            "float8_e4m3fnuz",
            "float8_e5m2fnuz",
            "strided",
            "sparse_coo",
            "sparse_csr",
            "sparse_csc",
            "sparse_bsr",
            "sparse_bsc",
            "contiguous_format",
            "channels_last",
            "channels_last_3d",
            "preserve_format",
        )
    ),
]

# Functions (not classes) observed in real sklearn pickles: Cython helpers that only call
# ``cls.__new__(cls)`` on an argument the pickle must still name as an (allowlisted) global.
SKLEARN_FUNCTIONS = ("newObj",)


def _resolve(full: str) -> object | None:
    module, _, name = full.rpartition(".")
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, name, None)


def _canonical(obj: object) -> str | None:
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{mod}.{qual}" if isinstance(mod, str) and isinstance(qual, str) else None


def _unsafe_base(cls: type) -> bool:
    return issubclass(cls, (BaseException, io.IOBase, threading.Thread))


def sklearn_entries() -> set[str]:
    import sklearn

    out: set[str] = set()
    mods = [m.name for m in pkgutil.walk_packages(sklearn.__path__, "sklearn.")]
    for modname in sorted(mods):
        if any(p in modname for p in SKIP_PARTS):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(modname)
        except Exception:
            continue
        for attr, obj in vars(mod).items():
            if isinstance(obj, type):
                if _canonical(obj) != f"{modname}.{attr}" or _unsafe_base(obj):
                    continue
                out.add(f"{modname}.{attr}")
            elif attr in SKLEARN_FUNCTIONS or attr.startswith("__pyx_unpickle_"):
                if callable(obj) and _canonical(obj) == f"{modname}.{attr}":
                    out.add(f"{modname}.{attr}")
    return out


def scipy_sparse_entries() -> set[str]:
    import scipy.sparse as sp

    out = set()
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil"):
        for kind in ("matrix", "array"):
            obj = getattr(sp, f"{fmt}_{kind}", None)
            if isinstance(obj, type) and (c := _canonical(obj)):
                out.add(c)
    return out


def main() -> None:
    checked: set[str] = set()
    for full in EXTRA:
        obj = _resolve(full)
        if obj is None:
            raise SystemExit(f"{full}: does not resolve")
        if isinstance(obj, type) and _canonical(obj) != full and not full.startswith("numpy."):
            raise SystemExit(f"{full}: resolves to {_canonical(obj)} (not canonical)")
        checked.add(full)
    for full in NUMPY1_ALIASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if _resolve(full) is not _resolve(full.replace("numpy.core.", "numpy._core.")):
                raise SystemExit(f"{full}: not an alias")
    sk = sklearn_entries()
    sc = scipy_sparse_entries()
    import numpy
    import sklearn

    def emit(name: str, items: set[str] | list[str], comment: str) -> None:
        print(f"# {comment}")
        print(f"{name}: frozenset[str] = frozenset(")
        print("    {")
        for item in sorted(set(items)):
            print(f"        {item!r},")
        print("    }")
        print(")")
        print()

    print('"""Generated by ``scripts/gen_modelscan_allowlist.py`` -- do not edit by hand.')
    print()
    print("Globals a model pickle may reference, by canonical identity (module + qualified name of the real")
    print(
        f"object), built with Python {sys.version.split()[0]}, numpy {numpy.__version__}, scikit-learn {sklearn.__version__}."
    )
    print('"""')
    print()
    emit("BASE", checked | set(NUMPY1_ALIASES), "stdlib, numpy, joblib: each checked to resolve to itself")
    emit("SKLEARN", sk, "scikit-learn classes defined where they are named (no re-exports, no test/IO helpers)")
    emit("SCIPY_SPARSE", sc, "scipy sparse matrix/array classes")
    emit("TORCH", set(TORCH), "PyTorch tensor rebuilders, storages, dtypes (hand-maintained, torch not imported)")
    mappings = set()
    for full in checked | sk | sc:
        obj = _resolve(full)
        if isinstance(obj, type) and hasattr(obj, "items"):
            mappings.add(full)
    emit("MAPPING_TYPES", mappings, "allowed classes whose instances have .items() (a BUILD slot state can be one)")
    _ = inspect  # keep import for readers extending the checks


#: where the scanner imports the table from
OUTPUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "airflow_aisec", "core", "modelscan", "_allowlist.py"
)


def write() -> None:
    """Generate the table and replace :data:`OUTPUT` atomically (nothing is written if generation fails)."""
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main()
    tmp = f"{OUTPUT}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, OUTPUT)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    elif sys.argv[1:]:
        raise SystemExit("usage: gen_modelscan_allowlist.py [--write]")
    else:
        main()
