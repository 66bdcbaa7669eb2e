"""Dataset provenance: source allowlist, version pinning, known-good digests, and in-toto statements.

:func:`verify_dataset` decides whether a dataset may be used for training and, when it may, records
*what exactly* was used as an `in-toto Statement v1 <https://github.com/in-toto/attestation>`_ with a
`SLSA v1 provenance <https://slsa.dev/spec/v1.0/provenance>`_ predicate. Every check fails closed,
with a finding naming the cause:

==========================  =====================================================================
finding id                  cause
==========================  =====================================================================
``AISEC-PROV-SOURCE``       the dataset URI is outside the source allowlist (nothing is read)
``AISEC-PROV-UNPINNED``     a pinned version is required but the dataset URI does not pin one
``AISEC-PROV-MISSING``      the data (or the pinned version) is missing or unreadable
``AISEC-PROV-SIGNATURE``    the manifest signature does not verify (or is required and absent)
``AISEC-PROV-DIGEST``       the dataset's digest differs from the known-good digest
``AISEC-PROV-MANIFEST``     the dataset differs from the (signed) manifest: every entry is compared
                            (added, removed, changed, type changed, file vs directory)
``AISEC-PROV-LINK``         a local dataset holds a symlink, a hard-linked file (more than one
                            name for the inode) or a mount point: content that may live outside
                            the allowlisted folder
``AISEC-PROV-SPECIAL``      a local dataset holds a FIFO, socket or device (never opened)
==========================  =====================================================================

What "pinned" means (``require_version=True``):

* **S3 objects** — the URI carries an object version, ``s3://bucket/key?versionId=…`` (or
  ``version_id=``), or an expected ``etag``. The object is then read *at that version* (``VersionId``
  / ``IfMatch``), so overwriting the key later cannot change what was verified; the observed
  VersionId and ETag go into the statement's ``resolvedDependencies``. An unversioned bucket cannot
  satisfy a VersionId pin: its objects only have the mutable ``null`` version, refused as unpinned.
  An ETag pin alone proves the content (for single-part uploads the ETag is the MD5) but not that it
  stays retrievable; prefer VersionId.
* **Local files and folders** — a path has no server-side version; the pin is content-addressed:
  the known-good digest or the (signed) manifest, which :func:`verify_dataset` always requires.
  ``require_version`` is therefore always satisfied locally and the statement records
  ``version = "sha256:<digest>"``.

No Airflow import: the operator resolves connections and passes a boto3 client; the CLI uses local
paths (and ``s3://`` through boto3's default credential chain). Hashing and signatures come from
:mod:`airflow_aisec.core.hashing` / ``signing``.

Layout: :mod:`.sources` (URIs, the allowlist, reading datasets), :mod:`.statements` (in-toto
statements), :mod:`.verify` (the registered verification steps and :func:`verify_dataset`).
"""

from __future__ import annotations

from airflow_aisec.core.provenance.sources import (
    Dataset,
    DatasetURI,
    LocalDataset,
    S3Object,
    allowed_source,
    open_dataset,
    parse_uri,
)
from airflow_aisec.core.provenance.statements import (
    DATASET_BUILD_TYPE,
    MODEL_BUILD_TYPE,
    SLSA_PROVENANCE_V1,
    STATEMENT_TYPE,
    build_statement,
    canonical_json,
    default_builder_id,
    now_rfc3339,
    validate_statement,
    write_statement,
)
from airflow_aisec.core.provenance.verify import (
    PROVENANCE_TAGS,
    STEPS,
    ManifestInput,
    Verification,
    normalise_digest,
    verify_dataset,
)

__all__ = [
    "DATASET_BUILD_TYPE",
    "Dataset",
    "DatasetURI",
    "LocalDataset",
    "MODEL_BUILD_TYPE",
    "ManifestInput",
    "PROVENANCE_TAGS",
    "S3Object",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_TYPE",
    "STEPS",
    "Verification",
    "allowed_source",
    "build_statement",
    "canonical_json",
    "default_builder_id",
    "normalise_digest",
    "now_rfc3339",
    "open_dataset",
    "parse_uri",
    "validate_statement",
    "verify_dataset",
    "write_statement",
]
