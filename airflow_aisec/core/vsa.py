"""SLSA Verification Summary Attestations (VSA v1): record a verification decision, signed in DSSE.

A VSA is an in-toto Statement v1 whose predicate (``https://slsa.dev/verification_summary/v1``)
says who verified (``verifier.id``), when (``timeVerified``), which resource (``resourceUri``),
against which policy (``policy.uri`` and its digest), with which evidence (``inputAttestations``),
and the decision (``verificationResult`` ``PASSED``/``FAILED`` and ``verifiedLevels``). It records a
*decision* (a dataset provenance check, a model integrity check); what was *built* (the trained
model) stays in a SLSA build-provenance statement.

``verifiedLevels`` holds a custom result per check (``AISEC_MODEL_INTEGRITY_VERIFIED``,
``AISEC_DATASET_PROVENANCE_VERIFIED``) or ``FAILED``: these checks do not measure a SLSA build level,
and the specification lets verifiers use custom values that do not start with ``SLSA_``.

When the ``in-toto-attestation`` bindings are installed (the ``signing`` extra), the predicate is
parsed into their ``VerificationSummary`` message and the statement validated by their ``Statement``
type, so a misspelt field name or a malformed timestamp is an error, not a silent extension.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.exceptions import AisecInputError

VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: ``policy.uri`` of each check (documented in docs/integrity.md and docs/provenance.md).
POLICIES = {
    "integrity": "https://airflow-aisec.dev/policies/model-integrity/v1",
    "provenance": "https://airflow-aisec.dev/policies/dataset-provenance/v1",
}
LEVELS = {"integrity": "AISEC_MODEL_INTEGRITY_VERIFIED", "provenance": "AISEC_DATASET_PROVENANCE_VERIFIED"}
PREDICATE_FIELDS = (
    "verifier",
    "timeVerified",
    "resourceUri",
    "policy",
    "inputAttestations",
    "verificationResult",
    "verifiedLevels",
    "dependencyLevels",
    "slsaVersion",
)


def build_vsa(
    *,
    check: str,
    subjects: Sequence[Mapping[str, Any]],
    resource_uri: str,
    passed: bool,
    verifier_id: str | None = None,
    policy: Mapping[str, Any] | None = None,
    input_attestations: Sequence[Mapping[str, Any]] = (),
    time_verified: str | None = None,
) -> dict[str, Any]:
    """A VSA statement for ``check`` (``integrity`` or ``provenance``) about ``subjects``.

    :param subjects: ``[{"name", "digest": {"sha256": hex}}]``: what was verified.
    :param resource_uri: the URI of the verified resource (a path or object-storage URI).
    :param passed: the decision.
    :param policy: a ResourceDescriptor with at least ``uri`` (default: the check's policy URI).
    :param input_attestations: ResourceDescriptors (``uri`` + ``digest``) of the evidence used.
    """
    from airflow_aisec.core.provenance.statements import default_builder_id, now_rfc3339

    if check not in POLICIES:
        raise AisecInputError(f"unknown VSA check {check!r}; choose one of {sorted(POLICIES)}")
    subject_list = [
        {"name": str(s["name"]), "digest": {k: str(v) for k, v in dict(s["digest"]).items()}} for s in subjects
    ]
    predicate: dict[str, Any] = {
        "verifier": {"id": verifier_id or default_builder_id()},
        "timeVerified": time_verified or now_rfc3339(),
        "resourceUri": resource_uri,
        "policy": dict(policy or {"uri": POLICIES[check]}),
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [LEVELS[check]] if passed else ["FAILED"],
        "slsaVersion": "1.0",
    }
    if input_attestations:
        predicate["inputAttestations"] = [dict(a) for a in input_attestations]
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subject_list,
        "predicateType": VSA_PREDICATE_TYPE,
        "predicate": predicate,
    }
    return validate_vsa(statement)


def validate_vsa(statement: Any) -> dict[str, Any]:
    """Check a VSA statement's structure and field names against the v1 specification; ``AisecInputError``."""
    if not isinstance(statement, Mapping) or statement.get("_type") != STATEMENT_TYPE:
        raise AisecInputError(f"a VSA must be an in-toto statement ({STATEMENT_TYPE})")
    if statement.get("predicateType") != VSA_PREDICATE_TYPE:
        raise AisecInputError(f"VSA predicateType must be {VSA_PREDICATE_TYPE!r}")
    from airflow_aisec.core.provenance.statements import check_subjects

    check_subjects(statement.get("subject"), "VSA")
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        raise AisecInputError("a VSA needs a predicate object")
    unknown = sorted(set(predicate) - set(PREDICATE_FIELDS))
    if unknown:
        raise AisecInputError(f"VSA predicate has unknown field(s) {unknown[:5]}")
    for name in ("verifier", "timeVerified", "resourceUri", "policy", "verificationResult", "verifiedLevels"):
        if not predicate.get(name):
            raise AisecInputError(f"VSA predicate needs {name!r}")
    if not isinstance(predicate["verifier"], Mapping) or not predicate["verifier"].get("id"):
        raise AisecInputError("VSA verifier needs an id")
    if not isinstance(predicate["policy"], Mapping) or not predicate["policy"].get("uri"):
        raise AisecInputError("VSA policy needs a uri")
    if predicate["verificationResult"] not in ("PASSED", "FAILED"):
        raise AisecInputError("VSA verificationResult must be PASSED or FAILED")
    levels = predicate["verifiedLevels"]
    if not isinstance(levels, list) or not all(isinstance(x, str) for x in levels):
        raise AisecInputError("VSA verifiedLevels must be a list of strings")
    if (predicate["verificationResult"] == "FAILED") != (levels == ["FAILED"]):
        raise AisecInputError("VSA verifiedLevels must be ['FAILED'] exactly when verificationResult is FAILED")
    for a in predicate.get("inputAttestations") or []:
        if not isinstance(a, Mapping) or not a.get("digest"):
            raise AisecInputError("every VSA inputAttestation needs a digest")
    _validate_with_bindings(dict(statement))
    return dict(statement)


def _validate_with_bindings(statement: dict[str, Any]) -> None:
    """Parse through the in-toto-attestation bindings when installed (strict field names)."""
    try:
        from google.protobuf import json_format
        from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
        from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
        from in_toto_attestation.v1.statement import Statement
    except ImportError:
        return
    # The bindings (0.9.x) declare verifiedLevels as one string where the specification has an array
    # of SlsaResult: that one field is checked above, not by them.
    predicate = {k: v for k, v in statement["predicate"].items() if k != "verifiedLevels"}
    try:
        json_format.ParseDict(predicate, vsa_pb2.VerificationSummary())
        subjects = [ResourceDescriptor(name=s["name"], digest=dict(s["digest"])).pb for s in statement["subject"]]
        Statement(subjects, statement["predicateType"], statement["predicate"]).validate()
    except (json_format.ParseError, ValueError, TypeError, KeyError) as exc:
        raise AisecInputError(f"VSA does not validate against the in-toto attestation VSA type: {exc}") from None


def write_vsa(path: str | os.PathLike[str], statement: Mapping[str, Any], signing_key: Any = None) -> dict[str, Any]:
    """Write the VSA statement (canonical JSON) and, with an Ed25519/ECDSA key, its DSSE envelope
    ``<path>.dsse.json``; return ``{"path", "sha256", "verificationResult"[, "dsse_path"]}``."""
    from airflow_aisec.core.provenance.statements import canonical_json
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    validate_vsa(statement)
    data = canonical_json(statement)
    write_bytes_atomic(path, data)
    out: dict[str, Any] = {
        "path": os.fspath(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "verificationResult": statement["predicate"]["verificationResult"],
    }
    if signing_key is not None:
        from airflow_aisec.core.dsse import sign_envelope

        write_json_atomic(f"{os.fspath(path)}.dsse.json", sign_envelope(data, signing_key))
        out.update(dsse_path=f"{os.fspath(path)}.dsse.json", key_id=signing_key.key_id)
    return out


def _file_descriptor(path: Any) -> dict[str, Any] | None:
    """``{"uri", "digest": {"sha256"}}`` of an evidence file, or None when it cannot be read."""
    from airflow_aisec.core.hashing import read_evidence

    try:
        data = read_evidence(path, "evidence")
    except Exception:  # evidence that cannot be read is not listed (the decision stands on the report)
        return None
    return {"uri": os.fspath(path), "digest": {"sha256": hashlib.sha256(data).hexdigest()}}


def vsa_for_report(report: Any, *, check: str, resource: str, evidence: Sequence[Any] = ()) -> dict[str, Any] | None:
    """A VSA recording the decision of a ``pass``/``fail`` ``report``; None for ``error`` (no decision).

    The subject is the verified artifact with the digest the report names (``details.subject_digest``,
    ``details.digest`` with ``details.algorithm``, or a provenance report's ``details.observed.digest``);
    a report without one (e.g. a dataset refused before it was read) gives None.
    """
    if report.status not in ("pass", "fail"):
        return None
    details = report.details
    digest: dict[str, str] | None = details.get("subject_digest")
    if not digest and details.get("digest"):
        digest = {str(details.get("algorithm") or "sha256"): str(details["digest"])}
    observed = (details.get("observed") or {}).get("digest")  # provenance reports: "alg:hex"
    if not digest and isinstance(observed, str) and ":" in observed:
        algorithm, _, hexdigest = observed.partition(":")
        digest = {algorithm: hexdigest}
    if not digest:
        return None
    inputs = [d for d in (_file_descriptor(p) for p in evidence if p) if d]
    name = os.path.basename(str(resource).rstrip("/")) or str(resource)
    return build_vsa(
        check=check,
        subjects=[{"name": name, "digest": digest}],
        resource_uri=str(resource),
        passed=report.status == "pass",
        input_attestations=inputs,
    )


def record_decision(
    report: Any, vsa_path: Any, *, check: str, resource: str, evidence: Sequence[Any] = (), signing_key: Any = None
) -> Any:
    """Write the VSA of ``report``'s decision to ``vsa_path`` (+ DSSE envelope with a key); note it in the report.

    A report without a decision (``error``) or without a subject digest gets no VSA, and says so in
    ``details.vsa``; the report's status is never changed by this.
    """
    statement = vsa_for_report(report, check=check, resource=resource, evidence=evidence)
    if statement is None:
        report.details["vsa"] = {"path": None, "reason": "no decision to record (error, or no subject digest)"}
        return report
    report.details["vsa"] = write_vsa(vsa_path, statement, signing_key)
    return report
