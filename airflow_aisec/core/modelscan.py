"""Malicious-model scan: find code hidden in model files without ever loading them.

A pickle (``model_weights.pkl``, a joblib dump, the ``data.pkl`` inside a PyTorch checkpoint, an
object array in ``.npy``) is a program for a small stack machine whose ``GLOBAL``/``STACK_GLOBAL``
opcodes import any callable and whose ``REDUCE``/``NEWOBJ``/``OBJ``/``INST``/``BUILD`` opcodes call it.
This module walks the opcodes with :mod:`pickletools` and runs a **symbolic** stack machine over them:
it tracks literal strings through the stack and the memo (so ``STACK_GLOBAL`` operands built with
``SHORT_BINUNICODE``/``MEMOIZE``/``BINGET`` are resolved), never imports, never calls, never unpickles.

Policy is **default-deny**: every global must match the allowlist of known-safe constructors
(numpy, scikit-learn classes, torch tensor rebuilders and storages, ``collections`` …, extendable);
known-dangerous globals (``os``, ``subprocess``, ``builtins.eval``/``exec``/``getattr``, ``importlib``,
``marshal``, ``runpy`` …) are ``critical``; anything else — including a global whose name cannot be
resolved statically — is ``high``. Malformed or truncated input is an error finding (the report's
status is ``error`` unless something unsafe was already seen, then ``fail``): never a crash, never a pass.

Formats are recognised by content, not by extension: raw pickle (protocols 0–5, including several
pickles in a row), joblib (raw array data interleaved with the pickle is skipped exactly as joblib
reads it, object arrays' nested pickles are scanned), gzip/bz2/xz-compressed files (bounded
decompression), PyTorch zip checkpoints (``*/data.pkl``; raw storages are not code), numpy ``.npy``
(object arrays carry a pickle) and ``.npz``, any zip archive (members scanned recursively), and
safetensors (validated structurally: bounded header, JSON, dtype × shape consistent with contiguous,
in-bounds offsets). Text files are reported as info; other binary formats as ``unknown`` (medium:
the scan cannot vouch for them).
"""

from __future__ import annotations

import ast
import bz2
import fnmatch
import gzip
import hashlib
import io
import json
import lzma
import os
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report

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

#: Default bounds (configurable per scan).
DEFAULT_MAX_DECOMPRESSED = 4 * 1024**3
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_DEPTH = 4
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
MAX_PICKLES_PER_STREAM = 64

# --------------------------------------------------------------------------------------- policy
# Exact ``module.name`` entries that are safe constructors (no side effects beyond building data).
SAFE_GLOBALS: frozenset[str] = frozenset(
    {
        # builtins that only build plain data
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
        "_codecs.encode",  # protocol 2/3 bytes: _codecs.encode(str, 'latin1')
        # numpy
        *(
            f"{core}.{n}"
            for core in ("numpy.core.multiarray", "numpy._core.multiarray")
            for n in ("_reconstruct", "scalar")
        ),
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random.mtrand.RandomState",
        # joblib containers (their raw array data is skipped exactly like joblib reads it)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # torch checkpoints: the same set torch.load(weights_only=True) accepts for tensors
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
    }
)

# Pattern rules: (module regex, name regex). Class names only, never functions.
SAFE_PATTERNS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    # scikit-learn estimators, trees, losses … (classes; their pickled state is data)
    (re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)*$"), re.compile(r"^[A-Z][A-Za-z0-9_]*$")),
    # scipy sparse matrices/arrays (sparse coefficients): classes only
    (re.compile(r"^scipy\.sparse(\.[A-Za-z_][A-Za-z0-9_]*)*$"), re.compile(r"^[a-z]{3}_(matrix|array)$")),
    # numpy scalar types / dtypes classes (numpy.float64, numpy.dtypes.Float64DType)
    (
        re.compile(r"^numpy(\.dtypes)?$"),
        re.compile(
            r"^(u?int(8|16|32|64)|float(16|32|64|128)|complex(64|128|256)|bool_?|str_|bytes_|object_|void|datetime64|timedelta64)$"
        ),
    ),
    (re.compile(r"^numpy\.dtypes$"), re.compile(r"^[A-Z][A-Za-z0-9]*DType$")),
    # torch typed storages (torch.FloatStorage …) and dtypes (torch.float32 …)
    (re.compile(r"^torch$"), re.compile(r"^[A-Z][A-Za-z]*Storage$")),
    (
        re.compile(r"^torch$"),
        re.compile(
            r"^(u?int(8|16|32|64)|float(16|32|64)|bfloat16|complex(32|64|128)|bool|half|double|long|short|cfloat|cdouble)$"
        ),
    ),
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
        "copyreg._reconstructor.__call__",
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


@dataclass(frozen=True)
class Policy:
    """Which globals a pickle may reference.

    :param allow: extra allowed globals: exact ``module.name`` or a glob (``mypkg.models.*``).
        Allowing never overrides the known-dangerous list (use ``force_allow`` for that).
    :param force_allow: globals allowed even if known-dangerous (exact ``module.name`` only).
    """

    allow: tuple[str, ...] = ()
    force_allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in (*self.allow, *self.force_allow):
            if not isinstance(entry, str) or "." not in entry.strip(".") or any(c.isspace() for c in entry):
                raise AisecInputError(f"allowlist entry {entry!r} must look like MODULE.NAME (globs allowed)")

    def classify(self, module: str, name: str) -> str:
        """``safe`` | ``dangerous`` | ``unknown`` for the global ``module.name``."""
        module, name = normalize_global(module, name)
        full = f"{module}.{name}"
        if full in self.force_allow:
            return "safe"
        if is_dangerous(module, name):
            return "dangerous"
        if full in SAFE_GLOBALS or any(m.match(module) and n.match(name) for m, n in SAFE_PATTERNS):
            return "safe"
        if any(full == entry or fnmatch.fnmatchcase(full, entry) for entry in self.allow):
            return "safe"
        return "unknown"


def is_dangerous(module: str, name: str) -> bool:
    full = f"{module}.{name}"
    if full in DANGEROUS_NAMES:
        return True
    parts = module.split(".")
    if any(".".join(parts[: i + 1]) in DANGEROUS_MODULES for i in range(len(parts))):
        return True
    # dunder attribute lookups (``__reduce__``, ``__class__`` …) and dotted names reaching into modules
    return name.startswith("__") and name.endswith("__") or "." in name and is_dangerous(module, name.split(".")[0])


# --------------------------------------------------------------------------------------- results
@dataclass
class GlobalRef:
    module: str
    name: str
    opcode: str
    offset: int
    verdict: str  # safe | dangerous | unknown | ambiguous
    called: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class FileScan:
    """Result for one file (or archive member)."""

    location: str
    format: str = "unknown"
    size: int = 0
    sha256: str = ""
    globals: list[GlobalRef] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    members: list[FileScan] = field(default_factory=list)
    opcodes: int = 0
    pickles: int = 0
    joblib_arrays: int = 0

    @property
    def verdict(self) -> str:
        leaves = list(_leaves(self))
        if any(g.verdict != "safe" for leaf in leaves for g in leaf.globals):
            return "unsafe"
        if any(leaf.errors for leaf in leaves):
            return "malformed"
        if any(leaf.format == "unknown" and not leaf.members for leaf in leaves):
            return "unrecognised"
        return "safe"

    def iter_globals(self) -> Iterable[GlobalRef]:
        yield from self.globals
        for m in self.members:
            yield from m.iter_globals()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "location": self.location,
            "format": self.format,
            "verdict": self.verdict,
            "size": self.size,
            "opcodes": self.opcodes,
            "pickles": self.pickles,
            "globals": sorted({g.qualname for g in self.globals}),
        }
        if self.sha256:
            data["sha256"] = self.sha256
        if self.errors:
            data["errors"] = self.errors
        if self.notes:
            data["notes"] = self.notes
        if self.members:
            data["members"] = [m.to_dict() for m in self.members]
        return data


class _Malformed(Exception):
    pass


# --------------------------------------------------------------------------------------- symbolic VM
class _Mark:
    __slots__ = ()


MARK = _Mark()


@dataclass(eq=False)
class _Global:
    ref: GlobalRef | None  # None: unresolvable


@dataclass(eq=False)
class _Obj:
    """The (never computed) result of a call."""

    callable: Any
    args: Any = None
    state: Any = None


class _Opaque:
    __slots__ = ()


OPAQUE = _Opaque()
_LITERAL_TYPES = (str, bytes, int, float, bool, type(None))


def _is_wrapper(obj: Any) -> bool:
    return (
        isinstance(obj, _Obj)
        and isinstance(obj.callable, _Global)
        and obj.callable.ref is not None
        and normalize_global(obj.callable.ref.module, obj.callable.ref.name)
        == ("joblib.numpy_pickle", "NumpyArrayWrapper")
    )


_LITERAL_OPS = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
    }
)
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class PickleWalker:
    """Walk one pickle stream from the current position of ``fh`` (seekable) to its STOP.

    Records every global in ``scan.globals``; raises :class:`_Malformed` on a broken stream.
    """

    def __init__(self, fh: IO[bytes], scan: FileScan, policy: Policy, *, joblib_arrays: bool = True) -> None:
        self.fh = fh
        self.scan = scan
        self.policy = policy
        self.joblib_arrays = joblib_arrays
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    # -- helpers
    def _pop(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Malformed("MARK expected")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _global(self, module: Any, name: Any, opcode: str, pos: int) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            ref = GlobalRef(_describe(module), _describe(name), opcode, pos, "ambiguous")
            self.scan.globals.append(ref)
            return _Global(ref)
        verdict = self.policy.classify(module, name)
        module, name = normalize_global(module, name)  # report what an unpickler would import
        ref = GlobalRef(module, name, opcode, pos, verdict)
        self.scan.globals.append(ref)
        return _Global(ref)

    def _called(self, fn: Any, opcode: str, pos: int) -> None:
        if isinstance(fn, _Global) and fn.ref is not None:
            fn.ref.called = True
            return
        # calling something that is not a statically known global: a computed object
        ref = GlobalRef("<computed>", _describe(fn), opcode, pos, "ambiguous", called=True)
        self.scan.globals.append(ref)

    # -- main loop
    def walk(self) -> None:
        ops = pickletools.genops(self.fh)
        step = self._step
        memo = self.memo
        self.scan.pickles += 1
        n = 0
        try:
            while True:
                try:
                    opcode, arg, pos = next(ops)
                except StopIteration:
                    raise _Malformed("pickle ended without STOP") from None
                except (ValueError, OverflowError, struct.error, EOFError) as exc:  # bad opcode, truncated argument
                    raise _Malformed(f"bad pickle opcode stream: {exc}") from None
                n += 1
                name = opcode.name
                if name in _LITERAL_OPS:  # inlined hot path
                    self.stack.append(arg)
                elif name == "MEMOIZE" and self.stack:
                    memo[len(memo)] = self.stack[-1]
                elif step(name, arg, pos or 0):
                    return
        finally:
            self.scan.opcodes += n

    def _step(self, op: str, arg: Any, pos: int) -> bool:
        st = self.stack
        # hot opcodes first (a large pickle is mostly literals, memo traffic and container fills)
        if op in _LITERAL_OPS:
            st.append(arg)
        elif op == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
        elif op in _GET_OPS:
            key = int(arg)
            if key not in self.memo:
                raise _Malformed(f"memo key {key} read before it was written")
            st.append(self.memo[key])
        elif op in ("PROTO", "FRAME"):
            if op == "PROTO" and not 0 <= int(arg) <= 5:
                raise _Malformed(f"unsupported pickle protocol {arg}")
        elif op == "STOP":
            self._pop()
            return True
        elif op == "BYTEARRAY8":
            st.append(OPAQUE)
        elif op == "NONE":
            st.append(None)
        elif op == "NEWTRUE":
            st.append(True)
        elif op == "NEWFALSE":
            st.append(False)
        elif op == "EMPTY_LIST":
            st.append([])
        elif op == "EMPTY_TUPLE":
            st.append(())
        elif op == "EMPTY_DICT":
            st.append({})
        elif op == "EMPTY_SET":
            st.append(OPAQUE)
        elif op == "NEXT_BUFFER":
            st.append(OPAQUE)
        elif op == "READONLY_BUFFER":
            self._top()
        elif op == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif op == "POP":
            if st:
                st.pop()
            else:
                self._pop_mark()  # pickle's load_pop pops a mark when the stack is empty
        elif op == "POP_MARK":
            self._pop_mark()
        elif op == "DUP":
            st.append(self._top())
        elif op == "TUPLE":
            items = self._pop_mark()
            self.stack.append(tuple(items))
        elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(op[-1])
            if len(st) < n:
                raise _Malformed("stack underflow")
            items = st[-n:]
            del st[-n:]
            st.append(tuple(items))
        elif op == "LIST":
            items = self._pop_mark()
            self.stack.append(list(items))
        elif op == "DICT":
            items = self._pop_mark()
            self.stack.append(_pairs_to_dict(items))
        elif op == "FROZENSET":
            self._pop_mark()
            self.stack.append(OPAQUE)
        elif op == "APPEND":
            value = self._pop()
            target = self._top()
            if isinstance(target, list):
                target.append(value)
        elif op == "APPENDS":
            items = self._pop_mark()
            target = self._top()
            if isinstance(target, list):
                target.extend(items)
        elif op == "ADDITEMS":
            self._pop_mark()
            self._top()
        elif op == "SETITEM":
            value = self._pop()
            key = self._pop()
            target = self._top()
            if isinstance(target, dict) and _hashable(key):
                target[key] = value
        elif op == "SETITEMS":
            items = self._pop_mark()
            target = self._top()
            if isinstance(target, dict):
                target.update(_pairs_to_dict(items))
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = self._top()
        elif op in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            g = self._global(module, name, op, pos)
            if op == "INST":
                args = self._pop_mark()
                self._called(g, op, pos)
                self.stack.append(_Obj(g, tuple(args)))
            else:
                st.append(g)
        elif op == "STACK_GLOBAL":
            name = self._pop()
            module = self._pop()
            st.append(self._global(module, name, op, pos))
        elif op == "OBJ":
            items = self._pop_mark()
            if not items:
                raise _Malformed("OBJ without a class")
            self._called(items[0], op, pos)
            self.stack.append(_Obj(items[0], tuple(items[1:])))
        elif op == "REDUCE":
            args = self._pop()
            fn = self._pop()
            self._called(fn, op, pos)
            st.append(_Obj(fn, args))
        elif op == "NEWOBJ":
            args = self._pop()
            cls = self._pop()
            self._called(cls, op, pos)
            st.append(_Obj(cls, args))
        elif op == "NEWOBJ_EX":
            self._pop()
            args = self._pop()
            cls = self._pop()
            self._called(cls, op, pos)
            st.append(_Obj(cls, args))
        elif op == "BUILD":
            state = self._pop()
            obj = self._top()
            if isinstance(obj, _Obj):
                obj.state = state
            if self.joblib_arrays and _is_wrapper(obj):
                self._skip_joblib_array(obj, pos)
        elif op == "PERSID":
            st.append(_Obj(OPAQUE, arg))
        elif op == "BINPERSID":
            st.append(_Obj(OPAQUE, self._pop()))
        elif op in ("EXT1", "EXT2", "EXT4"):
            ref = GlobalRef("<extension-registry>", f"code {arg}", op, pos, "ambiguous")
            self.scan.globals.append(ref)
            st.append(_Global(ref))
        else:  # pragma: no cover - every opcode of protocols 0–5 is handled above
            raise _Malformed(f"unsupported opcode {op}")
        return False

    def _skip_joblib_array(self, wrapper: _Obj, pos: int) -> None:
        """Skip (non-object) or scan (object dtype) the array data joblib wrote after this BUILD."""
        self.scan.joblib_arrays += 1
        state = wrapper.state
        if not isinstance(state, dict):
            raise _Malformed(f"joblib NumpyArrayWrapper at offset {pos} has no readable state")
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _Malformed(f"joblib array at offset {pos}: shape is not a tuple of sizes")
        itemsize, hasobject = _dtype_layout(state.get("dtype"))
        if itemsize is None:
            raise _Malformed(f"joblib array at offset {pos}: cannot determine its dtype statically")
        if hasobject:
            nested = PickleWalker(self.fh, self.scan, self.policy, joblib_arrays=self.joblib_arrays)
            nested.walk()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.fh.read(1)
            if len(pad) != 1:
                raise _Malformed(f"joblib array at offset {pos}: truncated before its padding byte")
            if pad[0]:
                _skip(self.fh, pad[0], f"joblib array padding at offset {pos}")
        count = 1
        for d in shape:
            count *= d
        _skip(self.fh, count * itemsize, f"joblib array data at offset {pos}")


def _skip(fh: IO[bytes], n: int, what: str) -> None:
    here = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    if here + n > end:
        raise _Malformed(f"{what}: needs {n} bytes, {end - here} left (truncated)")
    fh.seek(here + n)


def _dtype_layout(dtype: Any) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a pickled ``numpy.dtype(...)`` call, computed without numpy objects."""
    if not (isinstance(dtype, _Obj) and isinstance(dtype.callable, _Global) and dtype.callable.ref is not None):
        return None, False
    if dtype.callable.ref.qualname != "numpy.dtype" or not isinstance(dtype.args, tuple) or not dtype.args:
        return None, False
    code = dtype.args[0]
    if not isinstance(code, str):
        return None, False
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    hasobject = code.startswith("O") or bool(flags & 1)
    if len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5], hasobject
    m = re.fullmatch(r"[a-zA-Z](\d+)", code)
    if m:
        return int(m.group(1)), hasobject
    import numpy

    try:
        return int(numpy.dtype(code).itemsize), hasobject
    except (TypeError, ValueError):
        return None, hasobject


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _Obj):
        inner = value.callable
        if isinstance(inner, _Global) and inner.ref is not None:
            return f"<result of {inner.ref.qualname}>"
        return "<result of a call>"
    if isinstance(value, _Global):
        return f"<global {value.ref.qualname if value.ref else '?'}>"
    return f"<{type(value).__name__}>"


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _pairs_to_dict(items: list[Any]) -> dict[Any, Any]:
    if len(items) % 2:
        raise _Malformed("odd number of items for a dict")
    return {k: v for k, v in zip(items[::2], items[1::2], strict=True) if _hashable(k)}


# --------------------------------------------------------------------------------------- formats
_PICKLE_OPCODES = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)
_PICKLE_EXTS = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".model", ".p", ".dat")


@dataclass
class _Ctx:
    policy: Policy
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_depth: int = DEFAULT_MAX_DEPTH


def _scan_pickles(fh: IO[bytes], scan: FileScan, ctx: _Ctx, *, strict: bool) -> bool:
    """Walk consecutive pickles from the start of ``fh``. False when this does not look like a pickle."""
    fh.seek(0)
    first = fh.read(2)
    fh.seek(0)
    if not first or first[:1] not in _PICKLE_OPCODES:
        return False
    looks_pickle = strict or first[:1] == b"\x80"
    for _ in range(MAX_PICKLES_PER_STREAM):
        before = len(scan.globals)
        try:
            PickleWalker(fh, scan, ctx.policy).walk()
        except _Malformed as exc:
            if not looks_pickle and scan.pickles <= 1 and len(scan.globals) == before:
                scan.globals.clear()
                scan.pickles = 0
                scan.opcodes = 0
                return False
            scan.errors.append(f"{exc} (at byte {fh.tell()})")
            return True
        looks_pickle = True
        here = fh.tell()
        nxt = fh.read(1)
        if not nxt:
            return True
        if nxt != b"\x80":
            tail = fh.seek(0, io.SEEK_END) - here
            scan.notes.append(f"{tail} byte(s) of non-pickle data after the last STOP (not scanned as code)")
            return True
        fh.seek(here)
    scan.errors.append(f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles")
    return True


def _scan_npy(fh: IO[bytes], scan: FileScan, ctx: _Ctx) -> None:
    fh.seek(6)
    ver = fh.read(2)
    if len(ver) != 2 or ver[0] not in (1, 2, 3):
        scan.errors.append("npy: unsupported or truncated format version")
        return
    lenfmt, lensize = ("<H", 2) if ver[0] == 1 else ("<I", 4)
    raw = fh.read(lensize)
    if len(raw) != lensize:
        scan.errors.append("npy: truncated header length")
        return
    (hlen,) = struct.unpack(lenfmt, raw)
    header_bytes = fh.read(hlen)
    if len(header_bytes) != hlen or hlen > 1024 * 1024:
        scan.errors.append("npy: truncated or oversized header")
        return
    try:
        header = ast.literal_eval(header_bytes.decode("utf-8" if ver[0] == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        scan.errors.append("npy: header is not a Python literal")
        return
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        scan.errors.append("npy: header must have exactly descr, fortran_order, shape")
        return
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        scan.errors.append("npy: shape is not a tuple of sizes")
        return
    import numpy
    from numpy.lib import format as npformat

    try:
        dtype = npformat.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError):
        scan.errors.append("npy: descr is not a valid dtype")
        return
    data_start = fh.tell()
    if dtype.hasobject:
        scan.format = "npy-object"
        scan.notes.append("object array: its data is a pickle (numpy.load needs allow_pickle=True)")
        fh.seek(data_start)
        try:
            PickleWalker(fh, scan, ctx.policy).walk()
        except _Malformed as exc:
            scan.errors.append(f"{exc} (at byte {fh.tell()})")
        return
    count = int(numpy.prod(shape, dtype=numpy.int64)) if shape else 1
    need = count * dtype.itemsize
    have = fh.seek(0, io.SEEK_END) - data_start
    if have < need:
        scan.errors.append(f"npy: truncated data ({have} of {need} bytes)")
    elif have > need:
        scan.notes.append(f"{have - need} trailing byte(s) after the array data")


_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "C64": 8,
    "F64": 8,
    "I64": 8,
    "U64": 8,
}


def _looks_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _scan_safetensors(fh: IO[bytes], scan: FileScan) -> None:
    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    (n,) = struct.unpack("<Q", fh.read(8))
    if n > SAFETENSORS_MAX_HEADER:
        scan.errors.append(f"safetensors: header of {n} bytes exceeds the {SAFETENSORS_MAX_HEADER}-byte bound")
        return
    raw = fh.read(n)

    def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dupes)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        scan.errors.append(f"safetensors: header is not valid JSON ({exc})")
        return
    if not isinstance(header, dict):
        scan.errors.append("safetensors: header is not a JSON object")
        return
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        scan.errors.append("safetensors: __metadata__ must map strings to strings")
    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        where = f"safetensors tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            scan.errors.append(f"{where}: entry must have exactly dtype, shape, data_offsets")
            continue
        itemsize = _ST_DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        shape, offsets = info["shape"], info["data_offsets"]
        if itemsize is None:
            scan.errors.append(f"{where}: unknown dtype {info['dtype']!r}")
            continue
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            scan.errors.append(f"{where}: shape must be a list of non-negative integers")
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            scan.errors.append(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end")
            continue
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * itemsize:
            scan.errors.append(
                f"{where}: {info['dtype']} x {shape} needs {numel * itemsize} bytes, offsets span {offsets[1] - offsets[0]}"
            )
            continue
        spans.append((offsets[0], offsets[1], name))
    if scan.errors:
        return
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            kind = "overlaps the previous tensor" if begin < cursor else "leaves a gap"
            scan.errors.append(f"safetensors tensor {name!r}: data at {begin} {kind} (expected {cursor})")
            return
        cursor = end
    if cursor != data_len:
        scan.errors.append(f"safetensors: tensors cover {cursor} bytes but the data section has {data_len}")
    scan.notes.append(f"{len(spans)} tensor(s), structure valid")


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte char cut at the end of the sample
    return True


def _bounded_decompress(fh: IO[bytes], opener: Any, limit: int, scan: FileScan) -> io.BytesIO | None:
    fh.seek(0)
    out = io.BytesIO()
    try:
        with opener(fh) as stream:
            while True:
                chunk = stream.read(1024 * 1024)
                if not chunk:
                    break
                out.write(chunk)
                if out.tell() > limit:
                    scan.errors.append(f"decompresses to more than {limit} bytes (bound); not scanned")
                    return None
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        scan.errors.append(f"corrupt compressed stream: {exc}")
        return None
    out.seek(0)
    return out


class _ZlibReader(io.RawIOBase):
    """Minimal streaming reader over a raw zlib stream (joblib's default ``compress=N``)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.d = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            if self.d.unconsumed_tail:
                out = self.d.decompress(self.d.unconsumed_tail, max(size, 1))
            elif self.d.eof:
                return b""
            else:
                chunk = self.fh.read(1024 * 1024)
                if not chunk:
                    if not self.d.eof:
                        raise EOFError("zlib stream ended before its end marker")
                    return b""
                out = self.d.decompress(chunk, max(size, 1))
            if out:
                return out


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


_COMPRESSORS: tuple[tuple[bytes, str, Any], ...] = (
    (b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", "bz2", lambda f: bz2.BZ2File(f, mode="rb")),
    (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, mode="rb")),
    (b"\x5d\x00\x00", "lzma", lambda f: lzma.LZMAFile(f, mode="rb", format=lzma.FORMAT_ALONE)),
    (b"x", "zlib", _ZlibReader),
)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _plain_walk_globals(fh: IO[bytes], policy: Policy) -> list[GlobalRef]:
    """Globals a plain ``pickle.load`` would meet reading ``fh`` from its start (joblib array regions
    parsed as opcodes). Only well-formed, non-allowlisted names count: random bytes are not findings."""
    tmp = FileScan(location="")
    fh.seek(0)
    try:
        for _ in range(MAX_PICKLES_PER_STREAM):
            PickleWalker(fh, tmp, policy, joblib_arrays=False).walk()
    except _Malformed:
        pass
    return [
        g
        for g in tmp.globals
        if g.verdict in ("dangerous", "unknown") and _IDENT.match(g.module) and _IDENT.match(g.name)
    ]


def _merge_hidden(scan: FileScan, found: list[GlobalRef], note: str) -> None:
    seen = {(g.qualname, g.offset) for g in scan.globals}
    extra = [g for g in found if (g.qualname, g.offset) not in seen]
    if extra:
        scan.globals.extend(extra)
        scan.notes.append(f"{note}: {', '.join(sorted({g.qualname for g in extra}))}")


def _scan_stream(fh: IO[bytes], scan: FileScan, ctx: _Ctx, depth: int, name_hint: str) -> None:
    """Detect the format of ``fh`` (seekable) by content and scan it into ``scan``.

    Two bypasses are closed afterwards: a joblib file whose "array data" holds opcodes a plain
    ``pickle.load`` would execute, and a polyglot (safetensors/npy/zip/… that also parses as a pickle).
    """
    _dispatch(fh, scan, ctx, depth, name_hint)
    if scan.joblib_arrays:
        _merge_hidden(scan, _plain_walk_globals(fh, ctx.policy), "reachable by pickle.load inside joblib array data")
    elif scan.format not in ("pickle", "joblib", "empty") and not scan.format.startswith(
        tuple(label for _, label, _ in _COMPRESSORS)
    ):
        _merge_hidden(scan, _plain_walk_globals(fh, ctx.policy), "polyglot: the file also parses as a pickle")


def _dispatch(fh: IO[bytes], scan: FileScan, ctx: _Ctx, depth: int, name_hint: str) -> None:
    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    scan.size = size
    head = fh.read(64)
    fh.seek(0)
    if size == 0:
        scan.format = "empty"
        scan.errors.append("empty file")
        return
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        _scan_zip(fh, scan, ctx, depth)
        return
    if head[:6] == b"\x93NUMPY":
        scan.format = "npy"
        _scan_npy(fh, scan, ctx)
        return
    for magic, label, opener in _COMPRESSORS:
        if head.startswith(magic) and (label != "zlib" or _is_zlib(head)):
            if depth >= ctx.max_depth:
                scan.format = label
                scan.errors.append(f"nesting deeper than {ctx.max_depth}; not scanned")
                return
            inner = _bounded_decompress(fh, opener, ctx.max_decompressed, scan)
            scan.format = label
            if inner is not None:
                sub = FileScan(location=f"{scan.location}!{label}")
                _scan_stream(inner, sub, ctx, depth + 1, name_hint)
                scan.format = f"{label}+{sub.format}"
                scan.members.append(sub)
            return
    if _looks_safetensors(head, size):
        scan.format = "safetensors"
        _scan_safetensors(fh, scan)
        return
    if head[:4] == b"GGUF":
        scan.format = "gguf"
        scan.notes.append("GGUF container: not inspected (no pickle code; check chat templates separately)")
        return
    strict = name_hint.lower().endswith(_PICKLE_EXTS)  # a .pkl that does not parse is malformed, not text
    if _scan_pickles(fh, scan, ctx, strict=strict):
        scan.format = "joblib" if any(g.qualname.startswith("joblib.") for g in scan.globals) else "pickle"
        return
    if _is_text(head):
        scan.format = "text"
        return
    scan.format = "unknown"


def _scan_zip(fh: IO[bytes], scan: FileScan, ctx: _Ctx, depth: int) -> None:
    scan.format = "zip"
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        scan.errors.append(f"bad zip archive: {exc}")
        return
    with zf:
        if len(infos) > ctx.max_zip_members:
            scan.errors.append(f"zip has {len(infos)} members, above the bound {ctx.max_zip_members}")
            return
        names = [i.filename for i in infos if not i.is_dir()]
        torch_pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        torch_roots = {n[: -len("data.pkl")] for n in torch_pickles}
        if torch_pickles:
            scan.format = "pytorch-zip"
            if any(n.endswith(".py") and "/code/" in f"/{n}" for n in names):
                scan.notes.append("TorchScript archive: contains code/ (TorchScript is executed by torch.jit.load)")
        elif names and all(n.endswith(".npy") for n in names):
            scan.format = "npz"
        if depth >= ctx.max_depth:
            scan.errors.append(f"nesting deeper than {ctx.max_depth}; not scanned")
            return
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            n = info.filename
            root = next((r for r in torch_roots if n.startswith(r)), None)
            if root is not None and (n.startswith(f"{root}data/") or n[len(root) :] in _TORCH_PLAIN):
                continue  # raw tensor storages / version markers: data read by torch, never unpickled
            total += info.file_size
            if info.file_size > ctx.max_decompressed or total > ctx.max_decompressed:
                scan.errors.append(f"{n}: archive content exceeds the {ctx.max_decompressed}-byte bound")
                return
            sub = FileScan(location=f"{scan.location}!{n}")
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                sub.errors.append(f"unreadable zip member: {exc}")
                scan.members.append(sub)
                continue
            _scan_stream(io.BytesIO(data), sub, ctx, depth + 1, n)
            if root is not None and n[len(root) :] == "data.pkl" and sub.format == "text":
                sub.errors.append("data.pkl is not a pickle")
            scan.members.append(sub)


_TORCH_PLAIN = (
    "version",
    ".data/version",
    "byteorder",
    ".data/serialization_id",
    ".format_version",
    ".storage_alignment",
)


# --------------------------------------------------------------------------------------- public API
def scan_file(path: str | os.PathLike[str], policy: Policy | None = None, **bounds: int) -> FileScan:
    """Scan one file (never loads it); the result's ``verdict`` is safe/unsafe/malformed/unrecognised."""
    ctx = _Ctx(policy or Policy(), **bounds)
    p = os.fspath(path)
    scan = FileScan(location=p)
    try:
        with open(p, "rb") as fh:
            digest = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(chunk)
            scan.sha256 = digest.hexdigest()
            _scan_stream(fh, scan, ctx, 0, p)
    except OSError as exc:
        scan.errors.append(f"unreadable: {exc.strerror or exc}")
    except RecursionError:
        scan.errors.append("structure nested too deeply to analyse")
    return scan


def scan_bytes(data: bytes, name: str = "<bytes>", policy: Policy | None = None, **bounds: int) -> FileScan:
    """Scan in-memory bytes (same rules as :func:`scan_file`)."""
    ctx = _Ctx(policy or Policy(), **bounds)
    scan = FileScan(location=name, sha256=hashlib.sha256(data).hexdigest())
    try:
        _scan_stream(io.BytesIO(data), scan, ctx, 0, name)
    except RecursionError:
        scan.errors.append("structure nested too deeply to analyse")
    return scan


def iter_model_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Expand ``paths`` (files or directories, walked recursively without following links)."""
    if not paths:
        raise AisecInputError("scan-model needs at least one path")
    files: list[str] = []
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                files += [os.path.join(root, n) for n in sorted(names) if not os.path.islink(os.path.join(root, n))]
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise AisecInputError(f"model path {p!r} does not exist or is not a regular file/directory")
    return files


def _leaves(scan: FileScan) -> Iterable[FileScan]:
    yield scan
    for m in scan.members:
        yield from _leaves(m)


def scan_paths(
    paths: Sequence[str | os.PathLike[str]] | str,
    *,
    allow: Sequence[str] = (),
    force_allow: Sequence[str] = (),
    fail_on_unknown_format: bool = True,
    **bounds: int,
) -> Report:
    """Scan model files and directories; return an ``aisec.report/v1`` ``model_scan`` report.

    Status: ``fail`` when any file references a dangerous or non-allowlisted global (or, with
    ``fail_on_unknown_format``, is an unrecognised binary), else ``error`` when any file is malformed or
    unreadable, else ``pass``.

    :param paths: files or directories.
    :param allow: extra allowed globals (``module.name`` or globs).
    :param force_allow: globals allowed even when known-dangerous (exact names).
    :param fail_on_unknown_format: treat binary files of no recognised format as a (medium) finding.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    policy = Policy(tuple(allow), tuple(force_allow))
    subject = ", ".join(os.fspath(p) for p in paths)
    report = Report.start("model_scan", subject, tags=TAGS)
    files = iter_model_files(paths)
    scans = [scan_file(f, policy, **bounds) for f in files]
    malformed = 0
    for scan in scans:
        for leaf in _leaves(scan):
            _add_findings(report, leaf, fail_on_unknown_format)
            malformed += bool(leaf.errors)
    verdicts = [s.verdict for s in scans]
    globals_all = [g for s in scans for g in s.iter_globals()]
    report.metrics.update(
        {
            "files_scanned": len(scans),
            "files_unsafe": verdicts.count("unsafe"),
            "files_malformed": verdicts.count("malformed"),
            "files_unrecognised": verdicts.count("unrecognised"),
            "bytes_scanned": sum(s.size for s in scans),
            "globals_total": len(globals_all),
            "globals_dangerous": sum(g.verdict == "dangerous" for g in globals_all),
            "globals_unknown": sum(g.verdict in ("unknown", "ambiguous") for g in globals_all),
            "opcodes": sum(leaf.opcodes for s in scans for leaf in _leaves(s)),
        }
    )
    report.details["files"] = [s.to_dict() for s in scans]
    blocking = [f for f in report.findings if f.severity in ("critical", "high", "medium")]
    unsafe_ids = {F_DANGEROUS, F_UNKNOWN, F_AMBIGUOUS, F_UNKNOWN_FORMAT}
    if any(f.id in unsafe_ids for f in blocking):
        n = len({f.location.split("!")[0] for f in blocking if f.id in unsafe_ids})
        return report.finish(
            "fail",
            f"{n} of {len(scans)} file(s) unsafe: "
            f"{report.metrics['globals_dangerous']} dangerous, {report.metrics['globals_unknown']} non-allowlisted global(s)",
        )
    if malformed:
        return report.finish(
            "error", f"{malformed} malformed or unreadable file(s)/member(s) of {len(scans)}: cannot decide"
        )
    formats = sorted({s.format for s in scans})
    return report.finish("pass", f"{len(scans)} file(s) scanned ({', '.join(formats)}): no code beyond the allowlist")


def _add_findings(report: Report, scan: FileScan, fail_on_unknown_format: bool) -> None:
    grouped: dict[tuple[str, str, str], list[GlobalRef]] = {}
    for g in scan.globals:
        if g.verdict != "safe":
            grouped.setdefault((g.verdict, g.module, g.name), []).append(g)
    for (verdict, module, name), refs in grouped.items():
        details = {
            "format": scan.format,
            "global": f"{module}.{name}",
            "opcodes": sorted({r.opcode for r in refs}),
            "offsets": [r.offset for r in refs[:20]],
            "occurrences": len(refs),
            "called": any(r.called for r in refs),
        }
        if verdict == "dangerous":
            report.add_finding(F_DANGEROUS, "critical", f"Dangerous global {module}.{name}", scan.location, details)
        elif verdict == "ambiguous":
            report.add_finding(
                F_AMBIGUOUS, "high", f"Global not statically resolvable ({module}.{name})", scan.location, details
            )
        else:
            report.add_finding(
                F_UNKNOWN, "high", f"Global not on the allowlist: {module}.{name}", scan.location, details
            )
    for err in scan.errors:
        report.add_finding(
            F_MALFORMED, "high", f"Malformed or unreadable: {err}", scan.location, {"format": scan.format}
        )
    for note in scan.notes:
        if note.startswith("TorchScript"):
            report.add_finding(F_TORCHSCRIPT, "low", note, scan.location, {"format": scan.format})
    if scan.format == "unknown" and not scan.members:
        sev = "medium" if fail_on_unknown_format else "info"
        report.add_finding(
            F_UNKNOWN_FORMAT,
            sev,
            "Unrecognised binary format: the scan cannot vouch for it",
            scan.location,
            {"size": scan.size},
        )
    elif scan.format == "text":
        report.add_finding(F_TEXT, "info", "Text file (no pickle code)", scan.location, {"size": scan.size})
