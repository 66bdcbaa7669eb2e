"""in-toto Statement v1 with a SLSA v1 provenance predicate: build, write (atomically, optionally signed), validate."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_aisec.exceptions import AisecInputError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
#: ``buildType`` of dataset-verification statements (documented in docs/provenance.md).
DATASET_BUILD_TYPE = "https://airflow-aisec.dev/buildtypes/dataset-verification/v1"
#: ``buildType`` of model-training statements written by the secured training DAG.
MODEL_BUILD_TYPE = "https://airflow-aisec.dev/buildtypes/model-training/v1"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_builder_id() -> str:
    """A builder id for this machine when no Airflow deployment URL is configured."""
    return f"airflow://{socket.getfqdn() or 'localhost'}"


# ----------------------------------------------------------------------------- statements
def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, 2-space indent, UTF-8, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def build_statement(
    *,
    subjects: Sequence[Mapping[str, Any]],
    build_type: str,
    external_parameters: Mapping[str, Any],
    resolved_dependencies: Sequence[Mapping[str, Any]] = (),
    internal_parameters: Mapping[str, Any] | None = None,
    builder_id: str | None = None,
    invocation_id: str | None = None,
    started_on: str | None = None,
    finished_on: str | None = None,
    byproducts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA v1 provenance predicate.

    :param subjects: ``[{"name", "digest": {"sha256": hex}}]`` — what the statement is about.
    :param resolved_dependencies: SLSA ResourceDescriptors (``uri``, ``digest``, ``name``, ``annotations``).
    """
    from airflow_aisec import __version__

    subject_list = []
    for s in subjects:
        if not s.get("name") or not s.get("digest"):
            raise AisecInputError("every statement subject needs a name and a digest")
        subject_list.append({"name": str(s["name"]), "digest": {k: str(v) for k, v in dict(s["digest"]).items()}})
    metadata: dict[str, Any] = {}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    metadata["startedOn"] = started_on or now_rfc3339()
    metadata["finishedOn"] = finished_on or now_rfc3339()
    internal = {"tool": {"name": "airflow-aisec", "version": __version__}}
    internal.update(dict(internal_parameters or {}))
    run_details: dict[str, Any] = {
        "builder": {"id": builder_id or default_builder_id(), "version": {"airflow-aisec": __version__}},
        "metadata": metadata,
    }
    if byproducts:
        run_details["byproducts"] = [dict(b) for b in byproducts]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject_list,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": dict(external_parameters),
                "internalParameters": internal,
                "resolvedDependencies": [dict(d) for d in resolved_dependencies],
            },
            "runDetails": run_details,
        },
    }


def write_statement(
    path: str | os.PathLike[str], statement: Mapping[str, Any], signing_key: Any = None, *, dsse: bool | None = None
) -> dict[str, Any]:
    """Write ``statement`` atomically as canonical JSON; return ``{"path", "sha256"}`` of the bytes written.

    With ``signing_key`` (a :class:`airflow_aisec.core.signing.SigningKey`):

    - ``dsse`` (default ``True`` for an Ed25519 or ECDSA key): a DSSE envelope over exactly those
      bytes (``payloadType`` ``application/vnd.in-toto+json``) is written to ``<path>.dsse.json``;
      in-toto, sigstore and securesystemslib verify it.
    - an Ed25519 or HMAC key also writes the detached ``aisec.signature/v1`` signature ``<path>.sig``
      that earlier releases wrote (still read by older verifiers); an HMAC secret writes only that,
      since nobody else could verify a DSSE envelope signed with a shared secret.
    """
    from airflow_aisec.core import signing as sig
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    data = canonical_json(statement)
    write_bytes_atomic(path, data)
    out: dict[str, Any] = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    if signing_key is None:
        return out
    use_dsse = signing_key.algorithm != "hmac-sha256" if dsse is None else dsse
    if signing_key.algorithm in sig.SIGN_ALGORITHMS:
        signature = sig.sign(data, signing_key)
        write_json_atomic(f"{path}.sig", signature)
        out.update(signature_path=f"{path}.sig", key_id=signature["key_id"], signature_algorithm=signature["algorithm"])
    if use_dsse:
        from airflow_aisec.core.dsse import sign_envelope

        write_json_atomic(f"{path}.dsse.json", sign_envelope(data, signing_key))
        out.update(dsse_path=f"{path}.dsse.json", key_id=signing_key.key_id, signature_algorithm=signing_key.algorithm)
    elif signing_key.algorithm not in sig.SIGN_ALGORITHMS:
        raise AisecInputError("an ECDSA key signs statements in DSSE envelopes only: keep dsse=True")
    return out


def check_subjects(subjects: Any, what: str) -> None:
    """An in-toto statement's ``subject``: a non-empty list of ``{name, digest: {alg: hex}}``; ``what`` names it."""
    if not isinstance(subjects, list) or not subjects:
        raise AisecInputError(f"{what} needs at least one subject")
    for s in subjects:
        if (
            not isinstance(s, Mapping)
            or not s.get("name")
            or not isinstance(s.get("digest"), Mapping)
            or not s["digest"]
        ):
            raise AisecInputError(f"every {what} subject needs a name and a non-empty digest map")


def validate_statement(statement: Any) -> dict[str, Any]:
    """Structural check of an in-toto v1 statement with a SLSA v1 predicate; raise ``AisecInputError``."""
    if not isinstance(statement, Mapping):
        raise AisecInputError("statement must be a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise AisecInputError(f"statement _type must be {STATEMENT_TYPE!r}")
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        raise AisecInputError(f"statement predicateType must be {SLSA_PROVENANCE_V1!r}")
    check_subjects(statement.get("subject"), "statement")
    predicate = statement.get("predicate") or {}
    build = predicate.get("buildDefinition") or {}
    run = predicate.get("runDetails") or {}
    if not build.get("buildType") or "externalParameters" not in build:
        raise AisecInputError("SLSA predicate needs buildDefinition.buildType and externalParameters")
    if not (run.get("builder") or {}).get("id"):
        raise AisecInputError("SLSA predicate needs runDetails.builder.id")
    return dict(statement)
