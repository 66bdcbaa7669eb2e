"""``aisec manifest merge``: join the parts written by ``aisec hash --partition K/N`` into one manifest."""

from __future__ import annotations

import argparse
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "manifest",
        help="work with manifests (merge partitioned hashes)",
        description="Manifest actions. 'merge' joins the parts of 'aisec hash --partition K/N'. Exit 0 written, 2 error.",
    )
    sub = p.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    m = sub.add_parser(
        "merge",
        help="merge the parts of 'aisec hash --partition K/N' into the manifest a single 'aisec hash' writes",
        description="Merge every part (1/N … N/N) into the manifest a single 'aisec hash' writes, byte for byte "
        "(root digest included); optionally sign it. Parts from other roots, algorithms or listings, missing, "
        "repeated or edited parts are refused and nothing is written. Exit 0 written, 2 error.",
    )
    m.add_argument("parts", nargs="+", metavar="PART", help="every part, 1/N … N/N (any order)")
    m.add_argument("-o", "--output", metavar="MANIFEST", required=True, help="where to write the manifest")
    m.add_argument("--sign-key", metavar="FILE", help="Ed25519 private key (PEM) or HMAC secret file")
    add_format_argument(m, ("text", "json", "markdown"))
    m.set_defaults(func=_merge)


def _merge(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.partition import merge_artifact_parts
        from airflow_aisec.core.signing import load_signing_key

        key = load_signing_key(args.sign_key) if args.sign_key else None
        return merge_artifact_parts(args.parts, manifest_path=args.output, signing_key=key)

    return run_report(args, "integrity", args.output, build)
