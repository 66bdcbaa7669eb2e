"""Open a container image stored as files: a ``docker save`` tarball, an OCI image layout (directory or archive).

No Docker engine and nothing extracted to disk: members are read where they lie. Every JSON document
is parsed strictly (duplicate keys, absurd nesting and sizes refused) and every blob the image names
is checked against its digest when it is read; each layer's *uncompressed* digest is checked against
the config's ``rootfs.diff_ids`` by :mod:`.layers`, so a layer swapped inside the archive is an
error, never a scanned stand-in. No Airflow import here.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils import strictjson as sj

#: Largest manifest, index or config document read, in bytes.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: Most layers accepted in one image (Docker's own limit is 127 for overlayfs).
MAX_LAYERS = 512
#: Most manifests followed through nested indexes.
MAX_MANIFESTS = 256

_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
_REF_ANNOTATIONS = ("org.opencontainers.image.ref.name", "io.containerd.image.name")


def check_digest(value: Any, where: str) -> str:
    """``value`` if it is a ``sha256:``/``sha512:`` digest in lowercase hex, else an error naming ``where``."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise AisecInputError(f"{where}: {str(value)[:80]!r} is not a sha256/sha512 digest")
    return value


def hasher(digest: str) -> Any:
    """A new hash object of ``digest``'s algorithm."""
    return _ALGORITHMS[digest.split(":", 1)[0]]()


@dataclass(frozen=True)
class LayerRef:
    """One layer of the selected image, in application order (0 = base)."""

    index: int
    name: str  #: member name or blob path inside the image
    diff_id: str  #: digest of the uncompressed layer tar (from the config)
    digest: str | None = None  #: digest of the stored blob (OCI; docker ``blobs/`` layouts)
    size: int | None = None  #: stored size declared by the manifest


@dataclass
class ImageRefs:
    """What the image's manifests say: its config and its layers, all digests checked."""

    format: str  #: ``docker-save``, ``oci-layout`` or ``oci-archive``
    config: dict[str, Any]
    config_digest: str
    layers: list[LayerRef]
    manifest_digest: str | None = None
    ref: str | None = None
    notes: list[str] = field(default_factory=list)


class _Store:
    """Named members of an archive or a directory, read with bounds and no link following."""

    label = ""

    def names(self) -> set[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def size(self, name: str) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        return None

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        if name not in self.names():
            raise AisecUndecidableError(f"{self.label}: {name!r} is missing from the image")
        if self.size(name) > limit:
            raise AisecInputError(f"{self.label}: {name!r} is {self.size(name)} bytes (at most {limit} read)")
        with self.open(name) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise AisecInputError(f"{self.label}: {name!r} is larger than {limit} bytes")
        return data

    def json(self, name: str, digest: str | None = None) -> Any:
        data = self.read(name)
        if digest is not None:
            h = hasher(digest)
            h.update(data)
            if f"{digest.split(':', 1)[0]}:{h.hexdigest()}" != digest:
                raise AisecUndecidableError(f"{self.label}: {name!r} does not match its digest {digest}")
        return sj.loads(data, source=f"{self.label}: {name}", max_bytes=MAX_JSON_BYTES)


def _member_name(raw: str) -> str | None:
    name = posixpath.normpath("/" + raw).lstrip("/")
    return name or None


class _TarStore(_Store):
    def __init__(self, path: str | os.PathLike[str], fh: IO[bytes]) -> None:
        self.label = os.fspath(path) if not hasattr(path, "as_uri") else str(path)
        self._fh = fh
        try:
            self._tar = tarfile.open(fileobj=fh, mode="r:")  # an image archive is an uncompressed tar
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise AisecInputError(f"{self.label}: not a tar archive ({exc})") from None
        self._members: dict[str, tarfile.TarInfo] = {}
        dupes = []
        try:
            for info in self._tar:
                name = _member_name(info.name)
                if name is None or not info.isfile():
                    continue
                if name in self._members:
                    dupes.append(name)
                self._members[name] = info
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise AisecInputError(f"{self.label}: malformed tar archive ({exc})") from None
        if dupes:  # two members under one name: which one a loader takes is not ours to guess
            raise AisecInputError(f"{self.label}: archive holds {len(dupes)} duplicate member(s), e.g. {dupes[0]!r}")

    def names(self) -> set[str]:
        return set(self._members)

    def size(self, name: str) -> int:
        return self._members[name].size

    def open(self, name: str) -> IO[bytes]:
        member = self._tar.extractfile(self._members[name])
        if member is None:  # pragma: no cover - regular files always extract
            raise AisecUndecidableError(f"{self.label}: {name!r} cannot be read")
        return member

    def close(self) -> None:
        self._tar.close()
        self._fh.close()


class _DirStore(_Store):
    def __init__(self, root: str) -> None:
        self.label = root
        self._root = os.path.realpath(root)
        self._names: set[str] | None = None

    def _path(self, name: str) -> str:
        full = os.path.join(self._root, *name.split("/"))
        st = os.lstat(full)
        if not stat.S_ISREG(st.st_mode):  # a symlinked blob could point anywhere: refused
            raise AisecInputError(f"{self.label}: {name!r} is not a regular file (links are not followed)")
        return full

    def names(self) -> set[str]:
        if self._names is None:
            found = set()
            for dirpath, dirnames, filenames in os.walk(self._root):
                rel = os.path.relpath(dirpath, self._root)
                for f in filenames:
                    found.add(f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}")
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            self._names = found
        return self._names

    def size(self, name: str) -> int:
        return os.lstat(self._path(name)).st_size

    def open(self, name: str) -> IO[bytes]:
        return open(self._path(name), "rb")


@dataclass
class ImageSource:
    """An opened image: its store and the checked references. Use as a context manager."""

    store: _Store
    refs: ImageRefs

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def open_layer(self, layer: LayerRef) -> IO[bytes]:
        return self.store.open(layer.name)


def open_image(path: Any, *, ref: str | None = None, platform: str | None = None) -> ImageSource:
    """Open the image at ``path`` (directory, ``docker save`` tar, OCI archive; local or path-like).

    :param ref: which image, when the archive holds several (a ``RepoTags`` entry or an OCI
        ``org.opencontainers.image.ref.name`` annotation).
    :param platform: ``os/arch[/variant]`` to select from a multi-platform index.
    :raises AisecInputError: not an image, malformed documents, ambiguous selection.
    :raises AisecUndecidableError: a blob is missing or does not match its digest.
    """
    store = _open_store(path)
    try:
        names = store.names()
        if "index.json" in names and "oci-layout" in names:
            refs = _oci_refs(store, ref, platform)
            refs.format = "oci-layout" if isinstance(store, _DirStore) else "oci-archive"
        elif "manifest.json" in names:
            refs = _docker_refs(store, ref)
        else:
            raise AisecInputError(
                f"{store.label}: neither an OCI image layout (oci-layout + index.json) "
                "nor a docker save archive (manifest.json)"
            )
        _check_layers(store, refs)
        return ImageSource(store, refs)
    except BaseException:
        store.close()
        raise


def _open_store(path: Any) -> _Store:
    if isinstance(path, (str, os.PathLike)) and not hasattr(path, "protocol"):
        p = os.fspath(path)
        if not os.path.lexists(p):
            raise AisecInputError(f"image {p!r} does not exist")
        if os.path.isdir(p):
            return _DirStore(p)
        if not os.path.isfile(p):
            raise AisecInputError(f"image {p!r} is neither a directory nor a regular file")
        return _TarStore(p, open(p, "rb"))
    # object storage (ObjectStoragePath / UPath): an archive, read through its own file object
    if path.is_dir():
        raise AisecInputError(
            f"image {path}: an OCI layout directory in object storage is not supported; use an archive"
        )
    return _TarStore(path, path.open("rb"))


def _platform_of(desc: dict[str, Any]) -> str:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return "?"
    parts = [str(plat.get("os", "?")), str(plat.get("architecture", "?"))]
    if plat.get("variant"):
        parts.append(str(plat["variant"]))
    return "/".join(parts)


def _blob_name(digest: str) -> str:
    alg, hexd = digest.split(":", 1)
    return f"blobs/{alg}/{hexd}"


def _descriptors(doc: Any, where: str, key: str) -> list[dict[str, Any]]:
    items = sj.get_list(doc, key, where)
    for i, d in enumerate(items):
        sj.expect(d, dict, f"{where} {key}[{i}]")
        check_digest(d.get("digest"), f"{where} {key}[{i}].digest")
    return items


def _flatten(store: _Store, index: Any, where: str, depth: int = 0) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Image-manifest descriptors reachable from ``index`` with the ref name that selected them."""
    if depth > 4:
        raise AisecInputError(f"{where}: indexes nested deeper than 4 levels")
    for d in _descriptors(index, where, "manifests"):
        raw_annotations = d.get("annotations")
        annotations: dict[str, Any] = raw_annotations if isinstance(raw_annotations, dict) else {}
        if "vnd.docker.reference.type" in annotations:  # attestation manifests carry no filesystem
            continue
        name = next((annotations[a] for a in _REF_ANNOTATIONS if isinstance(annotations.get(a), str)), None)
        media = d.get("mediaType")
        if media in _INDEX_TYPES:
            nested = store.json(_blob_name(d["digest"]), d["digest"])
            for inner, inner_name in _flatten(store, nested, f"{where} → {d['digest'][:19]}", depth + 1):
                yield inner, inner_name or name
        elif media in _MANIFEST_TYPES or media is None:
            yield d, name
        else:
            raise AisecInputError(f"{where}: unsupported manifest media type {str(media)[:80]!r}")


def _select(found: list[tuple[dict[str, Any], str | None]], ref: str | None, platform: str | None, where: str) -> Any:
    cands = found
    if ref is not None:
        cands = [c for c in cands if c[1] is not None and (c[1] == ref or c[1].endswith(":" + ref))]
        if not cands:
            names = sorted({str(c[1]) for c in found})
            raise AisecInputError(f"{where}: no image named {ref!r} (names: {names[:10]})")
    if platform is not None:
        cands = [c for c in cands if _platform_of(c[0]) == platform]
        if not cands:
            raise AisecInputError(f"{where}: no image for platform {platform!r}")
    if len(cands) != 1:
        if not cands:
            raise AisecInputError(f"{where}: the index lists no image")
        choices = sorted({f"{c[1] or '-'} ({_platform_of(c[0])})" for c in cands})
        raise AisecInputError(f"{where}: {len(cands)} images; choose one with ref/platform: {choices[:10]}")
    return cands[0]


def _oci_refs(store: _Store, ref: str | None, platform: str | None) -> ImageRefs:
    layout = store.json("oci-layout")
    sj.expect(layout, dict, f"{store.label}: oci-layout")
    version = layout.get("imageLayoutVersion")
    if version != "1.0.0":
        raise AisecInputError(f"{store.label}: unsupported imageLayoutVersion {str(version)[:20]!r}")
    index = store.json("index.json")
    sj.expect(index, dict, f"{store.label}: index.json")
    found = list(_flatten(store, index, f"{store.label}: index.json"))
    if len(found) > MAX_MANIFESTS:
        raise AisecInputError(f"{store.label}: {len(found)} manifests (at most {MAX_MANIFESTS})")
    desc, name = _select(found, ref, platform, f"{store.label}: index.json")
    manifest = store.json(_blob_name(desc["digest"]), desc["digest"])
    where = f"{store.label}: manifest {desc['digest'][:19]}"
    sj.expect(manifest, dict, where)
    config_desc = sj.get_dict(manifest, "config", where)
    config_digest = check_digest(config_desc.get("digest"), f"{where} config.digest")
    config = store.json(_blob_name(config_digest), config_digest)
    layers = _descriptors(manifest, where, "layers")
    diff_ids = _diff_ids(config, f"{store.label}: config", len(layers))
    refs = [
        LayerRef(
            index=i,
            name=_blob_name(d["digest"]),
            diff_id=diff_ids[i],
            digest=d["digest"],
            size=d.get("size") if isinstance(d.get("size"), int) and not isinstance(d.get("size"), bool) else None,
        )
        for i, d in enumerate(layers)
    ]
    return ImageRefs("oci-layout", config, config_digest, refs, manifest_digest=desc["digest"], ref=name)


def _docker_refs(store: _Store, ref: str | None) -> ImageRefs:
    where = f"{store.label}: manifest.json"
    entries = sj.expect(store.json("manifest.json"), list, where)
    found = []
    for i, e in enumerate(entries):
        sj.expect(e, dict, f"{where}[{i}]")
        tags = e.get("RepoTags") or []
        sj.expect(tags, list, f"{where}[{i}].RepoTags")
        found.append((e, tags))
    if ref is not None:
        found = [f for f in found if any(t == ref or t.endswith("/" + ref) for t in f[1] if isinstance(t, str))]
    if len(found) != 1:
        tags = sorted(str(t) for f in found for t in f[1])
        raise AisecInputError(f"{where}: {len(found)} matching image(s); choose one with ref: {tags[:10]}")
    entry, tags = found[0]
    config_name = _member_name(sj.get_str(entry, "Config", where) or "") or ""
    config_digest = _digest_from_name(config_name)
    config = store.json(config_name, config_digest)
    if config_digest is None:  # a config name that is not its digest: hash what we read
        config_digest = "sha256:" + hashlib.sha256(store.read(config_name)).hexdigest()
    layer_names = sj.get_list(entry, "Layers", where)
    diff_ids = _diff_ids(config, f"{store.label}: config", len(layer_names))
    refs = []
    for i, raw in enumerate(layer_names):
        name = _member_name(sj.expect(raw, str, f"{where} Layers[{i}]"))
        if name is None:
            raise AisecInputError(f"{where} Layers[{i}]: empty name")
        refs.append(LayerRef(index=i, name=name, diff_id=diff_ids[i], digest=_digest_from_name(name)))
    return ImageRefs("docker-save", config, config_digest, refs, ref=str(tags[0]) if tags else None)


def _digest_from_name(name: str) -> str | None:
    """The digest a content-addressed member name states (``blobs/sha256/<hex>``, ``<hex>.json``)."""
    m = re.fullmatch(r"blobs/(sha256|sha512)/([0-9a-f]{64}|[0-9a-f]{128})", name)
    if m:
        return f"{m.group(1)}:{m.group(2)}"
    m = re.fullmatch(r"([0-9a-f]{64})\.json", name)
    return f"sha256:{m.group(1)}" if m else None


def _diff_ids(config: Any, where: str, n_layers: int) -> list[str]:
    sj.expect(config, dict, where)
    rootfs = sj.get_dict(config, "rootfs", where)
    if rootfs.get("type") != "layers":
        raise AisecInputError(f"{where}: rootfs.type must be 'layers'")
    ids = [
        check_digest(d, f"{where} rootfs.diff_ids[{i}]") for i, d in enumerate(sj.get_list(rootfs, "diff_ids", where))
    ]
    if len(ids) != n_layers:
        raise AisecInputError(f"{where}: {len(ids)} diff_ids for {n_layers} layer(s)")
    if n_layers > MAX_LAYERS:
        raise AisecInputError(f"{where}: {n_layers} layers (at most {MAX_LAYERS})")
    return ids


def _check_layers(store: _Store, refs: ImageRefs) -> None:
    names = store.names()
    for layer in refs.layers:
        if layer.name not in names:
            raise AisecUndecidableError(
                f"{store.label}: layer {layer.index} ({layer.name}) is not in the image (foreign or missing layer)"
            )
        if layer.size is not None and store.size(layer.name) != layer.size:
            raise AisecUndecidableError(
                f"{store.label}: layer {layer.index} is {store.size(layer.name)} bytes, its manifest says {layer.size}"
            )
