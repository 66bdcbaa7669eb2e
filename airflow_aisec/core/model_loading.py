"""Verify before load: the one way airflow-aisec deserialises a model artifact.

:func:`load_verified_model` is used by every place that loads a model (the model server,
:class:`~airflow_aisec.operators.performance.ModelPerformanceOperator`). In this order it:

1. **reads the file once**, into memory: the final path component must not be a symlink (unless
   ``follow_symlinks=True``), the opened file must be a regular file (FIFOs, devices, sockets and
   directories are refused without blocking), and at most ``max_bytes`` bytes are read (a larger or
   growing file is refused);
2. **verifies those bytes** against the expected SHA-256 — given directly, or read from a manifest
   (``aisec.manifest/v1`` or ``{"files": …}``) whose detached signature is checked first when a
   signature and key are configured. No digest → refused, unless the caller opts out explicitly with
   ``require_digest=False`` (the scan still runs);
3. **scans the same bytes** with :func:`airflow_aisec.core.modelscan.scan_bytes` (default-deny
   allowlist); anything but a ``safe`` verdict on a pickle/joblib stream is refused;
4. **loads from those bytes** (``io.BytesIO``), never from the path again, with joblib's unpickler
   restricted to the globals the scan saw and approved: a global the scan did not see (scanner and
   loader disagreeing about the stream) or that resolves to an object of another package than the
   one named (a re-export such as ``somepkg.GzipFile``) stops the load before anything is imported.

Every refusal raises, nothing is returned half-verified:

* :class:`AisecCheckFailed` (report attached): digest mismatch, bad manifest signature, scan not safe;
* :class:`AisecInputError`: no digest, unreadable/oversized/special file, malformed manifest;
* :class:`AisecUndecidableError`: the loader met a global the scan did not approve, or the bytes do
  not deserialise.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report
from airflow_aisec.utils.fs import read_regular_file

#: Default cap on the model file size (bytes read into memory).
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Manifests and signatures are small JSON.
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024
#: Stream formats the loader can deserialise (optionally behind a compressor joblib understands).
LOADABLE_FORMATS = ("pickle", "joblib")
_COMPRESSORS = ("gzip", "bz2", "xz", "lzma", "zlib", "lz4")
#: Modules the loader never imports, whatever the scan says (joblib's pre-0.10 wrappers read
#: companion files by path: the load would no longer come from the verified bytes).
_NEVER = ("joblib.numpy_pickle_compat",)
_HEX64 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
TAGS = ("AML.T0010.003", "AML.T0011.000", "AML.M0014")

F_DIGEST = "AISEC-SERVE-DIGEST-MISMATCH"
F_SIGNATURE = "AISEC-MODEL-MANIFEST-SIGNATURE"
F_SCAN = "AISEC-MODEL-SCAN-REFUSED"


@dataclass
class VerifiedModel:
    """A model that passed verification, and what it was verified against."""

    model: Any
    sha256: str
    size: int
    format: str
    evidence: str  # "digest" | "manifest" | "signed-manifest" | "none (opted out)"
    globals: list[str] = field(default_factory=list)


def normalise_sha256(value: Any, what: str) -> str:
    """``sha256:<hex>`` or ``<hex>`` → lowercase hex; anything else is an input error."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value.strip()):
        raise AisecInputError(f"{what} must be a SHA-256 (64 hex digits, optionally 'sha256:'-prefixed)")
    return _HEX64.fullmatch(value.strip()).group(1).lower()  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------- evidence
def _load_verify_key(verify_key: Any) -> Any:
    from airflow_aisec.core.signing import VerifyKey, load_verify_key

    if isinstance(verify_key, VerifyKey):
        return verify_key
    return load_verify_key(verify_key)


def digest_from_manifest(
    manifest: bytes,
    model_path: str | os.PathLike[str],
    *,
    source: str = "model manifest",
) -> str:
    """The SHA-256 a manifest records for ``model_path`` (entries matched by file name).

    Accepted: an ``aisec.manifest/v1`` manifest (``aisec hash`` / ``ArtifactHashOperator``, sha256,
    root digest checked), ``{"files": {"name": "<hex>" | {"sha256": "<hex>"}}}`` or
    ``{"files": [{"path": "name", "sha256": "<hex>"}]}``. Several matching entries with different
    digests, a malformed entry for the model, or no entry are errors (never a guess).
    """
    from airflow_aisec.utils import strictjson

    doc = strictjson.loads(manifest, source=source)
    entries: list[tuple[str, Any]] = []
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if isinstance(schema, str) and schema.startswith("aisec.manifest/"):  # the integrity engine's format
        from airflow_aisec.core.hashing import parse_manifest

        parsed = parse_manifest(manifest, source)  # validates entries and the root digest
        if parsed["algorithm"] != "sha256":
            raise AisecInputError(f"{source} uses {parsed['algorithm']}; model loading verifies sha256")
        entries = [(str(e["path"]), e["digest"]) for e in parsed["entries"]]
    elif schema is not None:
        raise AisecInputError(f"{source} has an unknown schema {str(schema)[:80]!r}")
    elif isinstance(doc, dict) and isinstance(doc.get("files"), dict):
        entries = list(doc["files"].items())
    elif isinstance(doc, dict) and isinstance(doc.get("files"), list):
        for i, e in enumerate(doc["files"]):
            if not isinstance(e, dict) or not isinstance(e.get("path"), str):
                raise AisecInputError(f"{source}: files[{i}] is not an object with a string 'path'")
            entries.append((e["path"], e))
    else:
        raise AisecInputError(f"{source} is neither an aisec.manifest manifest nor a {{'files': ...}} document")
    name = os.path.basename(os.fspath(model_path))
    found: set[str] = set()
    for key, value in entries:
        if PurePosixPath(str(key)).name != name:
            continue
        digest = value.get("sha256") if isinstance(value, dict) else value
        found.add(normalise_sha256(digest, f"{source} entry {key!r}"))
    if not found:
        raise AisecInputError(f"{source} has no sha256 for {name!r}")
    if len(found) > 1:
        raise AisecInputError(f"{source} records {len(found)} different digests for {name!r}: ambiguous")
    return found.pop()


def _expected_digest(
    path: str,
    expected_digest: str | None,
    manifest_path: str | os.PathLike[str] | None,
    signature_path: str | os.PathLike[str] | None,
    verify_key: Any,
) -> tuple[str | None, str]:
    expected = normalise_sha256(expected_digest, "expected digest") if expected_digest else None
    if (signature_path is None) != (verify_key is None):
        raise AisecInputError("a manifest signature needs both signature_path and verify_key")
    if signature_path is not None and manifest_path is None:
        raise AisecInputError("signature_path given without manifest_path")
    if manifest_path is None:
        return expected, "digest" if expected else "none"
    msrc = f"model manifest {os.fspath(manifest_path)!r}"
    raw = read_regular_file(manifest_path, max_bytes=MAX_EVIDENCE_BYTES, what="model manifest")
    evidence = "manifest"
    if signature_path is not None:
        from airflow_aisec.core.signing import parse_signature, verify

        key = _load_verify_key(verify_key)
        sig_raw = read_regular_file(signature_path, max_bytes=MAX_EVIDENCE_BYTES, what="manifest signature")
        ok, reason = verify(raw, parse_signature(sig_raw, f"signature {os.fspath(signature_path)!r}"), key)
        if not ok:
            report = Report.start("integrity", path, tags=TAGS)
            report.add_finding(
                F_SIGNATURE, "critical", f"Manifest signature invalid: {reason}", os.fspath(manifest_path), {}
            )
            raise AisecCheckFailed(report.finish("fail"), f"{msrc} signature invalid ({reason}): refusing to load")
        evidence = "signed-manifest"
    recorded = digest_from_manifest(raw, path, source=msrc)
    if expected is not None and expected != recorded:
        raise AisecInputError(f"the expected digest and {msrc} disagree: refusing to load")
    return recorded, evidence


# --------------------------------------------------------------------------------------- scan
def _loadable(fmt: str) -> bool:
    *wrappers, inner = fmt.split("+")
    return inner in LOADABLE_FORMATS and all(w in _COMPRESSORS for w in wrappers)


def _scan_report(path: str, scan: Any, reason: str) -> Report:
    report = Report.start("model_scan", path, tags=TAGS)
    seen: set[tuple[str, str]] = set()
    for g in scan.iter_globals():
        if g.verdict != "safe" and (g.verdict, g.qualname) not in seen:
            seen.add((g.verdict, g.qualname))
            sev = "critical" if g.verdict == "dangerous" else "high"
            report.add_finding(F_SCAN, sev, f"{g.verdict} global {g.qualname}", path, {"global": g.qualname})
    if not report.findings:
        report.add_finding(F_SCAN, "high", reason, path, {"format": scan.format, "verdict": scan.verdict})
    report.details["scan"] = scan.to_dict()
    report.metrics["globals_refused"] = len(seen)
    status = "fail" if seen or scan.verdict in ("unsafe", "unrecognised") else "error"
    return report.finish(status, reason)


# --------------------------------------------------------------------------------------- load
def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _joblib_routes_nested_find_class() -> bool:
    """Whether joblib unpickles object arrays' nested pickles through the outer ``find_class``."""
    import inspect

    try:
        from joblib.numpy_pickle import NumpyArrayWrapper

        return "find_class" in inspect.getsource(NumpyArrayWrapper.read_array)
    except (ImportError, AttributeError, OSError, TypeError):
        return False


def _restricted_load(data: bytes, allowed: frozenset[tuple[str, str]], where: str) -> Any:
    import _compat_pickle
    import pickle
    import types

    from joblib.numpy_pickle import NumpyUnpickler
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    class _Refused(Exception):
        pass

    routed = _joblib_routes_nested_find_class()

    class _VerifiedUnpickler(NumpyUnpickler):  # type: ignore[misc]
        dispatch = NumpyUnpickler.dispatch.copy()

        def load_build(self) -> None:
            # object arrays hold a nested pickle: joblib >= 1.6 unpickles it through this find_class;
            # an older joblib would use an unrestricted unpickler, so refuse them there
            state = self.stack[-1] if self.stack else None
            if not routed and isinstance(state, dict) and getattr(state.get("dtype"), "hasobject", False):
                raise _Refused("an object array (this joblib does not restrict nested pickles)")
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

        def find_class(self, module: str, name: str) -> Any:
            m, n = module, name
            if self.proto < 3 and self.fix_imports:
                if (m, n) in _compat_pickle.NAME_MAPPING:
                    m, n = _compat_pickle.NAME_MAPPING[(m, n)]
                elif m in _compat_pickle.IMPORT_MAPPING:
                    m = _compat_pickle.IMPORT_MAPPING[m]
            if (m, n) not in allowed or "." in n or any(m == x or m.startswith(x + ".") for x in _NEVER):
                raise _Refused(f"{m}.{n}")
            obj = super().find_class(module, name)
            owner = getattr(obj, "__module__", None)
            if isinstance(obj, types.ModuleType) or (isinstance(owner, str) and _top(owner) != _top(m)):
                raise _Refused(f"{m}.{n} (resolves to {owner}.{getattr(obj, '__qualname__', '?')})")
            return obj

        def persistent_load(self, pid: Any) -> Any:
            raise _Refused("persistent id")

    fobj = io.BytesIO(data)
    try:
        with _validate_fileobject_and_memmap(fobj, "", None) as (stream, _):
            return _VerifiedUnpickler("", stream, ensure_native_byte_order=True).load()
    except _Refused as exc:
        raise AisecUndecidableError(
            f"{where}: the loader met {exc} which the scan did not approve: refusing to load"
        ) from None
    except Exception as exc:
        raise AisecUndecidableError(f"{where} does not deserialise: {type(exc).__name__}") from None


def load_verified_model(
    path: str | os.PathLike[str],
    *,
    expected_digest: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    verify_key: Any = None,
    allow: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_symlinks: bool = False,
    require_digest: bool = True,
) -> VerifiedModel:
    """Read, verify, scan and load a joblib/pickle model from one in-memory copy (module docstring).

    :param expected_digest: ``sha256:<hex>`` or ``<hex>``; may be combined with ``manifest_path``
        (both must then agree).
    :param manifest_path: manifest recording the model's SHA-256.
    :param signature_path: detached ``aisec.signature/v1`` over the manifest bytes; needs
        ``verify_key`` (public key / HMAC secret file, bytes or a loaded ``VerifyKey``).
    :param allow: extra allowlisted globals for the scan (``module.name`` or globs).
    :param max_bytes: refuse files larger than this (default 2 GiB).
    :param follow_symlinks: accept a symlink as the final path component (the target is still read
        once and must be a regular file).
    :param require_digest: ``False`` is an explicit opt-out: load without a digest (scan still runs);
        the result's ``evidence`` says ``none (opted out)``.
    """
    p = os.fspath(path)
    expected, evidence = _expected_digest(p, expected_digest, manifest_path, signature_path, verify_key)
    if expected is None and require_digest:
        raise AisecInputError(
            f"model {p!r}: an expected SHA-256 (or a manifest) is required to load a model (fail closed)"
        )
    data = read_regular_file(p, max_bytes=max_bytes, follow_symlinks=follow_symlinks)
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        report = Report.start("integrity", p, tags=TAGS)
        report.add_finding(
            F_DIGEST,
            "critical",
            "Model digest does not match the expected SHA-256: refusing to load",
            p,
            {"expected": expected, "actual": actual, "evidence": evidence},
        )
        raise AisecCheckFailed(report.finish("fail"), f"model {p!r} digest mismatch: refusing to load")
    from airflow_aisec.core.modelscan import Policy, scan_bytes

    scan = scan_bytes(data, name=p, policy=Policy(tuple(allow)))
    if scan.sha256 and scan.sha256 != actual:  # the scan must have seen exactly the verified bytes
        raise AisecUndecidableError(f"model {p!r}: the scan saw other bytes than were verified: refusing to load")
    if scan.verdict != "safe" or not _loadable(scan.format):
        why = scan.verdict if scan.verdict != "safe" else f"format {scan.format!r} is not a loadable pickle/joblib"
        raise AisecCheckFailed(
            _scan_report(p, scan, f"model {p!r} did not pass the model scan ({why})"),
            f"model {p!r} did not pass the model scan ({why}): refusing to load",
        )
    approved = [g for g in scan.iter_globals() if g.verdict == "safe"]
    allowed = frozenset((g.module, g.name) for g in approved)
    model = _restricted_load(data, allowed, f"model {p!r}")
    return VerifiedModel(
        model=model,
        sha256=actual,
        size=len(data),
        format=scan.format,
        evidence=evidence if expected is not None else "none (opted out)",
        globals=sorted({g.qualname for g in approved}),
    )
