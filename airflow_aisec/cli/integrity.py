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
    p.add_argument("--sign-key", metavar="FILE", help="Ed25519 private key (PEM) or HMAC secret file")
    p.add_argument("--workers", type=int, default=None, help="parallel hashing threads")
    p.add_argument("--follow-symlinks", action="store_true", help="follow links that stay inside PATH")
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
    v.add_argument("--signature", metavar="FILE", help="detached signature (default: MANIFEST.sig with a key)")
    v.add_argument("--public-key", metavar="FILE", help="Ed25519 public key (PEM) or HMAC secret file")
    v.add_argument("-a", "--algorithm", default="sha256", help="algorithm of --digest (default sha256)")
    v.add_argument("--workers", type=int, default=None, help="parallel hashing threads")
    v.add_argument("--follow-symlinks", action="store_true", help="follow links that stay inside PATH")
    add_format_argument(v, ("text", "json", "markdown"))
    v.set_defaults(func=_verify)

    k = subparsers.add_parser(
        "keygen",
        help="create an Ed25519 key pair for signing manifests",
        description="Write a new Ed25519 private key (PEM, mode 0600) and its public key, for aisec hash "
        "--sign-key and aisec verify --public-key. Exit 0 written, 2 error (files exist without --force).",
    )
    k.add_argument("private_key", help="where to write the private key (PEM, mode 0600)")
    k.add_argument("public_key", help="where to write the public key (PEM)")
    k.add_argument("--force", action="store_true", help="replace existing key files (default: refuse)")
    k.set_defaults(func=_keygen)


def _hash(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.integrity import hash_artifact
        from airflow_aisec.core.signing import load_signing_key

        key = load_signing_key(args.sign_key) if args.sign_key else None
        return hash_artifact(
            args.path,
            algorithm=args.algorithm,
            workers=args.workers,
            follow_symlinks=args.follow_symlinks,
            manifest_path=args.output,
            signing_key=key,
        )

    return run_report(args, "integrity", args.path, build)


def _verify(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.integrity import verify_artifact
        from airflow_aisec.core.signing import load_verify_key
        from airflow_aisec.exceptions import AisecInputError

        if args.digest and (args.signature or args.public_key):
            raise AisecInputError("--signature/--public-key apply to --manifest, not --digest")
        if args.signature and not args.public_key:
            raise AisecInputError("--signature needs --public-key")
        key = load_verify_key(args.public_key) if args.public_key else None
        return verify_artifact(
            args.path,
            expected_digest=args.digest,
            manifest_path=args.manifest,
            signature_path=args.signature,
            verify_key=key,
            require_signature=key is not None,
            algorithm=args.algorithm,
            workers=args.workers,
            follow_symlinks=args.follow_symlinks,
        )

    return run_report(args, "integrity", args.path, build)


def _keygen(args: argparse.Namespace) -> int:
    from airflow_aisec.cli._common import clean
    from airflow_aisec.core.signing import generate_ed25519_keypair
    from airflow_aisec.exceptions import AisecError

    try:
        key_id = generate_ed25519_keypair(args.private_key, args.public_key, overwrite=args.force)
    except AisecError as exc:
        print(f"aisec keygen: error: {clean(exc)}", file=sys.stderr)
        return 2
    print(
        f"Ed25519 key pair written: {clean(args.private_key)} (private), {clean(args.public_key)} (public); "
        f"key id {key_id}"
    )
    return 0
