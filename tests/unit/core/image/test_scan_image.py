"""The container image scan on real OCI layouts, OCI archives and docker save tarballs built in Python."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest

from airflow_aisec.core.image import scan_image
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from tests.image_helpers import (
    BENIGN_PICKLE,
    MALICIOUS_PICKLE,
    Entry,
    Image,
    directory,
    dist_info,
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

SITE = "usr/local/lib/python3.11/site-packages"
TOKEN = fake_tokens()["hf"]


def _write(kind: str, image: Image, tmp_path: Path) -> Path:
    if kind == "oci-dir":
        return write_dir(oci_files(image), tmp_path / "oci")
    if kind == "oci-archive":
        return write_tar(oci_files(image), tmp_path / "oci.tar")
    return write_tar(docker_save_files(image), tmp_path / "save.tar")


def _scan(path: Path, **kwargs: object) -> dict:
    return scan_image(path, osv_db=snapshot_path(), **kwargs).to_dict()


def _ids(report: dict) -> list[str]:
    return [f["id"] for f in report["findings"]]


def hostile_image() -> Image:
    return Image(
        layers=[
            [
                directory("usr"),
                *dist_info(SITE, "requests", "2.19.0"),
                file("app/old_config.py", f'TOKEN = "{TOKEN}"\n'),
            ],
            [
                whiteout("app/old_config.py"),
                file("app/model.pkl", MALICIOUS_PICKLE),
                file("app/weights.pkl", BENIGN_PICKLE),
                symlink("app/link", "/etc/shadow"),
            ],
        ],
        user=None,
        env=["PATH=/bin", "DB_PASSWORD=hunter2-not-a-ref"],
        history=[{"created_by": "ADD https://example.com/x.tgz /x # buildkit"}, {"created_by": "COPY . /app"}],
    )


@pytest.mark.parametrize("kind", ["oci-dir", "oci-archive", "docker-save"])
def test_every_planted_problem_is_found_in_every_format(kind: str, tmp_path: Path) -> None:
    report = _scan(_write(kind, hostile_image(), tmp_path))
    assert report["status"] == "fail"
    by_id = {f["id"]: f for f in report["findings"]}
    vuln = by_id["PYSEC-2018-28"]  # requests 2.19.0, from the bundled OSV snapshot
    assert vuln["details"]["package"] == "requests" and vuln["details"]["version"] == "2.19.0"
    assert vuln["location"] == f"requests==2.19.0 @ /{SITE}"
    assert "2.20.0" in vuln["details"]["fix_versions"]
    secret = by_id["AISEC-IMG-SECRET-HUGGING-FACE-TOKEN"]
    assert secret["details"]["in_final_fs"] is False and secret["location"] == "layer 0:/app/old_config.py:1"
    assert "later layer removed" in secret["title"]
    assert by_id["AISEC-MODEL-DANGEROUS-GLOBAL"]["location"] == "/app/model.pkl"
    assert by_id["AISEC-MODEL-DANGEROUS-GLOBAL"]["severity"] == "critical"
    assert not any(f["location"] == "/app/weights.pkl" for f in report["findings"])  # a benign pickle passes
    assert by_id["AISEC-IMG-ROOT-USER"]["severity"] == "medium"
    assert by_id["AISEC-IMG-ENV-SECRET-NAME"]["location"] == "config.Env[DB_PASSWORD]"
    assert by_id["AISEC-IMG-REMOTE-ADD"]["location"] == "config.history[0]"
    assert report["metrics"]["layers"] == 2 and report["metrics"]["model_files"] == 2
    text = json.dumps(report)
    assert TOKEN not in text and "hunter2-not-a-ref" not in text


def clean_image() -> Image:
    return Image(
        layers=[
            [*dist_info(SITE, "requests", "2.32.3"), file("app/main.py", "print('serving')\n")],
            [file("app/weights.pkl", BENIGN_PICKLE)],
        ],
        labels={
            "org.opencontainers.image.base.name": "docker.io/library/python:3.11-slim",
            "org.opencontainers.image.base.digest": "sha256:" + "a" * 64,
        },
    )


@pytest.mark.parametrize("kind", ["oci-dir", "docker-save"])
def test_a_clean_image_passes_and_says_what_it_read(kind: str, tmp_path: Path) -> None:
    report = _scan(_write(kind, clean_image(), tmp_path))
    assert report["status"] == "pass", report["findings"]
    assert report["findings"] == []
    m = report["metrics"]
    assert (m["python_packages"], m["vulnerable_packages"], m["model_files"], m["secrets_found"]) == (1, 0, 1, 0)
    assert report["details"]["image"]["config_digest"].startswith("sha256:")


def test_an_unpinned_base_image_is_reported(tmp_path: Path) -> None:
    image = clean_image()
    image.labels = {"org.opencontainers.image.base.name": "python:3.11-slim"}
    report = _scan(_write("oci-dir", image, tmp_path), fail_on="medium")
    assert _ids(report) == ["AISEC-IMG-BASE-UNPINNED"]
    assert report["status"] == "warn"  # low: below fail_on


def test_whiteouts_hide_lower_files_from_the_final_filesystem(tmp_path: Path) -> None:
    image = Image(
        layers=[
            [
                *dist_info(SITE, "requests", "2.19.0"),
                file("models/m.pkl", MALICIOUS_PICKLE),
                file("data/a.pkl", MALICIOUS_PICKLE),
            ],
            [
                whiteout(f"{SITE}/requests-2.19.0.dist-info"),
                whiteout("models/m.pkl"),
                opaque("data"),
                file("data/b.txt", "ok\n"),
            ],
        ]
    )
    report = _scan(_write("oci-dir", image, tmp_path))
    assert report["status"] == "pass", report["findings"]
    assert report["metrics"]["python_packages"] == 0
    assert report["metrics"]["model_files"] == 0 and report["metrics"]["model_files_shadowed"] == 2
    assert report["metrics"]["whiteouts"] == 3


def test_opaque_directory_keeps_what_its_own_layer_adds(tmp_path: Path) -> None:
    image = Image(
        layers=[
            [file("data/old.pkl", BENIGN_PICKLE)],
            [file("data/new.pkl", MALICIOUS_PICKLE), opaque("data")],  # marker after the file: same layer stays
        ]
    )
    report = _scan(_write("oci-dir", image, tmp_path))
    assert [f["location"] for f in report["findings"]] == ["/data/new.pkl"]
    assert report["metrics"]["model_files"] == 1 and report["metrics"]["model_files_shadowed"] == 1


def test_a_later_layer_replacing_a_file_is_what_counts(tmp_path: Path) -> None:
    image = Image(layers=[[file("m/model.pkl", BENIGN_PICKLE)], [file("m/model.pkl", MALICIOUS_PICKLE)]])
    report = _scan(_write("docker-save", image, tmp_path))
    assert _ids(report) == ["AISEC-MODEL-DANGEROUS-GLOBAL"]
    assert report["findings"][0]["details"]["layer"] == 1


def test_a_second_copy_of_a_package_in_another_site_packages_is_audited(tmp_path: Path) -> None:
    hidden = "opt/venv/lib/python3.11/site-packages"
    image = Image(layers=[[*dist_info(SITE, "requests", "2.32.3"), *dist_info(hidden, "requests", "2.19.0")]])
    report = _scan(_write("oci-dir", image, tmp_path))
    assert report["metrics"]["python_packages"] == 2 and report["metrics"]["vulnerable_packages"] == 1
    assert {f["location"] for f in report["findings"]} == {f"requests==2.19.0 @ /{hidden}"}


def test_links_are_recorded_never_followed(tmp_path: Path) -> None:
    image = Image(
        layers=[
            [
                file("real/weights.pkl", BENIGN_PICKLE),
                symlink("app/model.pkl", "/etc/passwd"),
                symlink("app/escape.pkl", "../../../../host/evil.pkl"),
                hardlink("app/hard.pkl", "real/weights.pkl"),
            ]
        ]
    )
    report = _scan(_write("oci-dir", image, tmp_path))
    assert report["status"] == "pass", report["findings"]
    assert report["metrics"]["model_files"] == 1  # the regular file only


def test_member_paths_that_leave_the_root_are_reported_and_ignored(tmp_path: Path) -> None:
    image = Image(layers=[[Entry("../../etc/cron.d/evil", b"* * * * * root sh\n"), file("ok.txt", "fine\n")]])
    report = _scan(_write("oci-dir", image, tmp_path))
    assert report["status"] == "fail"
    assert _ids(report) == ["AISEC-IMG-PATH-ESCAPE"]
    assert report["findings"][0]["location"] == "../../etc/cron.d/evil"


def test_os_packages_are_listed_and_fail_closed_unless_accepted(tmp_path: Path) -> None:
    status = "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    image = Image(
        layers=[[file("var/lib/dpkg/status", status), file("lib/apk/db/installed", "P:musl\nV:1.2.4-r2\n\n")]]
    )
    path = _write("oci-dir", image, tmp_path)
    report = _scan(path)
    assert report["status"] == "error"
    assert "OS packages cannot be audited offline" in report["summary"]
    warned = _scan(path, os_packages="warn")
    assert warned["status"] == "warn"
    assert warned["metrics"]["os_packages"] == 2
    assert {(p["manager"], p["name"]) for p in warned["details"]["os_packages"]} == {
        ("dpkg", "openssl"),
        ("apk", "musl"),
    }


def test_files_too_large_to_scan_fail_closed_unless_accepted(tmp_path: Path) -> None:
    image = Image(layers=[[file("app/big.cfg", "x = 1\n" * 2000)]])
    path = _write("oci-dir", image, tmp_path)
    assert _scan(path, max_file_bytes=1000)["status"] == "error"
    report = _scan(path, max_file_bytes=1000, unscanned="warn")
    assert report["status"] == "warn" and report["metrics"]["files_unscanned"] == 1
    assert report["details"]["unscanned"][0]["location"] == "layer 0:/app/big.cfg"


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, lambda b: b])
def test_layer_compression_is_recognised_by_content(compress, tmp_path: Path) -> None:
    image = Image(layers=[[file("app/model.pkl", MALICIOUS_PICKLE)]], compress=False)
    files = oci_files(image)
    index = json.loads(files["index.json"])
    mdigest = index["manifests"][0]["digest"]
    manifest = json.loads(files[f"blobs/sha256/{mdigest[7:]}"])
    layer = manifest["layers"][0]
    raw = files.pop(f"blobs/sha256/{layer['digest'][7:]}")
    stored = compress(raw)
    layer["digest"], layer["size"] = sha256(stored), len(stored)
    files[f"blobs/sha256/{layer['digest'][7:]}"] = stored
    mbytes = json.dumps(manifest).encode()
    files[f"blobs/sha256/{sha256(mbytes)[7:]}"] = mbytes
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = sha256(mbytes), len(mbytes)
    files["index.json"] = json.dumps(index).encode()
    report = _scan(write_dir(files, tmp_path / "oci"))
    assert _ids(report) == ["AISEC-MODEL-DANGEROUS-GLOBAL"]


def test_a_swapped_layer_is_an_error_not_a_scan(tmp_path: Path) -> None:
    files = docker_save_files(Image(layers=[[file("app/model.pkl", MALICIOUS_PICKLE)]]))
    name = next(n for n in files if n.endswith("layer.tar"))
    files[name] = docker_save_files(Image(layers=[[file("app/model.pkl", BENIGN_PICKLE)]]))[
        next(
            n
            for n in docker_save_files(Image(layers=[[file("app/model.pkl", BENIGN_PICKLE)]]))
            if n.endswith("layer.tar")
        )
    ]
    with pytest.raises(AisecUndecidableError, match="does not match the config's diff_id"):
        _scan(write_tar(files, tmp_path / "save.tar"))


def test_a_tampered_oci_blob_is_an_error(tmp_path: Path) -> None:
    files = oci_files(Image(layers=[[file("a.txt", "a\n")]]))
    config_name = next(n for n, d in files.items() if n.startswith("blobs/") and b'"rootfs"' in d)
    files[config_name] = files[config_name].replace(b'"amd64"', b'"arm64"')
    with pytest.raises(AisecUndecidableError, match="does not match its digest"):
        _scan(write_dir(files, tmp_path / "oci"))


def test_a_missing_layer_is_an_error(tmp_path: Path) -> None:
    files = oci_files(Image(layers=[[file("a.txt", "a\n")], [file("b.txt", "b\n")]]))
    config = next(d for d in files.values() if b'"rootfs"' in d)
    last_layer = json.loads(config)["rootfs"]["diff_ids"][-1]
    victim = next(
        n
        for n, d in files.items()
        if n.startswith("blobs/") and sha256(gzip.decompress(d) if d[:2] == b"\x1f\x8b" else b"") == last_layer
    )
    del files[victim]
    with pytest.raises(AisecUndecidableError, match="is not in the image"):
        _scan(write_dir(files, tmp_path / "oci"))


def test_a_multi_image_archive_needs_a_ref(tmp_path: Path) -> None:
    one, two = docker_save_files(clean_image(), tag="a:1"), docker_save_files(hostile_image(), tag="b:2")
    manifest = json.loads(one["manifest.json"]) + json.loads(two["manifest.json"])
    files = {**one, **two, "manifest.json": json.dumps(manifest).encode()}
    path = write_tar(files, tmp_path / "two.tar")
    with pytest.raises(AisecInputError, match="choose one with ref"):
        _scan(path)
    assert _scan(path, ref="a:1")["status"] == "pass"
    assert _scan(path, ref="b:2")["status"] == "fail"


def test_no_vulnerability_database_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISEC_OSV_DB", raising=False)
    with pytest.raises(AisecUndecidableError, match="offline vulnerability database"):
        scan_image(_write("oci-dir", clean_image(), tmp_path))


def test_not_an_image_is_a_clear_input_error(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "hello.txt").write_text("hi")
    with pytest.raises(AisecInputError, match="neither an OCI image layout"):
        _scan(tmp_path / "x")
    (tmp_path / "y.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(AisecInputError, match="not a tar archive"):
        _scan(tmp_path / "y.tar")


def test_parsed_model_formats_in_an_image_pass_clean_and_fail_hostile(tmp_path: Path) -> None:
    from tests import model_format_helpers as h

    lam = {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEA", None, None]}}
    benign = {
        "m/model.onnx": h.onnx_bytes(h.onnx_model()),
        "m/model.gguf": h.gguf_file(tmp_path / "b.gguf"),
        "m/model.keras": h.keras_archive(h.keras_v3_config()),
        "m/model.h5": h.keras_h5(h.keras_legacy_config()),
    }
    hostile = {
        "m/model.onnx": h.onnx_bytes(h.onnx_model(initializers=[h.external_tensor("../../etc/passwd")])),
        "m/model.gguf": h.gguf_file(tmp_path / "e.gguf", template="{{ cycler.__init__.__globals__ }}"),
        "m/model.keras": h.keras_archive(h.keras_v3_config(h.lambda_v3_layer())),
        "m/model.h5": h.keras_h5(h.keras_legacy_config(lam)),
    }
    clean = _scan(write_tar(oci_files(Image(layers=[[file(p, d) for p, d in benign.items()]])), tmp_path / "c.tar"))
    assert clean["status"] == "pass", clean["findings"]
    assert clean["metrics"]["model_files"] == 4
    bad = _scan(write_tar(oci_files(Image(layers=[[file(p, d) for p, d in hostile.items()]])), tmp_path / "h.tar"))
    assert bad["status"] == "fail"
    found = {(f["id"], f["location"]) for f in bad["findings"]}
    assert found == {
        ("AISEC-MODEL-ONNX-EXTERNAL-DATA", "/m/model.onnx"),
        ("AISEC-MODEL-GGUF-TEMPLATE", "/m/model.gguf"),
        ("AISEC-MODEL-KERAS-LAMBDA", "/m/model.keras"),
        ("AISEC-MODEL-KERAS-LAMBDA", "/m/model.h5"),
    }
