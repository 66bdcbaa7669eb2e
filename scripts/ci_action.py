"""Run chosen airflow-aisec checks in CI and write one SARIF 2.1.0 file per check (the GitHub action's logic).

Called by ``action.yml`` at the repository root (and usable in any CI)::

    python scripts/ci_action.py --checks secrets,scan-model,audit --paths . \\
        --model-paths models --requirements requirements.txt --osv-db osv.zip \\
        --fail-on high --output-dir aisec-sarif

Each check runs the ``aisec`` command line (``python -m airflow_aisec.cli … --format json``) and its
report is written as ``OUTPUT_DIR/<check>.sarif`` for ``github/codeql-action/upload-sarif`` (one run per
check, each with its own ``automationDetails.id`` category).

Exit code: **2** when a check could not decide (an ``error`` report, a crash, no report), else **1**
when a finding is at or above ``--fail-on`` (``never``: findings never fail), else **0**. The SARIF
files are written in every case, so findings reach the code-scanning page even when the job fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from airflow_aisec.outputs.sarif import dumps
from airflow_aisec.report import FAIL_ON_CHOICES, Report, gate_status
from airflow_aisec.utils.fs import write_text_atomic

CHECKS = ("secrets", "scan-model", "audit")


def _split(value: str) -> list[str]:
    """Items of a comma- or newline-separated action input (blank items dropped)."""
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


def command_for(check: str, args: argparse.Namespace) -> list[str] | None:
    """The ``aisec`` arguments of ``check``, or None when it has nothing to look at."""
    if check == "secrets":
        return ["secrets", *(_split(args.paths) or ["."])]
    if check == "scan-model":
        models = _split(args.model_paths)
        return ["scan-model", *models] if models else None
    if check == "audit":
        reqs = _split(args.requirements)
        cmd = ["audit", *[a for r in reqs for a in ("-r", r)]]
        return [*cmd, "--osv-db", args.osv_db] if args.osv_db else cmd
    raise ValueError(check)


def run_check(check: str, argv: list[str]) -> dict:
    """Run one ``aisec`` subcommand and return its report (an ``error`` report when none came back)."""
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_aisec.cli", *argv, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    sys.stderr.write(proc.stderr)
    try:
        data = json.loads(proc.stdout)
        if not isinstance(data, dict) or "status" not in data:
            raise ValueError("not a report")
    except ValueError:
        name = {"scan-model": "model_scan", "audit": "dependency_audit"}.get(check, check)
        data = Report.start(name, " ".join(argv[1:])).error(f"aisec {check} gave no report (exit {proc.returncode})")
        return data.to_dict()
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="secrets", help=f"comma-separated, of {', '.join(CHECKS)}")
    parser.add_argument("--paths", default=".", help="directories or files for the secrets check")
    parser.add_argument("--model-paths", default="", help="model files or directories for scan-model")
    parser.add_argument("--requirements", default="", help="pinned requirements files for audit")
    parser.add_argument("--osv-db", default="", help="offline OSV database (zip or directory) for audit")
    parser.add_argument("--fail-on", default="any", choices=(*FAIL_ON_CHOICES, "never"))
    parser.add_argument("--output-dir", default="aisec-sarif")
    parser.add_argument(
        "--defer-exit",
        action="store_true",
        help="exit 0 and leave the verdict in $GITHUB_OUTPUT (exit-code): the action uploads the SARIF first",
    )
    args = parser.parse_args(argv)
    checks = _split(args.checks)
    unknown = [c for c in checks if c not in CHECKS]
    if not checks or unknown:
        print(f"aisec action: checks must be some of {', '.join(CHECKS)}, not {args.checks!r}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    worst = 0
    for check in checks:
        cmd = command_for(check, args)
        if cmd is None:
            print(f"aisec action: {check}: nothing to scan (no paths given), skipped")
            continue
        data = run_check(check, cmd)
        write_text_atomic(out / f"{check}.sarif", dumps(data))
        if data["status"] == "error":
            code = 2
        elif args.fail_on == "never":
            code = 0
        else:
            code = 1 if gate_status([f["severity"] for f in data["findings"]], args.fail_on) == "fail" else 0
        print(f"aisec action: {check}: [{str(data['status']).upper()}] {data['summary']} -> {out / check}.sarif")
        worst = max(worst, code)
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            fh.write(f"sarif-dir={out}\nexit-code={worst}\n")
    return 0 if args.defer_exit and github_output else worst


if __name__ == "__main__":
    sys.exit(main())
