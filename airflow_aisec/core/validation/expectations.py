"""Great Expectations half of data validation: load a suite, run it in an ephemeral context, report failures.

GX is imported only inside the functions that run it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

if TYPE_CHECKING:
    import pandas as pd

#: GX 1.x expectation severity → report finding severity.
GX_SEVERITY = {"critical": "high", "warning": "low", "info": "info"}


def load_expectations(spec: Any) -> list[dict[str, Any]]:
    """Normalise an expectation suite spec into ``[{"type", "kwargs", "meta", "severity"}]``.

    Accepts a suite JSON file path, a suite dict (``{"expectations": [...]}``), a GX
    ``ExpectationSuite``, or a list of GX expectation objects / ``{"type", "kwargs"}`` dicts.
    """
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        from airflow_aisec.utils import strictjson

        path = Path(spec)
        if not path.exists():
            raise AisecInputError(f"expectation suite file {str(path)!r} does not exist")
        spec = strictjson.load_path(path, source=f"expectation suite file {str(path)!r}")
    if hasattr(spec, "to_json_dict"):
        spec = spec.to_json_dict()
    if isinstance(spec, Mapping):
        if "expectations" not in spec:
            raise AisecInputError("expectation suite JSON must have an 'expectations' list")
        spec = spec["expectations"]
    if not isinstance(spec, Iterable):
        raise AisecInputError(f"expectations must be a suite or a list, not {type(spec).__name__}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(spec):
        if hasattr(item, "configuration"):  # a GX Expectation object
            cfg = item.configuration.to_json_dict()
            item = {
                "type": cfg.get("type") or cfg.get("expectation_type"),
                "kwargs": cfg.get("kwargs", {}),
                "meta": cfg.get("meta") or {},
                "severity": str(getattr(item, "severity", "critical")),
            }
        if not isinstance(item, Mapping) or not (item.get("type") or item.get("expectation_type")):
            raise AisecInputError(f"expectation {i} must be a GX expectation or a dict with 'type' and 'kwargs'")
        kwargs = {k: v for k, v in dict(item.get("kwargs") or {}).items() if k != "batch_id"}
        severity = str(item.get("severity") or "critical").split(".")[-1].lower()
        out.append(
            {
                "type": item.get("type") or item.get("expectation_type"),
                "kwargs": kwargs,
                "meta": dict(item.get("meta") or {}),
                "severity": severity if severity in GX_SEVERITY else "critical",
            }
        )
    return out


def _build_expectation(cfg: Mapping[str, Any]) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(cfg["type"])
    except Exception as exc:  # GX raises its own ExpectationNotFoundError
        raise AisecInputError(f"unknown GX expectation type {cfg['type']!r}") from exc
    try:
        return impl(**cfg["kwargs"], meta=cfg["meta"] or None, severity=cfg["severity"])
    except Exception as exc:  # pydantic validation errors
        raise AisecInputError(f"invalid arguments for GX expectation {cfg['type']!r}: {exc}") from exc


def run_expectations(df: pd.DataFrame, expectations: Sequence[Mapping[str, Any]], *, suite_name: str = "aisec") -> dict:
    """Run ``expectations`` on ``df`` in an ephemeral GX context; return GX's result as JSON data."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_pandas("aisec")
    asset = datasource.add_dataframe_asset("dataset")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=suite_name)
    for cfg in expectations:
        suite.add_expectation(_build_expectation(cfg))
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}-validation", data=batch_definition, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": df})
    return result.to_json_dict()


def _gx_findings(report: Report, gx_result: Mapping[str, Any]) -> None:
    for res in gx_result.get("results", []):
        cfg = res.get("expectation_config") or {}
        kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
        exc_info = res.get("exception_info") or {}
        if not exc_info.get("raised_exception"):  # GX 1.x also nests it per metric: {metric_id: {...}}
            nested = [v for v in exc_info.values() if isinstance(v, Mapping) and v.get("raised_exception")]
            exc_info = nested[0] if nested else exc_info
        raised = bool(exc_info.get("raised_exception"))
        if res.get("success") and not raised:
            continue
        result = res.get("result") or {}
        details = {
            "expectation_type": cfg.get("type"),
            "kwargs": kwargs,
            "observed_value": result.get("observed_value"),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
            "partial_unexpected_list": (result.get("partial_unexpected_list") or [])[:20],
            "element_count": result.get("element_count"),
        }
        if raised:
            details["exception_message"] = exc_info.get("exception_message")
            details["raised"] = True
        severity = GX_SEVERITY.get(str(cfg.get("severity") or "critical").split(".")[-1].lower(), "high")
        where = kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or "table"
        observed = details["observed_value"]
        title = f"{cfg.get('type')} failed"
        if raised:
            title = f"{cfg.get('type')} raised: {exc_info.get('exception_message')}"
        elif observed is not None:
            title += f" (observed {observed!r})"
        elif details["unexpected_count"] is not None:
            title += f" ({details['unexpected_count']} unexpected value(s))"
        report.add_finding("AISEC-DV-EXPECTATION", severity, title, location=str(where), details=details)


def expectation_findings(
    df: pd.DataFrame, specs: Sequence[Mapping[str, Any]], *, suite_name: str, report: Report
) -> None:
    """Run the suite on ``df``: one finding per failed expectation, GX's statistics in the report.

    :raises AisecUndecidableError: GX did not evaluate every expectation, or one raised instead of
        evaluating (the check cannot decide, whatever the expectation's severity).
    """
    gx_result = run_expectations(df, specs, suite_name=suite_name)
    stats = gx_result.get("statistics", {})
    report.metrics["expectations_evaluated"] = stats.get("evaluated_expectations")
    report.metrics["expectations_failed"] = stats.get("unsuccessful_expectations")
    _gx_findings(report, gx_result)
    evaluated = len(gx_result.get("results") or [])
    if evaluated != len(specs):
        raise AisecUndecidableError(f"GX evaluated {evaluated} of {len(specs)} expectation(s): cannot decide")
    raised = [f for f in report.findings if f.details.get("raised")]
    if raised:
        names = ", ".join(sorted({str(f.details.get("expectation_type")) for f in raised}))
        raise AisecUndecidableError(f"GX expectation(s) raised instead of evaluating: {names}")
    report.details["gx"] = {
        "success": gx_result.get("success"),
        "statistics": stats,
        "suite_name": gx_result.get("suite_name"),
        "great_expectations_version": (gx_result.get("meta") or {}).get("great_expectations_version"),
        "results": [_outcome(res) for res in gx_result.get("results") or []],  # per expectation, for lineage
    }


def _outcome(res: Mapping[str, Any]) -> dict[str, Any]:
    """One expectation's outcome: its type, the column it is about (if any), whether it succeeded."""
    cfg = res.get("expectation_config") or {}
    kwargs = cfg.get("kwargs") or {}
    column = kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or None
    return {"type": cfg.get("type"), "column": column, "success": bool(res.get("success"))}
