"""Class 3 (archives) and 5 (bf16 torch checkpoints): no zip member a loader may read is skipped."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan as ms

from ._util import cli_exit, payload_p4, sbu


def _torch_data_pkl(storage_cls: str = "FloatStorage", dtype: str = "float32") -> bytes:
    """A data.pkl shaped like torch.save's (protocol 2, OrderedDict of one tensor on a persistent storage)."""
    storage = b"(" + sbu("storage") + f"ctorch\n{storage_cls}\n".encode() + sbu("0") + sbu("cpu") + b"K\x04tQ"
    tensor = (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + storage
        + b"K\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR"
    )
    meta = b"ctorch\n" + dtype.encode() + b"\n0"  # a dtype global, popped (torch pickles dtypes by name)
    return b"\x80\x02" + meta + b"ccollections\nOrderedDict\n)R" + sbu("fc.weight") + tensor + b"s."


def _torch_zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _std_members(pkl: bytes) -> list[tuple[str, bytes]]:
    return [
        ("archive/data.pkl", pkl),
        ("archive/byteorder", b"little"),
        ("archive/data/0", struct.pack("<4e", 1, 2, 3, 4) * 2),
        ("archive/version", b"3\n"),
        ("archive/.data/serialization_id", b"1234567890"),
    ]


@pytest.mark.parametrize(("storage", "dtype"), [("BFloat16Storage", "bfloat16"), ("HalfStorage", "float16")])
def test_bf16_and_fp16_torch_checkpoints_pass(tmp_path, storage, dtype):
    path = tmp_path / "model.pt"
    path.write_bytes(_torch_zip(_std_members(_torch_data_pkl(storage, dtype))))
    report = ms.scan_paths([path])
    assert report.status == "pass", [f.to_dict() for f in report.findings]
    assert report.metrics["raw_tensor_members"] == 1
    assert cli_exit(str(path)) == 0


@pytest.mark.parametrize(
    "name",
    [
        "archive/data/../data.pkl",  # normalises onto the pickle
        "archive/data/0/../../x.pkl",
        "archive/Data/1",  # case variant of the storage dir: not a storage name
        "archive/data/1.pkl",
        "archive/data/1/",
        "archive\\data.pkl",
        "/abs/data.pkl",
    ],
)
def test_members_that_only_look_like_storages_are_scanned(tmp_path, sentinel, name):
    members = [*_std_members(_torch_data_pkl()), (name, payload_p4(sentinel))]
    path = tmp_path / "model.pt"
    path.write_bytes(_torch_zip(members))
    assert cli_exit(str(path)) in (1, 2)
    report = ms.scan_paths([path])
    assert report.status in ("fail", "error")
    assert report.status == "fail" or any("name" in f.title for f in report.findings)


@pytest.mark.parametrize("dup", ["archive/data.pkl", "ARCHIVE/DATA.PKL", "archive/Data.pkl"])
def test_duplicate_and_case_variant_names_are_errors(tmp_path, dup):
    import warnings

    members = [*_std_members(_torch_data_pkl()), (dup, _torch_data_pkl())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we build on purpose
        data = _torch_zip(members)
    report = ms.scan_paths([_write(tmp_path, data)])
    assert report.status == "error"
    assert any("collide" in f.title for f in report.findings)


def _write(tmp_path, data: bytes, name: str = "model.pt"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_local_entry_hidden_outside_the_central_directory_is_an_error(tmp_path, sentinel):
    good = _torch_zip(_std_members(_torch_data_pkl()))
    hidden = _torch_zip([("archive/evil.pkl", payload_p4(sentinel))])
    local = hidden[: hidden.index(b"PK\x01\x02")]  # a local header + data, no directory entry
    # insert it just before the central directory of the good archive, fixing the directory offset
    cd = good.index(b"PK\x01\x02")
    eocd = good.rindex(b"PK\x05\x06")
    tail = bytearray(good[cd:])
    rel = eocd - cd
    struct.pack_into("<I", tail, rel + 16, cd + len(local))
    data = good[:cd] + local + bytes(tail)
    report = ms.scan_paths([_write(tmp_path, data)])
    assert report.status == "error"
    assert any("belong to no member" in f.title or "central directory" in f.title for f in report.findings)


def test_prepended_and_appended_bytes_are_errors(tmp_path, sentinel):
    good = _torch_zip(_std_members(_torch_data_pkl()))
    assert ms.scan_paths([_write(tmp_path, good)]).status == "pass"
    appended = good + payload_p4(sentinel)
    assert ms.scan_paths([_write(tmp_path, appended)]).status in ("fail", "error")
    prepended = payload_p4(sentinel) + good  # a pickle that zipfile also opens: scanned as a pickle
    assert ms.scan_paths([_write(tmp_path, prepended)]).status == "fail"


def test_directory_entry_carrying_data_and_file_under_a_file(tmp_path, sentinel):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("weights/"), payload_p4(sentinel))
    report = ms.scan_paths([_write(tmp_path, buf.getvalue(), "a.zip")])
    assert report.status in ("fail", "error")
    assert report.status == "fail"  # the "directory" is scanned, not skipped
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model", b"[]")
        zf.writestr("model/x.json", b"{}")
    report = ms.scan_paths([_write(tmp_path, buf.getvalue(), "b.zip")])
    assert report.status == "error"
    assert any("which is a file" in f.title for f in report.findings)


def test_data_descriptor_members_are_read_and_checked(tmp_path, sentinel):
    class _Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.out = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.out += b
            return len(b)

    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:  # unseekable output: zipfile writes data descriptors
        zf.writestr("archive/data.pkl", _torch_data_pkl())
        zf.writestr("archive/extra.pkl", payload_p4(sentinel))
    report = ms.scan_paths([_write(tmp_path, bytes(sink.out))])
    assert report.status == "fail"
    assert not any("descriptor" in f.title for f in report.findings)


@settings(max_examples=30)
@given(depth=st.integers(1, 6), evil_at=st.integers(0, 6), compress=st.booleans())
def test_payload_in_nested_archives_never_passes(tmp_path_factory, depth, evil_at, compress):
    sentinel = tmp_path_factory.mktemp("s") / "PWNED"
    blob = payload_p4(sentinel)
    for level in range(depth):
        buf = io.BytesIO()
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            zf.writestr(f"l{level}/inner.bin", blob)
            zf.writestr("ok.json", b"{}")
        blob = buf.getvalue()
    path = tmp_path_factory.mktemp("z") / "bundle.zip"
    path.write_bytes(blob)
    report = ms.scan_paths([path])
    # deeper than the nesting bound: an error naming the bound; otherwise the payload is found
    assert report.status == ("fail" if depth <= ms.DEFAULT_MAX_DEPTH else "error"), report.summary
    if report.status == "error":
        assert any("nesting deeper" in f.title for f in report.findings)
    assert not sentinel.exists()


@settings(max_examples=40)
@given(names=st.lists(st.text(alphabet="aA/._\\b", min_size=1, max_size=8), min_size=1, max_size=5))
def test_generated_member_names_never_hide_a_payload(tmp_path_factory, names):
    import warnings

    sentinel = tmp_path_factory.mktemp("s") / "PWNED"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w") as zf:
            for n in names:
                zf.writestr(n, payload_p4(sentinel))
    path = tmp_path_factory.mktemp("z") / "m.zip"
    path.write_bytes(buf.getvalue())
    assert ms.scan_paths([path]).status in ("fail", "error")


def test_empty_member_name_is_an_error_not_a_crash(tmp_path, sentinel):
    data = bytearray(_torch_zip([("x", payload_p4(sentinel))]))
    # rename "x" to "" in both headers by zeroing the name length (the byte stays as extra data)
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, local + 26, 0)
    struct.pack_into("<H", data, local + 28, 1)
    struct.pack_into("<H", data, central + 28, 0)
    struct.pack_into("<H", data, central + 30, 1)
    report = ms.scan_paths([_write(tmp_path, bytes(data), "e.zip")])
    assert report.status in ("fail", "error")
    assert cli_exit(str(tmp_path / "e.zip")) in (1, 2)
