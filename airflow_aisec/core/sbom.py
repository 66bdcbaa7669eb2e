"""CycloneDX 1.6 documents built with ``cyclonedx-python-lib``: the environment SBOM and the ML-BOM.

* :func:`environment_bom` — Python packages as ``library`` components (package URLs), and every
  vulnerability the dependency audit found as a VEX entry: ``affects`` names the package's component
  and version (status ``affected``), ``analysis.state`` is ``in_triage`` (the audit matched a version
  range; it did not assess exploitability), aliases become references, fixed versions the recommendation.
* :func:`ml_bom` — the environment BOM plus the trained model as a ``machine-learning-model``
  component (hashes from its integrity manifest, a minimal model card: the datasets it was trained on
  and its metrics) and the datasets and splits as ``data`` components with their digests. The model is
  the BOM's subject (``metadata.component``) and depends on its data components.

Every document is checked by the library's own strict JSON schema validator for 1.6 before it is
returned (:func:`validate_json`); a document that does not validate is never written. The library does
not model ``modelCard`` yet, so the card is added to the serialised JSON before that validation.

No Airflow import here; the library is imported inside functions.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: The CycloneDX specification version written.
SPEC_VERSION = "1.6"
#: manifest algorithm (and digest length in hex) → CycloneDX hash algorithm name
_HASH_NAMES = {
    ("sha256", 64): "SHA-256",
    ("sha512", 128): "SHA-512",
    ("blake2b", 128): "BLAKE2b-512",
    ("blake2b", 64): "BLAKE2b-256",
    ("blake3", 64): "BLAKE3",
}


@dataclass(frozen=True)
class VulnerabilityEntry:
    """One vulnerability found in one package.

    :param id: advisory id (``PYSEC-…``, ``GHSA-…``).
    :param aliases: other ids of the same advisory (CVE, GHSA).
    :param description: the advisory's text.
    :param fixed_versions: versions that fix it.
    """

    id: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    fixed_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Package:
    """A Python distribution of the environment and what was found in it."""

    name: str
    version: str
    vulnerabilities: tuple[VulnerabilityEntry, ...] = ()


@dataclass(frozen=True)
class DataComponent:
    """A dataset or a split: ``data`` component with its digest.

    :param name: component name (``training-dataset``, ``split:train``).
    :param uri: where it lives (``file://…``, ``s3://…``).
    :param sha256: hex SHA-256 of its bytes.
    :param role: ``dataset`` or ``split`` (a property).
    :param properties: more ``name → value`` properties (rows, seed).
    """

    name: str
    uri: str
    sha256: str
    role: str = "dataset"
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelComponent:
    """The trained model: its manifest (``core.manifest`` document) and its metrics.

    :param name: the model's name.
    :param manifest: the integrity manifest document (``parse_manifest`` output).
    :param manifest_sha256: SHA-256 of the manifest file's bytes (a property, to tie BOM and manifest).
    :param version: the model's version, if known.
    :param metrics: ``name → number`` from the performance check (model card).
    :param task: the model card's ML task (e.g. ``classification``).
    """

    name: str
    manifest: Mapping[str, Any]
    manifest_sha256: str = ""
    version: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    task: str | None = None


def environment_bom(packages: Iterable[Package]) -> Any:
    """A ``cyclonedx.model.bom.Bom`` of ``packages`` with their vulnerabilities as VEX entries."""
    from cyclonedx.model.bom import Bom

    bom = Bom()
    _add_packages(bom, packages)
    return bom


def environment_sbom_json(packages: Iterable[Package]) -> str:
    """The environment SBOM as validated CycloneDX 1.6 JSON text."""
    return serialize(environment_bom(packages))


def ml_bom(*, model: ModelComponent, data: Sequence[DataComponent], environment: str | None = None) -> str:
    """The ML-BOM as validated CycloneDX 1.6 JSON text.

    :param model: the trained model.
    :param data: the datasets and splits it was trained on.
    :param environment: the environment SBOM's JSON text (:func:`environment_sbom_json`): its packages
        and VEX entries are carried over. ``None``: no environment section.
    """
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    bom = Bom()
    if environment is not None:  # its packages and VEX entries; a new document (serial number, time)
        loaded = _load(environment)
        for comp in loaded.components:
            bom.components.add(comp)
        for vuln in loaded.vulnerabilities:
            bom.vulnerabilities.add(vuln)
    data_components = [_data_component(d) for d in data]
    for comp in data_components:
        bom.components.add(comp)
    entries = _manifest_entries(model.manifest)
    algorithm = str(model.manifest.get("algorithm", ""))
    files = [_file_component(model.name, e, algorithm) for e in entries if e.get("type", "file") == "file"]
    single = model.manifest.get("kind") == "file" and len(entries) == 1
    subject = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model.name,
        version=model.version,
        bom_ref=f"model:{model.name}",
        hashes=[_hash(algorithm, entries[0]["digest"])] if single else [],
        components=[] if single else files,
        properties=_properties(
            {
                "aisec:manifest:algorithm": algorithm,
                "aisec:manifest:root_digest": model.manifest.get("root_digest"),
                "aisec:manifest:sha256": model.manifest_sha256 or None,
                "aisec:manifest:file_count": len(entries),
            }
        ),
    )
    bom.metadata.component = subject
    bom.register_dependency(subject, data_components)
    return serialize(bom, model_card={str(subject.bom_ref.value): _model_card(model, data_components)})


def serialize(bom: Any, *, model_card: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """``bom`` as CycloneDX 1.6 JSON text, with model cards added by bom-ref, validated.

    :raises AisecUndecidableError: the document does not validate, or the validator is not installed.
    """
    from cyclonedx.output.json import JsonV1Dot6

    doc = json.loads(JsonV1Dot6(bom).output_as_string())
    for comp in _all_components(doc):
        card = (model_card or {}).get(comp.get("bom-ref", ""))
        if card:
            comp["modelCard"] = dict(card)
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    errors = validate_json(text)
    if errors:
        raise AisecUndecidableError(f"the CycloneDX {SPEC_VERSION} document does not validate: {errors}")
    return text


def validate_json(text: str) -> str | None:
    """The library's strict 1.6 JSON schema validation of ``text``: ``None`` when valid, else the error.

    :raises AisecUndecidableError: the validator's optional dependencies are not installed.
    """
    from cyclonedx.exception import MissingOptionalDependencyException
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    except MissingOptionalDependencyException as exc:
        raise AisecUndecidableError(
            "CycloneDX validation needs the json-validation extra: install airflow-aisec[mlbom]"
        ) from exc
    return None if error is None else str(error)[:500]


def write_bom(path: str | os.PathLike[str], text: str) -> dict[str, Any]:
    """Write ``text`` atomically; return ``{path, sha256, format, components}`` for a report."""
    from airflow_aisec.utils.fs import write_text_atomic

    written: Path = write_text_atomic(path, text)
    doc = json.loads(text)
    return {
        "path": str(written),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "format": f"CycloneDX {SPEC_VERSION} JSON",
        "components": len(doc.get("components", [])),
        "vulnerabilities": len(doc.get("vulnerabilities", [])),
    }


# ---------------------------------------------------------------------- helpers
def _add_packages(bom: Any, packages: Iterable[Package]) -> None:
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    seen: set[tuple[str, str]] = set()
    for pkg in sorted(packages, key=lambda p: (p.name.lower(), p.version)):
        key = (pkg.name.lower(), pkg.version)
        if key in seen:
            continue
        seen.add(key)
        purl = PackageURL(type="pypi", name=pkg.name.lower(), version=pkg.version)
        comp = Component(
            type=ComponentType.LIBRARY, name=pkg.name, version=pkg.version, purl=purl, bom_ref=purl.to_string()
        )
        bom.components.add(comp)
        for vuln in pkg.vulnerabilities:
            bom.vulnerabilities.add(_vex(vuln, comp))


def _vex(vuln: VulnerabilityEntry, comp: Any) -> Any:
    """A VEX entry: ``vuln`` affects ``comp``'s version; analysis in triage (not assessed)."""
    from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus, ImpactAnalysisState
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityAnalysis,
        VulnerabilityReference,
        VulnerabilitySource,
    )

    fixed = ", ".join(vuln.fixed_versions)
    return Vulnerability(
        bom_ref=f"{vuln.id}@{comp.bom_ref.value}",
        id=vuln.id,
        source=VulnerabilitySource(name="OSV"),
        references=[VulnerabilityReference(id=a, source=VulnerabilitySource(name="OSV")) for a in sorted(vuln.aliases)],
        description=vuln.description[:2000] or None,
        recommendation=f"upgrade {comp.name} to {fixed}" if fixed else None,
        affects=[
            BomTarget(
                ref=comp.bom_ref.value,
                versions=[BomTargetVersionRange(version=comp.version, status=ImpactAnalysisAffectedStatus.AFFECTED)],
            )
        ],
        analysis=VulnerabilityAnalysis(
            state=ImpactAnalysisState.IN_TRIAGE,
            detail="the installed version is in the advisory's affected range; exploitability not assessed",
        ),
    )


def _load(text: str) -> Any:
    from cyclonedx.model.bom import Bom

    try:
        return Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    except Exception as exc:  # the library raises many types for a malformed document
        raise AisecInputError(f"the environment SBOM is not a CycloneDX JSON document: {type(exc).__name__}") from exc


def _data_component(d: DataComponent) -> Any:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri
    from cyclonedx.model.component import Component, ComponentType

    return Component(
        type=ComponentType.DATA,
        name=d.name,
        bom_ref=f"data:{d.name}",
        hashes=[_hash("sha256", d.sha256)],
        external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(d.uri))],
        properties=_properties({"aisec:data:role": d.role, **{f"aisec:data:{k}": v for k, v in d.properties.items()}}),
    )


def _file_component(model: str, entry: Mapping[str, Any], algorithm: str) -> Any:
    from cyclonedx.model.component import Component, ComponentType

    return Component(
        type=ComponentType.FILE,
        name=str(entry["path"]),
        bom_ref=f"model:{model}:{entry['path']}",
        hashes=[_hash(algorithm, str(entry["digest"]))],
        properties=_properties({"aisec:file:size": entry.get("size")}),
    )


def _hash(algorithm: str, digest: str) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType

    name = _HASH_NAMES.get((algorithm, len(digest)))
    if name is None or not all(c in "0123456789abcdef" for c in digest):
        raise AisecInputError(f"cannot express a {algorithm!r} digest of {len(digest)} hex digits in CycloneDX")
    return HashType(alg=HashAlgorithm(name), content=digest)


def _properties(values: Mapping[str, Any]) -> list[Any]:
    from cyclonedx.model import Property

    return [Property(name=k, value=str(v)) for k, v in values.items() if v is not None and v != ""]


def _manifest_entries(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not entries:
        raise AisecInputError("the model's manifest lists no entries: nothing to describe")
    return entries


def _model_card(model: ModelComponent, data: Sequence[Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"datasets": [{"ref": c.bom_ref.value} for c in data]}
    if model.task:
        params["task"] = model.task
    card: dict[str, Any] = {"modelParameters": params}
    metrics = [
        {"type": str(name), "value": str(value)}
        for name, value in sorted(model.metrics.items())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    return card


def _all_components(doc: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    stack = list(doc.get("components", []))
    subject = doc.get("metadata", {}).get("component")
    if subject:
        stack.append(subject)
    while stack:
        comp = stack.pop()
        yield comp
        stack.extend(comp.get("components", []))


# ---------------------------------------------------------------------- the ML-BOM check
def data_from_reports(
    provenance: Mapping[str, Any] | None = None, split: Mapping[str, Any] | None = None
) -> list[DataComponent]:
    """Data components from a provenance report (the verified dataset) and a split report (its splits)."""
    out: list[DataComponent] = []
    try:
        if provenance:
            details = provenance["details"]
            algorithm, _, digest = str(details["observed"]["digest"]).partition(":")
            if algorithm != "sha256":
                raise AisecInputError(f"the provenance report's dataset digest is {algorithm!r}, not sha256")
            out.append(DataComponent(name="training-dataset", uri=str(details["source"]["canonical"]), sha256=digest))
        for name, s in ((split or {}).get("details", {}).get("splits") or {}).items():
            out.append(
                DataComponent(
                    name=f"split:{name}",
                    uri=Path(str(s["path"])).resolve().as_uri(),
                    sha256=str(s["sha256"]),
                    role="split",
                    properties={
                        "rows": s.get("rows"),
                        "seed": (split or {})["details"].get("parameters", {}).get("seed"),
                    },
                )
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise AisecInputError(f"an upstream report lacks the field {exc} the ML-BOM needs") from exc
    return out


def write_ml_bom(
    *,
    bom_path: str | os.PathLike[str],
    model_name: str,
    manifest_path: str | os.PathLike[str],
    data: Sequence[DataComponent] = (),
    environment_sbom: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_version: str | None = None,
    task: str | None = None,
) -> Any:
    """Build, validate and write the ML-BOM; return an ``ml_bom`` report (``details.bom``: path, SHA-256).

    :param environment_sbom: the dependency audit's ``details.sbom`` (``path`` and ``sha256``): the file
        is read and must still have that digest (a changed SBOM is an error, never silently merged).
    :raises AisecInputError: unreadable manifest or SBOM, an SBOM whose digest changed, bad reports.
    """
    from airflow_aisec.core.manifest import parse_manifest
    from airflow_aisec.report import Report

    report = Report.start("ml_bom", model_name, tags=["AML.M0023", "OWASP-ML06"])
    manifest_bytes = _read(manifest_path, "model manifest")
    environment = None
    if environment_sbom is not None:
        raw = _read(str(environment_sbom.get("path", "")), "environment SBOM")
        if hashlib.sha256(raw).hexdigest() != environment_sbom.get("sha256"):
            raise AisecInputError(f"the environment SBOM {environment_sbom.get('path')} changed since it was audited")
        environment = raw.decode("utf-8")
    model = ModelComponent(
        name=model_name,
        manifest=parse_manifest(manifest_bytes, source=os.fspath(manifest_path)),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        version=model_version,
        metrics=dict(metrics or {}),
        task=task,
    )
    info = write_bom(bom_path, ml_bom(model=model, data=data, environment=environment))
    report.details["bom"] = info
    report.metrics.update(
        components=info["components"], vulnerabilities=info["vulnerabilities"], data_components=len(data)
    )
    return report.finish(
        "pass",
        f"CycloneDX {SPEC_VERSION} ML-BOM of {model_name}: {info['components']} components, "
        f"{len(data)} data, {info['vulnerabilities']} vulnerabilities as VEX entries",
    )


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AisecInputError(f"cannot read the {what} {os.fspath(path)!r}: {exc.strerror or exc}") from exc
