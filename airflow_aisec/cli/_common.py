"""Output and exit-code conventions shared by every ``aisec`` subcommand."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from airflow_aisec.exceptions import AisecCheckFailed, AisecError
from airflow_aisec.report import EXIT_CODES, Report

FORMATS = ("text", "json", "markdown")


def add_format_argument(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument("--format", choices=choices, default="text", help="output format (default: text)")


def render_text(data: dict[str, Any]) -> str:
    lines = [f"[{data['status'].upper()}] {data['check']} {data['subject']}", f"  {data['summary']}"]
    for f in data["findings"]:
        where = f" @ {f['location']}" if f["location"] else ""
        lines.append(f"  - {f['severity']:<8} {f['id']}: {f['title']}{where}")
    return "\n".join(lines)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"## {data['check']}: {data['status'].upper()}",
        "",
        f"**Subject:** `{data['subject']}`  ",
        f"**Summary:** {data['summary']}",
        "",
    ]
    if data["findings"]:
        lines += ["| severity | id | title | location |", "|---|---|---|---|"]
        for f in data["findings"]:
            cells = [f["severity"], f["id"], f["title"], f["location"]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def emit(data: dict[str, Any], fmt: str = "text", out: TextIO | None = None) -> int:
    """Print a report in ``fmt`` and return the exit code for its status."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif fmt == "markdown":
        out.write(render_markdown(data) + "\n")
    else:
        out.write(render_text(data) + "\n")
    return EXIT_CODES[data["status"]]


def run_report(args: argparse.Namespace, check: str, subject: str, build: Callable[[], Report | dict[str, Any]]) -> int:
    """Run ``build`` and print its report; airflow-aisec errors become an ``error`` report (exit 2).

    No traceback reaches the user for expected errors; the message names the cause.
    """
    try:
        result = build()
    except AisecCheckFailed as exc:
        result = exc.report
    except AisecError as exc:
        result = Report.start(check, subject).error(f"{type(exc).__name__}: {exc}")
        print(f"aisec {check}: error: {exc}", file=sys.stderr)
    data = result.to_dict() if isinstance(result, Report) else result
    return emit(data, getattr(args, "format", "text"))
