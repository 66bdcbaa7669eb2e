"""Convert an ``aisec.report/v1`` report into a SARIF 2.1.0 log (GitHub code scanning, IDEs, DefectDojo).

A pure function of the report: the same report always yields the same SARIF, and nothing is read
from the environment. The mapping:

* ``tool.driver``: ``airflow-aisec`` with the report's tool version; one **rule** per distinct
  finding id, carrying ``properties.security-severity`` (critical 9.5, high 8.0, medium 5.5, low 3.0,
  info 0.0: GitHub's severity bands) and ``defaultConfiguration.level`` (error / warning / note).
* one **result** per finding: ``ruleId``, ``level``, ``message`` (the finding's title), a location
  and ``partialFingerprints["aisecFinding/v1"]``: a hash of the check, the finding id, its location
  and its stable details (a secret's fingerprint, a package version …), never a timestamp, so the
  same problem keeps the same fingerprint across runs.
* **locations**: checks about files (secrets, model scan, integrity, provenance) give a
  ``physicalLocation`` (``artifactLocation.uri`` plus ``region.startLine`` when the location is
  ``path:line``); every other check gives a ``logicalLocation`` whose ``kind`` names what the
  location is (a ``name==version`` package, a bucket, a feature, a client, a policy statement).
* an ``error`` report (the check could not decide) becomes a run whose
  ``invocations[0].executionSuccessful`` is ``false`` with a ``toolExecutionNotification`` carrying
  the report's summary; it has no results.

No secret value is ever copied: the SARIF holds only what the report already holds (titles,
locations, details), and secrets reports carry fingerprints, never values.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/airflow-aisec/"
FINGERPRINT_KEY = "aisecFinding/v1"

#: GitHub reads ``security-severity`` as a CVSS-like score: >= 9 critical, >= 7 high, >= 4 medium.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

#: checks whose finding locations are files (``path`` or ``path:line``) under the scanned subject.
FILE_CHECKS = frozenset({"secrets", "model_scan", "integrity", "provenance"})
#: ``logicalLocation.kind`` of the other checks' locations.
LOGICAL_KINDS = {
    "dependency_audit": "package",
    "image_scan": "package",
    "drift": "feature",
    "data_validation": "column",
    "split": "column",
    "performance": "metric",
    "retrain": "metric",
    "inference_audit": "client",
    "load_test": "endpoint",
    "s3_posture": "resource",
    "iam_policy": "statement",
    "cloudwatch": "resource",
}
#: finding ``details`` keys whose (scalar) values identify a finding across runs.
STABLE_DETAIL_KEYS = (
    "fingerprint",
    "type",
    "file",
    "sha256",
    "package",
    "name",
    "version",
    "vulnerability",
    "advisory",
    "module",
    "global",
    "feature",
    "bucket",
    "key",
)
_PATH_LINE = re.compile(r"^(?P<path>.+?):(?P<line>[1-9][0-9]{0,8})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def report_to_sarif(report: dict[str, Any]) -> dict[str, Any]:
    """The SARIF 2.1.0 log (a JSON-serialisable dict) of one ``aisec.report/v1`` report."""
    check = str(report.get("check", ""))
    findings = [f for f in report.get("findings") or () if isinstance(f, dict)]
    raw_tool = report.get("tool")
    tool: dict[str, Any] = raw_tool if isinstance(raw_tool, dict) else {}
    rules, rule_index = _rules(check, findings)
    errored = report.get("status") == "error"
    invocation: dict[str, Any] = {"executionSuccessful": not errored}
    if errored:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": _text(report.get("summary")) or "the check could not decide"}}
        ]
    driver: dict[str, Any] = {
        "name": "airflow-aisec",
        "informationUri": INFORMATION_URI,
        "rules": rules,
    }
    version = _text(tool.get("version"))
    if version:
        driver["version"] = version
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"aisec/{_slug(check) or 'report'}/"},
        "invocations": [invocation],
        "results": [] if errored else [_result(check, f, rule_index) for f in findings],
        "properties": {
            "aisec": {
                "check": check,
                "status": _text(report.get("status")),
                "subject": _text(report.get("subject")),
                "summary": _text(report.get("summary")),
                "metrics": dict(report["metrics"]) if isinstance(report.get("metrics"), dict) else {},
            },
            "tags": list(dict.fromkeys(t for t in report.get("tags") or () if isinstance(t, str))),
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def dumps(report: dict[str, Any]) -> str:
    """``report`` as SARIF JSON text (sorted keys, ASCII-only: stable bytes for the same report)."""
    return json.dumps(report_to_sarif(report), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _rules(check: str, findings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One rule per distinct finding id, at the most severe severity seen for it."""
    worst: dict[str, str] = {}
    titles: dict[str, str] = {}
    for f in findings:
        rid = _rule_id(f)
        sev = _severity(f)
        if rid not in worst or _RANK[sev] > _RANK[worst[rid]]:
            worst[rid] = sev
        titles.setdefault(rid, _text(f.get("title")) or rid)
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for rid in sorted(worst):
        sev = worst[rid]
        index[rid] = len(rules)
        rules.append(
            {
                "id": rid,
                "name": _rule_name(rid),
                "shortDescription": {"text": titles[rid]},
                "fullDescription": {"text": f"airflow-aisec {check or 'check'} finding {rid}: {titles[rid]}"},
                "help": {
                    "text": f"Reported by the airflow-aisec '{check}' check. See the finding's details and the "
                    f"check's documentation for what it guarantees and how to fix or suppress it."
                },
                "defaultConfiguration": {"level": LEVELS[sev]},
                "properties": {
                    "security-severity": SECURITY_SEVERITY[sev],
                    "tags": list(dict.fromkeys(["security", check or "aisec"])),
                },
            }
        )
    return rules, index


def _result(check: str, finding: dict[str, Any], rule_index: dict[str, int]) -> dict[str, Any]:
    rid = _rule_id(finding)
    sev = _severity(finding)
    location = _text(finding.get("location"))
    raw = finding.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    result: dict[str, Any] = {
        "ruleId": rid,
        "ruleIndex": rule_index[rid],
        "level": LEVELS[sev],
        "message": {"text": _text(finding.get("title")) or rid},
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(check, rid, location, details)},
        "properties": {"severity": sev, "aisec": {"location": location, "details": details}},
    }
    where = _location(check, location, details)
    if where:
        result["locations"] = [where]
    return result


def fingerprint(check: str, rule_id: str, location: str, details: dict[str, Any]) -> str:
    """Hash of what identifies a finding across runs (never a timestamp or a run-specific value)."""
    stable = {k: details[k] for k in STABLE_DETAIL_KEYS if isinstance(details.get(k), (str, int, float, bool))}
    material = json.dumps([check, rule_id, location, stable], sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def _location(check: str, location: str, details: dict[str, Any]) -> dict[str, Any] | None:
    if check in FILE_CHECKS:
        path, line = _file_and_line(location, details)
        if path:
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
            if line:
                physical["region"] = {"startLine": line}
            return {"physicalLocation": physical}
    if not location:
        return None
    kind = LOGICAL_KINDS.get(check, "object")
    if "==" in location and check in ("dependency_audit", "image_scan"):
        kind = "package"
    return {"logicalLocations": [{"fullyQualifiedName": location, "kind": kind}]}


def _file_and_line(location: str, details: dict[str, Any]) -> tuple[str, int | None]:
    """The file and line of a file-check finding: its ``file``/``line`` details, else ``path[:line]``."""
    file, line = details.get("file"), details.get("line")
    if isinstance(file, str) and file and details.get("where", "content") == "content":
        ok_line = isinstance(line, int) and not isinstance(line, bool) and 1 <= line < 2**31
        return file, line if ok_line else None
    if not location or _SCHEME.match(location) or any(c in location for c in "\n\r"):
        return "", None
    m = _PATH_LINE.match(location)
    if m:
        return m.group("path"), int(m.group("line"))
    return location, None


def _uri(path: str) -> str:
    """A relative or ``file://`` URI reference for ``path`` (percent-encoded, never a bare drive or scheme)."""
    raw = path.replace("\\", "/").encode("utf-8", "backslashreplace")
    text = quote(raw, safe="/-._~!$&'()*+,;=@")
    return "file://" + text if text.startswith("/") else text


def _rule_id(finding: dict[str, Any]) -> str:
    return _text(finding.get("id")) or "AISEC-FINDING"


def _severity(finding: dict[str, Any]) -> str:
    sev = finding.get("severity")
    return sev if isinstance(sev, str) and sev in _RANK else "info"


def _rule_name(rule_id: str) -> str:
    """``AISEC-SECRET-HF`` → ``AisecSecretHf`` (SARIF suggests an identifier-like rule name)."""
    return "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", rule_id) if p) or "AisecFinding"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
