"""Training-data validation: a Great Expectations 1.x suite plus data-poisoning heuristics.

Two halves, one report (check ``data_validation``):

* **Expectations** — a GX 1.x expectation suite (GX expectation objects, ``{"type", "kwargs"}`` dicts,
  or a suite JSON file as written by ``ExpectationSuite.to_json_dict()``) runs on a pandas DataFrame
  in an *ephemeral* GX context (nothing written to disk). Each failed expectation becomes a finding
  carrying GX's observed value / unexpected counts.
* **Poisoning heuristics** (OWASP ML02, MITRE ATLAS AML.T0020) against a *reference* — a known-good
  DataFrame or a profile from :func:`build_reference_profile` — each with a threshold:

  - ``label_shift``: chi-square goodness-of-fit of the label counts against the reference's label
    shares, plus the largest absolute share change. Flagged when ``p < label_shift_p_value`` **and**
    the largest share change exceeds ``label_shift_max_share_change`` (large datasets make tiny,
    harmless shifts significant; the share change keeps the check meaningful).
  - ``duplicates``: share of exact duplicate rows above ``max_duplicate_share`` (a cheap way to
    up-weight poisoned samples).
  - ``outliers``: share of rows with any numeric value outside the reference's robust range
    ``[Q1 - k·IQR, Q3 + k·IQR]`` (``k = iqr_k``), in excess of the reference's own share, above
    ``max_outlier_share_increase`` (outlier / trigger injection).
  - ``new_categories``: values of categorical columns (and the label) never seen in the reference,
    their row share above ``max_new_category_share`` (default 0: any new label/category fails).
  - ``nulls``: per column, the share of missing values (NaN/None/NaT) above the reference's own share
    by more than ``max_null_share_increase`` (values an attacker blanks out escape every range test).

Nothing is dropped silently: a reference column missing from the data (``AISEC-DV-MISSING-COLUMN``),
a column the reference never saw (``AISEC-DV-UNPROFILED-COLUMN``) and a column whose type changed
(``AISEC-DV-TYPE-CHANGED``) are blocking findings; reference columns the profile could not summarise
(too many categories, no values) are counted (``columns_unchecked``) and listed as ``info``. An empty
dataset, a GX expectation that raised instead of evaluating, and a suite whose expectations were not
all evaluated are errors (the check cannot decide), whatever the expectation's severity.

GX and pandas are imported lazily (this module is imported by operators at DAG parse time only
through functions).

Layout: :mod:`.expectations` (the GX half), :mod:`.reference` (tables, reference profiles, schema
comparison), :mod:`.poisoning` (the registered poisoning heuristics) and this module, the check
(:func:`validate_dataframe`) and the public names.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow_aisec.core.validation.expectations import (
    GX_SEVERITY,
    expectation_findings,
    load_expectations,
    run_expectations,
)
from airflow_aisec.core.validation.poisoning import (
    POISONING,
    POISONING_TAGS,
    PoisoningInput,
    PoisoningThresholds,
    poisoning_checks,
)
from airflow_aisec.core.validation.reference import (
    PROFILE_SCHEMA,
    _refuse_duplicate_columns,
    build_reference_profile,
    check_reference_profile,
    load_reference,
    read_table,
    schema_findings,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, gate_status

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

BLOCKING = ("critical", "high", "medium")

__all__ = [
    "BLOCKING",
    "GX_SEVERITY",
    "POISONING",
    "POISONING_TAGS",
    "PROFILE_SCHEMA",
    "PoisoningInput",
    "PoisoningThresholds",
    "build_reference_profile",
    "check_reference_profile",
    "load_expectations",
    "load_reference",
    "poisoning_checks",
    "read_table",
    "run_expectations",
    "schema_findings",
    "validate_dataframe",
]


# ----------------------------------------------------------------------------- the check
def validate_dataframe(
    df: pd.DataFrame,
    *,
    subject: str,
    expectations: Any = None,
    reference: Any = None,
    label_column: str | None = None,
    thresholds: Mapping[str, Any] | PoisoningThresholds | None = None,
    suite_name: str = "aisec",
) -> Report:
    """Validate ``df``: GX expectations, then poisoning heuristics against ``reference``.

    Status: ``fail`` when a finding is high/medium (failed critical expectation, poisoning
    heuristic), ``warn`` when only GX ``warning`` expectations failed, else ``pass``.

    :raises AisecInputError: bad suite/thresholds/label column. :raises AisecUndecidableError: no
        expectation and no reference (nothing to decide on), or unusable reference.
    """
    limits = PoisoningThresholds.from_mapping(thresholds)
    specs = load_expectations(expectations)
    if not specs and reference is None:
        raise AisecUndecidableError("nothing to validate: give an expectation suite and/or a reference dataset/profile")
    if len(df) == 0:
        raise AisecUndecidableError(f"dataset {subject!r} has no rows: expectations would pass vacuously")
    _refuse_duplicate_columns(df, f"dataset {subject!r}")
    if label_column is not None and label_column not in df.columns:
        raise AisecInputError(f"label column {label_column!r} is not in the dataset (columns: {list(df.columns)[:20]})")
    report = Report.start("data_validation", subject, tags=["AML.T0059"])
    report.metrics["rows"] = len(df)
    report.metrics["columns"] = len(df.columns)
    if specs:
        expectation_findings(df, specs, suite_name=suite_name, report=report)
    profile = load_reference(reference, label_column=label_column, iqr_k=limits.iqr_k)
    if profile is not None:
        if label_column is not None and profile.get("label_column") not in (None, label_column):
            raise AisecInputError(
                f"label column {label_column!r} differs from the reference profile's {profile.get('label_column')!r}"
            )
        schema_findings(df, profile, label_column=label_column, report=report)
        report.details["poisoning"] = poisoning_checks(
            df, profile, label_column=label_column, thresholds=limits, report=report
        )
        report.details["thresholds"] = asdict(limits)
    return _gate(report, rows=len(df), n_expectations=len(specs), poisoning=profile is not None)


def _gate(report: Report, *, rows: int, n_expectations: int, poisoning: bool) -> Report:
    """``fail`` on any blocking finding (critical/high/medium), ``warn`` on other non-info findings, else ``pass``."""
    blocking = [f for f in report.findings if f.severity in BLOCKING]
    status = gate_status([f.severity for f in report.findings], BLOCKING[-1])
    if blocking:
        kinds = sorted({f.id for f in blocking})
        summary = f"{len(blocking)} blocking finding(s) on {rows} rows: {', '.join(kinds)}"
    else:
        summary = f"{rows} rows valid: {n_expectations} expectation(s) met" + (
            ", no poisoning signal" if poisoning else ""
        )
        if status == "warn":
            summary += f" ({len(report.findings)} warning(s))"
    return report.finish(status, summary)
