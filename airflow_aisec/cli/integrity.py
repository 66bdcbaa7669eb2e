"""``aisec hash``, ``aisec verify`` and ``aisec keygen``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "hash",
        help="hash a file or directory; write (and sign) its manifest",
        description="Hash a file or every file of a directory (streamed, in parallel) and print the digest; with "
        "-o write an aisec.manifest/v2 manifest, signed with --sign-key. Exit 0 hashed, 2 unreadable input.",
    )
    p.add_argument("path", help="file, directory or URI (s3://… with fsspec credentials)")
    p.add_argument("-a", "--algorithm", default="sha256", help="sha256 (default), sha512, blake2b, blake3")
    p.add_argument("-o", "--output", metavar="MANIFEST", help="write the aisec.manifest/v2 manifest here")
    p.add_argument(
        "--sign-key",
        metavar="FILE",
        help="ECDSA P-256 (model-signing) or Ed25519 private key (PEM), or HMAC secret file",
    )
    p.add_argument(
        "--signature-format",
        choices=("auto", "model-signing", "aisec"),
        default="auto",
        help="model-signing bundle (ECDSA key) or legacy aisec.signature/v1 (Ed25519/HMAC); auto picks by key type",
    )
    p.add_argument("--bundle", metavar="FILE", help="where to write the model-signing bundle (default PATH.sig)")
    p.add_argument(
        "--sigstore-keyless",
        action="store_true",
        help="sign a model-signing bundle with Sigstore (needs the internet and SIGSTORE_ID_TOKEN); no key",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel hashing threads (default: one per CPU this process may use, at most 8)",
    )
    p.add_argument("--follow-symlinks", action="store_true", help="follow links that stay inside PATH")
    p.add_argument(
        "--partition",
        metavar="K/N",
        help="hash only partition K of N (balanced by bytes) and write a part for 'aisec manifest merge' to -o",
    )
    add_format_argument(p, ("text", "json", "markdown"))
    p.set_defaults(func=_hash)

    v = subparsers.add_parser(
        "verify",
        help="verify a file or directory against a digest or a (signed) manifest",
        description="Re-hash PATH and compare it with --digest or a manifest (and its signature when a key is "
        "given); every file is checked. Exit 0 match, 1 mismatch (changed, missing, extra file, bad signature), "
        "2 cannot decide (unreadable manifest, missing file).",
    )
    v.add_argument("path", help="file, directory or URI (s3://… with fsspec credentials) to verify")
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--digest", metavar="HEX", help="expected digest (file digest, or directory root digest)")
    src.add_argument("--manifest", metavar="FILE", help="aisec.manifest/v2 (or v1) manifest")
    src.add_argument("--bundle", metavar="FILE", help="OpenSSF model-signing bundle (needs --public-key, ECDSA)")
    v.add_argument("--signature", metavar="FILE", help="detached signature (default: MANIFEST.sig with a key)")
    v.add_argument("--public-key", metavar="FILE", help="ECDSA or Ed25519 public key (PEM), or HMAC secret file")
    v.add_argument("--vsa", metavar="FILE", help="record the decision as a SLSA Verification Summary Attestation")
    v.add_argument("--vsa-sign-key", metavar="FILE", help="sign the VSA in a DSSE envelope (FILE.dsse.json)")
    v.add_argument("-a", "--algorithm", default="sha256", help="algorithm of --digest (default sha256)")
    v.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parallel hashing threads (default: one per CPU this process may use, at most 8)",
    )
    v.add_argument("--follow-symlinks", action="store_true", help="follow links that stay inside PATH")
    add_format_argument(v, ("text", "json", "markdown"))
    v.set_defaults(func=_verify)

    k = subparsers.add_parser(
        "keygen",
        help="create a key pair for signing (Ed25519, or ECDSA P-256 for OpenSSF model-signing bundles)",
        description="Write a new private key (PEM, mode 0600) and its public key, for aisec hash --sign-key and "
        "aisec verify --public-key. Exit 0 written, 2 error (files exist without --force).",
    )
    k.add_argument("private_key", help="where to write the private key (PEM, mode 0600)")
    k.add_argument("public_key", help="where to write the public key (PEM)")
    k.add_argument(
        "--type",
        choices=("ed25519", "ecdsa-p256"),
        default="ed25519",
        help="ed25519 (aisec signatures, DSSE envelopes) or ecdsa-p256 (OpenSSF model-signing bundles)",
    )
    k.add_argument("--force", action="store_true", help="replace existing key files (default: refuse)")
    k.set_defaults(func=_keygen)


def _hash(args: argparse.Namespace) -> int:
    if args.partition is not None:
        return _hash_partition(args)

    def build() -> Any:
        from airflow_aisec.core.integrity import hash_artifact
        from airflow_aisec.core.signing import load_signing_key

        if args.sigstore_keyless:
            return _hash_keyless(args)

        key = load_signing_key(args.sign_key) if args.sign_key else None
        return hash_artifact(
            args.path,
            algorithm=args.algorithm,
            workers=args.workers,
            follow_symlinks=args.follow_symlinks,
            manifest_path=args.output,
            signing_key=key,
            signature_format=args.signature_format,
            bundle_path=args.bundle,
        )

    return run_report(args, "integrity", args.path, build)


def _hash_partition(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.partition import hash_partition_artifact
        from airflow_aisec.exceptions import AisecInputError

        if not args.output:
            raise AisecInputError("--partition needs -o PART (where the part is written)")
        if args.sign_key:
            raise AisecInputError(
                "--partition writes a part: sign the merged manifest (aisec manifest merge --sign-key)"
            )
        return hash_partition_artifact(
            args.path,
            args.partition,
            part_path=args.output,
            algorithm=args.algorithm,
            workers=args.workers,
            follow_symlinks=args.follow_symlinks,
        )

    return run_report(args, "integrity", args.path, build)


def _hash_keyless(args: argparse.Namespace) -> Any:
    import os

    from airflow_aisec.core import model_signing
    from airflow_aisec.core.integrity import hash_artifact
    from airflow_aisec.exceptions import AisecInputError

    if args.sign_key or args.signature_format == "aisec":
        raise AisecInputError("--sigstore-keyless signs a model-signing bundle without a key: drop --sign-key")
    bundle = args.bundle or model_signing.default_bundle_path(args.path)
    token = os.environ.get("SIGSTORE_ID_TOKEN")
    if not token:  # checked before hashing: nothing is written when signing cannot happen
        raise AisecInputError("--sigstore-keyless needs an OpenID Connect identity token in SIGSTORE_ID_TOKEN")
    report = hash_artifact(
        args.path, algorithm=args.algorithm, workers=args.workers, follow_symlinks=args.follow_symlinks,
        manifest_path=args.output,
    )  # fmt: skip
    report.details.update(model_signing.sign_model(args.path, bundle, keyless=True, identity_token=token))
    return report


def _verify(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.integrity import verify_artifact
        from airflow_aisec.core.signing import load_signing_key, load_verify_key
        from airflow_aisec.exceptions import AisecInputError

        if args.bundle and not args.public_key:
            raise AisecInputError("--bundle needs --public-key (the ECDSA public key)")
        if args.bundle and args.signature:
            raise AisecInputError("--signature applies to --manifest; a --bundle is its own signature")
        if args.digest and (args.signature or args.public_key):
            raise AisecInputError("--signature/--public-key apply to --manifest, not --digest")
        if args.signature and not args.public_key:
            raise AisecInputError("--signature needs --public-key")
        if args.vsa_sign_key and not args.vsa:
            raise AisecInputError("--vsa-sign-key needs --vsa")
        vsa_key = load_signing_key(args.vsa_sign_key) if args.vsa_sign_key else None
        key = load_verify_key(args.public_key) if args.public_key else None
        report = verify_artifact(
            args.path,
            expected_digest=args.digest,
            manifest_path=args.manifest,
            bundle_path=args.bundle,
            signature_path=args.signature,
            verify_key=key,
            require_signature=key is not None and not args.bundle,
            algorithm=args.algorithm,
            workers=args.workers,
            follow_symlinks=args.follow_symlinks,
        )
        if not args.vsa:
            return report
        from airflow_aisec.core.vsa import record_decision

        evidence = [args.manifest, args.signature or (f"{args.manifest}.sig" if key and args.manifest else None)]
        return record_decision(
            report,
            args.vsa,
            check="integrity",
            resource=args.path,
            evidence=[*evidence, args.bundle],
            signing_key=vsa_key,
        )

    return run_report(args, "integrity", args.path, build)


def _keygen(args: argparse.Namespace) -> int:
    from airflow_aisec.cli._common import clean
    from airflow_aisec.core.signing import generate_ecdsa_keypair, generate_ed25519_keypair
    from airflow_aisec.exceptions import AisecError

    try:
        generate = generate_ecdsa_keypair if args.type == "ecdsa-p256" else generate_ed25519_keypair
        key_id = generate(args.private_key, args.public_key, overwrite=args.force)
    except AisecError as exc:
        print(f"aisec keygen: error: {clean(exc)}", file=sys.stderr)
        return 2
    print(
        f"{'ECDSA P-256' if args.type == 'ecdsa-p256' else 'Ed25519'} key pair written: {clean(args.private_key)} (private), {clean(args.public_key)} (public); "
        f"key id {key_id}"
    )
    return 0
