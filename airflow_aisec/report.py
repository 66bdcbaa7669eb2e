"""The one result schema every airflow-aisec check produces (``aisec.report/v1``).

A report is plain JSON-serialisable data: operators push it to XCom, the CLI prints it, the UI
plugin and the Prometheus endpoint read nothing else. Build one with :class:`Report`, then call
:meth:`Report.to_dict`.

.. code-block:: python

    report = Report.start("integrity", subject="/models/m1")
    report.add_finding("AISEC-INT-CHANGED", "high", "File changed", location="weights.bin")
    report.finish()  # status derived from findings unless given

Every check's pass/fail decision goes through one gate, :func:`gate_status` (also reached with
``report.finish(fail_on=…)``): ``fail`` when a finding is at or above the threshold, ``warn`` when
only lower findings above ``info`` exist (or the caller reports a degraded run), else ``pass``.
Operator and CLI thresholds are read by one parser, :func:`parse_fail_on`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from airflow_aisec.exceptions import AisecInputError

SCHEMA = "aisec.report/v1"

CHECKS = (
    "integrity",
    "dependency_audit",
    "secrets",
    "model_scan",
    "provenance",
    "data_validation",
    "split",
    "drift",
    "performance",
    "retrain",
    "inference_audit",
    "load_test",
    "s3_posture",
    "iam_policy",
    "cloudwatch",
    "image_scan",
    "robustness",
    "performance_estimate",
    "ml_bom",
)


class _StrValue(str, Enum):
    """A string enum whose ``str()``/f-string is its value, so it reads and serialises as the plain word."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_StrValue):
    """A report's verdict: ``pass``, ``warn`` (findings below the gate), ``fail``, ``error`` (cannot decide)."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"


class Severity(_StrValue):
    """A finding's severity, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """``info`` 0 … ``critical`` 4: higher is more severe."""
        return SEVERITY_RANK[self.value]


STATUSES = tuple(s.value for s in Status)
SEVERITIES = tuple(s.value for s in Severity)
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info=0 … critical=4

#: Spellings every gate threshold accepts: a severity, or ``any`` (= ``info``: every finding fails).
FAIL_ON_CHOICES = (*SEVERITIES, "any")
_FAIL_ON_ALIASES = {"any": Severity.INFO}

#: Process exit code of the ``aisec`` CLI for each status: 0 pass, 1 finding, 2 cannot decide.
EXIT_CODES = {"pass": 0, "warn": 0, "fail": 1, "error": 2}


def parse_severity(value: object, *, name: str = "severity") -> Severity:
    """Read ``value`` as a :class:`Severity`; anything else raises ``AisecInputError`` (a ``ValueError``)."""
    if isinstance(value, Severity):
        return value
    if isinstance(value, str) and value in SEVERITIES:
        return Severity(value)
    raise AisecInputError(f"{name} must be one of {SEVERITIES}, not {value!r}")


def parse_fail_on(value: object, *, choices: Iterable[str] = FAIL_ON_CHOICES, name: str = "fail_on") -> Severity:
    """Read a gate threshold: the lowest severity that fails a check (``any`` means ``info``).

    :param value: the spelling given by a user (operator argument, CLI option).
    :param choices: the spellings this check accepts (a subset of :data:`FAIL_ON_CHOICES`); others
        raise ``AisecInputError`` (a ``ValueError``) naming the input and the choices.
    :param name: the option's name, for the error message.
    """
    allowed = tuple(choices)
    spelled = value.value if isinstance(value, Severity) else value
    if not isinstance(spelled, str) or spelled not in allowed or spelled not in FAIL_ON_CHOICES:
        raise AisecInputError(f"{name} must be one of {allowed}, not {value!r}")
    return _FAIL_ON_ALIASES.get(spelled) or Severity(spelled)


def gate_status(severities: Iterable[Severity | str], fail_on: Severity | str, *, degraded: bool = False) -> Status:
    """The one severity gate: ``fail`` iff a severity is at or above ``fail_on``; else ``warn`` when a
    severity above ``info`` exists or ``degraded`` (something short of a finding, such as an item that
    could not be checked); else ``pass``. Never returns ``error``: deciding that is the caller's job.
    """
    threshold = parse_fail_on(fail_on).rank
    ranks = [parse_severity(s).rank for s in severities]
    if any(r >= threshold for r in ranks):
        return Status.FAIL
    if degraded or any(r > Severity.INFO.rank for r in ranks):
        return Status.WARN
    return Status.PASS


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _tool() -> dict[str, str]:
    from airflow_aisec import __version__

    return {"name": "airflow-aisec", "version": __version__}


def jsonable(value: Any) -> Any:
    """Convert ``value`` to plain JSON types (numpy scalars, tuples, paths, NaN → ``None``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass
class Finding:
    """One thing a check found.

    :param id: stable identifier of the finding kind or advisory (``PYSEC-2018-28``, ``AISEC-INT-CHANGED``).
    :param severity: one of ``critical|high|medium|low|info``.
    :param title: one line for humans.
    :param location: where (file, package, column, bucket …).
    :param details: free-form JSON-serialisable data. Never secret values.
    """

    id: str
    severity: Severity
    title: str
    location: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"finding severity must be one of {SEVERITIES}, not {self.severity!r}")
        self.severity = Severity(self.severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "location": self.location,
            "details": jsonable(self.details),
        }


@dataclass
class Report:
    """A check's result. See the module docstring for the life cycle."""

    check: str
    subject: str
    status: Status = Status.PASS
    summary: str = ""
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"report check must be one of {CHECKS}, not {self.check!r}")
        if self.status not in STATUSES:
            raise ValueError(f"report status must be one of {STATUSES}, not {self.status!r}")
        self.status = Status(self.status)

    @classmethod
    def start(cls, check: str, subject: str, *, tags: list[str] | tuple[str, ...] = ()) -> Report:
        """Start a report for ``check`` on ``subject`` (timestamps taken now)."""
        return cls(check=check, subject=str(subject), tags=list(tags))

    def add_finding(
        self,
        id: str,
        severity: Severity | str,
        title: str,
        location: str = "",
        details: dict[str, Any] | None = None,
    ) -> Finding:
        if severity not in SEVERITIES:
            raise ValueError(f"finding severity must be one of {SEVERITIES}, not {severity!r}")
        finding = Finding(id=id, severity=Severity(severity), title=title, location=location, details=details or {})
        self.findings.append(finding)
        return finding

    def add_tags(self, *tags: str) -> None:
        for tag in tags:
            if tag not in self.tags:
                self.tags.append(tag)

    @property
    def max_severity(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)

    def severity_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            counts[f.severity] += 1
        return counts

    def finish(
        self,
        status: Status | str | None = None,
        summary: str | None = None,
        *,
        fail_on: Severity | str | None = None,
        severities: Iterable[Severity | str] | None = None,
        degraded: bool = False,
    ) -> Report:
        """Close the report.

        :param status: the verdict, when the caller decided it; otherwise it comes from :func:`gate_status`.
        :param summary: one line for humans (default: check, status and number of findings).
        :param fail_on: the gate's threshold (default ``low``: any finding above ``info`` fails).
        :param severities: the severities the gate weighs (default: the findings'); a check that lists only
            the first findings, or exempts some, passes them here.
        :param degraded: the run is short of a clean pass without a finding (skipped items): ``warn``.

        A report already marked ``error`` stays ``error`` unless a status is given: the gate never
        downgrades a run that could not decide.
        """
        if status is None:
            if self.status is Status.ERROR:
                status = Status.ERROR
            else:
                weighed = [f.severity for f in self.findings] if severities is None else severities
                status = gate_status(weighed, Severity.LOW if fail_on is None else fail_on, degraded=degraded)
        elif fail_on is not None or severities is not None or degraded:
            raise ValueError("give either a status or the gate's inputs (fail_on, severities, degraded), not both")
        if status not in STATUSES:
            raise ValueError(f"report status must be one of {STATUSES}, not {status!r}")
        self.status = Status(status)
        if summary is not None:
            self.summary = summary
        if not self.summary:
            self.summary = f"{self.check} {self.status}: {len(self.findings)} finding(s)"
        self.metrics.setdefault("duration_seconds", round(time.monotonic() - self._t0, 6))
        self.finished_at = _now()
        return self

    def error(self, message: str) -> Report:
        """Close the report as ``error`` (the check could not decide) with ``message`` as summary."""
        return self.finish("error", message)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "check": self.check,
            "status": self.status.value,
            "subject": self.subject,
            "summary": self.summary,
            "metrics": jsonable(self.metrics),
            "findings": [f.to_dict() for f in self.findings],
            "tags": list(self.tags),
            "started_at": self.started_at,
            "finished_at": self.finished_at or _now(),
            "tool": _tool(),
        }
        if self.details:
            data["details"] = jsonable(self.details)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a :class:`Report` from :meth:`to_dict` output (validated)."""
        validate(data)
        return cls(
            check=data["check"],
            subject=data["subject"],
            status=Status(data["status"]),
            summary=data["summary"],
            metrics=dict(data.get("metrics", {})),
            findings=[Finding(**{**f, "severity": Severity(f["severity"])}) for f in data.get("findings", [])],
            tags=list(data.get("tags", [])),
            details=dict(data.get("details", {})),
            started_at=data["started_at"],
            finished_at=data.get("finished_at"),
        )


def validate(data: Any) -> dict[str, Any]:
    """Check that ``data`` is an ``aisec.report/v1`` report; raise ``ValueError`` naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"report must be a JSON object, not {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise ValueError(f"report schema must be {SCHEMA!r}, not {data.get('schema')!r}")
    for key in ("check", "status", "subject", "summary", "metrics", "findings", "tags", "started_at"):
        if key not in data:
            raise ValueError(f"report is missing {key!r}")
    if data["check"] not in CHECKS:
        raise ValueError(f"report check {data['check']!r} is not one of {CHECKS}")
    if data["status"] not in STATUSES:
        raise ValueError(f"report status {data['status']!r} is not one of {STATUSES}")
    if not isinstance(data["metrics"], dict) or not all(
        v is None or isinstance(v, (int, float)) for v in data["metrics"].values()
    ):
        raise ValueError("report metrics must map names to numbers")
    for i, f in enumerate(data["findings"]):
        missing = {"id", "severity", "title", "location", "details"} - set(f)
        if missing:
            raise ValueError(f"report finding {i} is missing {sorted(missing)}")
        if f["severity"] not in SEVERITIES:
            raise ValueError(f"report finding {i} severity {f['severity']!r} is not one of {SEVERITIES}")
    return data
