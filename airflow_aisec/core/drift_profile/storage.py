"""The drift reference profile file: atomic write, verified read (header digest, payload hash), memory mapping."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from airflow_aisec.core.drift_profile.header import MAX_HEADER_BYTES, validate_header
from airflow_aisec.core.drift_profile.model import ColumnProfile, Profile
from airflow_aisec.core.tabular import is_opened
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils.uri import is_remote, local_path

MAGIC = b"AISEC-DRIFT-PROFILE v1\n"
FORMAT = "aisec.drift-profile/v2"
#: profiles written before the payload hash moved to BLAKE3 (payload hashed with SHA-256); still readable.
FORMAT_V1 = "aisec.drift-profile/v1"


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _clean(obj: Any) -> Any:
    """JSON-safe copy of profile metadata (non-finite floats → None)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return _clean(float(obj))
    return obj


def _payload_hasher() -> Any:
    """BLAKE3 for the payload: ~3 GB/s on one core (SHA-256 runs at ~0.4 GB/s without SHA-NI, which
    would make verifying a 1M x 20 profile cost more than the whole drift test)."""
    from blake3 import blake3

    return blake3()


@contextmanager
def _upload_on_success(path: Any) -> Iterator[io.BytesIO]:
    """Collect the bytes in memory; upload them in one write only if the block succeeds (no partial object)."""
    buffer = io.BytesIO()
    yield buffer
    data = buffer.getvalue()
    if is_opened(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
    from airflow_aisec.core.tabular import _filesystem

    filesystem, fs_path = _filesystem(path)
    with filesystem.open_output_stream(fs_path) as fh:
        fh.write(data)


def _profile_writer(path: Any) -> Any:
    """A binary writer for ``path``: atomic rename locally; one upload of the whole file remotely."""
    if is_remote(path):
        return _upload_on_success(path)
    from airflow_aisec.utils.fs import atomic_writer

    return atomic_writer(local_path(path), "wb")


def save_profile(profile: Profile, path: Any) -> str:
    """Write ``profile`` to ``path`` atomically; return its digest (``sha256:<hex>``).

    :param path: local path / ``file://`` URI, or object storage (an opened path object, or a URI).
    """
    arrays_meta: dict[str, dict[str, Any]] = {}
    blobs: list[np.ndarray] = []
    offset = 0
    columns_meta = []
    for index, col in enumerate(profile.columns.values()):
        keys = {}
        for key, arr in col.arrays.items():
            arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            ref = f"{index}.{key}"
            arrays_meta[ref] = {"offset": offset, "dtype": arr.dtype.str, "length": int(arr.size)}
            keys[key] = ref
            blobs.append(arr)
            offset += arr.nbytes
        columns_meta.append({"name": col.name, "meta": _clean(col.meta), "arrays": keys})
    hasher = _payload_hasher()
    for arr in blobs:
        hasher.update(arr.data.cast("B"))
    header: dict[str, Any] = {
        "format": FORMAT,
        "build": _clean(profile.build),
        "columns": columns_meta,
        "arrays": arrays_meta,
        "payload_bytes": offset,
        "payload_hash": "blake3:" + hasher.hexdigest(),
    }
    digest = "sha256:" + hashlib.sha256(_canonical(header)).hexdigest()
    header["digest"] = digest
    header_bytes = _canonical(header)
    with _profile_writer(path) as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<Q", len(header_bytes)))
        fh.write(header_bytes)
        fh.write(bytes(_payload_start(len(header_bytes), FORMAT) - len(MAGIC) - 8 - len(header_bytes)))
        for arr in blobs:
            fh.write(arr.data.cast("B"))
    profile.digest = digest
    profile.path = str(path) if is_opened(path) else os.fspath(path)
    return digest


def load_profile(path: Any, *, expected_digest: str | None = None) -> Profile:
    """Load and verify a profile written by :func:`save_profile` (see :func:`open_profile`)."""
    profile, verify = open_profile(path, expected_digest=expected_digest, background=False)
    verify()
    return profile


def _aligned_empty(nbytes: int, alignment: int = 64) -> np.ndarray:
    """An uninitialised byte buffer whose start is ``alignment``-aligned (numpy's searchsorted and sort
    copy unaligned inputs on every call, which costs more than the search itself)."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start : start + nbytes]


#: v2 payloads start at a multiple of this in the file (zero padding after the header), so the
#: arrays of a memory-mapped profile are aligned (numpy copies unaligned arrays on every search).
PAYLOAD_ALIGN = 64


def _payload_start(header_len: int, fmt: str) -> int:
    start = len(MAGIC) + 8 + header_len
    return start + (-start) % PAYLOAD_ALIGN if fmt == FORMAT else start


class _PayloadLoader:
    """Hashes a profile's payload on a thread (or inline) while the drift workers already use it.

    Two sources. A local v2 profile is memory-mapped read-only: every array is usable at once and the
    thread hashes the mapping (no copy into fresh memory, which costs more than the hash here). Any
    other profile (object storage, v1 layout) is streamed in 1 MiB chunks into an aligned private
    buffer; each array is handed out once its bytes are in (:meth:`wait_for`). :meth:`hexdigest`
    waits for the end. A short read or a file that grew while being read is an error, raised to
    every waiter.
    """

    CHUNK = 1 << 20

    def __init__(self, payload: np.ndarray, hasher: Any, path: str, source: Any = None) -> None:
        import threading

        self.payload = payload
        self._hasher, self._path, self._source = hasher, path, source
        self._loaded = 0 if source is not None else payload.size
        self._finished = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def run(self) -> None:
        view = self.payload.data
        done, size = 0, self.payload.size
        try:
            if self._source is None:  # mapped: hash in large slices (blake3 releases the GIL)
                for start in range(0, size, 8 * self.CHUNK):
                    self._hasher.update(view[start : start + 8 * self.CHUNK])
                return
            while done < size:
                got = self._source.readinto(view[done : min(done + self.CHUNK, size)])
                if not got:
                    raise AisecUndecidableError(
                        f"reference profile {self._path} is truncated or changed while being read"
                    )
                with self._cond:
                    self._loaded = done + got
                    self._cond.notify_all()
                self._hasher.update(view[done : done + got])
                done += got
            if self._source.read(1):
                raise AisecUndecidableError(f"reference profile {self._path} grew while being read")
        except BaseException as exc:  # handed to every waiter
            self._error = exc
        finally:
            if self._source is not None:
                self._source.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            if isinstance(self._error, AisecUndecidableError):
                raise self._error
            raise AisecUndecidableError(
                f"could not read reference profile {self._path}: {self._error}"
            ) from self._error

    def wait_for(self, end: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._loaded >= end or self._finished)
        if self._loaded < end:
            self._raise()

    def hexdigest(self) -> str:
        with self._cond:
            self._cond.wait_for(lambda: self._finished)
        self._raise()
        return str(self._hasher.hexdigest())


class _LoadingArrays(Mapping[str, np.ndarray]):
    """A column's arrays, each handed out once the loader has read its bytes."""

    def __init__(self, arrays: dict[str, tuple[np.ndarray, int]], loader: _PayloadLoader) -> None:
        self._arrays, self._loader = arrays, loader

    def __getitem__(self, key: str) -> np.ndarray:
        arr, end = self._arrays[key]
        self._loader.wait_for(end)
        return arr

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _open_profile_file(source: Any) -> tuple[bytes, Any, int]:
    """``(header_bytes, file object, file size)``; the file object is local (``fileno``) or in memory.

    :param source: local path / ``file://`` URI, or object storage (an opened path object, or a URI).
    """
    prefix = len(MAGIC) + 8
    if is_remote(source):
        path = str(source)
        try:
            if is_opened(source):
                with source.open("rb") as remote:
                    raw = remote.read()
            else:
                from airflow_aisec.core.tabular import _filesystem

                filesystem, fs_path = _filesystem(source)
                with filesystem.open_input_file(fs_path) as remote:
                    raw = remote.read()
        except FileNotFoundError as exc:
            raise AisecInputError(f"reference profile not found: {path}") from exc
        header_len = _check_prefix(path, raw[:prefix])
        return raw[prefix : prefix + header_len], io.BytesIO(raw), len(raw)
    path = local_path(source)
    if not os.path.isfile(path):
        raise AisecInputError(f"reference profile not found: {path}")
    fh = open(path, "rb", buffering=0)  # closed by the loader / verify()
    try:
        header_len = _check_prefix(path, fh.read(prefix))
        size = os.fstat(fh.fileno()).st_size
        if header_len > size - prefix:
            raise AisecUndecidableError(f"reference profile {path} is truncated (header longer than the file)")
        return fh.read(header_len), fh, size
    except BaseException:
        fh.close()
        raise


def _map_payload(fh: Any, start: int, size: int) -> np.ndarray:
    import mmap

    mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapping, dtype=np.uint8, count=size, offset=start)


def _file_state(fh: Any) -> tuple[int, ...]:
    st = os.fstat(fh.fileno())
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _check_prefix(path: str, prefix: bytes) -> int:
    if not prefix.startswith(MAGIC) or len(prefix) < len(MAGIC) + 8:
        raise AisecUndecidableError(f"{path} is not an aisec drift profile (bad magic)")
    (header_len,) = struct.unpack_from("<Q", prefix, len(MAGIC))
    return int(header_len)


def _payload_digest(header: dict[str, Any], path: str) -> tuple[str, Any]:
    """``(expected "algo:hex", new hasher)`` from the header; v1 profiles were hashed with SHA-256."""
    if "payload_hash" in header:
        expected = str(header["payload_hash"])
        if not expected.startswith("blake3:"):
            raise AisecUndecidableError(f"reference profile {path} uses an unknown payload hash {expected[:16]!r}")
        return expected, _payload_hasher()
    if header.get("format") == FORMAT_V1 and "payload_sha256" in header:
        return "sha256:" + str(header["payload_sha256"]), hashlib.sha256()
    raise AisecUndecidableError(f"reference profile {path} records no payload hash: refusing to use it")


def _check_header(
    path: str, header_bytes: bytes, file_size: int, expected_digest: str | None
) -> tuple[dict[str, Any], str, str, Any]:
    """Parse and verify a profile header: ``(header, digest, "algo:payload hash", hasher)``; fails closed."""
    from airflow_aisec.utils import strictjson

    # strict: duplicate keys, NaN, huge numbers, deep nesting are refused (AisecInputError, exit 2)
    header = strictjson.loads(header_bytes, source=f"reference profile {path} header", max_bytes=MAX_HEADER_BYTES)
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, FORMAT_V1):
        raise AisecUndecidableError(f"reference profile {path} has an unknown format")
    stored_digest = header.pop("digest", None)
    if file_size - _payload_start(len(header_bytes), header["format"]) != header.get("payload_bytes"):
        raise AisecUndecidableError(f"reference profile {path} is truncated or padded (payload size mismatch)")
    digest = "sha256:" + hashlib.sha256(_canonical(header)).hexdigest()
    if digest != stored_digest:
        raise AisecUndecidableError(f"reference profile {path} was modified: header digest mismatch (tampered?)")
    if expected_digest and expected_digest != digest:
        raise AisecUndecidableError(
            f"reference profile {path} has digest {digest}, expected {expected_digest}: refusing to use it"
        )
    expected_payload, hasher = _payload_digest(header, path)
    validate_header(header, path)  # after the digest checks: tampering is reported as tampering
    return header, digest, expected_payload, hasher


def open_profile(path: Any, *, expected_digest: str | None = None, background: bool = True) -> tuple[Profile, Any]:
    """Open a profile; return it with ``verify()``, which raises unless the payload hash matches.

    The header (with the payload's expected hash) is verified before returning. With ``background``
    the payload is read and hashed on a thread while the caller starts working, and each array is
    handed out once its bytes are in; the caller MUST call ``verify()`` before using any result (the
    drift engine does so before building its report, so a tampered profile still fails closed and no
    result computed from it escapes). A local v2 profile is memory-mapped read-only; because a mapping
    shows later writes to the file, ``verify()`` also raises when the file's inode, size, mtime or
    ctime changed since it was opened. Other profiles are read into private memory.

    :param expected_digest: the digest the caller trusts (e.g. reported when the profile was built);
        a different digest fails closed.
    :raises AisecInputError: the file does not exist.
    :raises AisecUndecidableError: not a profile, truncated, tampered (hash mismatch) or not the
        expected digest.
    """
    source = path
    path = str(source) if is_opened(source) else os.fspath(source)
    header_bytes, fh, file_size = _open_profile_file(source)
    try:
        header, digest, expected_payload, hasher = _check_header(path, header_bytes, file_size, expected_digest)
        start = _payload_start(len(header_bytes), header["format"])
        size = file_size - start
        fh.seek(len(MAGIC) + 8 + len(header_bytes))
        if any(fh.read(start - len(MAGIC) - 8 - len(header_bytes))):
            raise AisecUndecidableError(f"reference profile {path} was modified: non-zero header padding (tampered?)")
        mapped = header["format"] == FORMAT and not isinstance(fh, io.BytesIO) and size > 0
        if mapped:
            state = _file_state(fh)
            loader = _PayloadLoader(_map_payload(fh, start, size), hasher, path)
        else:
            loader = _PayloadLoader(_aligned_empty(size), hasher, path, source=fh)
        columns: dict[str, ColumnProfile] = {}
        for entry in header["columns"]:
            arrays: dict[str, tuple[np.ndarray, int]] = {}
            for key, ref in entry["arrays"].items():
                spec = header["arrays"][ref]
                dtype = np.dtype(spec["dtype"])
                lo, hi = int(spec["offset"]), int(spec["offset"]) + dtype.itemsize * int(spec["length"])
                if not 0 <= lo <= hi <= size:
                    raise AisecUndecidableError(f"reference profile {path} has an array outside its payload")
                arr = loader.payload[lo:hi].view(dtype)
                arr.flags.writeable = False
                arrays[key] = (arr, hi)
            columns[entry["name"]] = ColumnProfile(entry["name"], entry["meta"], _LoadingArrays(arrays, loader))
    except BaseException:
        fh.close()
        raise
    if background:
        import threading

        threading.Thread(target=loader.run, name="aisec-profile-load", daemon=True).start()
    else:
        loader.run()

    def verify() -> None:
        algorithm = expected_payload.split(":", 1)[0]
        if f"{algorithm}:{loader.hexdigest()}" != expected_payload:
            raise AisecUndecidableError(f"reference profile {path} was modified: payload hash mismatch (tampered?)")
        if mapped:  # the mapping shows later writes to the file: refuse a result if there were any
            try:
                changed = _file_state(fh) != state
            finally:
                fh.close()
            if changed:
                raise AisecUndecidableError(f"reference profile {path} changed while in use: refusing the result")

    return Profile(columns, header["build"], digest=digest, path=path), verify
