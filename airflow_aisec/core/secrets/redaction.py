"""Values never leave the secrets scan: fingerprints, plain-text reasons, and the redactor that seals a report."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_aisec.exceptions import AisecUndecidableError
from airflow_aisec.report import Report

REDACTED = "[REDACTED]"
#: A detected value is redacted wherever any substring of this length of it appears.
GRAM = 8
#: Values shorter than GRAM but at least this long are redacted where they appear whole.
MIN_WHOLE = 6
_FINGERPRINT_SALT = b"airflow-aisec/secret-fingerprint/v1\x00"
#: Reasons: plain words only, short, no long runs (a token is a long run).
_REASON_CHARS = re.compile(r"[^A-Za-z0-9 .,;:()/#@+'_-]")
_REASON_MAX = 80
_REASON_WORD_MAX = 16


def fingerprint(secret: str) -> str:
    """Stable, non-reversible-in-practice identifier of a secret value (truncated salted SHA-256)."""
    return hashlib.sha256(_FINGERPRINT_SALT + secret.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def clean_reason(text: str) -> str:
    """A suppression reason that cannot carry a credential: short plain words, no long runs."""
    text = _REASON_CHARS.sub(" ", text)
    words = [w if len(w) <= _REASON_WORD_MAX else "…" for w in text.split()]
    out = " ".join(words)
    return out[:_REASON_MAX].strip() or "no reason given"


class Redactor:
    """Every value the scan detected; scrubs them (and any 8-character piece of them) out of text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._grams: set[str] = set()
        self._whole: set[str] = set()

    def add(self, value: str) -> None:
        """Remember ``value``. Pieces of it that are pieces of the marker itself are not remembered: a
        scanned value such as ``https://REDACTED:REDACTED@host`` (documentation does that) would make the
        marker a leak of itself and no report could be sealed. The marker says nothing secret."""
        if not value or value in self._values:
            return
        self._values.add(value)
        if len(value) >= GRAM:
            grams = {value[i : i + GRAM] for i in range(len(value) - GRAM + 1)}
            self._grams.update(g for g in grams if g not in REDACTED)
        elif len(value) >= MIN_WHOLE and value not in REDACTED:
            self._whole.add(value)

    def __len__(self) -> int:
        return len(self._values)

    def leaks(self, text: str) -> bool:
        if any(text[i : i + GRAM] in self._grams for i in range(len(text) - GRAM + 1)):
            return True
        return any(w in text for w in self._whole)

    def scrub(self, text: str) -> str:
        for _ in range(4):
            if not self.leaks(text):
                return text
            marked = bytearray(len(text))
            for i in range(len(text) - GRAM + 1):
                if text[i : i + GRAM] in self._grams:
                    marked[i : i + GRAM] = b"\x01" * GRAM
            for w in self._whole:
                start = text.find(w)
                while start >= 0:
                    marked[start : start + len(w)] = b"\x01" * len(w)
                    start = text.find(w, start + 1)
            out, i = [], 0
            while i < len(text):
                if marked[i]:
                    while i < len(text) and marked[i]:
                        i += 1
                    out.append(REDACTED)
                else:
                    out.append(text[i])
                    i += 1
            text = "".join(out)
        return text if not self.leaks(text) else REDACTED


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _scrub_obj(obj: Any, redactor: Redactor) -> Any:
    if isinstance(obj, str):
        return redactor.scrub(obj)
    if isinstance(obj, Mapping):
        return {redactor.scrub(str(k)): _scrub_obj(v, redactor) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub_obj(v, redactor) for v in obj]
    return obj


def learn(scan_lines: Any, texts: Sequence[str], redactor: Redactor) -> None:
    """Run the detectors over ``texts`` (report fields, messages) and remember every value found."""
    lines: list[str] = []
    for text in texts:
        lines.extend(text.splitlines() or [""])
    if not lines:
        return
    for secret in scan_lines(list(enumerate(lines, start=1)), "report"):
        if secret.secret_value:
            redactor.add(secret.secret_value)


def seal(report: Report, redactor: Redactor, scan_lines: Any) -> Report:
    """Redact every detected value from every field that can hold scanned data; verify none is left.

    Fields that can carry data from the scanned files, names or history: the subject, every finding's
    location and details, the report's details. The id, title, summary and metric names are built only
    from constants, counts and detector type names (never from scanned data).
    """
    fields = [report.subject, *_strings(report.details)]
    for f in report.findings:
        fields += [f.location, *_strings(f.details)]
    learn(scan_lines, fields, redactor)
    report.subject = redactor.scrub(report.subject)
    report.details = _scrub_obj(report.details, redactor)
    for f in report.findings:
        f.location = redactor.scrub(f.location)
        f.details = _scrub_obj(f.details, redactor)
    final = [report.subject, *_strings(report.details)]
    for f in report.findings:
        final += [f.location, *_strings(f.details)]
    if any(redactor.leaks(text) for text in final):  # pragma: no cover - by construction
        raise AisecUndecidableError("the report could not be redacted; refusing to emit it")
    return report
