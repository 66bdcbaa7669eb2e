"""Secrets scan operator: detect-secrets (plus Hugging Face / OpenAI detectors) over a tree and its git history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import parse_fail_on

if TYPE_CHECKING:
    from airflow.sdk import Context


class SecretsScanOperator(AisecBaseOperator):
    """Scan a directory (and optionally every commit of its git history) for credentials.

    Findings carry the secret's type, location (``file:line``, or ``commit:file:line`` for history) and a
    fingerprint — never the value, in the report, the XCom or the logs. Any finding fails the task; a
    ``history`` scan of a path outside a git repository is an error (fails, no retry).

    :param path: directory or file to scan. (templated)
    :param history: also scan every line added in every commit reachable from any ref.
    :param baseline: detect-secrets baseline of known findings (``detect-secrets scan``). (templated)
    :param allow: fingerprint → reason for known false positives.
    :param exclude_dirs: directory names not descended into (default: VCS, virtualenvs, caches).
    :param max_file_bytes: files (and history blobs) above this size are not scanned: counted and listed.
    :param fail_on: ``medium`` (default: every finding fails the task) or ``high`` (vendor-format tokens
        fail; entropy / keyword heuristics are reported with status ``warn``).
    :param unscanned: what anything not scanned (large, compressed, special, unreadable files,
        submodules) decides: ``error`` (default: the task fails, no retry) or ``warn``.
    :param partial_history: accept a shallow, grafted, replaced or partial-clone history (reported)
        instead of failing.
    """

    aisec_check = "secrets"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "path", "baseline")
    ui_color = "#fce4ec"

    def __init__(
        self,
        *,
        path: str,
        history: bool = False,
        baseline: str | None = None,
        allow: Mapping[str, str] | None = None,
        exclude_dirs: Sequence[str] | None = None,
        max_file_bytes: int | None = None,
        fail_on: str = "medium",
        unscanned: str = "error",
        partial_history: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not path:
            raise ValueError("path is required")
        self.path = path
        self.history = history
        self.baseline = baseline
        self.allow = dict(allow or {})
        self.exclude_dirs = list(exclude_dirs) if exclude_dirs is not None else None
        if max_file_bytes is not None and max_file_bytes <= 0:
            raise ValueError(f"max_file_bytes must be positive, not {max_file_bytes!r}")
        self.max_file_bytes = max_file_bytes
        parse_fail_on(fail_on, choices=("high", "medium"))  # the severities a secrets scan gives
        self.fail_on = fail_on
        if unscanned not in ("error", "warn"):
            raise ValueError(f"unscanned must be 'error' or 'warn', not {unscanned!r}")
        self.unscanned = unscanned
        self.partial_history = bool(partial_history)

    def describe_subject(self) -> str:
        """The path, with anything that looks like a credential in it redacted (reports name it)."""
        try:
            from airflow_aisec.core.secrets import redact_text

            return redact_text(str(self.path))
        except Exception:  # never let naming the subject hide the real error
            return "<secrets scan path withheld>"

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core import secrets

        options: dict[str, Any] = {}
        if self.exclude_dirs is not None:
            options["exclude_dirs"] = self.exclude_dirs
        if self.max_file_bytes is not None:
            options["max_file_bytes"] = self.max_file_bytes
        return self.run_check(
            context,
            subject=self.describe_subject(),
            check=lambda: secrets.scan_secrets(
                self.path,
                history=self.history,
                baseline=self.baseline,
                allow=self.allow,
                fail_on=self.fail_on,
                unscanned=self.unscanned,
                partial_history=self.partial_history,
                **options,
            ),
        )
