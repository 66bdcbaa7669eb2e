"""One exception hierarchy for airflow-aisec.

Core code raises these; operators translate them into Airflow's fail-vs-retry semantics:

* :class:`AisecInputError` (bad input, bad configuration) and :class:`AisecUndecidableError` (a check
  that cannot reach a verdict: missing manifest, corrupt database, unreadable file) are deterministic —
  retrying will not help — so operators raise ``AirflowFailException``.
* :class:`AisecTransientError` (network hiccup, throttling, a source that may come back) is worth a
  retry, so operators raise a plain ``AirflowException`` and Airflow's ``retries`` apply.
  :class:`ArtifactNotReady` (an artifact changed while it was read: still being written) is one.
* :class:`AisecCheckFailed` carries the report of a check that ran and found something.

No Airflow import here: the CLI and core code use the same classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_aisec.report import Report


class AisecError(Exception):
    """Base class of every airflow-aisec error."""

    #: Whether retrying the same task may succeed.
    retryable: bool = False


class AisecInputError(AisecError, ValueError):
    """Bad input or configuration; the message names the offending input."""


class AisecUndecidableError(AisecError):
    """The check could not reach a verdict (fail closed): missing or unreadable evidence."""


class AisecTransientError(AisecError):
    """A transient failure (network, throttling); a retry may succeed."""

    retryable = True


class ArtifactNotReady(AisecTransientError):
    """The artifact is still being written: it changed while it was read (a later attempt may succeed).

    Waiting sensors catch this type (never a message text) and keep waiting; an operator retries.
    """


class AisecCheckFailed(AisecError):
    """A check ran to completion and its report does not pass.

    :param report: the report of the failed check (already pushed to XCom by operators).
    """

    def __init__(self, report: Report | dict[str, Any], message: str | None = None) -> None:
        self.report = report
        summary = report["summary"] if isinstance(report, dict) else report.summary
        super().__init__(message or summary)
