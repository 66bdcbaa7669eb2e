"""Hostile container images against ``aisec scan-image``: exact exit codes, nothing run, nothing leaked.

Each property is a guarantee of the scan: a malicious file in the final filesystem is found whatever
the layers below do (whiteouts, links, odd paths, files replacing directories); a changed byte inside
any blob is an error; truncated or bomb-like archives are errors with a clean message; secret values
in files, ``ENV``, labels and history never reach the output.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core.image import scan_image
from airflow_aisec.core.image.layers import normalise
from airflow_aisec.exceptions import AisecInputError
from tests.image_helpers import (
    BENIGN_PICKLE,
    MALICIOUS_PICKLE,
    Entry,
    Image,
    directory,
    docker_save_files,
    file,
    hardlink,
    oci_files,
    opaque,
    sha256,
    symlink,
    whiteout,
    write_dir,
    write_tar,
)
from tests.osv_helpers import snapshot_path
from tests.secrets_helpers import fake_tokens

NAMES = st.sampled_from(["a", "b", "m.pkl", "..", ".", "", "x y", "é", ".wh.a", "site-packages"])
PATHS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)


def _entry(kind: str, path: str, target: str) -> Entry:
    return {
        "file": lambda: file(path, BENIGN_PICKLE),
        "evil": lambda: file(path, MALICIOUS_PICKLE),
        "dir": lambda: directory(path),
        "symlink": lambda: symlink(path, target),
        "hardlink": lambda: hardlink(path, target),
        "whiteout": lambda: whiteout(path),
        "opaque": lambda: opaque(path),
        "fifo": lambda: Entry(path, kind="fifo"),
    }[kind]()


ENTRIES = st.builds(
    _entry,
    st.sampled_from(["file", "evil", "dir", "symlink", "hardlink", "whiteout", "opaque", "fifo"]),
    PATHS,
    PATHS,
)
LAYERS = st.lists(st.lists(ENTRIES, max_size=8), max_size=4)
FINAL_NAME = st.lists(st.sampled_from(["a", "b", "models", "m.pkl", "é"]), min_size=1, max_size=3).map("/".join)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@settings(max_examples=60)
@given(lower=LAYERS, name=FINAL_NAME, fmt=st.sampled_from(["oci", "docker"]))
def test_a_malicious_model_in_the_final_layer_is_always_found(lower, name, fmt, tmp_path_factory, capsys) -> None:
    tmp = tmp_path_factory.mktemp("img")
    image = Image(layers=[*lower, [file(f"{name}.pkl", MALICIOUS_PICKLE)]])
    files = oci_files(image) if fmt == "oci" else docker_save_files(image)
    path = write_tar(files, tmp / "image.tar")
    code, out, _ = _run(["scan-image", str(path), "--osv-db", str(snapshot_path()), "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1, report["summary"]
    assert any(
        f["id"] == "AISEC-MODEL-DANGEROUS-GLOBAL" and f["location"] == f"/{name}.pkl" for f in report["findings"]
    )


@settings(max_examples=40)
@given(layers=LAYERS)
def test_arbitrary_layer_structures_end_in_an_exact_verdict(layers, tmp_path_factory, capsys) -> None:
    tmp = tmp_path_factory.mktemp("img")
    path = write_tar(oci_files(Image(layers=layers)), tmp / "image.tar")
    code, out, _ = _run(["scan-image", str(path), "--osv-db", str(snapshot_path()), "--format", "json"], capsys)
    report = json.loads(out)
    assert code == {"pass": 0, "warn": 0, "fail": 1, "error": 2}[report["status"]]
    # no invented findings: every dangerous model reported is a malicious file some layer wrote there
    evil = {
        "/" + normalise(e.path) for layer in layers for e in layer if e.data == MALICIOUS_PICKLE and normalise(e.path)
    }
    for f in report["findings"]:
        if f["id"] == "AISEC-MODEL-DANGEROUS-GLOBAL":
            assert f["location"] in evil
    if any(f["id"] == "AISEC-MODEL-DANGEROUS-GLOBAL" for f in report["findings"]):
        assert code == 1


@settings(max_examples=40)
@given(data=st.data())
def test_any_changed_byte_inside_a_blob_is_an_error(data, tmp_path_factory, capsys) -> None:
    tmp = tmp_path_factory.mktemp("img")
    files = oci_files(Image(layers=[[file("app/m.pkl", MALICIOUS_PICKLE)], [file("app/readme", "hello\n")]]))
    blobs = sorted(n for n in files if n.startswith("blobs/"))
    name = data.draw(st.sampled_from(blobs))
    blob = bytearray(files[name])
    at = data.draw(st.integers(0, len(blob) - 1))
    blob[at] ^= data.draw(st.integers(1, 255))
    files[name] = bytes(blob)
    path = write_dir(files, tmp / "oci")
    code, out, err = _run(["scan-image", str(path), "--osv-db", str(snapshot_path())], capsys)
    assert code == 2
    assert "[ERROR]" in out and "aisec image_scan: error:" in err


@settings(max_examples=30)
@given(cut=st.floats(0.0, 0.999))
def test_a_truncated_archive_is_an_error(cut, tmp_path_factory, capsys) -> None:
    tmp = tmp_path_factory.mktemp("img")
    full = tmp / "full.tar"
    write_tar(docker_save_files(Image(layers=[[file("app/m.pkl", BENIGN_PICKLE)], [file("b", "b\n")]])), full)
    data = full.read_bytes()
    with tarfile.open(full) as tar:  # where the last member's data ends; after that only zero padding
        last_end = max(m.offset_data + -(-m.size // 512) * 512 for m in tar.getmembers())
    cut_at = int(len(data) * cut)
    (tmp / "cut.tar").write_bytes(data[:cut_at])
    code, out, _ = _run(["scan-image", str(tmp / "cut.tar"), "--osv-db", str(snapshot_path())], capsys)
    # a cut inside the trailing zero blocks leaves every member whole: then the scan may pass
    assert code == 2 or cut_at >= last_end


def test_a_decompression_bomb_stops_at_the_size_limit(tmp_path: Path) -> None:
    big = io.BytesIO()
    with tarfile.open(fileobj=big, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    image = Image(layers=[[file("x", "x")]], compress=False)
    files = oci_files(image)
    # replace the layer with the 64 MiB one (compressed ~64 KiB), keeping every digest consistent
    raw = big.getvalue()
    index = json.loads(files["index.json"])
    mname = f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"
    manifest = json.loads(files.pop(mname))
    stored = gzip.compress(raw, compresslevel=1)
    files.pop(f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}")
    manifest["layers"][0] = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": sha256(stored),
        "size": len(stored),
    }
    files[f"blobs/sha256/{sha256(stored)[7:]}"] = stored
    cname = f"blobs/sha256/{manifest['config']['digest'][7:]}"
    config = json.loads(files.pop(cname))
    config["rootfs"]["diff_ids"] = [sha256(raw)]
    cbytes = json.dumps(config).encode()
    files[f"blobs/sha256/{sha256(cbytes)[7:]}"] = cbytes
    manifest["config"] = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": sha256(cbytes),
        "size": len(cbytes),
    }
    mbytes = json.dumps(manifest).encode()
    files[f"blobs/sha256/{sha256(mbytes)[7:]}"] = mbytes
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = sha256(mbytes), len(mbytes)
    files["index.json"] = json.dumps(index).encode()
    path = write_dir(files, tmp_path / "oci")
    with pytest.raises(AisecInputError, match="more than the size limit"):
        scan_image(path, osv_db=snapshot_path(), max_image_bytes=8 * 1024 * 1024)
    report = scan_image(path, osv_db=snapshot_path(), max_file_bytes=1024, unscanned="warn")
    assert report.metrics["bytes_uncompressed"] == len(raw)  # within the default limit it is read, once


@pytest.mark.parametrize(
    "mangle",
    [
        lambda f: {**f, "manifest.json": b'[{"Config": "a", "Config": "b", "Layers": []}]'},
        lambda f: {**f, "manifest.json": b"[" * 10000 + b"]" * 10000},
        lambda f: {**f, "manifest.json": b'{"not": "a list"}'},
        lambda f: {k: v for k, v in f.items() if not k.endswith(".json") or k == "manifest.json"},
    ],
    ids=["duplicate-keys", "deep-nesting", "wrong-type", "config-missing"],
)
def test_malformed_documents_are_errors(mangle, tmp_path: Path, capsys) -> None:
    files = mangle(docker_save_files(Image(layers=[[file("a", "a")]])))
    path = write_tar(files, tmp_path / "bad.tar")
    code, out, _ = _run(["scan-image", str(path), "--osv-db", str(snapshot_path())], capsys)
    assert code == 2 and "[ERROR]" in out


def test_duplicate_members_in_the_archive_are_an_error(tmp_path: Path, capsys) -> None:
    files = docker_save_files(Image(layers=[[file("a", "a")]]))
    path = tmp_path / "dup.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [*files.items(), ("manifest.json", b"[]")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    code, out, _ = _run(["scan-image", str(path), "--osv-db", str(snapshot_path())], capsys)
    assert code == 2 and "duplicate member" in out


@settings(max_examples=25)
@given(
    where=st.sampled_from(["file", "env", "label", "history", "filename"]),
    kind=st.sampled_from(["hf", "aws", "openai"]),
)
def test_secret_values_never_reach_the_output(where, kind, tmp_path_factory, capsys) -> None:
    tmp = tmp_path_factory.mktemp("img")
    token = fake_tokens(seed=7)[kind]
    image = Image(layers=[[file("app/ok.txt", "ok\n")]])
    if where == "file":
        image.layers[0].append(file("app/settings.py", f'KEY = "{token}"\n'))
    elif where == "env":
        image.env.append(f"SERVICE_KEY={token}")
    elif where == "label":
        image.labels = {"maintainer.key": token}
    elif where == "history":
        image.history = [{"created_by": f"RUN curl -H 'Authorization: Bearer {token}' https://x/"}]
    else:
        image.layers[0].append(file(f"app/{token}.txt", "named after a token\n"))
    path = write_tar(oci_files(image), tmp / "image.tar")
    for fmt in ("json", "text", "markdown"):
        code, out, err = _run(["scan-image", str(path), "--osv-db", str(snapshot_path()), "--format", fmt], capsys)
        assert token not in out + err
        assert code == 1, out
