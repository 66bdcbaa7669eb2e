"""Malicious-model scan: malicious samples are built here; every test asserts nothing was executed."""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest

from airflow_aisec.core import modelscan as ms
from airflow_aisec.exceptions import AisecInputError


@pytest.fixture
def sentinel(tmp_path: Path):
    """A file every malicious payload would create; asserted absent after each test."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a scanned payload was executed"


class _System:
    def __init__(self, sentinel: Path) -> None:
        self.cmd = f"touch {sentinel}"

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Exec:
    def __init__(self, sentinel: Path) -> None:
        self.code = f"open({str(sentinel)!r}, 'w').close()"

    def __reduce__(self):
        return (exec, (self.code,))


def _sbu(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _findings(report, fid=None):
    return [f for f in report.findings if fid is None or f.id == fid]


@pytest.mark.parametrize("protocol", range(6))
def test_os_system_reduce_is_critical_at_every_protocol(tmp_path, sentinel, protocol):
    path = tmp_path / "model_weights.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0], "x": _System(sentinel)}, protocol=protocol))
    report = ms.scan_paths([path])
    assert report.status == "fail"
    crit = _findings(report, ms.F_DANGEROUS)
    assert [f.severity for f in crit] == ["critical"]
    assert crit[0].details["global"] in ("posix.system", "nt.system", "os.system")
    assert crit[0].details["called"] is True
    assert crit[0].details["offsets"]
    assert all(isinstance(o, int) for o in crit[0].details["offsets"])
    assert set(report.tags) >= {"AML.T0011.000", "AML.T0018.002", "OWASP-ML06"}
    assert report.details["files"][0]["verdict"] == "unsafe"


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_builtins_exec_is_critical(tmp_path, sentinel, protocol):
    scan = ms.scan_bytes(pickle.dumps(_Exec(sentinel), protocol=protocol), "x.bin")
    assert scan.verdict == "unsafe"
    assert [(g.qualname, g.verdict) for g in scan.globals] == [("builtins.exec", "dangerous")]


def test_stack_global_resolved_through_memo_tricks(sentinel):
    # module/name pushed, memoized, popped, then fetched back from the memo before STACK_GLOBAL
    payload = (
        b"\x80\x04"
        + _sbu("os")
        + b"\x94"  # MEMOIZE -> 0
        + _sbu("system")
        + b"\x94"  # MEMOIZE -> 1
        + b"00"  # POP POP
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + _sbu(f"touch {sentinel}")
        + b"\x85R."  # TUPLE1 REDUCE STOP
    )
    pickle_ok = ms.scan_bytes(payload, "hidden.pkl")
    assert pickle_ok.format == "pickle"
    assert not pickle_ok.errors
    assert [(g.qualname, g.opcode, g.verdict) for g in pickle_ok.globals] == [
        ("os.system", "STACK_GLOBAL", "dangerous")
    ]


def test_long_binget_and_put_variants(sentinel):
    payload = (
        b"\x80\x02"
        + b"X\x0a\x00\x00\x00subprocess"  # BINUNICODE
        + b"r\x05\x00\x00\x00"  # LONG_BINPUT 5
        + b"0"
        + b"X\x05\x00\x00\x00Popen"
        + b"q\x07"  # BINPUT 7
        + b"0"
        + b"j\x05\x00\x00\x00h\x07"  # LONG_BINGET 5, BINGET 7
        + b"\x93"
        + b"]\x85R."  # EMPTY_LIST TUPLE1 REDUCE STOP
    )
    scan = ms.scan_bytes(payload, "p.pkl")
    assert [(g.qualname, g.verdict) for g in scan.globals] == [("subprocess.Popen", "dangerous")]


def test_stack_global_with_computed_operands_is_ambiguous(sentinel):
    # module name is the *result of a call* (str(...)): cannot be resolved statically -> finding
    payload = (
        b"\x80\x04"
        + _sbu("builtins")
        + _sbu("str")
        + b"\x93"
        + _sbu("os")
        + b"\x85R"  # str("os") -> computed
        + _sbu("system")
        + b"\x93"
        + _sbu(f"touch {sentinel}")
        + b"\x85R."
    )
    scan = ms.scan_bytes(payload, "c.pkl")
    verdicts = {g.verdict for g in scan.globals}
    assert "ambiguous" in verdicts
    assert scan.verdict == "unsafe"


def test_python2_builtin_getattr_is_critical(sentinel):
    payload = b"c__builtin__\ngetattr\n(c__builtin__\ndict\nS'items'\ntR(tR."
    scan = ms.scan_bytes(payload, "py2.pkl")
    assert ("builtins.getattr", "dangerous") in [(g.qualname, g.verdict) for g in scan.globals]
    assert scan.verdict == "unsafe"


def test_inst_and_obj_opcodes_are_checked(sentinel):
    inst = f"(S'touch {sentinel}'\nios\nsystem\n.".encode()
    assert ms.scan_bytes(inst, "inst.pkl").globals[0].opcode == "INST"
    assert ms.scan_bytes(inst, "inst.pkl").verdict == "unsafe"
    obj = b"\x80\x02(cos\nsystem\n" + _sbu(f"touch {sentinel}") + b"o."
    scan = ms.scan_bytes(obj, "obj.pkl")
    assert scan.verdict == "unsafe"
    assert scan.globals[0].called


def test_unknown_global_is_denied_by_default_and_allowable(tmp_path):
    payload = b"\x80\x04" + _sbu("mycompany.models") + _sbu("Net") + b"\x93)\x81."  # NEWOBJ
    path = tmp_path / "net.pkl"
    path.write_bytes(payload)
    denied = ms.scan_paths([path])
    assert denied.status == "fail"
    assert [(f.id, f.severity) for f in denied.findings] == [(ms.F_UNKNOWN, "high")]
    assert ms.scan_paths([path], allow=["mycompany.models.Net"]).status == "pass"
    # a glob match must resolve (by import of the allowlisted module) to a class defined there:
    # mycompany is not importable here, so the glob cannot vouch for it
    assert ms.scan_paths([path], allow=["mycompany.*"]).status == "fail"


def test_allow_never_overrides_dangerous_but_force_allow_does(sentinel):
    data = pickle.dumps(_System(sentinel), protocol=2)
    g = ms.scan_bytes(data, "s.pkl").globals[0].qualname
    assert ms.scan_bytes(data, "s.pkl", ms.Policy(allow=(g, g.split(".")[0] + ".*"))).verdict == "unsafe"
    assert ms.scan_bytes(data, "s.pkl", ms.Policy(force_allow=(g,))).verdict == "safe"


def test_bad_allow_entry_is_an_input_error():
    with pytest.raises(AisecInputError, match="MODULE.NAME"):
        ms.Policy(allow=("os system",))


def test_extension_registry_opcode_is_ambiguous():
    scan = ms.scan_bytes(b"\x80\x02\x82\x01)R.", "ext.pkl")
    assert scan.verdict == "unsafe"
    assert scan.globals[0].module == "<extension-registry>"


# ------------------------------------------------------------------ benign artifacts pass
@functools.cache
def _fitted_models():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return {
        "logreg": LogisticRegression().fit(X, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
    }


@pytest.mark.parametrize("protocol", range(6))
def test_sklearn_pickles_pass_at_every_protocol(tmp_path, protocol):
    for name, model in _fitted_models().items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=protocol))
        report = ms.scan_paths([path])
        assert report.status == "pass", (name, [f.to_dict() for f in report.findings])


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_joblib_dumps_pass_and_array_data_is_skipped_exactly(tmp_path, compress):
    models = _fitted_models()
    obj = {
        "model": models["forest"],
        "weights": np.arange(1000.0).reshape(10, 100),
        "ints": np.arange(7, dtype=np.int16),
    }
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path, compress=compress)
    report = ms.scan_paths([path])
    assert report.status == "pass", [f.to_dict() for f in report.findings]
    fmt = report.details["files"][0]["format"]
    assert fmt.endswith("joblib")


def test_joblib_object_array_nested_pickle_is_scanned(tmp_path, sentinel):
    path = tmp_path / "model.joblib"
    joblib.dump({"w": np.ones(3), "meta": np.array([1, _System(sentinel)], dtype=object)}, path)
    report = ms.scan_paths([path])
    assert report.status == "fail"
    assert _findings(report, ms.F_DANGEROUS)


def test_numpy_npy_and_npz(tmp_path, sentinel):
    np.save(tmp_path / "w.npy", np.arange(12.0).reshape(3, 4))
    np.savez(tmp_path / "ok.npz", a=np.arange(3), b=np.eye(2))
    assert ms.scan_paths([tmp_path / "w.npy", tmp_path / "ok.npz"]).status == "pass"
    np.savez(tmp_path / "bad.npz", a=np.arange(3), b=np.array([_System(sentinel)], dtype=object))
    bad = ms.scan_paths([tmp_path / "bad.npz"])
    assert bad.status == "fail"
    assert bad.details["files"][0]["format"] == "npz"
    assert _findings(bad, ms.F_DANGEROUS)[0].location.endswith("bad.npz!b.npy")


def test_truncated_npy_is_an_error(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(100.0))
    data = (tmp_path / "w.npy").read_bytes()
    (tmp_path / "w.npy").write_bytes(data[:-8])
    report = ms.scan_paths([tmp_path / "w.npy"])
    assert report.status == "error"
    assert "truncated" in report.findings[0].title


# ------------------------------------------------------------------ PyTorch-style zip checkpoints
def _torch_data_pkl(evil: bytes | None = None) -> bytes:
    """A data.pkl shaped like torch.save's: OrderedDict of tensors rebuilt from persistent storages."""
    storage = b"(" + _sbu("storage") + b"ctorch\nFloatStorage\n" + _sbu("0") + _sbu("cpu") + b"K\x04tQ"  # BINPERSID
    tensor = (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + storage
        + b"K\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR"
    )
    body = b"\x80\x02ccollections\nOrderedDict\n)R" + _sbu("fc.weight") + tensor + b"s"
    if evil:
        body += _sbu("extra") + evil + b"s"
    return body + b"."


def _torch_zip(path: Path, data_pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/data/0", struct.pack("<4f", 1, 2, 3, 4))
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/byteorder", "little")


def test_torch_zip_checkpoint_benign_passes(tmp_path):
    _torch_zip(tmp_path / "model.pt", _torch_data_pkl())
    report = ms.scan_paths([tmp_path / "model.pt"])
    assert report.status == "pass", [f.to_dict() for f in report.findings]
    assert report.details["files"][0]["format"] == "pytorch-zip"


def test_torch_zip_checkpoint_with_payload_is_caught(tmp_path, sentinel):
    evil = b"cposix\nsystem\n" + _sbu(f"touch {sentinel}") + b"\x85R"
    _torch_zip(tmp_path / "pytorch_model.bin", _torch_data_pkl(evil))
    report = ms.scan_paths([tmp_path / "pytorch_model.bin"])
    assert report.status == "fail"
    crit = _findings(report, ms.F_DANGEROUS)
    assert crit[0].location.endswith("pytorch_model.bin!archive/data.pkl")
    assert crit[0].details["global"] == "posix.system"


def test_nested_zip_and_compressed_payloads_are_found(tmp_path, sentinel):
    evil = pickle.dumps(_System(sentinel), protocol=4)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("weights/model.pkl", evil)
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as zf:
        zf.writestr("inner.zip", inner.getvalue())
    (tmp_path / "m.gz").write_bytes(gzip.compress(evil))
    (tmp_path / "m.bz2").write_bytes(bz2.compress(evil))
    report = ms.scan_paths([tmp_path / "bundle.zip", tmp_path / "m.gz", tmp_path / "m.bz2"])
    assert report.status == "fail"
    assert report.metrics["files_unsafe"] == 3


def test_second_pickle_after_stop_is_scanned(sentinel):
    data = pickle.dumps({"a": 1}, protocol=4) + pickle.dumps(_System(sentinel), protocol=4)
    assert ms.scan_bytes(data, "two.pkl").verdict == "unsafe"


# ------------------------------------------------------------------ malformed input: error, never crash or pass
@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_pickle_is_an_error(tmp_path, cut):
    data = pickle.dumps({"weights": list(range(50))}, protocol=4)
    (tmp_path / "m.pkl").write_bytes(data[:-cut])
    report = ms.scan_paths([tmp_path / "m.pkl"])
    assert report.status == "error"
    assert report.findings[0].id == ms.F_MALFORMED


def test_truncated_malicious_pickle_still_fails(tmp_path, sentinel):
    data = pickle.dumps(_System(sentinel), protocol=2)
    (tmp_path / "m.pkl").write_bytes(data[:-2])
    report = ms.scan_paths([tmp_path / "m.pkl"])
    assert report.status == "fail"
    assert {f.id for f in report.findings} == {ms.F_DANGEROUS, ms.F_MALFORMED}


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x80\x09.", "protocol"),
        (b"\x80\x04h\x07.", "memo key"),
        (b"\x80\x04\xff", "opcode"),
        (b"\x80\x04t.", "MARK"),
        (b"", "empty"),
    ],
)
def test_malformed_pickles(tmp_path, blob, message):
    (tmp_path / "m.pkl").write_bytes(blob)
    report = ms.scan_paths([tmp_path / "m.pkl"])
    assert report.status == "error"
    assert message in report.findings[0].title


def test_corrupt_zip_is_an_error(tmp_path):
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps([1, 2]))
    (tmp_path / "m.pt").write_bytes(good.getvalue()[:40])
    assert ms.scan_paths([tmp_path / "m.pt"]).status == "error"


# ------------------------------------------------------------------ safetensors
def _safetensors(header: dict, data: bytes, *, pad: int = 0) -> bytes:
    raw = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(raw)) + raw + data


def test_valid_safetensors_passes(tmp_path):
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]},
    }
    (tmp_path / "m.safetensors").write_bytes(_safetensors(header, bytes(24), pad=3))
    report = ms.scan_paths([tmp_path / "m.safetensors"])
    assert report.status == "pass"
    assert report.details["files"][0]["format"] == "safetensors"


@pytest.mark.parametrize(
    ("header", "size", "message"),
    [
        ({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}, 12, "needs 16 bytes"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            12,
            "overlaps",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
            },
            12,
            "gap",
        ),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8, "data section"),
        ({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, 1, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, 4, "non-negative"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, 4, "exactly"),
        ({"__metadata__": {"k": 1}}, 0, "__metadata__"),
    ],
)
def test_invalid_safetensors_is_an_error(tmp_path, header, size, message):
    (tmp_path / "m.safetensors").write_bytes(_safetensors(header, bytes(size)))
    report = ms.scan_paths([tmp_path / "m.safetensors"])
    assert report.status == "error"
    assert any(message in f.title for f in report.findings), [f.title for f in report.findings]


def test_safetensors_bad_json_and_huge_header(tmp_path):
    raw = b"{not json}"
    (tmp_path / "a.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert "JSON" in ms.scan_paths([tmp_path / "a.safetensors"]).findings[0].title
    big = ms.SAFETENSORS_MAX_HEADER + 1
    path = tmp_path / "b.safetensors"
    with open(path, "wb") as fh:  # sparse: the header length claims more than the 100 MB bound
        fh.write(struct.pack("<Q", big) + b"{")
        fh.truncate(big + 64)
    report = ms.scan_paths([path])
    assert report.status == "error"
    assert "bound" in report.findings[0].title


# ------------------------------------------------------------------ other formats and inputs
def test_text_is_info_and_unknown_binary_is_denied(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden": 4}')
    (tmp_path / "blob.onnx").write_bytes(b"\x08\x07\x12\x04\x00\xfe\x01\x02" * 20)
    report = ms.scan_paths([tmp_path])
    assert report.status == "fail"
    assert {(f.id, f.severity) for f in report.findings} == {(ms.F_TEXT, "info"), (ms.F_UNKNOWN_FORMAT, "medium")}
    assert ms.scan_paths([tmp_path], fail_on_unknown_format=False).status == "pass"


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(AisecInputError, match="does not exist"):
        ms.scan_paths([tmp_path / "nope.pkl"])


def test_directory_scan_reports_each_file_with_sha256(tmp_path, sentinel):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_System(sentinel)))
    report = ms.scan_paths([tmp_path])
    files = {Path(f["location"]).name: f for f in report.details["files"]}
    assert files["ok.pkl"]["verdict"] == "safe"
    assert files["evil.pkl"]["verdict"] == "unsafe"
    assert len(files["ok.pkl"]["sha256"]) == 64
    assert report.metrics["files_scanned"] == 2
    assert report.to_dict()["status"] == "fail"


# ------------------------------------------------------------------ bypass attempts
def test_opcodes_smuggled_in_joblib_array_data_are_found(sentinel):
    """joblib.load skips the 'array data' after the wrapper's BUILD; pickle.load would execute it."""
    smuggled = b"cposix\nsystem\n" + _sbu(f"touch {sentinel}") + b"\x85R0"
    header = (
        b"\x80\x04"
        + _sbu("joblib.numpy_pickle")
        + _sbu("NumpyArrayWrapper")
        + b"\x93)\x81}("
        + _sbu("shape")
        + b"K"
        + bytes([len(smuggled)])
        + b"\x85"
        + _sbu("dtype")
        + _sbu("numpy")
        + _sbu("dtype")
        + b"\x93"
        + _sbu("u1")
        + b"\x89\x88\x87R"
        + _sbu("order")
        + _sbu("C")
        + b"ub"
    )
    scan = ms.scan_bytes(header + smuggled + b".", "model.joblib")
    assert scan.joblib_arrays == 1
    assert not scan.errors
    assert ("posix.system", "dangerous") in [(g.qualname, g.verdict) for g in scan.globals]
    assert any("joblib array data" in n for n in scan.notes)
    assert scan.verdict == "unsafe"


def test_polyglot_with_another_magic_is_found(sentinel):
    # starts like a GGUF file, but pickle.load reads 'G' as BINFLOAT and goes on to REDUCE os.system
    blob = b"GGUF\x03\x00\x00\x00\x00" + b"0cposix\nsystem\n" + _sbu(f"touch {sentinel}") + b"\x85R."
    scan = ms.scan_bytes(blob, "model.gguf")
    assert scan.format == "gguf"
    assert scan.verdict == "unsafe"
    assert any(n.startswith("polyglot") for n in scan.notes)


def test_scipy_sparse_classes_are_allowed_but_not_its_functions():
    import scipy.sparse as sp

    assert ms.scan_bytes(pickle.dumps(sp.csr_matrix(np.eye(3))), "sparse.pkl").verdict == "safe"
    payload = b"\x80\x04" + _sbu("scipy.sparse") + _sbu("load_npz") + b"\x93" + _sbu("x.npz") + b"\x85R."
    assert ms.scan_bytes(payload, "f.pkl").verdict == "unsafe"


def test_truncated_protocol0_pickle_is_not_mistaken_for_text(tmp_path):
    (tmp_path / "m.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=0)[:-4])
    assert ms.scan_paths([tmp_path / "m.pkl"]).status == "error"
    (tmp_path / "notes.txt").write_bytes(pickle.dumps([1, 2, 3], protocol=0)[:-4])
    assert ms.scan_paths([tmp_path / "notes.txt"]).details["files"][0]["format"] == "text"
