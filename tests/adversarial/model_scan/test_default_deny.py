"""Class 1: default-deny. Uninspected formats fail; a file is "text" only if no unpickler imports
anything from it (the classifier is checked against the real C and pure-Python unpicklers, whose
``find_class`` is replaced by a recorder: nothing is ever imported or executed)."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms
from airflow_aisec.core.modelscan import engine
from airflow_aisec.exceptions import AisecInputError

from ._util import cli_exit, loader_reaches_import, payload_p0

# INT/LONG/FLOAT argument spellings: some only _pickle accepts (strtol base 0, NUL ends the number),
# some only pickle.py accepts, some neither.
INT_FORMS = [
    b"0x1",
    b"0X1f",
    b" 1",
    b"\t+7",
    b"1_000",
    b"010",
    b"0o7",
    b"0b101",
    b"-0",
    b"1\x00junk",
    b"\x00",
    b"1 ",
    b"99999999999999999999999",
    b"00",
    b"01",
    b"zz",
    b"1L",
    b"0x",
]
FLOAT_FORMS = [b"1.5", b"inf", b"-nan", b" 2", b"1e999", b"1_0.5", b"1.0\x00x", b"abc", b"0x1p3"]


@pytest.mark.parametrize("magic", [b"\x08\x07\x12\x04\x00\xfe\x01", b"\x7fELF\x02\x01\x01\x00"])
def test_uninspected_formats_fail_unless_explicitly_allowed(tmp_path, magic):
    path = tmp_path / "model.bin"
    path.write_bytes(magic + bytes(range(256)) * 4)
    assert cli_exit(str(path)) == 1
    report = ms.scan_paths([path])
    assert report.status == "fail"
    assert [f.id for f in report.findings] == [ms.F_UNKNOWN_FORMAT]
    fmt = report.details["files"][0]["format"]
    assert fmt in ms.UNINSPECTED_FORMATS
    assert ms.scan_paths([path], allow_formats=[fmt]).status == "pass"
    assert cli_exit(str(path), "--allow-format", fmt) == 0
    other = next(f for f in ms.UNINSPECTED_FORMATS if f != fmt)
    assert ms.scan_paths([path], allow_formats=[other]).status == "fail"


@pytest.mark.parametrize(("magic", "fmt"), [(b"GGUF\x03\x00\x00\x00", "gguf"), (b"\x89HDF\r\n\x1a\n", "hdf5")])
def test_parsed_formats_that_do_not_parse_are_errors_even_when_allowed(tmp_path, magic, fmt):
    # GGUF and HDF5 are parsed now: junk behind their magic is malformed (error), and allowing the
    # format no longer waves it through
    path = tmp_path / "model.bin"
    path.write_bytes(magic + bytes(range(256)) * 4)
    for allow in ([], [fmt]):
        report = ms.scan_paths([path], allow_formats=allow)
        assert report.status == "error", report.summary
        assert [f.id for f in report.findings] == [ms.F_MALFORMED]
        assert report.details["files"][0]["format"] == fmt
    assert cli_exit(str(path), "--allow-format", fmt) == 2


def test_allow_formats_refuses_names_it_does_not_know(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(AisecInputError, match="allow_formats takes"):
        ms.scan_paths([tmp_path], allow_formats=["pickle"])


@pytest.mark.parametrize("form", INT_FORMS)
@pytest.mark.parametrize("opcode", [b"I", b"L", b"F"])
def test_number_spellings_any_unpickler_accepts_never_hide_a_payload(tmp_path, sentinel, form, opcode):
    if opcode == b"F":
        form = FLOAT_FORMS[INT_FORMS.index(form) % len(FLOAT_FORMS)]
    data = b"(" + opcode + form + b"\n0" + payload_p0(sentinel)  # MARK, number, POP, then os.system
    path = tmp_path / "notes.txt"  # a text name: the classifier, not the extension, must decide
    path.write_bytes(data)
    reached = loader_reaches_import(data)
    report = ms.scan_paths([path])
    if reached:
        assert report.status == "fail", (form, report.summary)
        assert any(f.id == ms.F_DANGEROUS for f in report.findings)
        assert cli_exit(str(path)) == 1
    else:
        assert report.status in ("fail", "error", "pass")  # neither loader imports anything


@pytest.mark.parametrize("form", INT_FORMS)
def test_walker_agrees_with_c_unpickler_on_benign_int_values(form):
    data = b"I" + form + b"\n."
    try:
        expected = pickle.loads(data)  # benign: INT and STOP only
    except Exception:
        return
    walker = ms.PickleWalker(data, 0, ms.FileScan("x"), engine.make_context(None, (), {}))
    walker.walk()
    assert walker.result == expected and type(walker.result) is type(expected)


# A grammar of benign opcodes (no GLOBAL/INST/STACK_GLOBAL/REDUCE/BUILD/PERSID/EXT; small memo indices).
_LINE_OPS = st.sampled_from([b"I", b"L", b"F", b"g", b"p", b"S", b"V"])
_TEXT = st.one_of(st.sampled_from(INT_FORMS + FLOAT_FORMS + [b"'a'", b'"b"', b"'x", b"1", b"3"]), st.binary(max_size=6))
_SIMPLE = st.sampled_from([b"(", b"0", b"1", b"2", b"N", b")", b"]", b"}", b"t", b"l", b"d", b"a", b"e", b"s", b"u"])
_BIN = st.one_of(
    st.builds(lambda v: b"K" + bytes([v]), st.integers(0, 255)),
    st.builds(lambda v: b"J" + struct.pack("<i", v), st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda v: b"q" + bytes([v]), st.integers(0, 20)),
    st.builds(lambda v: b"h" + bytes([v]), st.integers(0, 20)),
    st.builds(lambda s: b"U" + bytes([len(s)]) + s, st.binary(max_size=8)),
    st.builds(lambda s: b"\x8c" + bytes([len(s)]) + s, st.binary(max_size=8)),
    st.builds(lambda v: b"\x80" + bytes([v]), st.integers(0, 7)),
)
_TOKEN = st.one_of(_SIMPLE, _BIN, st.builds(lambda op, t: op + t + b"\n", _LINE_OPS, _TEXT))


@settings(max_examples=150)
@given(prefix=st.lists(_TOKEN, max_size=12), reduce_tail=st.booleans())
def test_classifier_never_calls_text_what_an_unpickler_would_import_from(tmp_path_factory, prefix, reduce_tail):
    tail = b"cos\nsystem\n" + (b"(S'true'\ntR." if reduce_tail else b".")
    data = b"".join(prefix) + tail
    path = tmp_path_factory.mktemp("t") / "README.txt"
    path.write_bytes(data)
    report = ms.scan_paths([path])
    if loader_reaches_import(data):
        assert report.status in ("fail", "error"), (data, report.summary)
        assert report.details["files"][0]["format"] != "text"
    assert report.status in ("pass", "fail", "error")


@settings(max_examples=60)
@given(blob=st.binary(min_size=1, max_size=64))
def test_random_binary_never_passes_unless_it_is_a_benign_pickle_or_text(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("b") / "weights.bin"
    path.write_bytes(blob)
    report = ms.scan_paths([path])
    fmt = report.details["files"][0]["format"]
    if report.status == "pass":
        assert fmt in ("pickle", "text", "safetensors", "zip", "npz"), fmt
    if loader_reaches_import(blob):  # an unpickler would look a global up: the scan must have seen it
        assert fmt != "text"
        assert report.details["files"][0]["globals"] or report.status != "pass"


@pytest.mark.parametrize("frame_len", [b"AAAAAAAA", b"\x7f" * 8, b"\xc3\xa9" * 3 + b"AA"])
def test_frame_longer_than_the_file_never_hides_a_payload_as_text(tmp_path, sentinel, frame_len):
    # A FRAME declaring more bytes than remain stops the C unpickler, but the pure-Python one
    # (``pickle._loads``, ``joblib.load(fileobj)``) reads what is left into the frame and runs it.
    # The 8 length bytes are UTF-8 without NUL, so the whole file is valid text.
    data = b"C\x01\xc2\x95" + frame_len + b"0" + payload_p0(sentinel)  # SHORT_BINBYTES, FRAME, POP
    data.decode("utf-8")
    assert loader_reaches_import(data)
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    report = ms.scan_paths([path])
    assert report.status == "fail", report.summary
    assert report.details["files"][0]["format"] != "text"
    assert any(f.id == ms.F_DANGEROUS and "os.system" in f.title for f in report.findings)
    assert cli_exit(str(path)) == 1
    # and as a declared pickle, framed like protocol 4 writes it: the payload is found (fail), not only an error
    framed = b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + payload_p0(sentinel)
    scan = ms.scan_bytes(framed, "model.pkl")
    assert scan.verdict == "unsafe"
    assert any("FRAME" in e and "declares" in e for e in scan.errors)
    assert not sentinel.exists()


def test_text_files_of_a_model_directory_pass(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["Bert"], "hidden": 768}')
    (tmp_path / "README.md").write_text("# Model card\n\nTrained on ...\n")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nthe\nof\n")
    (tmp_path / "requirements.txt").write_text("numpy==2.0\n")
    report = ms.scan_paths([tmp_path])
    assert report.status == "pass", report.summary
    assert {f["format"] for f in report.details["files"]} == {"text"}


def test_keras_archive_with_a_lambda_layer_fails_whatever_formats_are_allowed(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        # a Lambda layer's marshalled bytecode lives in config.json, which is plain JSON text
        zf.writestr("config.json", '{"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA", null, null]}}')
        zf.writestr("metadata.json", '{"keras_version": "3.0.0"}')
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    path = tmp_path / "model.keras"
    path.write_bytes(buf.getvalue())
    assert ms.scan_paths([path]).status == "fail"
    assert ms.scan_paths([path], allow_formats=["hdf5"]).status == "fail"
    # config.json is parsed now: the Lambda layer is a finding no format allowance accepts
    report = ms.scan_paths([path], allow_formats=["hdf5", "keras"])
    assert report.status == "fail"
    assert ms.F_KERAS_LAMBDA in {f.id for f in report.findings}
    assert cli_exit(str(path), "--allow-format", "hdf5") == 1
    assert cli_exit(str(path), "--allow-format", "hdf5", "--allow-format", "keras") == 1
