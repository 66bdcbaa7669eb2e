"""Output and exit-code conventions shared by every ``aisec`` subcommand."""

from __future__ import annotations

import argparse
import io
import json
import sys
import unicodedata
from collections.abc import Callable
from typing import Any, TextIO

from airflow_aisec.exceptions import AisecCheckFailed, AisecError
from airflow_aisec.report import EXIT_CODES, Report

FORMATS = ("text", "json", "markdown", "sarif")


def add_format_argument(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    # every subcommand prints a report, so every one can print it as SARIF 2.1.0 too
    choices = choices if "sarif" in choices else (*choices, "sarif")
    parser.add_argument("--format", choices=choices, default="text", help="output format (default: text)")


def configure_console() -> None:
    """Make stdout/stderr unable to fail on characters the console's encoding lacks (``backslashreplace``)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, io.UnsupportedOperation):  # pragma: no cover - detached or closed stream
                pass


def clean(value: Any) -> str:
    """``value`` as one line of text that cannot drive a terminal or forge a line.

    Control characters (C0, C1, DEL, line and paragraph separators, bidi overrides and other format
    characters) are shown as ``\\xNN`` / ``\\uNNNN`` escapes: a file name cannot print a fake
    ``[PASS]`` line, move the cursor, or reorder what the reader sees.
    """
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif unicodedata.category(ch) == "Zs":  # non-ASCII spaces: harmless, shown as a space
            out.append(" ")
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def render_text(data: dict[str, Any]) -> str:
    lines = [
        f"[{clean(data['status']).upper()}] {clean(data['check'])} {clean(data['subject'])}",
        f"  {clean(data['summary'])}",
    ]
    for f in data["findings"]:
        where = f" @ {clean(f['location'])}" if f["location"] else ""
        lines.append(f"  - {clean(f['severity']):<8} {clean(f['id'])}: {clean(f['title'])}{where}")
    return "\n".join(lines)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"## {data['check']}: {data['status'].upper()}",
        "",
        "**Subject:** `" + clean(data["subject"]).replace("`", "'") + "`  ",
        f"**Summary:** {clean(data['summary'])}",
        "",
    ]
    if data["findings"]:
        lines += ["| severity | id | title | location |", "|---|---|---|---|"]
        for f in data["findings"]:
            cells = [f["severity"], f["id"], f["title"], f["location"]]
            lines.append("| " + " | ".join(clean(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def emit(data: dict[str, Any], fmt: str = "text", out: TextIO | None = None) -> int:
    """Print a report in ``fmt`` and return the exit code for its status."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif fmt == "sarif":
        from airflow_aisec.outputs.sarif import dumps

        out.write(dumps(data))
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
        print(f"aisec {check}: error: {clean(exc)}", file=sys.stderr)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a bug or a hostile input we did not foresee: never a traceback
        return unexpected_error(args, check, exc, subject=subject)
    data = result.to_dict() if isinstance(result, Report) else result
    return emit(data, getattr(args, "format", "text"))


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of ``exc`` on one clean line, at most ``limit`` characters."""
    text = clean(" ".join(f"{type(exc).__name__}: {exc}".split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unexpected_error(args: argparse.Namespace, check: str, exc: BaseException, *, subject: str | None = None) -> int:
    """Report an exception nobody anticipated as an ``error`` report naming the command (exit 2)."""
    command = getattr(args, "command", None) or check
    if subject is None:
        subject = next(
            (
                " ".join(map(str, v)) if isinstance(v := getattr(args, k), list) else str(v)
                for k in ("path", "data", "current", "log", "url", "target", "image")
                if getattr(args, k, None)
            ),
            command,
        )
    from airflow_aisec.utils.extras import missing_extra

    missing = missing_extra(exc)  # an optional dependency not installed: one message naming the extra
    message = str(missing) if missing else f"unexpected error in 'aisec {command}' on {subject}: {one_line(exc)}"
    print(f"aisec {command}: error: {message}", file=sys.stderr)
    report = Report.start(check, subject).error(message)
    fmt = getattr(args, "format", "text")
    try:
        return emit(report.to_dict(), fmt if fmt in FORMATS else "text")
    except Exception:  # stdout itself is broken: the exit code still says "error"
        return 2
