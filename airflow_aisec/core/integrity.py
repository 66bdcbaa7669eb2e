"""Artifact integrity: hash (and sign) an artifact, or verify it against a digest or a signed manifest.

Both functions return an ``integrity`` :class:`~airflow_aisec.report.Report`; the operators, the sensor
and the ``aisec hash`` / ``aisec verify`` commands are thin layers over them.

The *artifact digest* is the file's digest for a single file and the manifest's ``root_digest`` for a
directory, so ``--digest`` works the same for both. A directory's root digest is the unambiguous v2
encoding (:func:`airflow_aisec.core.hashing.root_digest`); legacy v1 root digests are **not** accepted
as ``--digest`` (their text-line encoding lets a different tree or a crafted single file reproduce
them), while v1 *manifests* still verify entry by entry. A single file whose content starts with
:data:`~airflow_aisec.core.hashing.ROOT_DIGEST_TAG` never passes a bare-digest check, since it could
reproduce a directory's root digest.
"""

from __future__ import annotations

import os
import time
from typing import Any

from airflow_aisec.core import hashing, signing
from airflow_aisec.core.manifest import Manifest
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report
from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

TAGS = ("AML.M0014", "AML.T0010", "OWASP-ML06")
SIGNED_TAGS = ("AML.M0013",)


def artifact_digest(manifest: Manifest | dict[str, Any]) -> str:
    """The single value that pins an artifact: a file's digest, or a directory's root digest."""
    if isinstance(manifest, Manifest):
        return manifest.artifact_digest
    if manifest.get("kind") == "file" and len(manifest["entries"]) == 1:
        return str(manifest["entries"][0]["digest"])
    return str(manifest["root_digest"])


def _normalise_digest(value: str, default_algorithm: str) -> tuple[str, str]:
    """``"sha256:ABC"`` → ``("sha256", "abc")``; a bare hex digest → ``(default_algorithm, "abc")``.

    The hex length must be the algorithm's digest length.
    """
    if not isinstance(value, str):
        raise AisecInputError("expected digest must be a string")
    text = value.strip()
    algorithm = default_algorithm
    if ":" in text:
        algorithm, text = text.split(":", 1)
        algorithm = algorithm.lower()
    text = text.lower()
    hashing.new_hasher(algorithm)  # unknown algorithm: AisecInputError
    if len(text) != hashing.hex_length(algorithm) or any(c not in "0123456789abcdef" for c in text):
        raise AisecInputError(f"expected digest {value[:80]!r} is not a {algorithm} hex digest")
    return algorithm, text


def compute_manifest(
    path: Any,
    algorithm: str = "sha256",
    *,
    workers: int | None = None,
    follow_symlinks: bool = False,
    on_unreadable: Any = None,
    on_special: Any = None,
    observe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`hashing.build_manifest` (its ``kind`` says file | directory); :func:`hashing.hash_manifest`
    gives the same as a :class:`~airflow_aisec.core.manifest.Manifest` value."""
    return hashing.hash_manifest(
        path,
        algorithm,
        workers,
        follow_symlinks=follow_symlinks,
        on_unreadable=on_unreadable,
        on_special=on_special,
        observe=observe,
    ).document()


def refuse_output_inside(output: str | os.PathLike[str], artifact: Any, what: str) -> None:
    """Refuse to write ``output`` onto the artifact itself or inside it (it would destroy or change it)."""
    if not hashing._is_local(artifact):
        return
    out = os.path.realpath(os.fspath(output))
    art = os.path.realpath(os.fspath(hashing.as_path(artifact)))
    if out == art or out.startswith(art.rstrip("/") + "/"):
        raise AisecInputError(f"{what} {os.fspath(output)}: is the artifact or inside it; refusing to write there")


def default_manifest_path(path: Any) -> str:
    """``<artifact>.manifest.json`` beside the artifact."""
    return os.fspath(path).rstrip("/") + ".manifest.json"


def hash_artifact(
    path: Any,
    *,
    algorithm: str = "sha256",
    workers: int | None = None,
    follow_symlinks: bool = False,
    manifest_path: str | os.PathLike[str] | None = None,
    signing_key: signing.SigningKey | None = None,
    signature_format: str = "auto",
    bundle_path: str | os.PathLike[str] | None = None,
) -> Report:
    """Hash ``path`` (file or directory), write its manifest (and signature) atomically, and report.

    :param manifest_path: where to write the manifest; ``None`` writes none (unless signing in the
        ``aisec`` format, which needs a manifest: then it defaults to :func:`default_manifest_path`).
    :param signing_key: when given, the artifact is signed (see ``signature_format``).
    :param signature_format: ``model-signing`` (an OpenSSF model-signing bundle over the artifact, at
        ``bundle_path``, default ``<path>.sig``; needs an ECDSA key), ``aisec`` (the legacy
        ``aisec.signature/v1`` detached signature ``<manifest>.sig``; Ed25519 or HMAC key), or ``auto``
        (default: ``model-signing`` for an ECDSA key, ``aisec`` for an Ed25519 or HMAC key, which the
        model-signing format cannot carry).
    """
    signature_format = resolve_signature_format(signature_format, signing_key)
    if signature_format == "model-signing":
        return _hash_model_signing(path, algorithm, workers, follow_symlinks, manifest_path, signing_key, bundle_path)
    report = Report.start("integrity", str(path), tags=list(TAGS))
    if signing_key is not None and manifest_path is None:
        manifest_path = default_manifest_path(path)
    if manifest_path is not None:
        refuse_output_inside(manifest_path, path, "manifest")
        refuse_output_inside(os.fspath(manifest_path) + ".sig", path, "signature")
    t0 = time.monotonic()
    manifest = hashing.hash_manifest(path, algorithm, workers, follow_symlinks=follow_symlinks)
    seconds = time.monotonic() - t0
    digest = manifest.artifact_digest
    if signing_key is not None and manifest_path is None:
        manifest_path = default_manifest_path(path)
    details: dict[str, Any] = {
        "mode": "hash",
        "algorithm": algorithm,
        "digest": digest,
        "root_digest": manifest.root_digest,
        "kind": manifest.kind,
        "manifest_path": None,
        "signature_path": None,
    }
    if manifest_path is not None:
        data = manifest.to_bytes()
        write_bytes_atomic(manifest_path, data)
        details["manifest_path"] = os.fspath(manifest_path)
        if signing_key is not None:
            signature_path = os.fspath(manifest_path) + ".sig"
            write_json_atomic(signature_path, signing.sign(data, signing_key))
            details["signature_path"] = signature_path
            details["key_id"] = signing_key.key_id
            details["signature_algorithm"] = signing_key.algorithm
            report.add_tags(*SIGNED_TAGS)
    if manifest.file_count <= 20:
        details["entries"] = [e.to_dict() for e in manifest.entries]
    report.details.update(details)
    report.metrics.update(
        files=manifest.file_count,
        bytes=manifest.total_bytes,
        hash_seconds=round(seconds, 6),
        mib_per_second=round(manifest.total_bytes / 2**20 / seconds, 3) if seconds > 0 else None,
    )
    signed = " and signed" if details["signature_path"] else ""
    return report.finish(
        "pass",
        f"{manifest.kind} hashed{signed}: {manifest.file_count} file(s), "
        f"{manifest.total_bytes} bytes, {algorithm}:{digest}",
    )


SIGNATURE_FORMATS = ("auto", "model-signing", "aisec")


def resolve_signature_format(signature_format: str, key: signing.SigningKey | signing.VerifyKey | None) -> str:
    """The effective signature format for ``key``: ``model-signing`` for an ECDSA key, else ``aisec``."""
    if signature_format not in SIGNATURE_FORMATS:
        raise AisecInputError(
            f"signature_format must be one of {SIGNATURE_FORMATS}, not {str(signature_format)[:40]!r}"
        )
    ecdsa = key is not None and key.algorithm == signing.ECDSA
    if signature_format == "auto":
        return "model-signing" if ecdsa else "aisec"
    if signature_format == "model-signing" and key is not None and not ecdsa:
        raise AisecInputError(
            f"the model-signing format needs an ECDSA (P-256/384/521) key, not {key.algorithm}; create one with "
            "`aisec keygen --type ecdsa-p256`, or choose signature_format='aisec'"
        )
    if signature_format == "aisec" and ecdsa:
        raise AisecInputError("an ECDSA key signs in the model-signing format; choose signature_format='model-signing'")
    return signature_format


def _hash_model_signing(
    path: Any,
    algorithm: str,
    workers: int | None,
    follow_symlinks: bool,
    manifest_path: str | os.PathLike[str] | None,
    key: signing.SigningKey | None,
    bundle_path: str | os.PathLike[str] | None,
) -> Report:
    """Hash (and write the unsigned manifest if asked), then sign ``path`` into a model-signing bundle."""
    from airflow_aisec.core import model_signing

    if key is None:
        raise AisecInputError("the model-signing format needs a signing key")
    bundle_path = bundle_path or model_signing.default_bundle_path(path)
    refuse_output_inside(bundle_path, path, "model-signing bundle")
    report = hash_artifact(
        path, algorithm=algorithm, workers=workers, follow_symlinks=follow_symlinks, manifest_path=manifest_path
    )
    if report.status != "pass":
        return report
    details = model_signing.sign_model(path, bundle_path, private_key_pem=key._material)
    report.details.update(
        details, signature_path=os.fspath(bundle_path), key_id=key.key_id, signature_algorithm="ecdsa"
    )
    report.add_tags(*SIGNED_TAGS)
    report.summary = report.summary.replace(" hashed:", " hashed and signed (model-signing):", 1)
    return report


def _read_evidence(path: str | os.PathLike[str], what: str) -> bytes:
    return hashing.read_evidence(path, what)


def verify_artifact(
    path: Any,
    *,
    expected_digest: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    verify_key: signing.VerifyKey | None = None,
    require_signature: bool = False,
    algorithm: str = "sha256",
    workers: int | None = None,
    follow_symlinks: bool = False,
    bundle_path: str | os.PathLike[str] | None = None,
) -> Report:
    """Verify ``path`` against ``expected_digest``, a (signed) manifest, or a model-signing bundle.

    Fail closed: a missing artifact, manifest or (required) signature raises
    :class:`AisecUndecidableError`; a mismatch, a bad signature, or any added / removed / changed file
    gives a ``fail`` report; a file that cannot be read gives ``error`` unless a mismatch was found.

    :param expected_digest: hex digest (optionally ``"sha256:<hex>"``) of the file, or the root digest of
        a directory.
    :param manifest_path: an ``aisec.manifest/v2`` (or v1) file.
    :param signature_path: detached signature of the manifest (default ``<manifest>.sig`` when a key is
        given or ``require_signature`` is set).
    :param verify_key: key to check the signature with; required when a signature is checked.
    :param require_signature: refuse an unsigned manifest.
    :param bundle_path: an OpenSSF model-signing bundle over ``path``; verified with ``verify_key`` (an
        ECDSA public key), which it always needs.
    """
    if sum(x is not None for x in (expected_digest, manifest_path, bundle_path)) != 1:
        raise AisecInputError("give exactly one of expected_digest, manifest_path or bundle_path")
    report = Report.start("integrity", str(path), tags=list(TAGS))
    report.details["mode"] = "verify"
    if bundle_path is not None:
        return _verify_bundle(report, path, bundle_path, verify_key)
    if expected_digest is not None:
        return _verify_digest(report, path, expected_digest, algorithm, workers, follow_symlinks)

    assert manifest_path is not None
    manifest_data = _read_evidence(manifest_path, "manifest")
    report.details["manifest_path"] = os.fspath(manifest_path)
    check_signature = require_signature or signature_path is not None or verify_key is not None
    if check_signature:
        signature_path = signature_path or os.fspath(manifest_path) + ".sig"
        if verify_key is None:
            raise AisecInputError("a signature check needs a verification key (public key or HMAC secret)")
        signature_doc = signing.parse_signature(_read_evidence(signature_path, "signature"), str(signature_path))
        ok, reason = signing.verify(manifest_data, signature_doc, verify_key)
        report.details.update(signature_path=os.fspath(signature_path), signature_valid=ok, key_id=verify_key.key_id)
        report.add_tags(*SIGNED_TAGS)
        if not ok:
            report.add_finding(
                "AISEC-INT-BAD-SIGNATURE",
                "critical",
                "Manifest signature is not valid",
                str(signature_path),
                {"reason": reason},
            )
            return report.finish("fail", f"manifest signature rejected: {reason}")
    manifest = Manifest.from_bytes(manifest_data, f"manifest {manifest_path}")
    return _verify_manifest(report, path, manifest, workers, follow_symlinks)


def _verify_bundle(report: Report, path: Any, bundle_path: Any, key: signing.VerifyKey | None) -> Report:
    from airflow_aisec.core import model_signing

    if key is None or key.algorithm != signing.ECDSA:
        raise AisecInputError("a model-signing bundle verifies with an ECDSA public key (P-256/384/521 PEM)")
    ok, reason = model_signing.verify_model(path, bundle_path, public_key_pem=key._material)
    report.details.update(
        signature_format=model_signing.FORMAT,
        signature_path=os.fspath(bundle_path),
        signature_valid=ok,
        key_id=key.key_id,
        # the digest the bundle's statement names (its subject): verified on pass, only claimed on fail
        subject_digest=model_signing.bundle_subject_digest(bundle_path),
    )
    report.add_tags(*SIGNED_TAGS)
    if not ok:
        report.add_finding(
            "AISEC-INT-BAD-SIGNATURE",
            "critical",
            "Model-signing bundle is not valid",
            str(bundle_path),
            {"reason": reason},
        )
        return report.finish("fail", f"model-signing bundle rejected: {reason}")
    return report.finish("pass", "model-signing bundle verified: signature valid and every file matches")


def _verify_digest(
    report: Report, path: Any, expected: str, algorithm: str, workers: int | None, follow_symlinks: bool
) -> Report:
    algorithm, expected_hex = _normalise_digest(expected, algorithm)
    specials: dict[str, str] = {}
    observe: dict[str, Any] = {}
    manifest = hashing.hash_manifest(
        path,
        algorithm,
        workers,
        follow_symlinks=follow_symlinks,
        on_special=specials.__setitem__,
        observe=observe,
    )
    actual = manifest.artifact_digest
    report.details.update(algorithm=algorithm, expected_digest=expected_hex, digest=actual, kind=manifest.kind)
    report.metrics.update(files=manifest.file_count, bytes=manifest.total_bytes, special=len(specials))
    for rel, kind in sorted(specials.items()):
        report.add_finding(
            "AISEC-INT-SPECIAL", "high", f"Special file ({kind}) in the artifact; never opened", rel, {"type": kind}
        )
    if actual != expected_hex:
        details: dict[str, Any] = {"algorithm": algorithm, "expected": expected_hex, "actual": actual}
        if manifest.kind == "directory" and expected_hex == hashing.root_digest(manifest.entries, algorithm, version=1):
            details["hint"] = (
                "the expected value is a legacy v1 root digest, which is ambiguous and no longer accepted: "
                "verify against the manifest, or re-hash the artifact"
            )
        report.add_finding(
            "AISEC-INT-DIGEST-MISMATCH",
            "critical",
            f"{str(manifest.kind).capitalize()} digest does not match",
            str(path),
            details,
        )
        return report.finish("fail", f"digest mismatch: expected {algorithm}:{expected_hex[:16]}…, got {actual[:16]}…")
    if observe.get("tree_preimage"):
        report.add_finding(
            "AISEC-INT-AMBIGUOUS",
            "critical",
            "File content is an encoded directory tree: it could stand in for a directory's root digest",
            str(path),
            {"algorithm": algorithm},
        )
        return report.finish("fail", "refused: the file's content starts with the root-digest tag")
    if specials:
        return report.finish("fail", f"{len(specials)} special file(s) in the artifact (never opened)")
    return report.finish("pass", f"{manifest.kind} verified: {algorithm}:{actual[:16]}… matches")


def _entry_key(e: dict[str, Any]) -> tuple[str, int, str, str | None]:
    return (str(e.get("type") or "file"), int(e["size"]), str(e["digest"]), e.get("link"))


def compare_trees(expected: Manifest | dict[str, Any], current: Manifest | dict[str, Any]) -> dict[str, list[str]]:
    """Differences between a parsed manifest and a freshly built one, by path; every entry is checked.

    :return: ``added``, ``removed``, ``changed`` (content, size or link target) and ``type_changed``
        (file / symlink / directory), each a sorted list of paths, and ``kind`` (``["file→directory"]``
        when the artifact itself changed kind).
    """

    expected = expected.to_dict() if isinstance(expected, Manifest) else expected
    current = current.to_dict() if isinstance(current, Manifest) else current

    def table(m: dict[str, Any], with_dirs: bool) -> dict[str, tuple[str, int, str, str | None]]:
        out = {str(e["path"]): _entry_key(e) for e in m["entries"]}
        if with_dirs:
            out.update({str(d): ("dir", 0, "", None) for d in m.get("directories") or ()})
        return out

    with_dirs = expected.get("directories") is not None  # v1 manifests did not record directories
    exp, cur = table(expected, with_dirs), table(current, with_dirs)
    common = set(exp) & set(cur)
    type_changed = sorted(p for p in common if exp[p][0] != cur[p][0])
    return {
        "added": sorted(set(cur) - set(exp)),
        "removed": sorted(set(exp) - set(cur)),
        "type_changed": type_changed,
        "changed": sorted(p for p in common if exp[p] != cur[p] and p not in type_changed),
        "kind": [f"{expected.get('kind')}→{current.get('kind')}"]
        if expected.get("kind") is not None and expected.get("kind") != current.get("kind")
        else [],
    }


def _add_entry_findings(
    report: Report,
    manifest: Manifest,
    current: Manifest,
    *,
    added: list[str],
    removed: list[str],
    changed: list[str],
    retyped: list[str],
) -> None:
    """One finding per added, removed, retyped and changed entry (with both digests and sizes)."""
    expected = {e.path: e for e in manifest.entries}
    actual = {e.path: e for e in current.entries}
    for rel in added:
        size = actual[rel].size if rel in actual else 0
        report.add_finding("AISEC-INT-ADDED", "high", "Entry not in the manifest", rel, {"size": size})
    for rel in removed:
        report.add_finding("AISEC-INT-REMOVED", "high", "Entry in the manifest is missing", rel)
    for rel in retyped:
        report.add_finding("AISEC-INT-TYPE-CHANGED", "critical", "Entry type differs from the manifest", rel)
    for rel in changed:
        report.add_finding(
            "AISEC-INT-CHANGED",
            "critical",
            "File content differs from the manifest",
            rel,
            {
                "expected": expected[rel].digest,
                "actual": actual[rel].digest,
                "expected_size": expected[rel].size,
                "actual_size": actual[rel].size,
            },
        )


def _verify_manifest(
    report: Report, path: Any, manifest: Manifest, workers: int | None, follow_symlinks: bool
) -> Report:
    algorithm = manifest.algorithm
    unreadable: dict[str, str] = {}
    specials: dict[str, str] = {}
    current = hashing.hash_manifest(
        path,
        algorithm,
        workers,
        follow_symlinks=follow_symlinks,
        on_unreadable=lambda rel, exc: unreadable.__setitem__(rel, str(exc)),
        on_special=specials.__setitem__,
    )
    diff = compare_trees(manifest, current)
    # a file that could not be read is neither "added" nor "changed": it is reported as unreadable
    added = [p for p in diff["added"] if p not in unreadable and p not in specials]
    removed = [p for p in diff["removed"] if p not in unreadable and p not in specials]
    changed = diff["changed"]
    type_changed = diff["type_changed"]
    for kind in diff["kind"]:
        report.add_finding(
            "AISEC-INT-KIND-CHANGED", "critical", f"Artifact kind changed ({kind})", str(path), {"change": kind}
        )
    _add_entry_findings(report, manifest, current, added=added, removed=removed, changed=changed, retyped=type_changed)
    for rel, kind in sorted(specials.items()):
        report.add_finding(
            "AISEC-INT-SPECIAL", "high", f"Special file ({kind}) in the artifact; never opened", rel, {"type": kind}
        )
    for rel, reason in sorted(unreadable.items()):
        report.add_finding("AISEC-INT-UNREADABLE", "high", "File could not be read", rel, {"reason": reason})
    report.details.update(
        algorithm=algorithm,
        manifest_version=manifest.version,
        digest=manifest.artifact_digest,
        added=added,
        removed=removed,
        changed=changed,
        type_changed=type_changed,
        special=sorted(specials),
        unreadable=sorted(unreadable),
    )
    report.metrics.update(
        files=current.file_count,
        bytes=current.total_bytes,
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        type_changed=len(type_changed),
        special=len(specials),
        unreadable=len(unreadable),
    )
    if added or removed or changed or type_changed or specials or diff["kind"]:
        return report.finish(
            "fail",
            f"artifact differs from its manifest: {len(changed)} changed, {len(added)} added, "
            f"{len(removed)} removed, {len(type_changed)} type changed"
            + (f", {len(specials)} special" if specials else "")
            + (f", kind {diff['kind'][0]}" if diff["kind"] else "")
            + (f", {len(unreadable)} unreadable" if unreadable else ""),
        )
    if unreadable:
        return report.finish(
            "error", f"cannot verify: {len(unreadable)} file(s) unreadable ({', '.join(sorted(unreadable)[:3])})"
        )
    signed = " (signature valid)" if report.details.get("signature_valid") else ""
    return report.finish("pass", f"{current.file_count} file(s) match the manifest{signed}")
