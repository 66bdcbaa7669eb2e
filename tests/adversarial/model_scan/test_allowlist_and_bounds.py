"""Class 4 (allowlist by resolved identity, not module prefix) and class 6 (bounds, no crash)."""

from __future__ import annotations

import bz2
import gzip
import importlib
import lzma
import random
import struct
import sys
import zipfile
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms
from airflow_aisec.core.modelscan import policy as ms_policy
from airflow_aisec.exceptions import AisecInputError

from ._util import cli_exit, sbu

# Names under sklearn that merely re-export something else (checked below to really do so).
REEXPORTS = [
    "sklearn.datasets._covtype.GzipFile",
    "sklearn.datasets._kddcup99.GzipFile",
    "sklearn.datasets._base.NamedTemporaryFile",
    "sklearn.datasets._base.urlretrieve",
    "sklearn.datasets._openml.urlopen",
    "sklearn.datasets._openml.Request",
    "sklearn.datasets._base.makedirs",
    "sklearn.datasets._covtype.TemporaryDirectory",
    "sklearn.datasets._lfw.Memory",
    "sklearn.utils._testing.check_output",
    "sklearn.impute._base.partial",
    "sklearn.feature_extraction.text.itemgetter",
    "sklearn.pipeline.chain",
    "sklearn.tree._export.StringIO",
    "sklearn.datasets._species_distributions.BytesIO",
    "sklearn.ensemble._gb.time",
]


def _call_pickle(full: str, arg: str = "x") -> bytes:
    module, _, name = full.rpartition(".")
    return b"\x80\x04" + sbu(module) + sbu(name) + b"\x93" + sbu(arg) + b"\x85R."


@pytest.mark.parametrize("full", REEXPORTS)
def test_reexports_under_allowlisted_packages_are_not_allowed(full):
    module, _, name = full.rpartition(".")
    if not module.startswith(("sklearn.datasets", "sklearn.utils._testing")):  # (slow imports, ~20 s)
        obj = getattr(importlib.import_module(module), name)
        assert not obj.__module__.startswith("sklearn")  # the name is really a re-export
    scan = ms.scan_bytes(_call_pickle(full), "m.pkl")
    assert scan.verdict == "unsafe"
    assert scan.globals[0].verdict in ("unknown", "dangerous")


@settings(max_examples=60)
@given(
    module=st.sampled_from(sorted({g.rpartition(".")[0] for g in ms.SAFE_GLOBALS if g.startswith("sklearn.")})),
    name=st.sampled_from(["GzipFile", "system", "Popen", "urlopen", "NamedTemporaryFile", "eval", "load", "partial"]),
)
def test_any_unlisted_name_under_an_allowed_module_is_denied(module, name):
    if f"{module}.{name}" in ms.SAFE_GLOBALS:
        return
    scan = ms.scan_bytes(_call_pickle(f"{module}.{name}"), "m.pkl")
    assert scan.verdict == "unsafe"


def test_every_builtin_entry_is_canonical_for_installed_packages():
    """The table holds canonical names only: each resolves to an object defined exactly there."""
    import warnings

    for full in sorted(g for g in ms.SAFE_GLOBALS if g.startswith(("sklearn.", "scipy.")))[::7]:
        module, _, name = full.rpartition(".")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = getattr(importlib.import_module(module), name)
        assert f"{obj.__module__}.{obj.__qualname__}" == full


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    pkg = tmp_path / "acme_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "from os import system\nfrom subprocess import Popen\nfrom collections import OrderedDict\n"
        "import os\n\nclass Net:\n    pass\n\ndef make():\n    return Net()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "acme_models"
    for mod in [m for m in sys.modules if m.startswith("acme_models")]:
        del sys.modules[mod]
    ms_policy._resolve_canonical.cache_clear()


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("Net", "safe"),
        ("make", "safe"),
        ("system", "dangerous"),  # os.system re-exported by the user's module
        ("Popen", "dangerous"),
        ("OrderedDict", "safe"),  # a re-export of something allowed anyway
        ("os", "unknown"),  # a module object, not a class or function
        ("missing", "unknown"),
    ],
)
def test_user_glob_matches_are_resolved_to_what_they_are(user_pkg, name, verdict):
    policy = ms.Policy(allow=("acme_models.*",))
    assert policy.classify("acme_models.nets", name) == verdict
    report_status = "pass" if verdict == "safe" else "fail"
    scan = ms.scan_bytes(_call_pickle(f"acme_models.nets.{name}"), "m.pkl", policy)
    assert (scan.verdict == "safe") == (report_status == "pass")


# ------------------------------------------------------------------ class 6: bounds
@pytest.mark.parametrize(
    "opcode", [b"T", b"X", b"B", b"\x8d", b"\x8e", b"\x96", b"\x8b", b"\x95"]
)  # BINSTRING BINUNICODE BINBYTES BINUNICODE8 BINBYTES8 BYTEARRAY8 LONG4 FRAME
@pytest.mark.parametrize("declared", [2**31 - 1, 2**32 - 1, 2**62, 2**64 - 1])
def test_huge_declared_lengths_are_errors_not_allocations(tmp_path, opcode, declared):
    width = 4 if opcode in (b"T", b"X", b"B", b"\x8b") else 8
    if declared >= 2 ** (8 * width):
        declared = 2 ** (8 * width) - 1
    raw = declared.to_bytes(width, "little")
    path = tmp_path / "m.pkl"
    path.write_bytes(b"\x80\x04" + opcode + raw + b"abc.")
    report = ms.scan_paths([path])
    assert report.status == "error"
    assert cli_exit(str(path)) == 2
    assert any("declares" in f.title or "negative" in f.title for f in report.findings)


@pytest.mark.parametrize(
    "blob",
    [
        b"(" * 200_000 + b".",  # MARK depth
        b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".",  # nested lists
        b"\x80\x02" + b")" + b"\x85" * 100_000 + b".",  # nested tuples
        b"\x80\x02N" + b"r\xff\xff\xff\xff" + b"j\xff\xff\xff\xff.",  # huge memo index
        b"\x80\x02" + b"}" + b"(" * 50_000 + b"N" + b"\x85" * 10 + b".",
    ],
)
def test_deep_nesting_and_huge_indices_are_bounded_without_crashing(tmp_path, blob):
    path = tmp_path / "m.pkl"
    path.write_bytes(blob)
    assert cli_exit(str(path)) in (0, 2)
    report = ms.scan_paths([path], max_marks=10_000)
    assert report.status in ("pass", "error")
    if blob.startswith(b"(" * 20_000):
        assert report.status == "error"
        assert any("MARK" in f.title for f in report.findings)


def test_opcode_bound(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(b"\x80\x02" + b"N0" * 200_000 + b"N.")
    assert ms.scan_paths([path]).status == "pass"
    report = ms.scan_paths([path], max_opcodes=100_000)
    assert report.status == "error"
    assert any("opcodes (bound)" in f.title for f in report.findings)
    # the same through the decoder's fast path (BININT1/MEMOIZE/BINPUT/BINGET/SHORT_BINUNICODE only)
    path.write_bytes(b"\x80\x04K\x01\x94" + b"h\x00q\x01\x8c\x01a\x94" * 60_000 + b".")
    assert ms.scan_paths([path], max_opcodes=100_000).status == "error"


_WRAP = {
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zip": lambda b: _zip_of(b),
}


def _zip_of(data: bytes) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner", data)
    return out.getvalue()


@settings(max_examples=12)
@given(layers=st.lists(st.sampled_from(sorted(_WRAP)), min_size=1, max_size=4))
def test_decompressed_bytes_are_bounded_in_total_across_nesting_levels(tmp_path_factory, layers):
    # 300 kB of benign, incompressible bytes: every layer's output is about that large
    payload = random.Random(len(layers)).randbytes(300_000)
    inner = b"\x80\x04\x8e" + len(payload).to_bytes(8, "little") + payload + b"."  # BINBYTES8
    data = inner
    for layer in layers:
        data = _WRAP[layer](data)
    path = tmp_path_factory.mktemp("c") / "m.bin"
    path.write_bytes(data)
    # each layer alone stays under 400 kB, but the total over all layers exceeds it when nested
    report = ms.scan_paths([path], max_decompressed=400_000)
    total_layers = len(layers)
    if total_layers == 1:
        assert report.status == "pass", report.summary
    else:
        assert report.status == "error", report.summary
        assert any("total bound" in f.title for f in report.findings)
    assert ms.scan_paths([path]).status == "pass"


def test_unknown_bound_names_and_bad_values_are_input_errors(tmp_path):
    (tmp_path / "m.pkl").write_bytes(b"N.")
    with pytest.raises(AisecInputError, match="unknown scan bound"):
        ms.scan_paths([tmp_path], max_everything=3)
    with pytest.raises(AisecInputError, match="non-negative integer"):
        ms.scan_paths([tmp_path], max_depth=-1)


def test_truncated_safetensors_and_npy_lengths_do_not_allocate(tmp_path):
    header = b'{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}'
    (tmp_path / "a.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    npy = (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", 70)
        + b"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}"
    )
    (tmp_path / "b.npy").write_bytes(npy)
    report = ms.scan_paths([tmp_path])
    assert report.status == "error"
    assert report.metrics["files_malformed"] == 2


def test_zip_members_are_bounded_in_total_across_nesting_levels(tmp_path):
    inner = BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for i in range(30):
            zf.writestr(f"m{i}.json", b"{}")
    outer = BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        for i in range(5):
            zf.writestr(f"inner{i}.zip", inner.getvalue())
    path = tmp_path / "bundle.zip"
    path.write_bytes(outer.getvalue())
    assert ms.scan_paths([path]).status == "pass"
    # 5 + 5 x 30 members in all: each archive alone is under 100, the total is not
    report = ms.scan_paths([path], max_zip_members=100)
    assert report.status == "error"
    assert any("all nesting levels" in f.title for f in report.findings)


@pytest.mark.parametrize("entry", ["*.*", "s*.Net", "?.X", "[ab].Y", "*.models.Net"])
def test_globs_without_a_literal_package_are_refused(entry):
    # resolving a match imports its module: a glob must never let a pickle pick what gets imported
    with pytest.raises(AisecInputError, match="literal package"):
        ms.Policy(allow=(entry,))


def test_glob_matches_outside_its_literal_package_are_never_imported(monkeypatch):
    imported: list[str] = []
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: imported.append(name) or real(name, *a))
    ms_policy._resolve_canonical.cache_clear()
    policy = ms.Policy(allow=("acme.m*",))  # literal package "acme": "acme_evil" is not inside it
    assert policy.classify("acmex", "m1") == "unknown"
    assert policy.classify("this", "x") == "unknown"  # importing `this` would print: never imported
    assert imported == []
    with pytest.raises(AisecInputError, match="exact"):
        ms.Policy(force_allow=("os.*",))
