"""Classes 2, 3 and 5: every pickle in a stream; joblib array skipping exactly as joblib reads;
ordinary models (HistGradientBoosting, KNeighbors, numpy random states, lz4 joblib) pass."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zlib
from functools import cache

import joblib
import lz4.frame
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms

from ._util import cli_exit, payload_p0, payload_p4, sbu


class _System:
    def __init__(self, sentinel) -> None:
        self.cmd = f"touch {sentinel}"

    def __reduce__(self):
        return (os.system, (self.cmd,))


@cache
def _models() -> dict[str, object]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.RandomState(0)
    x = rng.rand(80, 3)
    y = (x[:, 0] > 0.5).astype(int)
    return {
        "hgb_classifier": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "hgb_regressor": HistGradientBoostingRegressor(max_iter=3).fit(x, x[:, 1]),
        "knn_kd_tree": KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "knn_ball_tree": KNeighborsClassifier(algorithm="ball_tree").fit(x, y),
        "generator": np.random.default_rng(1),
        "pcg64": np.random.PCG64(2),
        "random_state": np.random.RandomState(3),
    }


# ------------------------------------------------------------------ class 5: no false refusals
@pytest.mark.parametrize("name", sorted(_models()))
@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib-lz4", "joblib-zlib"])
def test_ordinary_models_pass(tmp_path, name, how):
    obj = _models()[name]
    path = tmp_path / ("m.pkl" if how == "pickle" else "m.joblib")
    if how == "pickle":
        path.write_bytes(pickle.dumps(obj, protocol=4))
    else:
        compress = {"joblib": 0, "joblib-lz4": ("lz4", 3), "joblib-zlib": 3}[how]
        joblib.dump(obj, path, compress=compress)
    report = ms.scan_paths([path])
    assert report.status == "pass", [f.to_dict() for f in report.findings]
    assert cli_exit(str(path)) == 0


# ------------------------------------------------------------------ class 2: several pickles
@settings(max_examples=40)
@given(n_before=st.integers(0, 6), protocol=st.integers(0, 5), p4=st.booleans())
def test_payload_in_any_later_pickle_is_found(tmp_path_factory, n_before, protocol, p4):
    sentinel = tmp_path_factory.mktemp("s") / "PWNED"
    data = b"".join(pickle.dumps({"i": i}, protocol=protocol) for i in range(n_before))
    data += payload_p4(sentinel) if p4 else payload_p0(sentinel)
    data += pickle.dumps([1, 2], protocol=protocol)
    scan = ms.scan_bytes(data, "ckpt.pt")
    assert scan.verdict == "unsafe"
    assert scan.pickles == n_before + 2
    assert not sentinel.exists()


@settings(max_examples=40)
@given(tail=st.binary(min_size=1, max_size=40), protocol=st.integers(0, 5))
def test_trailing_bytes_after_a_pickle_are_never_ignored(tmp_path_factory, tail, protocol):
    data = pickle.dumps({"w": [1.0]}, protocol=protocol) + tail
    path = tmp_path_factory.mktemp("t") / "model.pkl"
    path.write_bytes(data)
    report = ms.scan_paths([path])
    # the tail is either a further (benign) pickle that was walked, or an error: never silently skipped
    scan = ms.scan_bytes(data, "model.pkl")
    if report.status == "pass":
        assert scan.pickles >= 2
    else:
        assert report.status in ("error", "fail")


def test_legacy_torch_save_layout_is_recognised():
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    parts = [magic, pickle.dumps(1001, protocol=2), pickle.dumps({"protocol_version": 1001}, protocol=2)]
    parts += [pickle.dumps({"w": 1}, protocol=2), pickle.dumps(["0"], protocol=2)]
    data = b"".join(parts) + struct.pack("<q", 2) + b"\x00" * 8
    scan = ms.scan_bytes(data, "old.pt")
    assert (scan.format, scan.verdict) == ("pytorch-legacy", "safe")
    # the same raw tail after fewer pickles is not a legacy layout: an error
    assert ms.scan_bytes(b"".join(parts[:3]) + b"\x00" * 8, "old.pt").verdict == "malformed"


# ------------------------------------------------------------------ class 3: joblib arrays
def _joblib_bytes(obj, compress=0) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=compress)
    return buf.getvalue()


def test_object_array_payload_is_found_and_nested_wrappers_are_not_skipped(tmp_path, sentinel):
    arr = np.empty(2, dtype=object)
    arr[0] = {"a": 1}
    arr[1] = _System(sentinel)
    path = tmp_path / "m.joblib"
    joblib.dump({"x": arr}, path)
    assert cli_exit(str(path)) == 1
    # inside an object array joblib calls plain pickle.load: a wrapper there reads no raw data, so
    # bytes after its BUILD are opcodes and must be walked, not skipped
    inner = arr.copy()
    inner[1] = np.arange(3.0)
    assert ms.scan_bytes(_joblib_bytes({"x": inner}), "m.joblib").verdict == "safe"
    # hand-built: an object array whose nested pickle holds a wrapper; plain pickle.load reads on
    # right after that wrapper's BUILD (no array data), so the payload there runs
    nested = _wrapper_stream(0, b"", code="f8")[:-1] + b"0" + payload_p4(sentinel)[2:]
    scan = ms.scan_bytes(_wrapper_stream(63, nested, code="O8"), "m.joblib")
    assert scan.verdict == "unsafe"
    assert "posix.system" in {g.qualname for g in scan.globals}


def _wrapper_stream(dtype_state_flags: int, data: bytes, *, via: str = "newobj", code: str = "f8") -> bytes:
    """A protocol-4 joblib stream: NumpyArrayWrapper(shape=(2,), dtype=code with the given state flags)."""
    wrapper = sbu("joblib.numpy_pickle") + sbu("NumpyArrayWrapper") + b"\x93"
    if via == "newobj":
        make = wrapper + b")\x81"
    else:  # copyreg._reconstructor(cls, object, None), what protocols 0/1 write
        make = sbu("copyreg") + sbu("_reconstructor") + b"\x93" + wrapper + sbu("builtins") + sbu("object")
        make += b"\x93N\x87R"
    dtype = sbu("numpy") + sbu("dtype") + b"\x93" + sbu(code) + b"\x89\x88\x87R"
    dtype += b"(K\x03" + sbu("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff" + b"K" + bytes([dtype_state_flags]) + b"tb"
    state = b"}(" + sbu("subclass") + sbu("numpy") + sbu("ndarray") + b"\x93"
    state += sbu("shape") + b"K\x02\x85" + sbu("order") + sbu("C") + sbu("dtype") + dtype
    state += sbu("allow_mmap") + b"\x88" + sbu("numpy_array_alignment_bytes") + b"K\x10u"
    return b"\x80\x04" + make + state + b"b" + data + b"."


@pytest.mark.parametrize("via", ["newobj", "reconstructor"])
def test_dtype_state_flags_decide_what_joblib_reads(via, sentinel):
    # flags=0: f8 data (1 padding byte + 16 bytes) is skipped like joblib does
    assert ms.scan_bytes(_wrapper_stream(0, b"\x00" + b"\x11" * 16, via=via), "a.joblib").verdict == "safe"
    # flags=1 makes numpy's dtype.hasobject true: joblib then *unpickles* what follows
    hidden = payload_p4(sentinel)
    scan = ms.scan_bytes(_wrapper_stream(1, hidden, via=via), "a.joblib")
    assert scan.verdict == "unsafe"
    assert "posix.system" in {g.qualname for g in scan.globals}


def test_class_switch_through_slot_state_is_flagged():
    est = sbu("sklearn.linear_model._base") + sbu("LinearRegression") + b"\x93)\x81"
    wrapper = sbu("joblib.numpy_pickle") + sbu("NumpyArrayWrapper") + b"\x93"
    data = b"\x80\x04" + est + b"N}" + sbu("__class__") + wrapper + b"s\x86b."
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert any(g.module == "<build>" for g in scan.globals)


@settings(max_examples=60)
@given(where=st.floats(0, 1), p4=st.booleans(), compress=st.sampled_from([0, 3, ("lz4", 1), ("gzip", 1)]))
def test_payload_injected_anywhere_in_a_real_joblib_file_never_passes(tmp_path_factory, where, p4, compress):
    base = _joblib_bytes({"w": np.arange(40.0), "m": _models()["knn_kd_tree"]})
    sentinel = tmp_path_factory.mktemp("s") / "PWNED"
    cut = int(where * len(base))
    payload = payload_p4(sentinel) if p4 else payload_p0(sentinel)
    mutated = base[:cut] + payload + base[cut:]
    data = mutated
    if compress:
        if compress == 3:
            data = zlib.compress(mutated)
        elif compress[0] == "lz4":
            data = lz4.frame.compress(mutated)
        else:
            data = gzip.compress(mutated)
    path = tmp_path_factory.mktemp("j") / "model.joblib"
    path.write_bytes(data)
    assert cli_exit(str(path)) in (1, 2)
    assert not sentinel.exists()


def _npy_object_bytes(obj) -> bytes:
    buf = io.BytesIO()
    arr = np.empty(1, dtype=object)
    arr[0] = obj
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


@settings(max_examples=60)
@given(
    where=st.floats(0, 1),
    container=st.sampled_from(["pickle", "npy-object", "zip", "gzip-zip", "bz2", "lz4"]),
    protocol=st.integers(0, 5),
)
def test_dangerous_global_injected_into_real_model_files_never_passes(tmp_path_factory, where, container, protocol):
    """Mutate real pickles of benign models: a dangerous call spliced in at a random opcode boundary
    (or after STOP) must give exit 1 or 2, and nothing may run."""
    sentinel = tmp_path_factory.mktemp("s") / "PWNED"
    base = pickle.dumps(_models()["knn_kd_tree"], protocol=protocol)
    import pickletools

    boundaries = [pos for _, _, pos in pickletools.genops(base)] + [len(base)]
    cut = boundaries[int(where * (len(boundaries) - 1))]
    evil = payload_p0(sentinel)[:-1] + b"0"  # os.system(...) then POP: the stream stays balanced
    data = base[:cut] + evil + base[cut:] if cut < len(base) else base + payload_p0(sentinel)
    if container == "npy-object":
        npy = _npy_object_bytes(1)
        header_end = npy.index(b"\n") + 1
        data = npy[:header_end] + data
    elif container in ("zip", "gzip-zip"):
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("archive/data.pkl", data)
        data = out.getvalue() if container == "zip" else gzip.compress(out.getvalue())
    elif container == "bz2":
        import bz2

        data = bz2.compress(data)
    elif container == "lz4":
        data = lz4.frame.compress(data)
    path = tmp_path_factory.mktemp("m") / "model.bin"
    path.write_bytes(data)
    assert cli_exit(str(path)) in (1, 2)
    assert not sentinel.exists()


def _framed(inner: bytes, after_frame: bytes) -> bytes:
    return b"\x80\x04\x95" + len(inner).to_bytes(8, "little") + inner + after_frame


def test_array_data_read_during_a_frame_comes_after_the_frame(sentinel):
    """joblib's (pure-Python) unpickler reads a FRAME into memory: array data read inside it comes
    from the file after the frame, and the frame's remaining opcodes run after that."""
    body = _wrapper_stream(0, b"")[2:-1]  # wrapper + BUILD, without PROTO and STOP
    array = b"\x00" + b"\x11" * 16  # padding byte + 2 x f8
    benign = _framed(body + b"0N", array + b".")
    scan = ms.scan_bytes(benign, "m.joblib")
    assert scan.verdict == "safe", scan.errors
    hidden = b"0" + payload_p4(sentinel)[2:-1]  # runs from the frame after the array was read
    scan = ms.scan_bytes(_framed(body + hidden, array + b"."), "m.joblib")
    assert scan.verdict == "unsafe"
    assert "posix.system" in {g.qualname for g in scan.globals}
    # two arrays in one frame: the second one's data follows the first one's, after the frame
    two = _framed(body + b"0" + body + b"0N", array + array + b".")
    assert ms.scan_bytes(two, "m.joblib").verdict == "safe"


def test_a_second_pickle_is_read_plainly_no_array_skipping(sentinel):
    # a sequential reader (torch's legacy loader) reads pickle #2 with plain pickle semantics: bytes
    # after a wrapper's BUILD there are opcodes, not array data
    first = pickle.dumps({"a": 1}, protocol=4)
    second = _wrapper_stream(0, b"0" + payload_p4(sentinel)[2:-1])
    scan = ms.scan_bytes(first + second, "ckpt.bin")
    assert scan.verdict == "unsafe"
    assert "posix.system" in {g.qualname for g in scan.globals}


def _x(s: str) -> bytes:  # BINUNICODE (protocol 2)
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()


def _joblib_reaches(data: bytes) -> set[str]:
    """Globals joblib's own unpickler looks up reading ``data`` (anything but the wrapper's
    numpy/joblib parts is recorded and refused before import: nothing runs)."""
    from joblib.numpy_pickle import NumpyUnpickler

    seen: set[str] = set()

    class _Rec(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module, name):
            seen.add(f"{module}.{name}")
            if module.split(".")[0] not in ("numpy", "joblib") and f"{module}.{name}" != "builtins.dict":
                raise pickle.UnpicklingError("recorded, not imported")
            return super().find_class(module, name)

    try:
        _Rec("", io.BytesIO(data), ensure_native_byte_order=True).load()
    except pickle.UnpicklingError:
        pass
    return seen


def test_a_wrapper_built_twice_keeps_its_first_state(sentinel):
    """A second BUILD updates the wrapper's attributes, it does not replace them: a walker that forgot
    ``numpy_array_alignment_bytes=None`` from the first BUILD read a padding byte joblib does not
    read, and skipped the payload joblib runs there."""
    wrapper = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n"
    dtype = b"cnumpy\ndtype\n(" + _x("f8") + b"\x89\x88tR(K\x03" + _x("<") + b"NNNJ\xff\xff\xff\xff"
    dtype += b"J\xff\xff\xff\xffK\x00tb"

    def make(n: int) -> bytes:  # NumpyArrayWrapper(ndarray, (n,), "C", float64) via REDUCE
        return wrapper + b"(cnumpy\nndarray\n(K" + bytes([n]) + b"t" + _x("C") + dtype + b"tR"

    data = b"\x80\x02" + make(1) + b"}b" + b"\x00" + b"\xff" * 8 + b"0"  # a real array (pad 0, 8 bytes)
    data += make(0) + b"q\x05}" + _x("numpy_array_alignment_bytes") + b"Nsb0"  # no padding from now on
    data += b"h\x05}N\x86b"  # the same wrapper built again with a ({}, None) state: joblib reads no pad
    call = b"cos\nsystem\n(S'sleep'\ntR0"  # os.system('sleep'), its result popped (24 bytes)
    hidden = call + b"N0" * ((100 - len(call)) // 2)
    assert len(hidden) == 100 and hidden[0] == 99  # 'c': a walker reading it as a pad length skips 99
    data += hidden + b"."
    assert "os.system" in _joblib_reaches(data)
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert "os.system" in {g.qualname for g in scan.globals}


def test_a_state_dict_mutated_after_its_build_changes_nothing_built():
    """The unpickler copies a BUILD state into the object: a SETITEM on the (memoized) state dict
    afterwards must not change what the walker thinks the wrapper holds. Here the walker believed
    the mutation (no padding byte) while joblib read a padding byte of 85 and ran the bytes after it."""
    wrapper = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n"
    dtype = b"cnumpy\ndtype\n(" + _x("f8") + b"\x89\x88tR(K\x03" + _x("<") + b"NNNJ\xff\xff\xff\xff"
    dtype += b"J\xff\xff\xff\xffK\x00tb"

    def make(n: int) -> bytes:
        return wrapper + b"(cnumpy\nndarray\n(K" + bytes([n]) + b"t" + _x("C") + dtype + b"tR"

    data = b"\x80\x02" + make(1) + b"}b" + b"\x00" + b"\xff" * 8 + b"0"  # a real array first
    data += make(0) + b"q\x05}q\x06b" + b"\x00" + b"0"  # BUILD(W, D={}): both read a padding byte 0
    data += b"h\x06" + _x("numpy_array_alignment_bytes") + b"Ns0"  # D[alignment] = None, too late
    data += b"h\x05}b"  # built again: joblib still reads a padding byte (85, 'U')
    call = b"cos\nsystem\n(S'sleep'\ntR0N"
    region = bytearray(b"N0" * 60)  # 120 bytes: one SHORT_BINSTRING for a walker without padding
    region[84 : 84 + len(call)] = call  # joblib resumes 86 bytes after 'U'
    region[84 + len(call) :] = b"N0" * ((120 - 84 - len(call)) // 2) + b"N" * ((120 - 84 - len(call)) % 2)
    data += b"U\x78" + bytes(region) + b"0."
    assert "os.system" in _joblib_reaches(data)
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert "os.system" in {g.qualname for g in scan.globals}


@pytest.mark.parametrize("make", [b"(%so", b"(i%s"], ids=["OBJ", "INST"])
def test_a_wrapper_made_by_obj_or_inst_without_arguments_has_no_init_defaults(make):
    """OBJ/INST without arguments call ``cls.__new__`` only (pickle's ``_instantiate``): no
    ``__init__``, so no default ``numpy_array_alignment_bytes`` and joblib reads no padding byte."""
    cls = b"joblib.numpy_pickle\nNumpyArrayWrapper\n"
    dtype = b"cnumpy\ndtype\n(" + _x("f8") + b"\x89\x88tR(K\x03" + _x("<") + b"NNNJ\xff\xff\xff\xff"
    dtype += b"J\xff\xff\xff\xffK\x00tb"
    real = b"c" + cls + b"(cnumpy\nndarray\n(K\x01t" + _x("C") + dtype + b"tR}b" + b"\x00" + b"\xff" * 8 + b"0"
    bare = make % (b"c" + cls if make.endswith(b"o") else cls)
    state = b"}(" + _x("subclass") + b"cnumpy\nndarray\n" + _x("shape") + b"(K\x00t" + _x("order") + _x("C")
    state += _x("dtype") + dtype + b"ub"
    call = b"cos\nsystem\n(S'sleep'\ntR0"
    data = b"\x80\x02" + real + bare + state + call + b"N0" * ((100 - len(call)) // 2) + b"."
    assert "os.system" in _joblib_reaches(data)
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert "os.system" in {g.qualname for g in scan.globals}


def test_an_instance_setstate_set_by_build_is_flagged():
    """BUILD puts ``__setstate__`` into the wrapper's ``__dict__``; the next BUILD then calls it
    instead of updating the attributes (pickle looks ``__setstate__`` up on the instance): joblib
    keeps alignment None and reads no padding byte where the walker, merging, read one."""
    cls = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n"
    dtype = b"cnumpy\ndtype\n(" + _x("f8") + b"\x89\x88tR(K\x03" + _x("<") + b"NNNJ\xff\xff\xff\xff"
    dtype += b"J\xff\xff\xff\xffK\x00tb"
    real = cls + b"(cnumpy\nndarray\n(K\x01t" + _x("C") + dtype + b"tR}b" + b"\x00" + b"\xff" * 8 + b"0"
    wrapper = cls + b"(cnumpy\nndarray\n(K\x00t" + _x("C") + dtype + b"tRq\x05"
    first = b"}(" + _x("__setstate__") + b"cbuiltins\ndict\n" + _x("numpy_array_alignment_bytes") + b"Nub0"
    second = b"h\x05}" + _x("numpy_array_alignment_bytes") + b"K\x10sb"
    call = b"cos\nsystem\n(S'sleep'\ntR0"
    data = b"\x80\x02" + real + wrapper + first + second + call + b"N0" * ((100 - len(call)) // 2) + b"."
    assert "os.system" in _joblib_reaches(data)
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert any(g.module == "<build>" and "dunder" in g.name for g in scan.globals)


def test_an_object_array_pickle_stopping_inside_its_frame_resumes_after_the_frame(sentinel):
    """joblib's nested (pure-Python) unpickler reads a whole FRAME: when its STOP is inside the frame,
    the outer pickle goes on after the frame. A walker going on after STOP read the frame's rest
    (``U\\x78``) as a string swallowing the os.system joblib runs."""
    inner = b"cnumpy\nfloat64\n(K\x01tR.U\x78"
    nested = b"\x80\x04\x95" + len(inner).to_bytes(8, "little") + inner
    call = b"cos\nsystem\n(S'sleep'\ntR0"
    region = call + b"N0" * ((0x78 - len(call)) // 2)
    region = region[: 0x78 - 1] + b"N"
    data = _wrapper_stream(63, nested + region + b"0", code="O8")
    assert "os.system" in _joblib_reaches(data)
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert "os.system" in {g.qualname for g in scan.globals}
    # a plain stream with bytes after a STOP inside its frame: the next pickle starts after the frame
    framed = b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00N.U" + payload_p0(sentinel)
    scan = ms.scan_bytes(framed, "m.pkl")
    assert scan.verdict == "unsafe"
    assert any("inside its frame" in e for e in scan.errors)
