"""Deciding whether a dataset may be used: the verification steps and :func:`verify_dataset`.

Each step is registered in :data:`STEPS` and runs in that order: allowed source, pinned version,
readable data, plain files only, manifest signature, known-good digest or manifest. The first step
that returns a finding refuses the dataset (status ``fail``, one critical finding); when every step
passes, an in-toto statement with a SLSA v1 provenance predicate records what exactly was accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.core.checks import CheckRegistry, Outcome
from airflow_aisec.core.provenance.sources import Dataset, DatasetURI, allowed_source, open_dataset, parse_uri
from airflow_aisec.core.provenance.statements import DATASET_BUILD_TYPE, build_statement, now_rfc3339, write_statement
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report

PROVENANCE_TAGS = ("OWASP-ML02", "AML.T0010.002", "AML.T0019", "AML.M0025")


def normalise_digest(value: str, algorithm: str = "sha256") -> str:
    """``"sha256:ABC…"`` / ``"abc…"`` → ``"abc…"`` (lowercase hex); checks the length for the algorithm."""
    text = str(value).strip().lower()
    if ":" in text:
        algo, _, text = text.partition(":")
        if algo != algorithm:
            raise AisecInputError(f"expected digest uses {algo!r}, the check uses {algorithm!r}")
    expected_len = hashlib.new(algorithm).digest_size * 2 if algorithm in hashlib.algorithms_available else None
    if not text or any(c not in "0123456789abcdef" for c in text) or (expected_len and len(text) != expected_len):
        raise AisecInputError(f"expected digest {value!r} is not a {algorithm} hex digest")
    return text


@dataclass
class ManifestInput:
    """A manifest and, optionally, its detached signature and the verifying key."""

    manifest: Mapping[str, Any] | str | os.PathLike[str]
    signature: str | os.PathLike[str] | bytes | None = None
    public_key: Any = None  # path / PEM text / signing.VerifyKey
    raw: bytes = field(default=b"", repr=False)

    def load(self) -> dict[str, Any]:
        from airflow_aisec.core import hashing

        if isinstance(self.manifest, Mapping):
            self.raw = hashing.manifest_bytes(dict(self.manifest))
            return hashing.parse_manifest(self.raw, "manifest")
        path = Path(self.manifest)
        if not os.path.lexists(path):
            raise AisecInputError(f"manifest {str(path)!r} does not exist")
        self.raw = hashing.read_evidence(path, f"manifest {str(path)!r}")  # never blocks on a FIFO, bounded
        return hashing.parse_manifest(self.raw, f"manifest {str(path)!r}")


def _verify_signature(manifest: ManifestInput) -> tuple[bool, str]:
    """Verify the manifest's detached signature (:mod:`airflow_aisec.core.signing`); ``(ok, reason)``.

    Checked over the exact manifest bytes, *before* the manifest's content is trusted.
    """
    from airflow_aisec.core import signing

    if manifest.public_key is None:
        raise AisecInputError("a manifest signature check needs public_key (Ed25519 PEM or HMAC secret file)")
    key = manifest.public_key
    verify_key = key if isinstance(key, signing.VerifyKey) else signing.load_verify_key(key)
    from airflow_aisec.core.hashing import read_evidence

    sig = manifest.signature
    if isinstance(sig, bytes):
        sig_bytes = sig
    else:
        assert sig is not None
        if not os.path.lexists(sig):
            return False, f"signature {sig!s} does not exist"
        sig_bytes = read_evidence(sig, f"signature {sig!s}", limit=signing.MAX_KEY_FILE_BYTES)
    # a malformed signature document is an input error (exit 2), not a verdict
    doc = signing.parse_signature(sig_bytes, f"signature {sig!s}" if not isinstance(sig, bytes) else "signature")
    return signing.verify(manifest.raw, doc, verify_key)


@dataclass
class Verification:
    """One dataset under verification: the request, and what the steps observed so far."""

    parsed: DatasetURI
    report: Report
    allow_sources: Sequence[str]
    expected: str | None  # normalised known-good digest (when no manifest)
    manifest: ManifestInput | None
    require_signature: bool
    require_version: bool
    etag: str | None
    s3_client: Any
    algorithm: str
    matched: str | None = None  # the allowlist entry admitting the source
    dataset: Dataset | None = None
    version: dict[str, Any] = field(default_factory=dict)
    subjects: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    observed: str | None = None  # the dataset's digest (hex)
    manifest_data: dict[str, Any] | None = None

    def refuse(self, fid: str, title: str, details: Mapping[str, Any] | None = None) -> Outcome:
        """A critical finding that stops the verification (every step fails closed)."""
        out = Outcome()
        out.add(fid, "critical", title, location=self.parsed.raw, details=dict(details or {}))
        return out


#: The verification steps, in order; the first one that returns a finding refuses the dataset.
STEPS = CheckRegistry[Verification]("provenance")


@STEPS.register("allowed_source", finds=("AISEC-PROV-SOURCE",))
def check_allowed_source(v: Verification) -> Outcome:
    """Finds a dataset URI outside the source allowlist (nothing is read); records the admitting entry."""
    v.matched = allowed_source(v.parsed, v.allow_sources)
    v.report.details["source"]["allowlist"] = list(v.allow_sources)
    if v.matched is None:
        return v.refuse(
            "AISEC-PROV-SOURCE",
            f"source {v.parsed.canonical} is outside the allowlist",
            {"allowlist": list(v.allow_sources)},
        )
    v.report.details["source"]["allowed_by"] = v.matched
    return Outcome()


@STEPS.register("pinned_version", finds=("AISEC-PROV-UNPINNED",))
def check_pinned_version(v: Verification) -> Outcome:
    """With ``require_version``: finds an object-store URI that pins no VersionId/ETag, or pins the
    mutable ``null`` version of an unversioned bucket (local paths are pinned by content)."""
    parsed = v.parsed
    if v.require_version and parsed.scheme != "file" and not (parsed.version_id or v.etag):
        return v.refuse(
            "AISEC-PROV-UNPINNED",
            f"version not pinned: {parsed.raw} names no VersionId/ETag and require_version is set",
            {"hint": "use s3://bucket/key?versionId=… or pass an expected etag"},
        )
    if v.require_version and parsed.version_id == "null" and not v.etag:
        return v.refuse(  # the "null" version of an unversioned / suspended bucket can be overwritten
            "AISEC-PROV-UNPINNED",
            f"version not pinned: {parsed.raw} names the mutable 'null' version (bucket versioning off?)",
        )
    return Outcome()


@STEPS.register("readable_data", finds=("AISEC-PROV-MISSING", "AISEC-PROV-UNPINNED"))
def check_readable_data(v: Verification) -> Outcome:
    """Reads and hashes the dataset (building the S3 client only now, so a refused URI never touches
    credentials). Finds missing or unreadable data, a dataset with no files, and a pinned VersionId
    on a bucket without object versions (unpinned)."""
    if callable(v.s3_client) and v.parsed.scheme != "file":
        v.s3_client = v.s3_client()  # a factory: build the client only once the data will be read
    try:
        v.dataset = open_dataset(v.parsed.raw, s3_client=v.s3_client, etag=v.etag)
        v.version = v.dataset.version_info()
        if v.require_version and v.parsed.version_id and not v.version.get("version_id"):
            return v.refuse(
                "AISEC-PROV-UNPINNED",
                f"version not pinned: {v.parsed.raw} has no object versions (bucket versioning off?)",
                {"version": v.version},
            )
        v.subjects = v.dataset.subjects(v.algorithm)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        return v.refuse("AISEC-PROV-MISSING", f"missing or unreadable data: {exc}")
    except OSError as exc:
        return v.refuse("AISEC-PROV-MISSING", f"missing or unreadable data: {exc}")
    v.files = [s for s in v.subjects if not s.get("root")]
    root = next((s for s in v.subjects if s.get("root")), None)
    v.observed = (root or v.files[0])["digest"][v.algorithm] if (root or v.files) else None
    if v.observed is None:
        return v.refuse("AISEC-PROV-MISSING", f"dataset {v.parsed.raw} contains no files")
    return Outcome()


@STEPS.register("plain_files", finds=("AISEC-PROV-SPECIAL", "AISEC-PROV-LINK", "AISEC-PROV-DIGEST"))
def check_plain_files(v: Verification) -> Outcome:
    """Finds, in a local dataset, special files (FIFO, socket, device; never opened), symlinks,
    hard-linked files and mount points (content that may live outside the allowlist), and a single
    file whose content starts with the root-digest tag (it could stand in for a directory's digest).
    When none: records the observed digest, files and version in the report."""
    algorithm, observed, report = v.algorithm, v.observed, v.report
    refused = getattr(v.dataset, "refused", {}) or {}
    report.metrics.update({f"refused_{k}": len(vals) for k, vals in refused.items()})
    if refused.get("special"):
        return v.refuse(
            "AISEC-PROV-SPECIAL",
            f"dataset holds {len(refused['special'])} special file(s) (never opened): {refused['special'][0]}",
            {"special": refused["special"][:100]},
        )
    for key, what in (
        ("symlinks", "symlink(s)"),
        ("hardlinks", "hard-linked file(s)"),
        ("mounts", "entries on another filesystem (mount points)"),
    ):
        if refused.get(key):
            return v.refuse(
                "AISEC-PROV-LINK",
                f"dataset holds {len(refused[key])} {what}, which may bring in content from outside the "
                f"allowlist: {refused[key][0]}",
                {key: refused[key][:100]},
            )
    if refused.get("tree_preimage") and v.expected is not None:
        return v.refuse(
            "AISEC-PROV-DIGEST",
            "the file's content starts with the root-digest tag: it could stand in for a directory's digest",
        )
    if v.parsed.scheme == "file":
        v.version = {**v.version, "version": f"{algorithm}:{observed}"}
    report.details["observed"] = {"digest": f"{algorithm}:{observed}", "files": v.files, "version": v.version}
    report.metrics["files"] = len(v.files)
    report.metrics["bytes"] = sum(int(s.get("size") or 0) for s in v.files)
    return Outcome()


@STEPS.register("manifest_signature", finds=("AISEC-PROV-SIGNATURE",))
def check_manifest_signature(v: Verification) -> Outcome:
    """With a manifest: finds a detached signature that does not verify over the manifest's exact
    bytes, a configured key without a signature, or no signature when ``require_signature`` is set."""
    manifest = v.manifest
    if manifest is None:
        return Outcome()
    v.manifest_data = manifest.load()
    if manifest.signature is None and manifest.public_key is not None:
        if isinstance(manifest.manifest, Mapping):  # no file to find a <manifest>.sig beside
            return v.refuse("AISEC-PROV-SIGNATURE", "a key is configured but no manifest signature was given")
        manifest.signature = f"{os.fspath(manifest.manifest)}.sig"  # a configured key requires the signature
    if manifest.signature is not None:
        ok, reason = _verify_signature(manifest)
        v.report.details["signature"] = {"verified": ok, "reason": reason}
        if not ok:
            return v.refuse("AISEC-PROV-SIGNATURE", f"bad manifest signature: {reason}")
    elif v.require_signature:
        return v.refuse("AISEC-PROV-SIGNATURE", "manifest signature required but none was given")
    return Outcome()


@STEPS.register("known_good", finds=("AISEC-PROV-MANIFEST", "AISEC-PROV-DIGEST"))
def check_known_good(v: Verification) -> Outcome:
    """Finds a dataset that differs from its known-good reference: with a manifest, every entry is
    compared (added, removed, changed, type changed, file vs directory); else the dataset's digest is
    compared (constant time) with the expected digest."""
    algorithm, observed = v.algorithm, v.observed
    assert observed is not None
    if v.manifest is not None:
        assert v.manifest_data is not None
        current = getattr(v.dataset, "manifest", None) or _single_object_manifest(v.files, algorithm)
        mismatches = _compare_manifest(v.manifest_data, current, algorithm)
        v.report.details["manifest"] = {
            "root_digest": v.manifest_data.get("root_digest"),
            "entries": len(v.manifest_data["entries"]),
        }
        if mismatches:
            return v.refuse(
                "AISEC-PROV-MANIFEST",
                f"manifest mismatch: {len(mismatches)} difference(s), first: {mismatches[0]['path']} "
                f"{mismatches[0]['kind']}",
                {"differences": mismatches[:100]},
            )
        return Outcome()
    expected = v.expected
    assert expected is not None
    if not hmac.compare_digest(observed, expected):
        return v.refuse(
            "AISEC-PROV-DIGEST",
            f"digest mismatch: {algorithm}:{observed[:16]}… != known-good {algorithm}:{expected[:16]}…",
            {"observed": f"{algorithm}:{observed}", "expected": f"{algorithm}:{expected}"},
        )
    return Outcome()


def verify_dataset(
    uri: str,
    *,
    allow_sources: Sequence[str],
    expected_digest: str | None = None,
    manifest: ManifestInput | None = None,
    require_signature: bool = False,
    require_version: bool = False,
    etag: str | None = None,
    s3_client: Any = None,
    algorithm: str = "sha256",
    builder_id: str | None = None,
    invocation_id: str | None = None,
    statement_path: str | os.PathLike[str] | None = None,
    statement_signing_key: Any = None,
    external_parameters: Mapping[str, Any] | None = None,
) -> tuple[Report, dict[str, Any] | None]:
    """Verify a dataset's provenance (findings: :mod:`airflow_aisec.core.provenance`); return ``(report, statement or None)``.

    The statement is built (and written to ``statement_path`` atomically, its digest in
    ``report.details["statement"]``) only when every check passes: a statement attests to data that
    was accepted, never to refused data. The report's ``details.observed`` holds the observed
    digests and version either way.

    :param statement_signing_key: sign the written statement with this
        :class:`~airflow_aisec.core.signing.SigningKey`: a DSSE envelope ``<statement>.dsse.json``
        (Ed25519 or ECDSA key) and the legacy ``<statement>.sig`` (Ed25519 or HMAC key).
    :param s3_client: a boto3 S3 client, or a zero-argument factory returning one (called only
        after the allowlist and pin checks pass, so a refused URI never touches credentials).
    :raises AisecInputError: bad arguments (empty allowlist, no expected digest/manifest, bad digest).
    """
    started = now_rfc3339()
    if not allow_sources:
        raise AisecInputError("allow_sources is empty: list the URI prefixes/buckets/hosts datasets may come from")
    if (expected_digest is None) == (manifest is None):
        raise AisecInputError("give exactly one of expected_digest or manifest (the known-good reference)")
    expected = normalise_digest(expected_digest, algorithm) if expected_digest is not None else None
    parsed = parse_uri(uri)
    if statement_path is not None and parsed.scheme == "file":
        from airflow_aisec.core.integrity import refuse_output_inside

        refuse_output_inside(statement_path, parsed.path, "statement")
        refuse_output_inside(f"{statement_path}.sig", parsed.path, "statement signature")
        refuse_output_inside(f"{statement_path}.dsse.json", parsed.path, "statement DSSE envelope")
    report = Report.start("provenance", parsed.raw, tags=list(PROVENANCE_TAGS))
    report.details["source"] = {"uri": parsed.raw, "canonical": parsed.canonical}
    v = Verification(
        parsed=parsed,
        report=report,
        allow_sources=allow_sources,
        expected=expected,
        manifest=manifest,
        require_signature=require_signature,
        require_version=require_version,
        etag=etag,
        s3_client=s3_client,
        algorithm=algorithm,
    )
    for step in STEPS:
        refusal = step(v)
        if refusal.findings:  # the first refusal decides: nothing after it runs
            report.findings.extend(refusal.findings)
            return report.finish("fail", f"refused: {refusal.findings[0].title}"), None

    statement = _attest(
        v,
        external_parameters=external_parameters,
        builder_id=builder_id,
        invocation_id=invocation_id,
        started_on=started,
    )
    if statement_path is not None:
        report.details["statement"] = write_statement(statement_path, statement, statement_signing_key)
        if statement_signing_key is not None:
            report.add_tags("AML.M0013")
    report.metrics["verified"] = 1
    assert v.observed is not None
    return report.finish(
        "pass", f"verified {algorithm}:{v.observed[:16]}… from {v.matched} ({len(v.files)} file(s))"
    ), statement


def _attest(
    v: Verification,
    *,
    external_parameters: Mapping[str, Any] | None,
    builder_id: str | None,
    invocation_id: str | None,
    started_on: str,
) -> dict[str, Any]:
    """The SLSA-style record of an accepted dataset: an in-toto statement naming every file's digest,
    the source and its observed version as the resolved dependency, and the checks' parameters."""
    algorithm, version = v.algorithm, v.version
    assert v.observed is not None
    dependency: dict[str, Any] = {"uri": v.parsed.canonical, "digest": {algorithm: v.observed}}
    annotations = {
        k: val for k, val in version.items() if k in ("version_id", "etag", "last_modified", "version") and val
    }
    if annotations:
        dependency["annotations"] = annotations
    ext = {
        "source": v.parsed.raw,
        "allowlist": list(v.allow_sources),
        "requireVersion": v.require_version,
        "expected": {"digest": f"{algorithm}:{v.expected}"}
        if v.expected
        else {"manifest": v.report.details["manifest"]},
    }
    ext.update(dict(external_parameters or {}))
    return build_statement(
        subjects=[{"name": f["name"], "digest": f["digest"]} for f in v.files],
        build_type=DATASET_BUILD_TYPE,
        external_parameters=ext,
        resolved_dependencies=[dependency],
        builder_id=builder_id,
        invocation_id=invocation_id,
        started_on=started_on,
    )


def _single_object_manifest(files: Sequence[Mapping[str, Any]], algorithm: str) -> dict[str, Any]:
    """The manifest an object-storage dataset (one object) would have."""
    entries = [
        {"path": str(f["name"]), "type": "file", "size": int(f.get("size") or 0), "digest": f["digest"][algorithm]}
        for f in files
    ]
    return {"kind": "file", "entries": entries, "directories": []}


def _compare_manifest(manifest: Mapping[str, Any], current: Mapping[str, Any], algorithm: str) -> list[dict]:
    """Every difference between the manifest and the observed dataset (nothing is skipped).

    Added, removed and changed entries, entry type changes (file / symlink / directory) and a kind
    change (a file where the manifest describes a directory, or the reverse) are all differences. A
    single-file dataset matches only a single-file manifest whose entry has the file's name.
    """
    from airflow_aisec.core.integrity import compare_trees

    m_algo = str(manifest.get("algorithm") or algorithm)
    if m_algo != algorithm:
        raise AisecInputError(f"manifest uses {m_algo!r}, the check uses {algorithm!r}")
    diff = compare_trees(dict(manifest), dict(current))
    expected = {str(e["path"]): e for e in manifest["entries"]}
    seen = {str(e["path"]): e for e in current["entries"]}
    diffs: list[dict[str, Any]] = [{"path": ".", "kind": f"kind changed ({k})"} for k in diff["kind"]]
    diffs += [{"path": p, "kind": "missing"} for p in diff["removed"]]
    diffs += [{"path": p, "kind": "type changed"} for p in diff["type_changed"]]
    diffs += [
        {"path": p, "kind": "changed", "expected": expected[p]["digest"], "observed": seen[p]["digest"]}
        for p in diff["changed"]
    ]
    diffs += [{"path": p, "kind": "added"} for p in diff["added"]]
    return diffs
