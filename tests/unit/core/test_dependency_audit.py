"""Dependency audit through pip-audit's real dependency sources and auditor, against offline OSV data."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import date

import pytest

from airflow_aisec.core.dependency_audit import load_ignore_file, run_audit
from airflow_aisec.exceptions import AisecInputError, AisecTransientError, AisecUndecidableError
from airflow_aisec.report import validate
from tests.osv_helpers import snapshot_path

TODAY = date(2026, 11, 27)


@pytest.fixture(scope="module")
def snapshot():
    return str(snapshot_path())


def reqs(tmp_path, *lines, name="requirements.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def finding_ids(report):
    return sorted(f.id for f in report.findings)


# -------------------------------------------------------------------------- acceptance vectors
def test_requests_2_19_0_and_jinja2_2_11_2_are_vulnerable(tmp_path, snapshot):
    report = run_audit(requirements=[reqs(tmp_path, "requests==2.19.0", "jinja2==2.11.2")], osv_db=snapshot)
    data = validate(report.to_dict())
    assert data["status"] == "fail"
    fixes = {f["id"]: f["details"]["fix_versions"] for f in data["findings"]}
    assert fixes == {"PYSEC-2018-28": ["2.20.0"], "PYSEC-2023-74": ["2.31.0"], "PYSEC-2021-66": ["2.11.3"]}
    by_id = {f["id"]: f for f in data["findings"]}
    assert by_id["PYSEC-2018-28"]["location"] == "requests==2.19.0"
    assert "CVE-2018-18074" in by_id["PYSEC-2018-28"]["details"]["aliases"]
    assert by_id["PYSEC-2018-28"]["severity"] == "high"  # no CVSS in the record: the default, said so
    assert by_id["PYSEC-2018-28"]["details"]["severity_source"] == "default"
    assert data["metrics"]["packages_audited"] == 2
    assert data["metrics"]["vulnerable_packages"] == 2
    assert data["metrics"]["vulnerabilities"] == 3
    assert data["metrics"]["advisories_default_severity"] == 3
    assert "rated high" in data["summary"]
    assert "OWASP-ML06" in data["tags"] and "AML.M0016" in data["tags"]
    assert data["details"]["database"]["records"] == 2661


def test_requests_2_32_3_is_clean(tmp_path, snapshot):
    report = run_audit(requirements=[reqs(tmp_path, "requests==2.32.3")], osv_db=snapshot)
    assert report.status == "pass"
    assert report.findings == []
    assert report.metrics["packages_audited"] == 1


# ------------------------------------------------------------------------------ other sources
def test_path_audits_another_site_packages(tmp_path, snapshot):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for name, version in (("requests", "2.19.0"), ("six", "1.16.0")):
        meta = site / f"{name}-{version}.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    report = run_audit(path=str(tmp_path / "venv"), osv_db=snapshot)  # a virtualenv dir → its site-packages
    assert report.subject == f"path:{site}"
    assert finding_ids(report) == ["PYSEC-2018-28", "PYSEC-2023-74"]
    assert report.metrics["packages_audited"] == 2


def test_project_with_pylock(tmp_path, snapshot):
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n\n'
        '[[packages]]\nname = "jinja2"\nversion = "2.11.2"\n\n'
        '[[packages]]\nname = "markupsafe"\nversion = "2.1.5"\n'
    )
    report = run_audit(project=str(tmp_path), osv_db=snapshot)
    assert finding_ids(report) == ["PYSEC-2021-66"]


def test_several_sources_in_one_report(tmp_path, snapshot):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "t"\n[[packages]]\nname = "jinja2"\nversion = "2.11.2"\n'
    )
    report = run_audit(
        requirements=[reqs(tmp_path, "requests==2.19.0")], project=str(tmp_path / "proj"), osv_db=snapshot
    )
    assert finding_ids(report) == ["PYSEC-2018-28", "PYSEC-2021-66", "PYSEC-2023-74"]
    assert report.subject.startswith("requirements:") and "project:" in report.subject


# ---------------------------------------------------------------------------- could not audit
def test_unpinned_requirement_is_an_error_unless_allowed(tmp_path, snapshot):
    report = run_audit(requirements=[reqs(tmp_path, "requests>=2.0", "six==1.16.0")], osv_db=snapshot)
    assert report.status == "error"
    assert "not pinned" in report.summary and "requirements.txt:1" in report.summary
    assert report.metrics["unaudited_unpinned"] == 1 and report.metrics["packages_audited"] == 1
    allowed = run_audit(
        requirements=[reqs(tmp_path, "requests>=2.0", "six==1.16.0")], osv_db=snapshot, allow_unaudited=["unpinned"]
    )
    assert allowed.status == "warn"  # reported, never a pass
    assert allowed.to_dict()["details"]["unaudited"][0]["allowed"] is True


def test_invalid_requirements_line_is_an_input_error(tmp_path, snapshot):
    with pytest.raises(AisecInputError, match=r"requirements\.txt:1: invalid requirement line"):
        run_audit(requirements=[reqs(tmp_path, "this is not a requirement!!")], osv_db=snapshot)
    # "=====2" is arbitrary equality (===) with "==2": not a PEP 440 version, so not auditable
    odd = run_audit(requirements=[reqs(tmp_path, "requests=====2", name="r2.txt")], osv_db=snapshot)
    assert odd.status == "error" and "not PEP 440" in odd.summary


def test_missing_inputs_are_named(tmp_path, snapshot):
    with pytest.raises(AisecInputError, match=r"requirements file '.*nope\.txt' does not exist"):
        run_audit(requirements=[str(tmp_path / "nope.txt")], osv_db=snapshot)
    with pytest.raises(AisecInputError, match="environment path .* is not a directory"):
        run_audit(path=str(tmp_path / "no-venv"), osv_db=snapshot)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AisecInputError, match="neither pylock.toml nor pyproject.toml"):
        run_audit(project=str(tmp_path / "empty"), osv_db=snapshot)
    with pytest.raises(AisecInputError, match="offline OSV database .* does not exist"):
        run_audit(requirements=[reqs(tmp_path, "six==1.16.0")], osv_db=str(tmp_path / "missing.zip"))
    with pytest.raises(AisecInputError, match="fail_on must be one of"):
        run_audit(osv_db=snapshot, fail_on="severe")


def test_corrupt_database_is_undecidable(tmp_path):
    bad = tmp_path / "osv.zip"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(AisecUndecidableError, match=r"osv\.zip.*not a valid zip"):
        run_audit(requirements=[reqs(tmp_path, "six==1.16.0")], osv_db=str(bad))


def test_unreachable_online_service_is_a_transient_error(tmp_path):
    with socket.socket() as s:  # bound, never listening: refused on loopback; never the internet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/query"
        with pytest.raises(AisecTransientError, match=rf"vulnerability service '{url}' unreachable"):
            run_audit(
                requirements=[reqs(tmp_path, "six==1.16.0")], osv_url=url, timeout=5, cache_dir=str(tmp_path / "c")
            )


def test_stale_database_fails_the_freshness_gate(tmp_path, snapshot):
    report = run_audit(requirements=[reqs(tmp_path, "requests==2.32.3")], osv_db=snapshot, max_db_age_days=30)
    assert report.status == "error"
    assert "too old" in report.summary and "osv-sync" in report.summary
    assert report.metrics["db_age_days"] > 30
    fresh = run_audit(requirements=[reqs(tmp_path, "requests==2.32.3")], osv_db=snapshot, max_db_age_days=100_000)
    assert fresh.status == "pass"


# ------------------------------------------------------------------------------------- policy
def write_db(tmp_path, *records):
    d = tmp_path / "osvdb"
    d.mkdir(exist_ok=True)
    for r in records:
        (d / f"{r['id']}.json").write_text(json.dumps(r))
    return str(d)


def rec(id_, name, severity_vector=None, fixed="9.0"):
    r = {
        "id": id_,
        "modified": "2026-11-01T00:00:00Z",
        "summary": f"{id_} in {name}",
        "affected": [
            {
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    if severity_vector:
        r["severity"] = [{"type": "CVSS_V3", "score": severity_vector}]
    return r


CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
LOW = "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"


def test_fail_on_gates_by_cvss_severity(tmp_path):
    db = write_db(tmp_path, rec("T-CRIT", "alpha", CRITICAL), rec("T-LOW", "beta", LOW))
    both = reqs(tmp_path, "alpha==1.0", "beta==1.0")
    only_low = reqs(tmp_path, "beta==1.0", name="low.txt")
    report = run_audit(requirements=[both], osv_db=db, fail_on="high")
    assert report.status == "fail"
    sev = {f.id: (f.severity, f.details["cvss_score"]) for f in report.findings}
    assert sev["T-CRIT"] == ("critical", 9.8)
    assert sev["T-LOW"][0] == "low"
    low = run_audit(requirements=[only_low], osv_db=db, fail_on="high")
    assert low.status == "warn"  # reported, below the gate
    assert low.findings and low.findings[0].details["fix_versions"] == ["9.0"]
    assert run_audit(requirements=[only_low], osv_db=db, fail_on="any").status == "fail"
    assert run_audit(requirements=[only_low], osv_db=db, fail_on="low").status == "fail"


def test_unknown_severity_is_configurable(tmp_path):
    db = write_db(tmp_path, rec("T-NOSEV", "alpha"))
    report = run_audit(requirements=[reqs(tmp_path, "alpha==1.0")], osv_db=db, unknown_severity="low", fail_on="high")
    assert report.status == "warn"
    assert report.findings[0].severity == "low"
    assert report.to_dict()["details"]["policy"]["unknown_severity"] == "low"


def test_ignore_file_by_alias_with_expiry(tmp_path, snapshot):
    ignore = tmp_path / "ignore.toml"
    ignore.write_text(
        '[[ignore]]\nid = "CVE-2018-18074"\nreason = "internal-only HTTP"\nexpires = 2027-01-31\n\n'
        '[[ignore]]\nid = "PYSEC-2023-74"\npackage = "requests"\nreason = "no proxies"\nexpires = 2026-01-01\n\n'
        '[[ignore]]\nid = "GHSA-unused-0000"\nreason = "old"\nexpires = 2030-01-01\n'
    )
    report = run_audit(
        requirements=[reqs(tmp_path, "requests==2.19.0")], osv_db=snapshot, ignore_file=str(ignore), today=TODAY
    )
    data = report.to_dict()
    assert [f["id"] for f in data["findings"] if f["severity"] != "info"] == ["PYSEC-2023-74"]  # expired: applies again
    expired = [f for f in data["findings"] if f["id"] == "AISEC-AUDIT-IGNORE-EXPIRED"]
    assert [f["location"] for f in expired] == ["PYSEC-2023-74"]
    assert [i["id"] for i in data["details"]["ignored"]] == ["PYSEC-2018-28"]
    assert data["details"]["ignored"][0]["ignore"]["reason"] == "internal-only HTTP"
    assert [e["id"] for e in data["details"]["policy"]["ignore_unused"]] == ["GHSA-unused-0000"]
    assert data["metrics"]["ignored"] == 1 and data["metrics"]["ignore_expired"] == 1
    assert data["status"] == "fail"


def test_everything_ignored_passes_with_a_trace(tmp_path, snapshot):
    ignore = tmp_path / "ignore.json"
    ignore.write_text(json.dumps({"ignore": [{"id": "PYSEC-2021-66", "reason": "sandboxed", "expires": "2027-01-01"}]}))
    report = run_audit(
        requirements=[reqs(tmp_path, "jinja2==2.11.2")], osv_db=snapshot, ignore_file=str(ignore), today=TODAY
    )
    assert report.status == "pass"
    assert "1 ignored" in report.summary


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[[ignore]]\nid = "X"\nexpires = 2027-01-01\n', "missing reason"),
        ('[[ignore]]\nid = "X"\nreason = "r"\n', "missing expires"),
        ('[[ignore]]\nid = "X"\nreason = "r"\nexpires = "next year"\n', "invalid expires date"),
        ("ignore = 3\n", "must contain a list named 'ignore'"),
        ("[[ignore\n", "cannot be parsed"),
    ],
)
def test_bad_ignore_files_are_named(tmp_path, content, message):
    path = tmp_path / "ignore.toml"
    path.write_text(content)
    with pytest.raises(AisecInputError, match=message):
        load_ignore_file(path)


# --------------------------------------------------------------------------------------- SBOM
def test_cyclonedx_sbom_written_atomically_with_its_hash_in_the_report(tmp_path, snapshot):
    sbom = tmp_path / "out" / "sbom.cdx.json"
    report = run_audit(
        requirements=[reqs(tmp_path, "requests==2.19.0", "six==1.16.0")], osv_db=snapshot, sbom_path=str(sbom)
    )
    data = json.loads(sbom.read_text())
    assert data["bomFormat"] == "CycloneDX" and data["specVersion"] == "1.6"
    assert sorted(c["name"] for c in data["components"]) == ["requests", "six"]
    assert {v["id"] for v in data["vulnerabilities"]} == {"PYSEC-2018-28", "PYSEC-2023-74"}
    info = report.to_dict()["details"]["sbom"]
    assert info["sha256"] == hashlib.sha256(sbom.read_bytes()).hexdigest()
    assert info["components"] == 2
    assert "AML.M0023" in report.tags
    assert [p.name for p in sbom.parent.iterdir()] == ["sbom.cdx.json"]  # no temporary left behind


def test_packages_that_cannot_be_audited_are_reported_not_passed(tmp_path, snapshot):
    site = tmp_path / "site-packages"
    for name, version in (("six", "1.16.0"), ("legacy-thing", "2004d-final")):
        meta = site / f"{name.replace('-', '_')}-{version}.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    report = run_audit(path=str(site), osv_db=snapshot)
    assert report.status == "error"  # not allowed by default: fail closed
    assert report.metrics["packages_skipped"] == 1 and report.metrics["unaudited_unversioned"] == 1
    (skipped,) = report.to_dict()["details"]["skipped"]
    assert skipped["package"] == "legacy-thing"
    assert "could not audit 1 item(s) (1 unversioned)" in report.summary
    allowed = run_audit(path=str(site), osv_db=snapshot, allow_unaudited=["unversioned"])
    assert allowed.status == "warn"
    assert "could not be audited" in allowed.summary


def test_the_former_module_path_still_exports_the_dependency_audit():
    from airflow_aisec.core import audit, dependency_audit

    assert audit.run_audit is dependency_audit.run_audit and audit.load_ignore_file is load_ignore_file
    assert set(audit.__all__) == set(dependency_audit.__all__)


def test_the_policy_steps_run_in_registered_order():
    from airflow_aisec.core.dependency_audit.policy import POLICY_STEPS

    assert [name for name, _ in POLICY_STEPS] == ["database_freshness", "vulnerabilities", "unaudited"]


def test_the_gate_takes_the_worst_status_and_puts_error_reasons_first():
    from airflow_aisec.core.dependency_audit.policy import Decision, gate

    assert gate([]) == ("pass", "")
    assert gate([Decision("fail", "2 known"), Decision("warn", "1 not audited")]) == ("fail", "2 known; 1 not audited")
    status, summary = gate([Decision("warn", "0 known"), Decision("error", "nothing to audit", lead=True)])
    assert (status, summary) == ("error", "nothing to audit; 0 known")


def test_a_final_decision_stops_the_later_steps():
    from airflow_aisec.core.dependency_audit.policy import Decision, decide

    ran = []

    def stop(inp):
        ran.append("stop")
        return Decision("error", "too old", lead=True, final=True)

    def never(inp):
        ran.append("never")
        return Decision("pass")

    assert decide(None, [("stop", stop), ("never", never)]) == ("error", "too old")  # type: ignore[arg-type]
    assert ran == ["stop"]
