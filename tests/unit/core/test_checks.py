"""The check registry: registration order is run order; every check documents what it finds."""

from __future__ import annotations

import pytest

from airflow_aisec.core.checks import CheckRegistry, Outcome
from airflow_aisec.report import Report


def _registry() -> CheckRegistry[int]:
    reg = CheckRegistry[int]("demo")

    @reg.register("second", finds=("B",))
    def second(n: int) -> Outcome:
        """Finds B when n is odd."""
        out = Outcome(metrics={"n": n}, result={"odd": n % 2 == 1})
        if n % 2:
            out.add("B", "high", "odd", "x", {"n": n})
        return out

    @reg.register("first", finds=("A",))
    def first(n: int) -> Outcome:
        """Finds A always; records no result."""
        out = Outcome()
        out.add("A", "info", "always")
        return out

    return reg


def test_checks_run_in_registration_order_and_fill_the_report():
    reg = _registry()
    report = Report.start("performance", "s")
    results = reg.run(3, report)
    assert [f.id for f in report.findings] == ["B", "A"]
    assert report.metrics["n"] == 3
    assert results == {"second": {"odd": True}}
    assert reg.names() == ["second", "first"] and len(reg) == 2
    assert reg.get("first").finds == ("A",) and reg.get("first").doc.startswith("Finds A")


def test_registration_refuses_duplicates_and_undocumented_checks():
    reg = _registry()
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("first")(lambda n: Outcome())
    with pytest.raises(ValueError, match="needs a docstring"):
        reg.register("third")(lambda n: Outcome())
