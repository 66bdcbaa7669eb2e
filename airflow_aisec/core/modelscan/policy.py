"""What a model pickle may reference: the allowlist and denylist of globals, and how severe a breach is.

Default-deny by identity: a global is allowed only when its ``module.name`` is the canonical location
of a known-safe class or function (the generated table in :mod:`._allowlist`) or matches a user
allowlist entry. Known-dangerous globals are ``critical``; anything else is ``high``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.modelscan import _allowlist
from airflow_aisec.exceptions import AisecInputError

TAGS = ("AML.T0011.000", "AML.T0018.002", "OWASP-ML06")

#: Finding ids (stable).
F_DANGEROUS = "AISEC-MODEL-DANGEROUS-GLOBAL"
F_UNKNOWN = "AISEC-MODEL-UNKNOWN-GLOBAL"
F_AMBIGUOUS = "AISEC-MODEL-AMBIGUOUS-GLOBAL"
F_MALFORMED = "AISEC-MODEL-MALFORMED"
F_UNKNOWN_FORMAT = "AISEC-MODEL-UNKNOWN-FORMAT"
F_TORCHSCRIPT = "AISEC-MODEL-TORCHSCRIPT-CODE"
F_TEXT = "AISEC-MODEL-NOT-A-MODEL"
F_SKIPPED = "AISEC-MODEL-SKIPPED"
#: Findings of the parsed non-pickle formats (Keras, ONNX, GGUF).
F_KERAS_LAMBDA = "AISEC-MODEL-KERAS-LAMBDA"
F_KERAS_CUSTOM = "AISEC-MODEL-KERAS-CUSTOM-OBJECT"
F_ONNX_CUSTOM_DOMAIN = "AISEC-MODEL-ONNX-CUSTOM-DOMAIN"
F_ONNX_EXTERNAL_DATA = "AISEC-MODEL-ONNX-EXTERNAL-DATA"
F_ONNX_TENSOR = "AISEC-MODEL-ONNX-OVERSIZED-TENSOR"
F_GGUF_TEMPLATE = "AISEC-MODEL-GGUF-TEMPLATE"
#: Severity of each format finding.
FORMAT_FINDINGS: dict[str, str] = {
    F_KERAS_LAMBDA: "critical",
    F_KERAS_CUSTOM: "high",
    F_ONNX_CUSTOM_DOMAIN: "high",
    F_ONNX_EXTERNAL_DATA: "critical",
    F_ONNX_TENSOR: "high",
    F_GGUF_TEMPLATE: "critical",
}

#: Finding id, severity and title prefix of a non-safe global, by its verdict.
GLOBAL_FINDINGS: dict[str, tuple[str, str, str]] = {
    "dangerous": (F_DANGEROUS, "critical", "Dangerous global {}"),
    "ambiguous": (F_AMBIGUOUS, "high", "Global not statically resolvable ({})"),
    "unknown": (F_UNKNOWN, "high", "Global not on the allowlist: {}"),
}
#: Findings that make the report ``fail`` (not ``error``) when they block.
UNSAFE_FINDING_IDS = frozenset({F_DANGEROUS, F_UNKNOWN, F_AMBIGUOUS, F_UNKNOWN_FORMAT, *FORMAT_FINDINGS})

#: Exact canonical ``module.qualname`` of every built-in allowed global (generated table).
SAFE_GLOBALS: frozenset[str] = frozenset(
    _allowlist.BASE
    | _allowlist.SKLEARN
    | _allowlist.SCIPY_SPARSE
    | _allowlist.TORCH
    | {"numpy.bool_"}  # numpy 1.x spelling of numpy.bool
)

# Known-dangerous modules (any name in them, or in a submodule) and names.
DANGEROUS_MODULES: frozenset[str] = frozenset(
    {
        "os",
        "posix",
        "nt",
        "posixpath",
        "ntpath",
        "subprocess",
        "sys",
        "importlib",
        "imp",
        "marshal",
        "runpy",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib.load",
        "shutil",
        "socket",
        "ssl",
        "requests",
        "urllib",
        "urllib2",
        "http",
        "httpx",
        "ftplib",
        "smtplib",
        "telnetlib",
        "webbrowser",
        "pty",
        "code",
        "codeop",
        "ctypes",
        "cffi",
        "multiprocessing",
        "threading",
        "_thread",
        "asyncio",
        "signal",
        "types",
        "pydoc",
        "pdb",
        "bdb",
        "platform",
        "pip",
        "setuptools",
        "distutils",
        "tempfile",
        "glob",
        "pathlib",
        "io",
        "_io",
        "gzip",
        "bz2",
        "lzma",
        "zipfile",
        "tarfile",
        "zipimport",
        "pkgutil",
        "inspect",
        "operator",
        "functools",
        "gc",
        "weakref",
        "torch.hub",
        "torch.serialization",
        "torch.jit",
        "torch._C",
        "torch.ops",
        "numpy.testing",
        "numpy.f2py",
        "numpy.distutils",
        "sklearn.utils._testing",
    }
)
DANGEROUS_NAMES: frozenset[str] = frozenset(
    {
        *(
            f"builtins.{n}"
            for n in (
                "eval",
                "exec",
                "compile",
                "getattr",
                "setattr",
                "delattr",
                "__import__",
                "open",
                "input",
                "breakpoint",
                "globals",
                "locals",
                "vars",
                "help",
                "exit",
                "quit",
                "memoryview",
                "type",
                "super",
                "classmethod",
                "staticmethod",
                "property",
                "print",
            )
        ),
        "numpy.load",
        "numpy.save",
        "numpy.fromfile",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.lib.npyio.load",
        "numpy.lib._npyio_impl.load",
        "torch.load",
        "torch.save",
        "joblib.load",
        "joblib.dump",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
    }
)

# Python 2 names a protocol 0–2 pickle may carry (pickle maps them on load with fix_imports).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "exceptions": "builtins", "cPickle": "pickle"}


def normalize_global(module: str, name: str) -> tuple[str, str]:
    """The ``(module, name)`` an unpickler with ``fix_imports`` resolves a Python 2 name to."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, _PY2_MODULES.get(module, module))
    return module, name


def importable(module: str) -> bool:
    """Could ``import module`` find it with ordinary finders (dotted identifiers only)?"""
    return bool(module) and all(part.isidentifier() for part in module.split("."))


@functools.lru_cache(maxsize=4096)
def _resolve_canonical(module: str, name: str) -> str | None:
    """Canonical ``__module__.__qualname__`` of ``module.name`` (import of a USER-ALLOWLISTED module only).

    ``None`` when it cannot be imported or is not a class or function (a module, an instance …)."""
    import importlib
    import inspect

    if not importable(module) or not all(p.isidentifier() for p in name.split(".")):
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
        return None
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(mod, str) or not isinstance(qual, str):
        return None
    return f"{mod}.{qual}"


@dataclass(frozen=True)
class Policy:
    """Which globals a pickle may reference.

    :param allow: extra allowed globals: exact ``module.name`` or a glob (``mypkg.models.*``). An exact
        entry is trusted as written; a glob match is resolved (its module is imported — it is on the
        user's allowlist) and must be a class or function defined where it is named, or a re-export of
        something allowed. Allowing never overrides the known-dangerous list (use ``force_allow``).
    :param force_allow: globals allowed even if known-dangerous (exact ``module.name`` only).
    """

    allow: tuple[str, ...] = ()
    force_allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in (*self.allow, *self.force_allow):
            if not isinstance(entry, str) or "." not in entry.strip(".") or any(c.isspace() for c in entry):
                raise AisecInputError(f"allowlist entry {entry!r} must look like MODULE.NAME (globs allowed)")
            if _is_glob(entry) and _glob_package(entry) is None:
                raise AisecInputError(
                    f"allowlist glob {entry!r} must start with a literal package (e.g. mypkg.models.*): "
                    "its matches are imported to check them"
                )
        for entry in self.force_allow:
            if _is_glob(entry):
                raise AisecInputError(f"force_allow takes exact MODULE.NAME entries only, not {entry!r}")

    def classify(self, module: str, name: str) -> str:
        """``safe`` | ``dangerous`` | ``unknown`` for the global ``module.name``."""
        module, name = normalize_global(module, name)
        full = f"{module}.{name}"
        if full in self.force_allow:
            return "safe"
        if is_dangerous(module, name):
            return "dangerous"
        if full in SAFE_GLOBALS or full in self.allow:
            return "safe"
        if any(_is_glob(e) and fnmatch.fnmatchcase(full, e) and _under(module, _glob_package(e)) for e in self.allow):
            canonical = _resolve_canonical(module, name)
            if canonical is None:
                return "unknown"
            if canonical == full:
                return "safe"
            cmod, _, cname = canonical.rpartition(".")
            if is_dangerous(cmod, cname):
                return "dangerous"
            if canonical in SAFE_GLOBALS or canonical in self.allow:
                return "safe"
            return "unknown"  # a re-export of something nobody allowed
        return "unknown"


def _is_glob(entry: str) -> bool:
    return any(c in entry for c in "*?[")


def _glob_package(entry: str) -> str | None:
    """The literal package a glob is rooted in (``mypkg.models`` for ``mypkg.models.*``), if any."""
    literal = re.split(r"[*?\[]", entry, maxsplit=1)[0]
    package = literal.rpartition(".")[0]
    return package if package and importable(package) else None


def _under(module: str, package: str | None) -> bool:
    """Only modules inside the glob's own literal package are ever imported to resolve a match."""
    return package is not None and (module == package or module.startswith(package + "."))


def is_dangerous(module: str, name: str) -> bool:
    full = f"{module}.{name}"
    if full in DANGEROUS_NAMES:
        return True
    parts = module.split(".")
    if any(".".join(parts[: i + 1]) in DANGEROUS_MODULES for i in range(len(parts))):
        return True
    # dunder attribute lookups (``__reduce__``, ``__class__`` …) and dotted names reaching into modules
    head = name.split(".")[0]
    if any(p.startswith("__") and p.endswith("__") for p in name.split(".")):
        return True
    return "." in name and is_dangerous(module, head)
