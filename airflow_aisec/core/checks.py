"""A registry of small named checks: each looks at one prepared context and returns its findings.

An engine that used to be one long function written as commented sections is instead a few
registered functions plus an orchestrator that loops over them and then decides the status (the
gate). Registration order is run order, so a report lists its findings in the same order every time.

    POISONING = CheckRegistry[Context]("poisoning")

    @POISONING.register("duplicates", finds=("AISEC-DV-DUPLICATES",))
    def duplicates(ctx: Context) -> Outcome:
        \"\"\"Finds: the share of exact duplicate rows above ``max_duplicate_share``.\"\"\"
        ...

    results = POISONING.run(ctx, report)   # findings and metrics go to the report, in order

A check states what it finds in its docstring (required: registration refuses a check without one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from airflow_aisec.report import Finding, Report, Severity

Ctx = TypeVar("Ctx")


@dataclass
class Outcome:
    """What one check produced: findings (in order), metrics, and an optional result for the report's details.

    ``result`` stays ``None`` when the check did not run (disabled by its threshold, nothing to look at).
    """

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    result: Any = None

    def add(
        self, id: str, severity: str, title: str, location: str = "", details: dict[str, Any] | None = None
    ) -> Finding:
        """Append a finding (same arguments as :meth:`Report.add_finding`) and return it."""
        finding = Finding(id=id, severity=Severity(severity), title=title, location=location, details=details or {})
        self.findings.append(finding)
        return finding


@dataclass(frozen=True)
class Check(Generic[Ctx]):
    """One registered check: its name, the finding ids it may report, and the function."""

    name: str
    finds: tuple[str, ...]
    func: Callable[[Ctx], Outcome]

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    def __call__(self, ctx: Ctx) -> Outcome:
        return self.func(ctx)


class CheckRegistry(Generic[Ctx]):
    """An ordered set of checks over one kind of context.

    :param area: what the checks are about (used in error messages).
    """

    def __init__(self, area: str) -> None:
        self.area = area
        self._checks: dict[str, Check[Ctx]] = {}

    def register(
        self, name: str, *, finds: tuple[str, ...] = ()
    ) -> Callable[[Callable[[Ctx], Outcome]], Callable[[Ctx], Outcome]]:
        """Decorator: register ``func`` under ``name``; it runs after the checks registered before it."""

        def decorate(func: Callable[[Ctx], Outcome]) -> Callable[[Ctx], Outcome]:
            if name in self._checks:
                raise ValueError(f"{self.area} check {name!r} is registered twice")
            if not (func.__doc__ or "").strip():
                raise ValueError(f"{self.area} check {name!r} needs a docstring saying what it finds")
            self._checks[name] = Check(name, tuple(finds), func)
            return func

        return decorate

    def __iter__(self) -> Iterator[Check[Ctx]]:
        return iter(list(self._checks.values()))

    def __len__(self) -> int:
        return len(self._checks)

    def names(self) -> list[str]:
        return list(self._checks)

    def get(self, name: str) -> Check[Ctx]:
        return self._checks[name]

    def run(self, ctx: Ctx, report: Report) -> dict[str, Any]:
        """Run every check in order; add its findings and metrics to ``report``.

        Returns each check's ``result`` (those that produced one) by check name.
        """
        results: dict[str, Any] = {}
        for check in self:
            outcome = check(ctx)
            report.findings.extend(outcome.findings)
            report.metrics.update(outcome.metrics)
            if outcome.result is not None:
                results[check.name] = outcome.result
        return results
