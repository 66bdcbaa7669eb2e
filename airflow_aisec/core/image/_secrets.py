"""The secrets engine, fed with bytes from image layers and text from the image config.

A thin session over :mod:`airflow_aisec.core.secrets`: the same detectors, the same decoding of
binary and non-UTF-8 content, the same redaction of every value before a report leaves. No Airflow
import here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.secrets.content import ScanTally, scan_bytes
from airflow_aisec.core.secrets.detectors import HEURISTIC_TYPES, ScanContext, detector, hits_for
from airflow_aisec.core.secrets.redaction import Redactor, learn, seal
from airflow_aisec.report import Report

__all__ = ["HEURISTIC_TYPES", "SecretHit", "SecretsSession", "session"]


@dataclass
class SecretHit:
    """One detected value (never the value itself): type, where, a fingerprint and whether suppressed inline."""

    type: str
    path: str
    line: int
    fingerprint: str
    allowed: str | None


class SecretsSession:
    """Scan many byte strings and texts with one detector set; redact the report at the end."""

    def __init__(self, scan_lines: Any, max_bytes: int) -> None:
        self._redactor = Redactor()
        self._scan_lines = scan_lines
        self._ctx = ScanContext(scan_lines, self._redactor, max_bytes)
        self._scan = ScanTally()
        self.compressed = 0

    def scan_bytes(self, data: bytes, path: str) -> list[SecretHit]:
        """Hits in one file's bytes (binary files by their printable runs; compressed ones are counted)."""
        before = len(self._scan.hits)
        if not scan_bytes(self._ctx, data, path, self._scan, path):
            self.compressed += 1
        return [self._hit(h) for h in self._scan.hits[before:]]

    def scan_text(self, text: str, label: str) -> list[SecretHit]:
        """Hits in ``text`` (configuration values, build commands), reported against ``label``."""
        return [self._hit(h) for h in hits_for(self._ctx, text.splitlines(), label, allow_inline=False)]

    @staticmethod
    def _hit(h: Any) -> SecretHit:
        return SecretHit(h.type, h.file, h.line, h.fingerprint, h.allow_reason)

    def seal(self, report: Report) -> Report:
        """Redact every detected value from the report (subject, locations, details); verify none is left."""
        return seal(report, self._redactor, self._scan_lines)

    def learn(self, *texts: str) -> None:
        """Treat what the detectors find in ``texts`` as secret values to redact."""
        learn(self._scan_lines, list(texts), self._redactor)


@contextmanager
def session(max_bytes: int) -> Iterator[SecretsSession]:
    """A :class:`SecretsSession` for the duration of one image scan."""
    with detector() as scan_lines:
        yield SecretsSession(scan_lines, max_bytes)
