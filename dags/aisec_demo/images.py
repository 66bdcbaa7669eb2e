"""Container images for the image-scan recipe, built as files in Python: ``docker save`` tarballs and OCI layouts.

Layers are tar streams built with :mod:`tarfile`; manifests, index and config follow the OCI image
spec and Docker's ``docker save`` format, with real digests and diff_ids, so the scanner reads them
exactly as it reads images written by Docker, Podman, BuildKit or skopeo. The tests use the same
builders (``tests/image_helpers.py``). In production the image is your CI's ``docker save`` /
``skopeo copy … oci-archive:`` output.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.sdk import task

MALICIOUS_PICKLE = b"cos\nsystem\n(S'echo pwned'\ntR."  # os.system('echo pwned') when unpickled
BENIGN_PICKLE = pickle.dumps({"weights": [0.5, 1.5], "classes": ["a", "b"]}, protocol=4)


@dataclass
class Entry:
    path: str
    data: bytes | None = None  # regular file
    kind: str = "file"  # file | dir | symlink | hardlink | fifo
    link: str = ""
    mode: int = 0o644


def file(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(path, data.encode() if isinstance(data, str) else data, mode=mode)


def directory(path: str) -> Entry:
    return Entry(path, kind="dir", mode=0o755)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, kind="symlink", link=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, kind="hardlink", link=target)


def whiteout(path: str) -> Entry:
    head, _, base = path.rpartition("/")
    return Entry(f"{head}/.wh.{base}" if head else f".wh.{base}", b"")


def opaque(directory_path: str) -> Entry:
    return Entry(f"{directory_path.rstrip('/')}/.wh..wh..opq", b"")


def dist_info(site: str, name: str, version: str) -> list[Entry]:
    base = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
    return [file(f"{base}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")]


def layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.mtime = 1_700_000_000
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.link
                tar.addfile(info)
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.link
                tar.addfile(info)
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                data = e.data or b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    layers: list[list[Entry]]
    user: str | None = "app"
    env: list[str] = field(default_factory=lambda: ["PATH=/usr/local/bin:/usr/bin:/bin"])
    labels: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    compress: bool = True

    def tars(self) -> list[bytes]:
        return [layer_tar(entries) for entries in self.layers]

    def config(self, tars: list[bytes]) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": self.env, "Labels": self.labels or None},
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
            "history": self.history or [{"created_by": f"COPY layer{i} / # buildkit"} for i in range(len(tars))],
        }
        if self.user is not None:
            cfg["config"]["User"] = self.user
        return cfg


def _blob(files: dict[str, bytes], data: bytes) -> str:
    digest = sha256(data)
    files[f"blobs/sha256/{digest.split(':')[1]}"] = data
    return digest


def oci_files(image: Image, *, ref: str = "example.com/app:1.0") -> dict[str, bytes]:
    """The files of an OCI image layout holding ``image``."""
    files: dict[str, bytes] = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    tars = image.tars()
    layer_descs = []
    for t in tars:
        stored = gzip.compress(t, mtime=0) if image.compress else t
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if image.compress else "")
        layer_descs.append({"mediaType": media, "digest": _blob(files, stored), "size": len(stored)})
    config = json.dumps(image.config(tars)).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _blob(files, config),
            "size": len(config),
        },
        "layers": layer_descs,
    }
    mbytes = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _blob(files, mbytes),
                "size": len(mbytes),
                "annotations": {"org.opencontainers.image.ref.name": ref},
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    files["index.json"] = json.dumps(index).encode()
    return files


def docker_save_files(image: Image, *, tag: str = "app:1.0") -> dict[str, bytes]:
    """The files of a classic ``docker save`` archive (``<id>/layer.tar``, ``<config-hex>.json``)."""
    tars = image.tars()
    config = json.dumps(image.config(tars)).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    files: dict[str, bytes] = {config_name: config}
    names = []
    for i, t in enumerate(tars):
        name = f"{hashlib.sha256(t).hexdigest()[:12]}{i}/layer.tar"
        files[name] = t
        names.append(name)
    files["manifest.json"] = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
    return files


def write_dir(files: dict[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def write_tar(files: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


#: what the hostile demo image must be caught for
EXPECTED_IMAGE_FINDINGS = ("PYSEC-2018-28", "AISEC-MODEL-DANGEROUS-GLOBAL", "AISEC-IMG-SECRET-HUGGING-FACE-TOKEN")
SITE = "usr/local/lib/python3.11/site-packages"


def _fake_token(seed: int) -> str:
    """A Hugging Face-format token made up at run time (never written literally in the repository)."""
    import random
    import string

    rng = random.Random(seed)
    return "hf_" + "".join(rng.choice(string.ascii_letters) for _ in range(34))


def training_image() -> Image:
    """A clean training image: a pinned, patched dependency, the training code, benign weights, non-root."""
    return Image(
        layers=[
            [*dist_info(SITE, "requests", "2.32.3"), file("app/train.py", "print('training')\n")],
            [file("app/model/weights.pkl", BENIGN_PICKLE)],
        ],
        user="trainer",
    )


def hostile_image() -> Image:
    """The drill: an outdated dependency, a token committed then "deleted" in a later layer, a pickle that runs code."""
    return Image(
        layers=[
            [*dist_info(SITE, "requests", "2.19.0"), file("app/settings.py", f'HF_TOKEN = "{_fake_token(5)}"\n')],
            [whiteout("app/settings.py"), file("app/model/model.pkl", MALICIOUS_PICKLE)],
        ],
        user=None,
    )


@task
def build_images(training: str, hostile: str) -> dict[str, str]:
    """Write the demo's training image (docker save) and the hostile drill image (OCI archive)."""
    import os

    for path in (training, hostile):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_tar(docker_save_files(training_image(), tag="demo/trainer:1.0"), Path(training))
    write_tar(oci_files(hostile_image(), ref="demo/trainer:evil"), Path(hostile))
    return {"training": training, "hostile": hostile}


@task(trigger_rule="all_done")
def confirm_image_findings(ti: Any = None) -> dict[str, Any]:
    """The hostile image must have failed the scan, naming the package, the deleted token and the pickle."""
    report = ti.xcom_pull(task_ids="scan_hostile_image", key="aisec_report")
    if not report or report["status"] != "fail":
        raise RuntimeError(f"the hostile image was NOT caught: {report and report['summary']}")
    found = {f["id"] for f in report["findings"]}
    missing = [i for i in EXPECTED_IMAGE_FINDINGS if i not in found]
    if missing:
        raise RuntimeError(f"expected findings missing from the image report: {missing}")
    return {"caught": sorted(found), "summary": report["summary"]}
