"""Walk an image's layers in order and rebuild its final filesystem, in memory, without extracting.

Each layer is read once, as a stream: the stored blob is hashed (its digest), decompressed by
content (gzip, bzip2, xz or plain tar; zstd is refused: the standard library cannot read it), hashed
again (the config's ``diff_id``) and parsed as a tar stream. Whiteouts are applied as the OCI image
spec defines them: ``.wh.NAME`` removes ``NAME`` from the layers below, ``.wh..wh..opq`` empties a
directory of what the layers below put there. Paths are normalised; a member whose path leaves the
root is reported and ignored. Links are recorded, never followed. No Airflow import here.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_aisec.core.image.source import ImageSource, LayerRef, hasher
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)

#: Most tar entries accepted across all layers.
MAX_ENTRIES = 2_000_000
#: Largest total of uncompressed layer bytes read (a decompression bomb stops here).
DEFAULT_MAX_IMAGE_BYTES = 64 * 1024**3

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(slots=True)
class Node:
    """One path of the final filesystem and the layer that put it there."""

    kind: str  #: ``file``, ``dir``, ``symlink``, ``hardlink`` or ``special``
    layer: int
    size: int = 0
    mode: int = 0
    uid: int = 0
    link: str = ""


@dataclass
class FileSystem:
    """The union of the layers: path (no leading ``/``) → :class:`Node`."""

    nodes: dict[str, Node] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    whiteouts: int = 0

    def _remove(self, path: str, below: int) -> None:
        node = self.nodes.get(path)
        if node is None or node.layer >= below:
            if node is not None and node.kind == "dir":  # kept itself, but lower content goes
                for child in list(self.children.get(path, ())):
                    self._remove(child, below)
            return
        for child in list(self.children.get(path, ())):
            self._remove(child, below)
        if not self.children.get(path):
            self.children.pop(path, None)
            del self.nodes[path]
            self.children.get(posixpath.dirname(path), set()).discard(path)
        else:  # a same-layer child survives: keep the directory it lives in
            node.layer = below

    def whiteout(self, path: str, layer: int) -> None:
        self.whiteouts += 1
        self._remove(path, layer)

    def opaque(self, directory: str, layer: int) -> None:
        self.whiteouts += 1
        for child in list(self.children.get(directory, ())):
            self._remove(child, layer)

    def add(self, path: str, node: Node) -> None:
        parent = posixpath.dirname(path)
        if parent and self.nodes.get(parent, Node("file", -1)).kind != "dir":
            if parent in self.nodes:  # a file replaced by a directory holding this path
                self._drop(parent)
            self.add(parent, Node("dir", node.layer, mode=0o755))
        old = self.nodes.get(path)
        if old is not None and (old.kind != "dir" or node.kind != "dir"):
            self._drop(path)
        self.nodes[path] = node
        self.children.setdefault(parent, set()).add(path)

    def _drop(self, path: str) -> None:
        for child in list(self.children.get(path, ())):
            self._drop(child)
        self.children.pop(path, None)
        self.nodes.pop(path, None)
        self.children.get(posixpath.dirname(path), set()).discard(path)

    def is_final(self, path: str, layer: int) -> bool:
        """Whether ``path`` as written by ``layer`` is what the final filesystem holds."""
        node = self.nodes.get(path)
        return node is not None and node.layer == layer and node.kind in ("file", "hardlink")


@dataclass
class WalkStats:
    layers: int = 0
    entries: int = 0
    bytes_uncompressed: int = 0
    escaped: list[str] = field(default_factory=list)


class _Hashing:
    """A read-only stream wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes], digest: str, budget: list[int] | None = None) -> None:
        self.raw, self.hash, self.count, self.budget = raw, hasher(digest), 0, budget

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        if self.budget is not None:
            self.budget[0] -= len(data)
            if self.budget[0] < 0:
                raise AisecInputError("the image's layers decompress to more than the size limit (max_image_bytes)")
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


def _decompressed(blob: _Hashing, where: str) -> Any:
    head: Any = _Peek(blob)
    magic = head.peek(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=head, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(head, mode="rb")
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(head, mode="rb")
    if magic[:4] == b"\x28\xb5\x2f\xfd":
        raise AisecUndecidableError(f"{where}: zstd-compressed layer: not inspected (no zstd decoder available)")
    return head


class _Peek:
    def __init__(self, raw: Any) -> None:
        self.raw, self.buf = raw, b""

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n:
            more = self.raw.read(n - len(self.buf))
            if not more:
                break
            self.buf += more
        return self.buf[:n]

    def read(self, n: int = -1) -> bytes:
        if self.buf:
            if n < 0:
                out, self.buf = self.buf + self.raw.read(), b""
                return bytes(out)
            out, self.buf = self.buf[:n], self.buf[n:]
            if len(out) < n:
                out += self.raw.read(n - len(out))
            return bytes(out)
        return bytes(self.raw.read(n))

    def readable(self) -> bool:
        return True


def normalise(name: str) -> str | None:
    """``name`` as a root-relative path, or ``None`` when it leaves the root (``..`` past ``/``)."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


#: Called for each regular file: (path, layer index, size, open-content callable) → None.
OnFile = Callable[[str, int, int, Callable[[], IO[bytes]]], None]


def walk(
    image: ImageSource,
    on_file: OnFile,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> tuple[FileSystem, WalkStats]:
    """Apply every layer in order; call ``on_file`` for each regular file as it streams past.

    :raises AisecUndecidableError: a layer does not match its digest or diff_id, or cannot be decoded.
    :raises AisecInputError: malformed tar, too many entries, more bytes than ``max_image_bytes``.
    """
    fs, stats, budget = FileSystem(), WalkStats(), [max_image_bytes]
    progress = Progress("image scan: layers", len(image.refs.layers), unit="layers", logger=log)
    for layer in image.refs.layers:
        _walk_layer(image, layer, fs, stats, budget, on_file)
        stats.layers += 1
        progress.advance()
    progress.finish(min_elapsed=5.0)
    return fs, stats


def _walk_layer(
    image: ImageSource, layer: LayerRef, fs: FileSystem, stats: WalkStats, budget: list[int], on_file: OnFile
) -> None:
    where = f"layer {layer.index} ({layer.name})"
    with image.open_layer(layer) as raw:
        blob = _Hashing(raw, layer.digest or layer.diff_id)
        plain = _Hashing(_decompressed(blob, where), layer.diff_id, budget)
        try:
            with tarfile.open(fileobj=plain, mode="r|") as tar:  # type: ignore[call-overload]
                for info in tar:
                    stats.entries += 1
                    if stats.entries > MAX_ENTRIES:
                        raise AisecInputError(f"the image has more than {MAX_ENTRIES} entries")
                    _apply(info, tar, layer.index, fs, stats, on_file)
            plain.drain()
            blob.drain()
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, ValueError) as exc:
            if isinstance(exc, AisecInputError):
                raise
            raise AisecInputError(f"{where}: malformed or truncated layer ({type(exc).__name__}: {exc})") from None
    if layer.digest is not None and f"{layer.digest.split(':')[0]}:{blob.hexdigest()}" != layer.digest:
        raise AisecUndecidableError(f"{where}: blob does not match its digest {layer.digest}")
    if f"{layer.diff_id.split(':')[0]}:{plain.hexdigest()}" != layer.diff_id:
        raise AisecUndecidableError(f"{where}: uncompressed content does not match the config's diff_id")
    stats.bytes_uncompressed += plain.count


def _apply(info: tarfile.TarInfo, tar: Any, layer: int, fs: FileSystem, stats: WalkStats, on_file: OnFile) -> None:
    path = normalise(info.name)
    if path is None:
        if len(stats.escaped) < 100:
            stats.escaped.append(info.name[:200])
        return
    if not path:  # the root directory itself
        return
    base = posixpath.basename(path)
    parent = posixpath.dirname(path)
    if base == OPAQUE:
        fs.opaque(parent, layer)
        return
    if base.startswith(WHITEOUT):
        fs.whiteout(posixpath.join(parent, base[len(WHITEOUT) :]), layer)
        return
    if info.isdir():
        fs.add(path, Node("dir", layer, mode=info.mode, uid=info.uid))
    elif info.issym():
        fs.add(path, Node("symlink", layer, mode=info.mode, uid=info.uid, link=info.linkname))
    elif info.islnk():
        target = normalise(info.linkname)
        node = fs.nodes.get(target or "")
        fs.add(path, Node("hardlink", layer, size=node.size if node else 0, mode=info.mode, link=target or ""))
    elif info.isfile():
        fs.add(path, Node("file", layer, size=info.size, mode=info.mode, uid=info.uid))
        on_file(path, layer, info.size, lambda: tar.extractfile(info))
    else:
        fs.add(path, Node("special", layer, mode=info.mode, uid=info.uid))
