"""OpenLineage for every airflow-aisec task: its datasets, data-quality assertions and the report's facet.

With Airflow's OpenLineage provider installed (``airflow-aisec[openlineage]``) and a transport
configured, each aisec task's COMPLETE (or FAIL) event carries:

* **inputs / outputs** — the files and objects the check read and wrote, named by OpenLineage's
  conventions: a local path is namespace ``file`` and its absolute path; ``s3://bucket/key`` is
  namespace ``s3://bucket`` and name ``key`` (likewise ``gs``, ``wasbs``, ``abfss``, ``hdfs``). Operators
  declare them in :attr:`AisecLineageMixin.lineage_inputs` / ``lineage_outputs`` (names of their
  attributes) and may add more from the report (:meth:`AisecLineageMixin.lineage_datasets`).
* **data-quality assertions** (``dataQualityAssertions`` input facet, on the first input) — data
  validation: one assertion per Great Expectations expectation and one failed assertion per other
  finding; drift: one ``no_drift`` assertion per tested column (skipped columns are not asserted).
  A report with status ``error`` (the check could not decide) carries no assertion.
* **the report** (run facet ``aisecReport``): check, status, summary, finding count and the report's
  SHA-256 (of its canonical JSON: sorted keys, no whitespace), so the lineage event points at exactly
  one report.

Without the provider :meth:`AisecLineageMixin.get_openlineage_facets_on_complete` returns ``None`` and
nothing is imported: the provider is optional and never imported at DAG parse time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

#: Name of the run facet carrying the aisec report's status, summary and digest.
REPORT_FACET = "aisecReport"
#: ``_schemaURL`` of that facet (its fields are documented in the README's lineage section).
REPORT_FACET_SCHEMA = "https://github.com/airflow-aisec/airflow-aisec/blob/main/README.md#openlineage"
#: Object stores named ``<scheme>://<bucket or container>`` + key, as OpenLineage's naming conventions say.
STORAGE_SCHEMES = frozenset({"s3", "s3a", "gs", "wasbs", "abfss", "hdfs"})
#: Producer URL written into custom facets.
PRODUCER = "https://github.com/airflow-aisec/airflow-aisec"


def dataset_name(uri: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of ``uri`` per OpenLineage's naming conventions; ``None`` if not a location."""
    text = str(uri).strip()
    if not text or "\n" in text:
        return None
    parts = urlsplit(text)
    if parts.scheme == "file":
        return "file", os.path.abspath(unquote(parts.path))
    if parts.scheme in STORAGE_SCHEMES and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    if len(parts.scheme) > 1:  # an asset URI (aisec://…) or a web address is not a stored dataset
        return None
    return "file", os.path.abspath(text)  # a local path (a one-letter "scheme" is a Windows drive)


def report_digest(report: Mapping[str, Any]) -> str:
    """SHA-256 of the report's canonical JSON (sorted keys, no whitespace)."""
    data = json.dumps(report, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def assertions(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's data-quality assertions: ``{assertion, success, column?}``; none for an ``error`` report."""
    if report.get("status") == "error":
        return []
    details = report.get("details") or {}
    out: list[dict[str, Any]] = []
    if report.get("check") == "data_validation":
        for res in (details.get("gx") or {}).get("results") or []:
            out.append(
                {"assertion": str(res.get("type")), "success": bool(res.get("success")), "column": res.get("column")}
            )
        for f in report.get("findings") or []:
            if f.get("id") != "AISEC-DV-EXPECTATION" and f.get("severity") != "info":
                out.append({"assertion": str(f.get("id")), "success": False, "column": f.get("location") or None})
    elif report.get("check") == "drift":
        for feat in details.get("features") or []:
            if feat.get("status") == "skipped" and not feat.get("drifted"):
                continue
            tested = feat.get("status") not in ("missing", "type_changed") and not feat.get("empty_window")
            out.append(
                {
                    "assertion": f"no_drift:{feat.get('method') or 'missing'}",
                    "success": bool(tested and not feat.get("drifted")),
                    "column": feat.get("name"),
                }
            )
    return out


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, (str, os.PathLike)):
        yield os.fspath(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _values(item)


class AisecLineageMixin:
    """``get_openlineage_facets_on_complete`` for aisec operators (see the module docstring)."""

    #: attributes naming what the check reads (a path/URI or a list of them).
    lineage_inputs: ClassVar[tuple[str, ...]] = ()
    #: attributes naming what the check writes.
    lineage_outputs: ClassVar[tuple[str, ...]] = ()

    def lineage_datasets(self, report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """Input and output locations of this run; override to add some from ``report``."""
        inputs = [v for name in self.lineage_inputs for v in _values(getattr(self, name, None))]
        outputs = [v for name in self.lineage_outputs for v in _values(getattr(self, name, None))]
        return inputs, outputs

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """An ``OperatorLineage`` of this run's report; ``None`` without the provider or before a report."""
        report = getattr(self, "aisec_last_report", None)
        if not isinstance(report, Mapping):
            return None
        try:
            from airflow.providers.openlineage.extractors import OperatorLineage  # noqa: F401
        except ImportError:
            return None
        return operator_lineage(report, *self.lineage_datasets(report))


def operator_lineage(report: Mapping[str, Any], inputs: Iterable[str], outputs: Iterable[str]) -> Any:
    """Build the ``OperatorLineage`` (the provider must be installed)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )

    checks = [
        Assertion(assertion=a["assertion"], success=a["success"], column=a.get("column")) for a in assertions(report)
    ]
    in_ds, out_ds = [], []
    for uri in dict.fromkeys(inputs):
        named = dataset_name(uri)
        if named:
            facets: dict[str, Any] = (
                {"dataQualityAssertions": DataQualityAssertionsDatasetFacet(assertions=checks)} if checks else {}
            )
            in_ds.append(InputDataset(namespace=named[0], name=named[1], inputFacets=facets))
            checks = []  # the assertions are about the first input (the data checked)
    for uri in dict.fromkeys(outputs):
        named = dataset_name(uri)
        if named:
            out_ds.append(OutputDataset(namespace=named[0], name=named[1]))
    facet = _report_facet_class()(
        check=str(report.get("check")),
        status=str(report.get("status")),
        summary=str(report.get("summary", ""))[:1000],
        findings=len(report.get("findings") or []),
        digest=f"sha256:{report_digest(report)}",
    )
    return OperatorLineage(inputs=in_ds, outputs=out_ds, run_facets={REPORT_FACET: facet})


@cache
def _report_facet_class() -> type:
    """The ``aisecReport`` run facet (defined on first use: it subclasses the provider's ``RunFacet``)."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class AisecReportRunFacet(RunFacet):  # type: ignore[misc]
        """An airflow-aisec report: its check, status, summary, number of findings and digest."""

        check: str
        status: str
        summary: str
        findings: int
        digest: str

        @staticmethod
        def _get_schema() -> str:
            return REPORT_FACET_SCHEMA

    return AisecReportRunFacet
