"""One test per line of the documented guarantee not covered by the class-specific modules."""

from __future__ import annotations

import os
import pickle
import struct
import threading
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms
from airflow_aisec.core.modelscan import engine

from ._util import cli_exit, payload_p4, sbu


def test_symlinked_file_in_a_directory_is_scanned_like_a_loader_would_read_it(tmp_path, sentinel):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.pkl").write_bytes(payload_p4(sentinel))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    os.symlink(outside / "evil.pkl", model_dir / "model.pkl")
    assert ms.scan_paths([model_dir]).status == "fail"
    assert cli_exit(str(model_dir)) == 1


def test_symlinked_directory_dangling_link_and_fifo_are_errors_without_hanging(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "ok.json").write_text("{}")
    os.symlink(tmp_path, model_dir / "linked_dir")
    os.symlink(tmp_path / "nowhere", model_dir / "dangling.pkl")
    os.mkfifo(model_dir / "pipe.pkl")
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(r=ms.scan_paths([model_dir])), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "scan hung on a FIFO"
    report = result["r"]
    assert report.status == "error"  # type: ignore[attr-defined]
    titles = " ".join(f.title for f in report.findings)  # type: ignore[attr-defined]
    assert "symlinked directory" in titles and "not a regular file" in titles and "dangling" in titles


def test_npy_trailing_bytes_and_second_object_pickle(tmp_path, sentinel):
    arr = np.arange(4.0)
    path = tmp_path / "w.npy"
    np.save(path, arr)
    path.write_bytes(path.read_bytes() + b"\x00")
    assert ms.scan_paths([path]).status == "error"
    obj = np.empty(1, dtype=object)
    obj[0] = 1
    np.save(path, obj, allow_pickle=True)
    path.write_bytes(path.read_bytes() + payload_p4(sentinel))  # a second pickle after the array's
    assert ms.scan_paths([path]).status == "fail"


def test_zlib_trailing_bytes_are_an_error(tmp_path, sentinel):
    path = tmp_path / "m.joblib"
    path.write_bytes(zlib.compress(pickle.dumps({"a": 1})) + payload_p4(sentinel))
    assert ms.scan_paths([path]).status in ("error", "fail")
    assert ms.scan_paths([path]).status != "pass"


def test_joblib_wrapper_handed_to_another_callable_is_ambiguous():
    wrapper = sbu("joblib.numpy_pickle") + sbu("NumpyArrayWrapper") + b"\x93"
    data = b"\x80\x04" + sbu("collections") + sbu("OrderedDict") + b"\x93" + wrapper + b"\x85R}b."
    scan = ms.scan_bytes(data, "m.joblib")
    assert scan.verdict == "unsafe"
    assert any(g.module == "<joblib>" for g in scan.globals)


def test_polyglot_safetensors_that_is_also_a_pickle(tmp_path, sentinel):
    # the 8-byte length field starts with PROTO 2 ... and the header JSON is valid safetensors
    header = b'{"__metadata__":{"a":"b"}}'
    n = len(header)
    blob = struct.pack("<Q", n) + header
    assert ms.scan_bytes(blob, "m.safetensors").format == "safetensors"
    evil = payload_p4(sentinel)
    # a file whose first bytes are a complete pickle also opens as "something else" only if its
    # magic says so: a pickle always wins over the text/unknown classification
    scan = ms.scan_bytes(evil + b"\n# readme\n", "README.md")
    assert scan.verdict == "unsafe"


@pytest.mark.parametrize("form", [b"1\x00junk", b"010", b"0x1"])
def test_only_files_no_unpickler_imports_from_are_text(tmp_path, form):
    # valid for the C unpickler only: the scan still reads it as a pickle (never as text)
    data = b"(I" + form + b"\n0cos\nsystem\n."
    scan = ms.scan_bytes(data, "notes.txt")
    assert scan.format != "text"
    assert scan.verdict == "unsafe"


@pytest.mark.parametrize("module", ["acme_not_installed.tools", "posix"])
def test_allowed_format_that_is_also_a_pickle_still_fails(module):
    # GGUF allowed by policy, but pickle.load reads 'G' as BINFLOAT and goes on to call module.run
    blob = b"GGUF\x03\x00\x00\x00\x00" + b"0c" + module.encode() + b"\nrun\n" + sbu("x") + b"\x85R."
    scan = ms.scan_bytes(blob, "model.gguf", allow_formats=["gguf"])
    assert scan.format == "gguf"
    assert scan.verdict == "unsafe"


def _seeds() -> list[bytes]:
    import gzip
    import io
    import zipfile

    import joblib

    out = []
    b = io.BytesIO()
    joblib.dump({"w": np.arange(6.0), "o": np.array([1, "a"], dtype=object)}, b)
    out.append(b.getvalue())
    out.append(gzip.compress(out[0]))
    out.append(pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=0))
    out.append(pickle.dumps(np.zeros(2, dtype=[("a", "f8"), ("b", "O")]), protocol=5))
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
        zf.writestr("archive/data/0", b"\0" * 16)
    out.append(z.getvalue())
    n = io.BytesIO()
    np.save(n, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out.append(n.getvalue())
    return out


SEEDS = _seeds()


@settings(max_examples=200)
@given(
    seed=st.integers(0, len(SEEDS) - 1),
    edits=st.lists(
        st.tuples(
            st.floats(0, 1), st.sampled_from(["set", "insert", "delete", "len"]), st.binary(min_size=1, max_size=8)
        ),
        min_size=1,
        max_size=5,
    ),
    name=st.sampled_from(["m.pkl", "m.joblib", "notes.txt", "m.pt", "m.npy"]),
)
def test_mutated_model_files_never_raise_and_never_execute(seed, edits, name):
    """No traceback: any input gives a verdict (internal exceptions are not swallowed here: this calls
    the scanner's inner entry point, below the last-resort safety net)."""
    data = bytearray(SEEDS[seed])
    for where, op, blob in edits:
        i = int(where * len(data))
        if op == "set" and data:
            data[min(i, len(data) - 1)] = blob[0]
        elif op == "insert":
            data[i:i] = blob
        elif op == "delete":
            del data[i : i + len(blob)]
        else:
            data[i:i] = struct.pack("<Q", 2**62 + blob[0])
    scan = ms.FileScan(name)
    engine.scan_stream(bytes(data), scan, engine.make_context(None, (), {}), 0, name)
    assert scan.verdict in ("safe", "unsafe", "malformed", "unrecognised")
    scan.to_dict()
