"""Malicious-model scan: find code hidden in model files without ever loading them.

A pickle (``model_weights.pkl``, a joblib dump, the ``data.pkl`` inside a PyTorch checkpoint, an
object array in ``.npy``) is a program for a small stack machine whose ``GLOBAL``/``STACK_GLOBAL``
opcodes import any callable and whose ``REDUCE``/``NEWOBJ``/``OBJ``/``INST``/``BUILD`` opcodes call it.
This module decodes the opcodes itself, exactly as CPython's C unpickler (``_pickle``) and the
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
structurally). A file is "text" only when no unpickler would get as far as importing anything from it;
every other format (GGUF, HDF5/Keras, ONNX, unknown magic) is ``unknown`` and fails unless allowed.
"""

from __future__ import annotations

import ast
import bz2
import codecs
import fnmatch
import functools
import gzip
import hashlib
import io
import lzma
import mmap
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_aisec.core import _modelscan_allowlist as _table
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

#: Default bounds (configurable per scan through ``**bounds``).
DEFAULT_MAX_DECOMPRESSED = 4 * 1024**3  # total over every nesting level of one scanned file
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_DEPTH = 4  # archive/compression nesting
DEFAULT_MAX_OPCODES = 50_000_000  # per scanned file
DEFAULT_MAX_MARKS = 100_000  # nested MARKs inside one pickle
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
MAX_PICKLES_PER_STREAM = 64
#: files up to this size are read into memory once (digest and scan over the same bytes); larger
#: ones are memory-mapped (a concurrent writer could change them between digest and scan)
IN_MEMORY_LIMIT = 1024**3

#: Formats recognised by magic but not inspected: unknown (fail) unless allowed by ``allow_formats``.
UNINSPECTED_FORMATS = ("gguf", "hdf5", "keras", "unknown")

# --------------------------------------------------------------------------------------- policy
#: Exact canonical ``module.qualname`` of every built-in allowed global (generated table).
SAFE_GLOBALS: frozenset[str] = frozenset(
    _table.BASE
    | _table.SKLEARN
    | _table.SCIPY_SPARSE
    | _table.TORCH
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


def _importable(module: str) -> bool:
    """Could ``import module`` find it with ordinary finders (dotted identifiers only)?"""
    return bool(module) and all(part.isidentifier() for part in module.split("."))


@functools.lru_cache(maxsize=4096)
def _resolve_canonical(module: str, name: str) -> str | None:
    """Canonical ``__module__.__qualname__`` of ``module.name`` (import of a USER-ALLOWLISTED module only).

    ``None`` when it cannot be imported or is not a class or function (a module, an instance …)."""
    import importlib
    import inspect

    if not _importable(module) or not all(p.isidentifier() for p in name.split(".")):
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
    return package if package and _importable(package) else None


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
    #: the format is recognised but not inspected, and the policy allows it (``allow_formats``)
    format_allowed: bool = False
    #: raw tensor storages inside a torch zip (data, never unpickled): counted, not scanned
    raw_members: int = 0

    @property
    def uninspected(self) -> bool:
        # a Keras archive's members are scanned, but its config.json (Lambda layers) is not understood
        return self.format in UNINSPECTED_FORMATS and (not self.members or self.format == "keras")

    @property
    def verdict(self) -> str:
        leaves = list(_leaves(self))
        if any(g.verdict != "safe" for leaf in leaves for g in leaf.globals):
            return "unsafe"
        if any(leaf.errors for leaf in leaves):
            return "malformed"
        if any(leaf.uninspected and not leaf.format_allowed for leaf in leaves):
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
        if self.raw_members:
            data["raw_tensor_members"] = self.raw_members
        if self.members:
            data["members"] = [m.to_dict() for m in self.members]
        return data


class _Malformed(Exception):
    """The stream cannot be read on. ``certain``: every unpickler (C and pure Python) fails here too."""

    def __init__(self, message: str, *, certain: bool = True) -> None:
        super().__init__(message)
        self.certain = certain


class _Bound(Exception):
    """A configured bound was exceeded (reported as an error naming the bound)."""


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
    opcode: str = ""
    builds: int = 0


class _Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()


class _Dict(dict):  # type: ignore[type-arg]
    """A dict built by the pickle; ``opaque_keys`` when some key was not a literal (cannot be named)."""

    opaque_keys = False


_SCALARS = (str, bytes, int, float, bool, type(None))
_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
#: callables that return an instance of the class they are given (``f(cls, …)`` → ``cls`` instance)
_INSTANCE_MAKERS = frozenset({"copyreg._reconstructor"}) | frozenset(
    g for g in SAFE_GLOBALS if g.endswith(".newObj") or ".__pyx_unpickle_" in g
)


def _global_name(obj: Any) -> str | None:
    if isinstance(obj, _Global) and obj.ref is not None:
        return ".".join(normalize_global(obj.ref.module, obj.ref.name))
    return None


# Opcode table: byte -> (name, argument kind). Kinds: "" none, "line", "2lines", ("fix", n),
# ("len", size_bytes, signed) — a length-prefixed argument.
_OPS: dict[int, tuple[str, Any]] = {
    ord("("): ("MARK", ""),
    ord("."): ("STOP", ""),
    ord("0"): ("POP", ""),
    ord("1"): ("POP_MARK", ""),
    ord("2"): ("DUP", ""),
    ord("F"): ("FLOAT", "line"),
    ord("I"): ("INT", "line"),
    ord("J"): ("BININT", ("fix", 4)),
    ord("K"): ("BININT1", ("fix", 1)),
    ord("L"): ("LONG", "line"),
    ord("M"): ("BININT2", ("fix", 2)),
    ord("N"): ("NONE", ""),
    ord("P"): ("PERSID", "line"),
    ord("Q"): ("BINPERSID", ""),
    ord("R"): ("REDUCE", ""),
    ord("S"): ("STRING", "line"),
    ord("T"): ("BINSTRING", ("len", 4, True)),
    ord("U"): ("SHORT_BINSTRING", ("len", 1, False)),
    ord("V"): ("UNICODE", "line"),
    ord("X"): ("BINUNICODE", ("len", 4, False)),
    ord("a"): ("APPEND", ""),
    ord("b"): ("BUILD", ""),
    ord("c"): ("GLOBAL", "2lines"),
    ord("d"): ("DICT", ""),
    ord("}"): ("EMPTY_DICT", ""),
    ord("e"): ("APPENDS", ""),
    ord("g"): ("GET", "line"),
    ord("h"): ("BINGET", ("fix", 1)),
    ord("i"): ("INST", "2lines"),
    ord("j"): ("LONG_BINGET", ("fix", 4)),
    ord("l"): ("LIST", ""),
    ord("]"): ("EMPTY_LIST", ""),
    ord("o"): ("OBJ", ""),
    ord("p"): ("PUT", "line"),
    ord("q"): ("BINPUT", ("fix", 1)),
    ord("r"): ("LONG_BINPUT", ("fix", 4)),
    ord("s"): ("SETITEM", ""),
    ord("t"): ("TUPLE", ""),
    ord(")"): ("EMPTY_TUPLE", ""),
    ord("u"): ("SETITEMS", ""),
    ord("G"): ("BINFLOAT", ("fix", 8)),
    0x80: ("PROTO", ("fix", 1)),
    0x81: ("NEWOBJ", ""),
    0x82: ("EXT1", ("fix", 1)),
    0x83: ("EXT2", ("fix", 2)),
    0x84: ("EXT4", ("fix", 4)),
    0x85: ("TUPLE1", ""),
    0x86: ("TUPLE2", ""),
    0x87: ("TUPLE3", ""),
    0x88: ("NEWTRUE", ""),
    0x89: ("NEWFALSE", ""),
    0x8A: ("LONG1", ("len", 1, False)),
    0x8B: ("LONG4", ("len", 4, True)),
    ord("B"): ("BINBYTES", ("len", 4, False)),
    ord("C"): ("SHORT_BINBYTES", ("len", 1, False)),
    0x8C: ("SHORT_BINUNICODE", ("len", 1, False)),
    0x8D: ("BINUNICODE8", ("len", 8, False)),
    0x8E: ("BINBYTES8", ("len", 8, False)),
    0x8F: ("EMPTY_SET", ""),
    0x90: ("ADDITEMS", ""),
    0x91: ("FROZENSET", ""),
    0x92: ("NEWOBJ_EX", ""),
    0x93: ("STACK_GLOBAL", ""),
    0x94: ("MEMOIZE", ""),
    0x95: ("FRAME", ("fix", 8)),
    0x96: ("BYTEARRAY8", ("len", 8, False)),
    0x97: ("NEXT_BUFFER", ""),
    0x98: ("READONLY_BUFFER", ""),
}
PICKLE_OPCODE_BYTES = frozenset(_OPS)

_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _cut_nul(raw: bytes) -> bytes:
    i = raw.find(b"\0")
    return raw if i < 0 else raw[:i]


def _text_int(line: bytes) -> Any:
    """Value of an ``INT`` line (without its newline) as C ``load_int`` computes it; OPAQUE if unsure."""
    if line in (b"00", b"01"):
        return line == b"01"
    if line[:1] == b"\0":  # strtol converts nothing and leaves end at the NUL: accepted as 0
        return False if len(line) == 2 else 0
    m = _STRTOL.match(line)
    if m and (m.end() == len(line) or line[m.end()] == 0):  # strtol(s, &end, 0); *end in ('\n', '\0')
        digits = m.group(2)
        base = 16 if digits[:2] in (b"0x", b"0X") else 8 if digits.startswith(b"0") and len(digits) > 1 else 10
        value = int(digits[2:] if base == 16 else digits, base) * (-1 if m.group(1) == b"-" else 1)
        if -(2**63) <= value < 2**63:
            return bool(value) if len(line) == 2 and value in (0, 1) else value
    try:
        return int(_cut_nul(line), 0)  # PyLong_FromString(s, NULL, 0), what pickle.py's int(data, 0) also does
    except ValueError:
        return OPAQUE


def _text_long(line: bytes) -> Any:
    if line.endswith(b"L"):
        line = line[:-1]
    try:
        return int(_cut_nul(line), 0)
    except ValueError:
        return OPAQUE


def _text_key(line: bytes) -> int | None:
    try:
        return int(_cut_nul(line), 10)
    except ValueError:
        return None


def _decode_binstring(raw: bytes) -> str:
    # encoding= differs per loader (ASCII, latin1, utf-8, bytes); any ASCII name reads the same in all
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class PickleWalker:
    """Walk one pickle in ``buf`` from ``pos`` to its STOP (the position after STOP is returned by
    :meth:`walk`). Records every global in ``scan.globals``; raises :class:`_Malformed` on a broken stream.
    """

    def __init__(
        self,
        buf: Any,
        pos: int,
        scan: FileScan,
        ctx: _Ctx,
        *,
        joblib_arrays: bool = True,
        end: int | None = None,
    ) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.scan = scan
        self.ctx = ctx
        self.policy = ctx.policy
        self.joblib_arrays = joblib_arrays
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        # joblib reads with the pure-Python unpickler: a FRAME is read into memory, so array data that
        # joblib reads "from the file" during a frame comes after the frame's end (see _array_cursor)
        self.frame_end: int | None = None
        self.file_pos = 0
        #: did the walk reach anything an unpickler would import or hand to a loader hook?
        self.reached = False
        self.result: Any = None
        #: end of the FRAME that was active when STOP was read (every unpickler has read the whole
        #: frame from the file: the next read after this pickle starts there, not after STOP)
        self.plain_frame_end = 0
        self.stop_frame_end = 0

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
            self.reached = True
            return _Global(ref)
        verdict = self.policy.classify(module, name)
        nmodule, nname = normalize_global(module, name)  # report what an unpickler would import
        ref = GlobalRef(nmodule, nname, opcode, pos, verdict)
        self.scan.globals.append(ref)
        if not _importable(nmodule):
            # ``import`` of such a name fails with ordinary finders: the unpickler stops here
            raise _Malformed(f"{opcode} at byte {pos} names a module that cannot be imported ({nmodule!r})")
        self.reached = True
        return _Global(ref)

    def _called(self, fn: Any, opcode: str, pos: int) -> None:
        if isinstance(fn, _Global) and fn.ref is not None:
            fn.ref.called = True
            return
        # calling something that is not a statically known global: a computed object
        ref = GlobalRef("<computed>", _describe(fn), opcode, pos, "ambiguous", called=True)
        self.scan.globals.append(ref)

    def _read_line(self, pos: int) -> tuple[bytes, int]:
        j = self.buf.find(b"\n", pos, self.end)
        if j < 0:
            raise _Malformed(f"line argument at byte {pos} has no newline (truncated)")
        return bytes(self.buf[pos:j]), j + 1

    def _rd(self, pos: int, *, check_only: bool = False) -> int:
        """Where the next read really happens while a FRAME is active (joblib mode only).

        The pure-Python unpickler joblib uses reads a frame into memory; when it is exhausted reading
        goes on at the file cursor, which array data read by joblib during the frame has moved past the
        frame's end. A read that starts inside the frame and ends beyond it is an error there."""
        fe = self.frame_end
        if fe is None or pos < fe:
            return pos
        if pos > fe and self.file_pos != fe:
            raise _Malformed(
                f"a read crosses the end of the frame at byte {fe} (joblib's unpickler fails)", certain=False
            )
        if check_only and pos == fe:
            return pos
        self.frame_end = None
        return self.file_pos if pos == fe else pos

    def _need(self, pos: int, n: int, what: str) -> None:
        if n > self.end - pos:
            raise _Malformed(f"{what} at byte {pos} declares {n} bytes, only {max(self.end - pos, 0)} left (truncated)")

    # -- main loop
    def walk(self) -> int:
        buf, end = self.buf, self.end
        pos = self.pos
        st_ops = 0
        self.scan.pickles += 1
        max_marks = self.ctx.max_marks
        try:
            while True:
                if st_ops >= 65536:
                    self.scan.opcodes += st_ops
                    self.ctx.count_ops(st_ops)
                    st_ops = 0
                if self.frame_end is not None:
                    pos = self._rd(pos)
                if pos >= end:
                    raise _Malformed("pickle ended without STOP (truncated)")
                start = pos
                code = buf[pos]
                pos += 1
                spec = _OPS.get(code)
                if spec is None:
                    raise _Malformed(f"invalid opcode byte 0x{code:02x} at byte {start}")
                name, kind = spec
                st_ops += 1
                arg: Any = None
                lim = end if self.frame_end is None else self.frame_end
                # hot path: the opcodes that make up most of a real pickle (argument inside the frame)
                if code == 0x94:  # MEMOIZE
                    if self.stack:
                        self.memo[len(self.memo)] = self.stack[-1]
                        continue
                elif code == 0x8C:  # SHORT_BINUNICODE
                    if pos < lim and pos + 1 + buf[pos] <= lim:
                        n = buf[pos]
                        try:
                            self.stack.append(bytes(buf[pos + 1 : pos + 1 + n]).decode("utf-8", "surrogatepass"))
                            pos += 1 + n
                            continue
                        except UnicodeDecodeError:
                            pass
                elif code == 0x4B:  # BININT1
                    if pos < lim:
                        self.stack.append(buf[pos])
                        pos += 1
                        continue
                elif code == 0x71 or code == 0x68:  # BINPUT / BINGET
                    if pos < lim and (code == 0x71 and self.stack or code == 0x68 and buf[pos] in self.memo):
                        if code == 0x71:
                            self.memo[buf[pos]] = self.stack[-1]
                        else:
                            self.stack.append(self.memo[buf[pos]])
                        pos += 1
                        continue
                framed = self.frame_end is not None
                if kind == "":
                    pass
                elif kind == "line":
                    arg, pos = self._read_line(self._rd(pos) if framed else pos)
                elif kind == "2lines":
                    first, pos = self._read_line(self._rd(pos) if framed else pos)
                    second, pos = self._read_line(self._rd(pos) if framed else pos)
                    arg = (first, second)
                elif kind[0] == "fix":
                    n = kind[1]
                    pos = self._rd(pos) if framed else pos
                    self._need(pos, n, name)
                    arg = bytes(buf[pos : pos + n])
                    pos += n
                else:  # length-prefixed
                    _, size, signed = kind
                    pos = self._rd(pos) if framed else pos
                    self._need(pos, size, name)
                    length = int.from_bytes(buf[pos : pos + size], "little", signed=signed)
                    pos += size
                    if length < 0:
                        raise _Malformed(f"{name} at byte {start} has a negative length")
                    pos = self._rd(pos) if framed else pos
                    self._need(pos, length, name)
                    arg = (pos, length)
                    pos += length
                if framed:
                    self._rd(pos, check_only=True)
                self.pos = pos
                if self._step(name, arg, start):
                    return self.pos
                pos = self.pos  # a joblib array or nested pickle may have moved the cursor
                if len(self.metastack) > max_marks:
                    raise _Bound(f"more than {max_marks} nested MARKs (bound)")
        finally:
            self.scan.opcodes += st_ops
            self.ctx.ops += st_ops

    def _str_arg(self, arg: tuple[int, int], *, utf8: bool) -> Any:
        p, n = arg
        raw = bytes(self.buf[p : p + n]) if n <= 1 << 16 else None
        if raw is None:
            return OPAQUE
        if utf8:
            try:
                return raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise _Malformed("unicode argument is not UTF-8") from None
        return _decode_binstring(raw)

    def _step(self, op: str, arg: Any, pos: int) -> bool:
        st = self.stack
        if op in ("BININT", "BININT1", "BININT2"):
            st.append(int.from_bytes(arg, "little", signed=op == "BININT"))
        elif op in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            st.append(self._str_arg(arg, utf8=True))
        elif op in ("SHORT_BINSTRING", "BINSTRING"):
            st.append(self._str_arg(arg, utf8=False))
        elif op in ("SHORT_BINBYTES", "BINBYTES", "BINBYTES8"):
            p, n = arg
            st.append(bytes(self.buf[p : p + n]) if n <= 256 else OPAQUE)
        elif op == "BYTEARRAY8":
            st.append(OPAQUE)
        elif op in ("LONG1", "LONG4"):
            p, n = arg
            st.append(int.from_bytes(self.buf[p : p + n], "little", signed=True) if n <= 64 else OPAQUE)
        elif op == "BINFLOAT":
            st.append(struct.unpack(">d", arg)[0])
        elif op == "INT":
            st.append(_text_int(arg))
        elif op == "LONG":
            st.append(_text_long(arg))
        elif op == "FLOAT":
            try:
                st.append(float(_cut_nul(arg)))
            except ValueError:
                st.append(OPAQUE)
        elif op == "STRING":
            if not (len(arg) >= 2 and arg[0] == arg[-1] and arg[:1] in (b"'", b'"')):
                raise _Malformed("the STRING opcode argument must be quoted")
            try:
                raw = codecs.escape_decode(arg[1:-1])[0]
            except ValueError:
                raise _Malformed("bad escape in STRING argument") from None
            st.append(_decode_binstring(raw))
        elif op == "UNICODE":
            try:
                st.append(arg.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                raise _Malformed("bad escape in UNICODE argument") from None
        elif op == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            key = _text_key(arg) if op == "GET" else int.from_bytes(arg, "little")
            if key is None:
                st.append(OPAQUE)  # one unpickler may read this key differently: keep walking
            elif key not in self.memo:
                raise _Malformed(f"memo key {key} read before it was written")
            else:
                st.append(self.memo[key])
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            value = self._top()
            key = _text_key(arg) if op == "PUT" else int.from_bytes(arg, "little")
            if key is not None:
                if key < 0:
                    raise _Malformed("negative PUT argument")
                self.memo[key] = value
        elif op == "PROTO":
            if arg[0] > 5:
                raise _Malformed(f"unsupported pickle protocol {arg[0]}")
            self.proto = arg[0]
        elif op == "FRAME":
            # a FRAME longer than the rest of the stream stops the C unpickler, but the pure-Python one
            # (``pickle._Unpickler``, ``joblib.load`` of a file object) reads what remains into the frame
            # and goes on: an error, and the walk goes on too (what follows is never hidden)
            declared = int.from_bytes(arg, "little")
            size = min(declared, self.end - self.pos)
            self.plain_frame_end = self.pos + size
            if declared > size:
                self.scan.errors.append(
                    f"FRAME at byte {pos} declares {declared} bytes, only {size} left (truncated; "
                    "the pure-Python unpickler reads on)"
                )
            if self.joblib_arrays:
                if self.frame_end is not None and self.pos < self.frame_end:
                    raise _Malformed("a new frame begins before the end of the current one", certain=False)
                self.frame_end = self.file_pos = self.pos + size
        elif op == "STOP":
            self.result = self._pop()
            if self.plain_frame_end > self.pos:
                self.stop_frame_end = self.plain_frame_end
            return True
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
            st.append(_Dict())
        elif op in ("EMPTY_SET", "NEXT_BUFFER"):
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
            d = _Dict()
            _set_pairs(d, items)
            self.stack.append(d)
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
            if isinstance(target, _Dict):
                _set_pairs(target, [key, value])
        elif op == "SETITEMS":
            items = self._pop_mark()
            target = self._top()
            if isinstance(target, _Dict):
                _set_pairs(target, items)
        elif op in ("GLOBAL", "INST"):
            try:
                module, gname = arg[0].decode("utf-8"), arg[1].decode("utf-8")
            except UnicodeDecodeError:
                raise _Malformed(f"{op} at byte {pos}: module or name is not UTF-8") from None
            if op == "INST":
                # the class is looked up (imported) before the MARK is popped
                g = self._global(module, gname, op, pos)
                args = self._pop_mark()
                self._called(g, op, pos)
                self.stack.append(_Obj(g, tuple(args), opcode=op))
            else:
                st.append(self._global(module, gname, op, pos))
        elif op == "STACK_GLOBAL":
            gname = self._pop()
            module = self._pop()
            self.stack.append(self._global(module, gname, op, pos))
        elif op == "OBJ":
            items = self._pop_mark()
            if not items:
                raise _Malformed("OBJ without a class")
            self._called(items[0], op, pos)
            self.stack.append(_Obj(items[0], tuple(items[1:]), opcode=op))
        elif op == "REDUCE":
            args = self._pop()
            fn = self._pop()
            self._called(fn, op, pos)
            st.append(_Obj(fn, args, opcode=op))
        elif op == "NEWOBJ":
            args = self._pop()
            cls = self._pop()
            self._called(cls, op, pos)
            st.append(_Obj(cls, args, opcode=op))
        elif op == "NEWOBJ_EX":
            self._pop()
            args = self._pop()
            cls = self._pop()
            self._called(cls, op, pos)
            st.append(_Obj(cls, args, opcode=op))
        elif op == "BUILD":
            self._build(pos)
        elif op == "PERSID":
            self.reached = True
            st.append(_Obj(OPAQUE, arg, opcode=op))
        elif op == "BINPERSID":
            self.reached = True
            st.append(_Obj(OPAQUE, self._pop(), opcode=op))
        elif op in ("EXT1", "EXT2", "EXT4"):
            self.reached = True
            ref = GlobalRef("<extension-registry>", f"code {int.from_bytes(arg, 'little')}", op, pos, "ambiguous")
            self.scan.globals.append(ref)
            st.append(_Global(ref))
        else:  # pragma: no cover - every opcode of protocols 0–5 is handled above
            raise _Malformed(f"unsupported opcode {op}")
        return False

    # -- BUILD and joblib arrays
    def _build(self, pos: int) -> None:
        state = self._pop()
        obj = self._top()
        if isinstance(state, tuple) and len(state) == 2:
            slots = state[1]
            # setattr(obj, k, v) for the slot state: "__class__" there turns obj into another class
            # (e.g. into joblib's array wrapper, moving where joblib reads on)
            # (a slot state that is not a mapping makes the default setstate fail; a call result might be one)
            if (isinstance(slots, _Dict) and (slots.opaque_keys or "__class__" in slots)) or _maybe_mapping(slots):
                ref = GlobalRef("<build>", "__class__ assignment or unreadable slot state", "BUILD", pos, "ambiguous")
                self.scan.globals.append(ref)
        # a dunder attribute set by BUILD changes how the object behaves on load: an instance
        # ``__setstate__`` is called by the next BUILD instead of updating the attributes, a slot
        # ``__dict__`` replaces them all (the walker would track attributes joblib does not see)
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        if any(isinstance(p, _Dict) and any(isinstance(k, str) and _is_dunder(k) for k in p) for p in parts):
            ref = GlobalRef("<build>", "dunder attribute in a BUILD state", "BUILD", pos, "ambiguous")
            self.scan.globals.append(ref)
        if isinstance(obj, _Obj):
            obj.builds += 1
            # a later BUILD (``__dict__`` update and slot ``setattr``) keeps what earlier ones set: the
            # attributes accumulate (a joblib wrapper built twice keeps the first BUILD's alignment)
            # and they are copied now, as the unpickler copies them: mutating the state dict afterwards
            # (a memo fetch and SETITEM) changes nothing already built
            work = [0]
            state = _freeze(state, work)
            self.ctx.count_ops(work[0])  # copying is work: bounded with the opcodes
            obj.state = state if obj.builds == 1 or obj.state is None else _merge_states(obj.state, state)
        if self.joblib_arrays:
            kind = _wrapper_kind(obj)
            if kind == "wrapper":
                self._skip_joblib_array(obj, pos)
                # joblib replaces the wrapper on the stack with the array it read (the memo keeps the wrapper)
                self.stack[-1] = _Obj(OPAQUE, None, opcode="joblib-array")
            elif kind == "maybe":
                ref = GlobalRef("<joblib>", "array wrapper built indirectly", "BUILD", pos, "ambiguous")
                self.scan.globals.append(ref)

    def _skip_joblib_array(self, wrapper: _Obj, pos: int) -> None:
        """Skip (plain dtype) or walk (object dtype) the array data joblib reads after this BUILD,
        exactly as ``NumpyArrayWrapper.read`` does."""
        self.scan.joblib_arrays += 1
        attrs = _wrapper_attrs(wrapper)
        if attrs is None:
            raise _Malformed(f"joblib NumpyArrayWrapper at byte {pos} has no readable state", certain=False)
        shape = attrs.get("shape", OPAQUE)
        if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
            raise _Malformed(f"joblib array at byte {pos}: shape is not a tuple of integers", certain=False)
        if any(not -(2**63) <= d < 2**63 for d in shape):
            raise _Malformed(f"joblib array at byte {pos}: a dimension does not fit int64")
        itemsize, hasobject = _dtype_layout(attrs.get("dtype", OPAQUE))
        if itemsize is None:
            raise _Malformed(f"joblib array at byte {pos}: cannot determine its dtype statically", certain=False)
        in_frame = self.frame_end is not None and self.pos <= self.frame_end
        cursor = self.file_pos if in_frame else self.pos  # where joblib's file handle stands
        if hasobject:
            # joblib calls plain pickle.load(file) here: a nested pickle with no array skipping of its own
            nested = PickleWalker(self.buf, cursor, self.scan, self.ctx, joblib_arrays=False, end=self.end)
            cursor = nested.walk()
            if nested.stop_frame_end > cursor:
                # STOP inside a frame: joblib's nested unpickler read the whole frame, the outer one
                # goes on after it (the walker must not read the frame's rest as outer opcodes)
                self.scan.errors.append(
                    f"object array at byte {pos}: {nested.stop_frame_end - cursor} byte(s) after its STOP "
                    "inside the frame (never read by a loader)"
                )
                cursor = nested.stop_frame_end
            self.reached = self.reached or nested.reached
        else:
            if itemsize <= 0:
                raise _Malformed(f"joblib array at byte {pos}: dtype itemsize {itemsize} (joblib divides by it)")
            if attrs.get("numpy_array_alignment_bytes") is not None:
                self._need(cursor, 1, "joblib array padding byte")
                pad = self.buf[cursor]
                cursor += 1
                self._need(cursor, pad, "joblib array padding")
                cursor += pad
            count = 1
            for d in shape:
                count *= d
            if not -(2**63) <= count < 2**63 or count < 0:
                raise _Malformed(f"joblib array at byte {pos}: element count does not fit int64 or is negative")
            self._need(cursor, count * itemsize, "joblib array data")
            cursor += count * itemsize
        if in_frame:
            self.file_pos = cursor
        else:
            self.pos = cursor


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _freeze(value: Any, work: list[int], depth: int = 0) -> Any:
    """A copy of the dicts/lists/tuples of a BUILD state as they are now (results of calls are kept:
    they are objects whose own state was copied when they were built). ``work`` counts copied items."""
    if depth > 8:
        return OPAQUE
    if isinstance(value, _Dict):
        work[0] += len(value)
        out = _Dict((k, _freeze(v, work, depth + 1)) for k, v in value.items())
        out.opaque_keys = value.opaque_keys
        return out
    if isinstance(value, (list, tuple)):
        work[0] += len(value)
        items = [_freeze(v, work, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _state_attrs(state: Any) -> _Dict | None:
    """The attributes a default ``BUILD`` sets from ``state`` (dict part, then slot part); None if unknown."""
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    attrs = _Dict()
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, _Dict):
            return None
        attrs.update(part)
        attrs.opaque_keys = attrs.opaque_keys or part.opaque_keys
    return attrs


def _merge_states(old: Any, new: Any) -> Any:
    """Instance attributes after a further BUILD: earlier ones kept, updated by the new state."""
    before, after = _state_attrs(old), _state_attrs(new)
    merged = _Dict()
    if before is None or after is None:
        merged.opaque_keys = True  # cannot be named: whoever reads these attributes gives up
        return merged
    merged.update(before)
    merged.update(after)
    merged.opaque_keys = before.opaque_keys or after.opaque_keys
    return merged


def _maybe_mapping(value: Any) -> bool:
    """Could this (never computed) value be a mapping whose keys the walker does not know?"""
    if isinstance(value, _Opaque):
        return True
    if not isinstance(value, _Obj):
        return False
    fn = _global_name(value.callable)
    if fn in _INSTANCE_MAKERS and isinstance(value.args, tuple) and value.args:
        fn = _global_name(value.args[0])
    return fn is None or fn in _table.MAPPING_TYPES or fn not in SAFE_GLOBALS


def _set_pairs(d: _Dict, items: list[Any]) -> None:
    if len(items) % 2:
        raise _Malformed("odd number of items for a dict")
    for k, v in zip(items[::2], items[1::2], strict=True):
        if isinstance(k, _SCALARS):
            d[k] = v
        else:
            d.opaque_keys = True


def _wrapper_kind(obj: Any) -> str:
    """``wrapper`` if joblib would see a ``NumpyArrayWrapper`` instance here, ``maybe`` if the wrapper
    class was handed to another callable (cannot tell), else ``no``."""
    if not isinstance(obj, _Obj):
        return "no"
    fn = _global_name(obj.callable)
    if fn == _WRAPPER:
        return "wrapper"
    args = obj.args if isinstance(obj.args, tuple) else ()
    if any(_global_name(a) == _WRAPPER for a in args):
        return "wrapper" if fn in _INSTANCE_MAKERS and _global_name(args[0]) == _WRAPPER else "maybe"
    return "no"


def _wrapper_attrs(wrapper: _Obj) -> dict[str, Any] | None:
    """Instance attributes of a wrapper after its BUILD(s): ``__init__`` defaults (when it was called
    as ``NumpyArrayWrapper(...)``), then the dict state, then the slot state."""
    attrs: dict[str, Any] = {}
    if wrapper.opcode in ("REDUCE", "OBJ", "INST") and _global_name(wrapper.callable) == _WRAPPER:
        args = wrapper.args if isinstance(wrapper.args, tuple) else None
        if args is None:
            return None
        # OBJ/INST without arguments make the instance with ``cls.__new__`` only (pickle's
        # ``_instantiate``): no ``__init__``, no defaults (joblib then reads no padding byte)
        if args or wrapper.opcode == "REDUCE":
            names = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
            attrs.update({"allow_mmap": False, "numpy_array_alignment_bytes": 16})
            attrs.update(dict(zip(names, args, strict=False)))
    state = wrapper.state
    slots: Any = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    for part in (state, slots):
        if part is None:
            continue
        if not isinstance(part, _Dict) or part.opaque_keys:
            return None
        attrs.update(part)
    return attrs


def _dtype_layout(dtype: Any) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a pickled ``numpy.dtype(...)`` call, as numpy itself computes them.

    The dtype is rebuilt with numpy from literal parts only (``numpy.dtype(code, align, copy)`` and its
    ``__setstate__`` state, exactly the calls unpickling makes), including structured and subarray
    dtypes whose fields are themselves such dtypes. Anything else: ``(None, False)``."""
    try:
        d = _rebuild_dtype(dtype, 0, {})
    except Exception:
        return None, False
    if d is None:
        return None, False
    return int(d.itemsize), bool(d.hasobject)


def _rebuild_dtype(obj: Any, depth: int, cache: dict[int, Any]) -> Any:
    if id(obj) in cache:
        return cache[id(obj)]
    if depth > 16 or len(cache) > 10_000:
        return None
    if not isinstance(obj, _Obj) or _global_name(obj.callable) != "numpy.dtype" or obj.builds > 1:
        return None
    args = obj.args
    if not (
        isinstance(args, tuple)
        and 1 <= len(args) <= 3
        and isinstance(args[0], str)
        and all(isinstance(a, bool) for a in args[1:])
    ):
        return None
    import numpy

    d = numpy.dtype(*args)
    state = obj.state
    if state is not None:
        if not (isinstance(state, tuple) and len(state) in (8, 9)):
            return None
        ver, order, sub, names, fields, elsize, align, flags = state[:8]
        meta = state[8] if len(state) == 9 else None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (ver, elsize, align, flags)):
            return None
        if not isinstance(order, str) or not (meta is None or _literal_dict(meta)):
            return None
        if sub is not None:
            if not (isinstance(sub, tuple) and len(sub) == 2 and isinstance(sub[1], tuple)):
                return None
            base = _rebuild_dtype(sub[0], depth + 1, cache)
            if base is None or not all(isinstance(x, int) for x in sub[1]):
                return None
            sub = (base, sub[1])
        if names is not None and not (isinstance(names, tuple) and all(isinstance(n, str) for n in names)):
            return None
        if fields is not None:
            if not isinstance(fields, _Dict) or fields.opaque_keys:
                return None
            rebuilt = {}
            for key, value in fields.items():
                if not (isinstance(key, str) and isinstance(value, tuple) and 2 <= len(value) <= 3):
                    return None
                fd = _rebuild_dtype(value[0], depth + 1, cache)
                if (
                    fd is None
                    or not isinstance(value[1], int)
                    or (len(value) == 3 and not isinstance(value[2], (str, type(None))))
                ):
                    return None
                rebuilt[key] = (fd, *value[1:])
            fields = rebuilt
        new_state = (ver, order, sub, names, fields, elsize, align, flags) + (
            (dict(meta),) if len(state) == 9 and meta is not None else ((None,) if len(state) == 9 else ())
        )
        d.__setstate__(new_state)  # type: ignore[attr-defined]
    cache[id(obj)] = d
    return d


def _literal_dict(value: Any) -> bool:
    return isinstance(value, _Dict) and not value.opaque_keys and all(isinstance(v, _SCALARS) for v in value.values())


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


# --------------------------------------------------------------------------------------- formats
_PICKLE_EXTS = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".model", ".p", ".dat")
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass
class _Ctx:
    policy: Policy
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_opcodes: int = DEFAULT_MAX_OPCODES
    max_marks: int = DEFAULT_MAX_MARKS
    allow_formats: frozenset[str] = frozenset()
    ops: int = 0
    decompressed: int = 0
    members: int = 0

    def count_ops(self, n: int) -> None:
        self.ops += n
        if self.ops > self.max_opcodes:
            raise _Bound(f"more than {self.max_opcodes} pickle opcodes (bound)")

    def spend(self, n: int) -> None:
        """Account ``n`` decompressed/extracted bytes against the total bound (all nesting levels)."""
        self.decompressed += n
        if self.decompressed > self.max_decompressed:
            raise _Bound(
                f"decompressed/extracted content exceeds the {self.max_decompressed}-byte total bound "
                "(summed over every nesting level)"
            )


def _make_ctx(policy: Policy | None, allow_formats: Iterable[str], bounds: dict[str, int]) -> _Ctx:
    known = {"max_decompressed", "max_zip_members", "max_depth", "max_opcodes", "max_marks"}
    for key, value in bounds.items():
        if key not in known:
            raise AisecInputError(f"unknown scan bound {key!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AisecInputError(f"scan bound {key} must be a non-negative integer, got {value!r}")
    formats = frozenset(allow_formats)
    bad = formats - set(UNINSPECTED_FORMATS)
    if bad:
        raise AisecInputError(f"allow_formats takes {', '.join(UNINSPECTED_FORMATS)}; got {', '.join(sorted(bad))}")
    return _Ctx(policy or Policy(), allow_formats=formats, **bounds)


def _scan_pickles(buf: Any, scan: FileScan, ctx: _Ctx, *, strict: bool) -> bool:
    """Walk every pickle from the start of ``buf`` to its end. False when no unpickler would get as
    far as importing anything from it (then it is not a pickle at all)."""
    if not len(buf) or buf[0] not in PICKLE_OPCODE_BYTES:
        return False
    looks_pickle = strict or buf[0] == 0x80
    pos, end, index = 0, len(buf), 0
    first: Any = None
    while pos < end:
        if index >= MAX_PICKLES_PER_STREAM:
            scan.errors.append(f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles (bound)")
            return True
        before = len(scan.globals)
        # only joblib's loader skips array data, and it reads one pickle: later pickles are read by
        # plain sequential loaders (torch's legacy format)
        walker = PickleWalker(buf, pos, scan, ctx, joblib_arrays=index == 0)
        try:
            pos = walker.walk()
        except _Malformed as exc:
            if index == 0 and not looks_pickle and exc.certain and not walker.reached:
                del scan.globals[before:]
                scan.pickles = scan.opcodes = scan.joblib_arrays = 0
                return False
            where = "pickle" if index == 0 else f"bytes after pickle #{index} (loaders read pickles in sequence)"
            scan.errors.append(f"{where}: {exc}")
            return True
        if walker.stop_frame_end > pos:
            # a loader reading pickles in sequence goes on after the frame, not after STOP
            scan.errors.append(
                f"{walker.stop_frame_end - pos} byte(s) after a STOP inside its frame (skipped by loaders)"
            )
            pos = walker.stop_frame_end
        if index == 0:
            first = walker.result
        index += 1
        if index == 5 and first == _TORCH_LEGACY_MAGIC and pos < end:
            scan.format = "pytorch-legacy"
            scan.notes.append(
                f"{end - pos} byte(s) of raw tensor storage after the 5 pickles of a legacy torch.save file "
                "(read as data by torch.load, never unpickled)"
            )
            return True
    return True


def _scan_npy(buf: Any, scan: FileScan, ctx: _Ctx) -> None:
    size = len(buf)
    if size < 10 or buf[6] not in (1, 2, 3):
        scan.errors.append("npy: unsupported or truncated format version")
        return
    ver = buf[6]
    lenfmt, lensize = ("<H", 2) if ver == 1 else ("<I", 4)
    if size < 8 + lensize:
        scan.errors.append("npy: truncated header length")
        return
    (hlen,) = struct.unpack(lenfmt, buf[8 : 8 + lensize])
    start = 8 + lensize
    if hlen > 1024 * 1024 or start + hlen > size:
        scan.errors.append("npy: truncated or oversized header")
        return
    header_bytes = bytes(buf[start : start + hlen])
    try:
        header = ast.literal_eval(header_bytes.decode("utf-8" if ver == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError):
        scan.errors.append("npy: header is not a Python literal")
        return
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        scan.errors.append("npy: header must have exactly descr, fortran_order, shape")
        return
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        scan.errors.append("npy: shape is not a tuple of sizes")
        return
    from numpy.lib import format as npformat

    try:
        dtype = npformat.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, RecursionError, IndexError):
        scan.errors.append("npy: descr is not a valid dtype")
        return
    data_start = start + hlen
    if dtype.hasobject:
        scan.format = "npy-object"
        scan.notes.append("object array: its data is a pickle (numpy.load needs allow_pickle=True)")
        _walk_all(buf, data_start, scan, ctx)
        return
    count = 1
    for d in shape:
        count *= d
    need = count * dtype.itemsize
    have = size - data_start
    if have < need:
        scan.errors.append(f"npy: truncated data ({have} of {need} bytes)")
    elif have > need:
        scan.errors.append(f"npy: {have - need} unexplained byte(s) after the array data")


def _walk_all(buf: Any, pos: int, scan: FileScan, ctx: _Ctx, *, joblib_arrays: bool = False) -> None:
    """Walk pickles from ``pos`` to the end of ``buf``; anything that is not a pickle is an error."""
    index = 0
    while pos < len(buf):
        if index >= MAX_PICKLES_PER_STREAM:
            scan.errors.append(f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles (bound)")
            return
        walker = PickleWalker(buf, pos, scan, ctx, joblib_arrays=joblib_arrays)
        try:
            pos = walker.walk()
        except _Malformed as exc:
            scan.errors.append(f"{exc} (pickle #{index + 1})")
            return
        if walker.stop_frame_end > pos:
            scan.errors.append(
                f"{walker.stop_frame_end - pos} byte(s) after a STOP inside its frame (pickle #{index + 1})"
            )
            pos = walker.stop_frame_end
        index += 1
    if index == 0:
        scan.errors.append("object array without its pickle (truncated)")


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


def _scan_safetensors(buf: Any, scan: FileScan) -> None:
    from airflow_aisec.utils import strictjson

    size = len(buf)
    (n,) = struct.unpack("<Q", buf[:8])
    if n > SAFETENSORS_MAX_HEADER:
        scan.errors.append(f"safetensors: header of {n} bytes exceeds the {SAFETENSORS_MAX_HEADER}-byte bound")
        return
    raw = bytes(buf[8 : 8 + n])
    try:
        header = strictjson.loads(raw, source="safetensors header")
    except (AisecInputError, RecursionError, ValueError) as exc:
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


class _BufFile(io.RawIOBase):
    """A seekable read-only file over a bytes-like buffer (no copy)."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.p = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self.buf) - self.p))
        b[:n] = self.buf[self.p : self.p + n]
        self.p += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.p, 2: len(self.buf)}[whence]
        self.p = max(0, base + offset)
        return self.p

    def tell(self) -> int:
        return self.p


class _ZlibReader(io.RawIOBase):
    """Streaming reader over one raw zlib stream (joblib's ``compress=N``); trailing bytes are an error."""

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
                if self.d.unused_data or self.fh.read(1):
                    raise EOFError("trailing bytes after the zlib stream")
                return b""
            else:
                chunk = self.fh.read(1024 * 1024)
                if not chunk:
                    raise EOFError("zlib stream ended before its end marker")
                out = self.d.decompress(chunk, max(size, 1))
            if out:
                return out


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def _lz4_open(f: IO[bytes]) -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameFile(f, mode="rb")


_COMPRESSORS: tuple[tuple[bytes, str, Any], ...] = (
    (b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", "bz2", lambda f: bz2.BZ2File(f, mode="rb")),
    (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, mode="rb")),
    (b"\x5d\x00\x00", "lzma", lambda f: lzma.LZMAFile(f, mode="rb", format=lzma.FORMAT_ALONE)),
    (b"\x04\x22\x4d\x18", "lz4", _lz4_open),
    (b"x", "zlib", _ZlibReader),
)
_COMPRESSED_LABELS = tuple(label for _, label, _ in _COMPRESSORS)


def _bounded_decompress(buf: Any, opener: Any, ctx: _Ctx, scan: FileScan) -> bytes | None:
    out = io.BytesIO()
    try:
        with opener(io.BufferedReader(_BufFile(buf))) as stream:
            while True:
                chunk = stream.read(1024 * 1024)
                if not chunk:
                    break
                ctx.spend(len(chunk))
                out.write(chunk)
    except _Bound as exc:
        scan.errors.append(f"{exc}; not scanned")
        return None
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError, RuntimeError) as exc:
        scan.errors.append(f"corrupt compressed stream: {exc}")
        return None
    return out.getvalue()


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _plain_walk_globals(
    buf: Any, ctx: _Ctx, *, pickles: int = MAX_PICKLES_PER_STREAM, installed_only: bool = False
) -> list[GlobalRef]:
    """Globals a plain ``pickle.load`` (``pickles`` of them in sequence) would meet reading ``buf`` from
    its start (joblib array regions parsed as opcodes). Only well-formed, non-allowlisted names count:
    random bytes are not findings."""
    tmp = FileScan(location="")
    pos = 0
    try:
        for _ in range(pickles):
            if pos >= len(buf):
                break
            pos = PickleWalker(buf, pos, tmp, ctx, joblib_arrays=False).walk()
    except _Malformed:
        pass
    return [
        g
        for g in tmp.globals
        if _IDENT.match(g.module)
        and _IDENT.match(g.name)
        and (
            g.verdict == "dangerous" or (g.verdict == "unknown" and (not installed_only or _top_level_exists(g.module)))
        )
    ]


@functools.lru_cache(maxsize=1024)
def _top_level_exists(module: str) -> bool:
    """Is the top-level package of ``module`` installed? (``find_spec`` of a top-level name runs no
    module code.) Used for names only a secondary reading reaches, where junk bytes spell names."""
    import importlib.util

    top = module.split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return True


def _merge_hidden(scan: FileScan, found: list[GlobalRef], note: str) -> None:
    seen = {(g.qualname, g.offset) for g in scan.globals}
    extra = [g for g in found if (g.qualname, g.offset) not in seen]
    if extra:
        scan.globals.extend(extra)
        scan.notes.append(f"{note}: {', '.join(sorted({g.qualname for g in extra}))}")


def _scan_stream(buf: Any, scan: FileScan, ctx: _Ctx, depth: int, name_hint: str) -> None:
    """Detect the format of ``buf`` by content and scan it into ``scan``.

    Two bypasses are closed afterwards: a joblib file whose "array data" holds opcodes a plain
    ``pickle.load`` would execute, and a polyglot (safetensors/npy/zip/… that also parses as a pickle).
    """
    try:
        _dispatch(buf, scan, ctx, depth, name_hint)
        if scan.joblib_arrays:
            # a joblib file opened with plain pickle.load: one pickle, array bytes read as opcodes
            _merge_hidden(
                scan,
                _plain_walk_globals(buf, ctx, pickles=1, installed_only=True),
                "reachable by pickle.load inside joblib array data",
            )
        elif scan.format not in ("pickle", "joblib", "empty", "pytorch-legacy") and not scan.format.startswith(
            _COMPRESSED_LABELS
        ):
            _merge_hidden(scan, _plain_walk_globals(buf, ctx), "polyglot: the file also parses as a pickle")
    except _Bound as exc:
        scan.errors.append(str(exc))
        if scan.format == "unknown":
            scan.format = "incomplete"  # stopped by a bound: an error, not an unrecognised format
    if scan.uninspected and scan.format in ctx.allow_formats:
        scan.format_allowed = True


def _dispatch(buf: Any, scan: FileScan, ctx: _Ctx, depth: int, name_hint: str) -> None:
    size = len(buf)
    scan.size = size
    head = bytes(buf[:64])
    if size == 0:
        scan.format = "empty"
        scan.errors.append("empty file")
        return
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        _scan_zip(buf, scan, ctx, depth)
        return
    if head[:6] == b"\x93NUMPY":
        scan.format = "npy"
        _scan_npy(buf, scan, ctx)
        return
    for magic, label, opener in _COMPRESSORS:
        if head.startswith(magic) and (label != "zlib" or _is_zlib(head)):
            scan.format = label
            if depth >= ctx.max_depth:
                scan.errors.append(f"nesting deeper than {ctx.max_depth} (bound); not scanned")
                return
            inner = _bounded_decompress(buf, opener, ctx, scan)
            if inner is not None:
                sub = FileScan(location=f"{scan.location}!{label}")
                _scan_stream(inner, sub, ctx, depth + 1, name_hint)
                scan.format = f"{label}+{sub.format}"
                scan.members.append(sub)
            return
    if _looks_safetensors(head, size):
        scan.format = "safetensors"
        _scan_safetensors(buf, scan)
        return
    if head[:4] == b"GGUF":
        scan.format = "gguf"
        scan.notes.append("GGUF container: not inspected (tensors, metadata and chat templates are not parsed)")
        return
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        scan.format = "hdf5"
        scan.notes.append("HDF5 (Keras .h5): not inspected (Lambda layers carry code)")
        return
    strict = name_hint.lower().endswith(_PICKLE_EXTS)  # a .pkl that does not parse is malformed, not text
    fmt_before = scan.format
    if _scan_pickles(buf, scan, ctx, strict=strict):
        if scan.format == fmt_before:
            scan.format = "joblib" if scan.joblib_arrays else "pickle"
        return
    if _is_text(head) and _is_text_all(buf):
        scan.format = "text"
        return
    scan.format = "unknown"


def _is_text_all(buf: Any) -> bool:
    """Every byte decodes as UTF-8 (checked in chunks), no NUL."""
    dec = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    try:
        for i in range(0, len(buf), step):
            chunk = bytes(buf[i : i + step])
            if b"\x00" in chunk:
                return False
            dec.decode(chunk)
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------------------- zip archives
_EOCD = b"PK\x05\x06"
_UNSAFE_NAME = re.compile(r"(^/|^[A-Za-z]:|\\|\x00|(^|/)\.{1,2}(/|$)|//)")


def _zip_layout_errors(buf: Any, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Everything a reader other than :mod:`zipfile` might see differently: bytes not covered by a
    central-directory entry (a hidden local entry), overlapping entries, local headers that disagree
    with the directory, several end records, entry-count mismatches, unsafe or colliding names."""
    errors: list[str] = []
    size = len(buf)
    spans: list[tuple[int, int, str]] = []
    for info in infos:
        off = info.header_offset
        if off < 0 or off + 30 > size or bytes(buf[off : off + 4]) != b"PK\x03\x04":
            errors.append(f"{info.filename!r}: no local header at offset {off}")
            continue
        (flags, method, crc, csize, usize, nlen, elen) = struct.unpack("<2xHH4xIIIHH", buf[off + 4 : off + 30])
        raw_name = bytes(buf[off + 30 : off + 30 + nlen])
        enc = "utf-8" if flags & 0x800 else "cp437"
        try:
            local_name = raw_name.decode(enc)
        except UnicodeDecodeError:
            local_name = None
        if local_name != info.orig_filename:
            errors.append(f"{info.filename!r}: local header names {raw_name!r}")
        if method != info.compress_type:
            errors.append(f"{info.filename!r}: local header compression method differs from the directory")
        data_start = off + 30 + nlen + elen
        data_end = data_start + info.compress_size
        if flags & 0x08:
            desc = _descriptor_len(buf, data_end, info)
            if desc is None:
                errors.append(f"{info.filename!r}: data descriptor missing or disagrees with the directory")
                continue
            data_end += desc
        elif (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size) and 0xFFFFFFFF not in (
            csize,
            usize,
        ):
            errors.append(f"{info.filename!r}: local header sizes/CRC differ from the central directory")
        if data_end > size:
            errors.append(f"{info.filename!r}: data runs past the end of the file")
            continue
        spans.append((off, data_end, info.filename))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            errors.append(f"{name!r}: overlaps the previous member")
        elif begin > cursor:
            errors.append(f"{begin - cursor} byte(s) at offset {cursor} belong to no member (hidden entry?)")
        cursor = max(cursor, end)
    start_dir = getattr(zf, "start_dir", None)
    if isinstance(start_dir, int) and spans and cursor != start_dir:
        errors.append(f"{abs(start_dir - cursor)} byte(s) between the last member and the central directory")
    eocd = _rfind(buf, _EOCD)
    if eocd < 0 or eocd + 22 > size:
        errors.append("end-of-central-directory record not found")
        return errors
    first_after_dir = int(buf.find(_EOCD, start_dir if isinstance(start_dir, int) else 0))
    if first_after_dir != eocd:
        errors.append("several end-of-central-directory records (readers disagree which one counts)")
    entries = int.from_bytes(buf[eocd + 10 : eocd + 12], "little")
    comment_len = int.from_bytes(buf[eocd + 20 : eocd + 22], "little")
    if eocd + 22 + comment_len != size:
        errors.append(f"{size - eocd - 22 - comment_len} byte(s) after the end record and its comment")
    if entries != 0xFFFF and entries != len(infos):
        errors.append(f"end record counts {entries} members, the central directory holds {len(infos)}")
    errors += _zip_name_errors(infos)
    return errors


def _rfind(buf: Any, needle: bytes, start: int = 0, end: int | None = None) -> int:
    return int(buf.rfind(needle, start, len(buf) if end is None else end))


def _descriptor_len(buf: Any, at: int, info: zipfile.ZipInfo) -> int | None:
    for sig in (True, False):
        base = at + (4 if sig else 0)
        if sig and bytes(buf[at : at + 4]) != b"PK\x07\x08":
            continue
        for width in (4, 8):
            end = base + 4 + 2 * width
            if end > len(buf):
                continue
            crc = int.from_bytes(buf[base : base + 4], "little")
            csize = int.from_bytes(buf[base + 4 : base + 4 + width], "little")
            usize = int.from_bytes(buf[base + 4 + width : end], "little")
            if (crc, csize, usize) == (info.CRC, info.compress_size, info.file_size):
                return end - at
    return None


def _zip_name_errors(infos: list[zipfile.ZipInfo]) -> list[str]:
    errors: list[str] = []
    seen: dict[str, str] = {}
    files: set[str] = set()
    dirs: set[str] = set()
    for info in infos:
        name = info.orig_filename
        if not name or _UNSAFE_NAME.search(name):
            errors.append(f"member name {name!r} is absolute, has '..'/'.'/empty segments, a backslash or NUL")
        key = name.rstrip("/").casefold()
        if key in seen:
            errors.append(f"member names {seen[key]!r} and {name!r} collide (duplicate or case variant)")
        seen[key] = name
        if name.endswith("/"):
            dirs.add(key)
            if info.file_size or info.compress_size:
                errors.append(f"directory entry {name!r} carries data")
        else:
            files.add(key)
    for key in seen:
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                errors.append(f"{seen[key]!r} lies under {'/'.join(parts[:i])!r}, which is a file")
                break
    return errors


def _scan_zip(buf: Any, scan: FileScan, ctx: _Ctx, depth: int) -> None:
    scan.format = "zip"
    try:
        zf = zipfile.ZipFile(io.BufferedReader(_BufFile(buf)))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError) as exc:
        scan.errors.append(f"bad zip archive: {exc}")
        return
    with zf:
        ctx.members += len(infos)
        if ctx.members > ctx.max_zip_members:
            scan.errors.append(
                f"archive members ({ctx.members} so far, all nesting levels) exceed the bound {ctx.max_zip_members}"
            )
            return
        layout = _zip_layout_errors(buf, zf, infos)
        scan.errors += [f"zip layout: {e}" for e in layout[:20]]
        if len(layout) > 20:
            scan.errors.append(f"zip layout: {len(layout) - 20} more problem(s)")
        names = [i.filename for i in infos if not i.filename.endswith("/")]
        torch_roots = {n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")}
        if torch_roots:
            scan.format = "pytorch-zip"
            if any(n.endswith(".py") and "/code/" in f"/{n}" for n in names):
                scan.notes.append("TorchScript archive: contains code/ (TorchScript is executed by torch.jit.load)")
        elif names and all(n.endswith(".npy") for n in names):
            scan.format = "npz"
        elif "model.weights.h5" in names or {"config.json", "metadata.json"} <= set(names):
            scan.format = "keras"
            scan.notes.append("Keras archive: config.json can hold Lambda layers (code); not inspected")
        if depth >= ctx.max_depth:
            scan.errors.append(f"nesting deeper than {ctx.max_depth} (bound); not scanned")
            return
        for info in infos:
            n = info.filename
            if n.endswith("/") and not (info.file_size or info.compress_size):
                continue
            if any(re.fullmatch(re.escape(r) + r"data/[0-9]+", n) for r in torch_roots):
                scan.raw_members += 1  # raw tensor storage: read by torch as bytes, never unpickled
                continue
            sub = FileScan(location=f"{scan.location}!{n}")
            try:
                ctx.spend(info.file_size)
                data = zf.read(info)
            except _Bound as exc:
                scan.errors.append(f"{n}: {exc}")
                return
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                sub.errors.append(f"unreadable zip member: {exc}")
                scan.members.append(sub)
                continue
            _scan_stream(data, sub, ctx, depth + 1, n)
            if n.rsplit("/", 1)[-1] == "data.pkl" and sub.format == "text":
                sub.errors.append("data.pkl is not a pickle")
            scan.members.append(sub)


# --------------------------------------------------------------------------------------- public API
def scan_file(
    path: str | os.PathLike[str],
    policy: Policy | None = None,
    *,
    allow_formats: Iterable[str] = (),
    **bounds: int,
) -> FileScan:
    """Scan one file (never loads it); the result's ``verdict`` is safe/unsafe/malformed/unrecognised."""
    ctx = _make_ctx(policy, allow_formats, bounds)
    p = os.fspath(path)
    scan = FileScan(location=p)
    try:
        import stat

        if not stat.S_ISREG(os.stat(p).st_mode):
            scan.format = "skipped"
            scan.errors.append("not a regular file: not opened")
            return scan
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= IN_MEMORY_LIMIT:
                # one read: the digest and the scan see the very same bytes (no swap window)
                data = fh.read(IN_MEMORY_LIMIT + 1)
                if len(data) > IN_MEMORY_LIMIT:
                    raise OSError("file grew while it was read")
                scan.sha256 = hashlib.sha256(data).hexdigest()
                _scan_stream(data, scan, ctx, 0, p)
            else:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    scan.sha256 = hashlib.sha256(buf).hexdigest()
                    _scan_stream(buf, scan, ctx, 0, p)
    except OSError as exc:
        scan.errors.append(f"unreadable: {exc.strerror or exc}")
    except (RecursionError, MemoryError) as exc:
        scan.errors.append(f"cannot analyse ({type(exc).__name__}): structure too large or too deeply nested")
    except Exception as exc:
        scan.errors.append(f"cannot analyse: unexpected {type(exc).__name__} while scanning")
    return scan


def scan_bytes(
    data: bytes,
    name: str = "<bytes>",
    policy: Policy | None = None,
    *,
    allow_formats: Iterable[str] = (),
    **bounds: int,
) -> FileScan:
    """Scan in-memory bytes (same rules as :func:`scan_file`)."""
    ctx = _make_ctx(policy, allow_formats, bounds)
    data = bytes(data)
    scan = FileScan(location=name, sha256=hashlib.sha256(data).hexdigest())
    try:
        _scan_stream(data, scan, ctx, 0, name)
    except (RecursionError, MemoryError) as exc:
        scan.errors.append(f"cannot analyse ({type(exc).__name__}): structure too large or too deeply nested")
    except Exception as exc:
        scan.errors.append(f"cannot analyse: unexpected {type(exc).__name__} while scanning")
    return scan


def iter_model_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Expand ``paths`` (files or directories, walked recursively) into the files that will be scanned.

    Symlinked *files* are scanned (a loader follows them); what cannot be scanned is listed by
    :func:`_collect` and reported as an error by :func:`scan_paths`."""
    return _collect(paths)[0]


def _collect(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    import stat

    if not paths:
        raise AisecInputError("scan-model needs at least one path")
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for d in dirs:
                    if os.path.islink(os.path.join(root, d)):
                        skipped.append((os.path.join(root, d), "symlinked directory: not followed, not scanned"))
                for n in sorted(names):
                    full = os.path.join(root, n)
                    try:
                        mode = os.stat(full).st_mode  # follows a symlinked file, as a loader would
                    except OSError as exc:
                        skipped.append((full, f"unreadable ({exc.strerror or exc}; dangling link?)"))
                        continue
                    if stat.S_ISREG(mode):
                        files.append(full)
                    else:
                        skipped.append((full, "not a regular file (FIFO, device or socket): not opened"))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise AisecInputError(f"model path {p!r} does not exist or is not a regular file/directory")
    return files, skipped


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
    allow_formats: Sequence[str] = (),
    **bounds: int,
) -> Report:
    """Scan model files and directories; return an ``aisec.report/v1`` ``model_scan`` report.

    Status: ``fail`` when any file references a dangerous or non-allowlisted global (or, with
    ``fail_on_unknown_format``, holds a format the scan does not inspect), else ``error`` when any file
    is malformed, unreadable or exceeds a bound, else ``pass``.

    :param paths: files or directories.
    :param allow: extra allowed globals (``module.name`` or globs).
    :param force_allow: globals allowed even when known-dangerous (exact names).
    :param fail_on_unknown_format: treat files of a format the scan does not inspect as a (medium) finding.
    :param allow_formats: uninspected formats to accept explicitly (``gguf``, ``hdf5``, ``keras``, ``unknown``):
        reported as info, not a finding.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    policy = Policy(tuple(allow), tuple(force_allow))
    _make_ctx(policy, allow_formats, bounds)  # validate before touching any file
    subject = ", ".join(os.fspath(p) for p in paths)
    report = Report.start("model_scan", subject, tags=TAGS)
    files, skipped = _collect(paths)
    scans = [scan_file(f, policy, allow_formats=allow_formats, **bounds) for f in files]
    for where, reason in skipped:
        scans.append(FileScan(location=where, format="skipped", errors=[reason]))
    malformed = 0
    for scan in scans:
        for leaf in _leaves(scan):
            _add_findings(report, leaf, fail_on_unknown_format)
            malformed += bool(leaf.errors)
    verdicts = [s.verdict for s in scans]
    globals_all = [g for s in scans for g in s.iter_globals()]
    leaves = [leaf for s in scans for leaf in _leaves(s)]
    report.metrics.update(
        {
            "files_scanned": len(scans),
            "files_unsafe": verdicts.count("unsafe"),
            "files_malformed": verdicts.count("malformed"),
            "files_unrecognised": verdicts.count("unrecognised"),
            "members_scanned": len(leaves) - len(scans),
            "members_uninspected": sum(leaf.uninspected for leaf in leaves),
            "raw_tensor_members": sum(leaf.raw_members for leaf in leaves),
            "bytes_scanned": sum(s.size for s in scans),
            "pickles": sum(leaf.pickles for leaf in leaves),
            "globals_total": len(globals_all),
            "globals_dangerous": sum(g.verdict == "dangerous" for g in globals_all),
            "globals_unknown": sum(g.verdict in ("unknown", "ambiguous") for g in globals_all),
            "opcodes": sum(leaf.opcodes for leaf in leaves),
        }
    )
    report.details["files"] = [s.to_dict() for s in scans]
    blocking = [f for f in report.findings if f.severity in ("critical", "high", "medium")]
    unsafe_ids = {F_DANGEROUS, F_UNKNOWN, F_AMBIGUOUS, F_UNKNOWN_FORMAT}
    if any(f.id in unsafe_ids for f in blocking):
        n = len({f.location.split("!")[0] for f in blocking if f.id in unsafe_ids})
        return report.finish(
            "fail",
            f"{n} of {len(scans)} file(s) unsafe or uninspected: "
            f"{report.metrics['globals_dangerous']} dangerous, {report.metrics['globals_unknown']} non-allowlisted "
            f"global(s), {report.metrics['members_uninspected']} file(s)/member(s) of a format not inspected",
        )
    if malformed:
        return report.finish(
            "error",
            f"{malformed} malformed, unreadable or out-of-bounds file(s)/member(s) of {len(scans)}: cannot decide",
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
            F_MALFORMED,
            "high",
            f"Malformed, unreadable or out of bounds: {err}",
            scan.location,
            {"format": scan.format},
        )
    for note in scan.notes:
        if note.startswith("TorchScript"):
            report.add_finding(F_TORCHSCRIPT, "low", note, scan.location, {"format": scan.format})
    if scan.uninspected:
        allowed = scan.format_allowed or not fail_on_unknown_format
        report.add_finding(
            F_UNKNOWN_FORMAT,
            "info" if allowed else "medium",
            f"Format not inspected ({scan.format}): the scan cannot vouch for it"
            + (" (accepted by policy)" if allowed else ""),
            scan.location,
            {"size": scan.size, "format": scan.format},
        )
    elif scan.format == "text":
        report.add_finding(
            F_TEXT, "info", "Text file (no unpickler imports anything from it)", scan.location, {"size": scan.size}
        )
