"""``aisec provenance``: verify a dataset's source, version pin and known-good digest; write an in-toto statement.

Exit codes: 0 verified, 1 refused (outside allowlist, unpinned, mismatch, missing data, bad signature),
2 error (bad arguments, unreadable evidence).
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "provenance",
        help="verify a dataset's provenance (allowlist, version pin, digest/manifest); write an in-toto statement",
        description=(
            "Verify that DATA comes from an allowlisted source, is pinned when required and matches its "
            "known-good digest or (signed) manifest. On success, -o writes an in-toto Statement v1 with a "
            "SLSA v1 provenance predicate. Exit 0 verified, 1 refused, 2 error."
        ),
    )
    p.add_argument(
        "data", metavar="DATA", help="local file/folder or s3://bucket/key[?versionId=…] (boto3 credentials)"
    )
    p.add_argument(
        "--allow-source",
        metavar="PREFIX",
        action="append",
        required=True,
        help="allowed URI prefix / bucket / folder (repeatable)",
    )
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--digest", metavar="HEX", help="known-good digest (sha256:<hex> or hex)")
    ref.add_argument("--manifest", metavar="FILE", help="aisec.manifest/v2 (or v1) manifest to verify against")
    p.add_argument("--signature", metavar="FILE", help="detached signature of --manifest (default MANIFEST.sig)")
    p.add_argument("--public-key", metavar="FILE", help="Ed25519 public key (PEM) or HMAC secret file")
    p.add_argument("--require-version", action="store_true", help="refuse object-storage data without a version pin")
    p.add_argument("--etag", metavar="ETAG", help="S3 ETag pin (object read with If-Match)")
    p.add_argument("-o", "--output", metavar="STATEMENT", help="write the in-toto statement here when verified")
    p.add_argument(
        "--sign-key",
        metavar="FILE",
        help="sign the statement: DSSE envelope STATEMENT.dsse.json (Ed25519/ECDSA PEM) and legacy STATEMENT.sig",
    )
    p.add_argument("--vsa", metavar="FILE", help="record the decision as a SLSA Verification Summary Attestation")
    p.add_argument("--builder-id", metavar="URI", help="SLSA builder id (default airflow://<host>)")
    p.add_argument("--invocation-id", metavar="ID", help="SLSA invocation id (e.g. your CI job URL)")
    add_format_argument(p, ("text", "json", "markdown"))
    p.set_defaults(func=_provenance)


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")  # standard credential chain; AWS_ENDPOINT_URL(_S3) is honoured by boto3


def _provenance(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.provenance import ManifestInput, verify_dataset
        from airflow_aisec.exceptions import AisecInputError

        if args.digest and (args.signature or args.public_key):
            raise AisecInputError("--signature/--public-key apply to --manifest, not --digest")
        if args.signature and not args.public_key:
            raise AisecInputError("--signature needs --public-key")
        if args.sign_key and not (args.output or args.vsa):
            raise AisecInputError("--sign-key needs -o STATEMENT or --vsa FILE")
        signing_key = None
        if args.sign_key:
            from airflow_aisec.core.signing import load_signing_key

            signing_key = load_signing_key(args.sign_key)
        manifest = None
        if args.manifest:
            signature = args.signature or (f"{args.manifest}.sig" if args.public_key else None)
            manifest = ManifestInput(args.manifest, signature=signature, public_key=args.public_key)
        report, _ = verify_dataset(
            args.data,
            allow_sources=args.allow_source,
            expected_digest=args.digest,
            manifest=manifest,
            require_signature=bool(args.public_key),
            require_version=args.require_version,
            etag=args.etag,
            s3_client=_s3_client,
            builder_id=args.builder_id,
            invocation_id=args.invocation_id,
            statement_path=args.output,
            statement_signing_key=signing_key if args.output else None,
        )
        if not args.vsa:
            return report
        from airflow_aisec.core.vsa import record_decision

        dsse_key = signing_key if signing_key is not None and signing_key.algorithm != "hmac-sha256" else None
        evidence = [args.manifest, manifest.signature if manifest else None]
        return record_decision(
            report, args.vsa, check="provenance", resource=args.data, evidence=evidence, signing_key=dsse_key
        )

    return run_report(args, "provenance", args.data, build)
