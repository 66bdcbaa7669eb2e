"""Scan a container image as files, without a Docker engine: packages, secrets, model files, configuration.

:func:`scan_image` opens a ``docker save`` tarball or an OCI image layout (directory or archive),
checks every digest, streams the layers in order (nothing is extracted to disk; links are never
followed) and rebuilds the final filesystem with its whiteouts. It then reports, in one
``image_scan`` report:

* Python distributions of the final filesystem (every ``*.dist-info`` / ``*.egg-info``, wherever it
  lies), matched against the offline OSV database, each with its location in the image;
* secrets in every layer's files (a file deleted by a later layer is still in the image: anyone who
  pulls it can read that layer) and in the configuration (``ENV``, labels, history commands);
* model files of the final filesystem (pickle, joblib, PyTorch, numpy, safetensors, …) through the
  model-file scan;
* configuration risks: root user, secret-named ``ENV``, remote ``ADD`` without a checksum, an unpinned
  base image;
* OS packages (dpkg, apk; an RPM database is noted): listed, but NOT audited, because OS advisories need
  a database the offline PyPI snapshot does not hold. By default that makes the report ``error``
  (``os_packages="warn"`` accepts it as a warning): never a silent pass.

No Airflow import here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_aisec.core.image import inventory
from airflow_aisec.core.image._secrets import HEURISTIC_TYPES, SecretHit, SecretsSession, session
from airflow_aisec.core.image.config import CONFIG_CHECKS
from airflow_aisec.core.image.layers import DEFAULT_MAX_IMAGE_BYTES, FileSystem, WalkStats, walk
from airflow_aisec.core.image.source import ImageSource, open_image
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import SEVERITY_RANK, Report

__all__ = ["scan_image", "open_image", "DEFAULT_EXCLUDE", "MODEL_SUFFIXES"]

TAGS = ("OWASP-ML06", "AML.T0010", "AML.T0010.001", "AML.T0055", "AML.T0011.000", "AML.M0016")
#: Files larger than this are not read for the secrets and model scans (reported as unscanned).
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
#: Paths (prefixes) whose files hold documentation and locale data only: not secret-scanned, counted.
DEFAULT_EXCLUDE = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/zoneinfo/",
    "usr/share/terminfo/",
)
#: File suffixes scanned as model files (besides any file that starts like a pickle).
MODEL_SUFFIXES = (
    ".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".safetensors",
    ".sav", ".mar", ".h5", ".hdf5", ".keras", ".onnx", ".gguf",
)  # fmt: skip
#: Binary files (NUL bytes, no text encoding) larger than this are not secret-scanned (counted).
MAX_BINARY_SECRET_BYTES = 1024 * 1024
POLICIES = ("error", "warn")
FAIL_ON = ("critical", "high", "medium", "low")
MAX_LISTED = 200


@dataclass
class _Collected:
    meta: dict[tuple[str, int], tuple[str, bytes]] = field(default_factory=dict)
    secrets: list[tuple[str, int, SecretHit]] = field(default_factory=list)
    models: dict[tuple[str, int], Any] = field(default_factory=dict)
    unscanned: list[tuple[str, int, str]] = field(default_factory=list)
    names: list[tuple[str, int]] = field(default_factory=list)
    excluded: int = 0
    binaries: int = 0
    files: int = 0


def _is_model(path: str, head: bytes) -> bool:
    if path.lower().endswith(MODEL_SUFFIXES):
        return True
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # a pickle, whatever its name
        return True
    return path.lower().endswith(".bin") and head[:4] == b"PK\x03\x04"  # PyTorch's pytorch_model.bin


def _binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB and no UTF-16/32 byte-order mark: binary data, not text."""
    head = data[:8192]
    return b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def scan_image(
    image: Any,
    *,
    osv_db: str | os.PathLike[str] | None = None,
    ref: str | None = None,
    platform: str | None = None,
    fail_on: str = "medium",
    unscanned: str = "error",
    os_packages: str = "error",
    allow_formats: Sequence[str] = (),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> Report:
    """Scan the image at ``image``; return an ``image_scan`` report.

    :param image: ``docker save`` tarball, OCI image layout directory or OCI archive (a path, or a
        path-like object of object storage opened by the caller).
    :param osv_db: offline OSV database (zip or directory); default ``$AISEC_OSV_DB``. Required: without
        it the packages cannot be audited and the scan is an error.
    :param ref: which image of a multi-image archive (repo tag or OCI ref name).
    :param platform: ``os/arch[/variant]`` of a multi-platform index.
    :param fail_on: lowest severity that fails (``critical|high|medium|low``); lower findings warn.
    :param unscanned: what a file that could not be scanned decides (too large, compressed content):
        ``error`` (default) or ``warn``.
    :param os_packages: what OS packages (which cannot be audited offline) decide: ``error`` (default)
        or ``warn``.
    :param allow_formats: model formats the model scan does not inspect but that are accepted as info
        (``gguf``, ``hdf5``, ``keras``, ``unknown``).
    :param exclude: path prefixes whose files are not secret-scanned (counted in the report).
    :param max_file_bytes: files above this are not scanned for secrets or as models (unscanned).
    :param max_image_bytes: most uncompressed layer bytes read (a decompression bomb stops here).
    :raises AisecInputError: bad arguments, not an image, malformed archive or documents.
    :raises AisecUndecidableError: no vulnerability database, a digest mismatch, a missing or
        undecodable layer.
    """
    _check_args(fail_on, unscanned, os_packages, max_file_bytes, max_image_bytes)
    from airflow_aisec.core.osv import OsvDatabase, resolve_db_path

    db_path = resolve_db_path(osv_db)
    if not db_path:
        raise AisecUndecidableError(
            "image scan needs an offline vulnerability database (osv_db or $AISEC_OSV_DB) to audit the packages"
        )
    db = OsvDatabase.load(db_path)
    subject = str(image) + (f" ({ref})" if ref else "")
    with open_image(image, ref=ref, platform=platform) as img, session(max_file_bytes) as sec:
        report = Report.start("image_scan", subject, tags=TAGS)
        collected = _Collected()
        on_file = _collector(collected, sec, tuple(exclude), max_file_bytes, list(allow_formats))
        fs, stats = walk(img, on_file, max_image_bytes=max_image_bytes)
        counts = _Counts()
        _report_packages(report, fs, collected, db, counts)
        _report_os_packages(report, fs, collected, counts)
        _report_secrets(report, fs, collected, sec, counts)
        _report_models(report, fs, collected, list(allow_formats), counts)
        _report_escapes(report, stats)
        for check in CONFIG_CHECKS:
            for f in check(img.refs.config, sec):
                report.add_finding(f.id, f.severity, f.title, f.location, f.details)
        _fill(report, img, fs, stats, collected, counts, db.describe())
        _decide(report, collected, counts, fail_on, unscanned, os_packages)
        return sec.seal(report)


def _check_args(fail_on: str, unscanned: str, os_packages: str, max_file_bytes: Any, max_image_bytes: Any) -> None:
    if fail_on not in FAIL_ON:
        raise AisecInputError(f"fail_on must be one of {FAIL_ON}, not {fail_on!r}")
    for name, value in (("unscanned", unscanned), ("os_packages", os_packages)):
        if value not in POLICIES:
            raise AisecInputError(f"{name} must be one of {POLICIES}, not {value!r}")
    for name, value in (("max_file_bytes", max_file_bytes), ("max_image_bytes", max_image_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AisecInputError(f"{name} must be a positive integer, not {value!r}")


def _collector(
    c: _Collected, sec: SecretsSession, exclude: tuple[str, ...], max_bytes: int, allow_formats: list[str]
) -> Callable[[str, int, int, Callable[[], IO[bytes]]], None]:
    from airflow_aisec.core.modelscan import scan_bytes

    def on_file(path: str, layer: int, size: int, opener: Callable[[], IO[bytes]]) -> None:
        c.files += 1
        c.names.append((path, layer))
        kind = inventory.wanted(path)
        if kind is not None:
            if size > inventory.MAX_METADATA_BYTES:
                c.unscanned.append((path, layer, f"package metadata of {size} bytes not read"))
            else:
                c.meta[(path, layer)] = (kind, opener().read(size))
        if size > max_bytes:
            c.unscanned.append((path, layer, f"{size} bytes, above max_file_bytes"))
            return
        data = c.meta[(path, layer)][1] if (path, layer) in c.meta else opener().read(size)
        if _is_model(path, data[:8]):
            c.models[(path, layer)] = scan_bytes(data, "/" + path, allow_formats=allow_formats)
        if path.startswith(exclude):
            c.excluded += 1
        elif data[:4] == b"\x7fELF" or (size > MAX_BINARY_SECRET_BYTES and _binary(data)):
            c.binaries += 1  # executables, libraries, large binary data: not secret-scanned (counted)
        else:
            for hit in sec.scan_bytes(data, "/" + path):
                c.secrets.append((path, layer, hit))

    return on_file


@dataclass
class _Counts:
    packages: int = 0
    vulnerable: int = 0
    os_packages: int = 0
    os_managers: list[str] = field(default_factory=list)
    secrets: int = 0
    secrets_removed: int = 0
    models: int = 0
    models_shadowed: int = 0


def _final(fs: FileSystem, items: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    return sorted(k for k in items if fs.is_final(*k))


def _report_packages(report: Report, fs: FileSystem, c: _Collected, db: Any, n: _Counts) -> None:
    from airflow_aisec.core.osv import severity_of

    for path, layer in _final(fs, (k for k, v in c.meta.items() if v[0] == "python")):
        pkg = inventory.python_package("/" + path, c.meta[(path, layer)][1])
        if isinstance(pkg, str):
            report.add_finding("AISEC-IMG-PKG-UNREADABLE", "high", f"Python package metadata: {pkg}", "/" + path)
            continue
        n.packages += 1
        matches = db.query(pkg.name, pkg.version)
        if matches:
            n.vulnerable += 1
        for m in matches:
            adv = m.advisory
            sev = severity_of(adv.record)
            report.add_finding(
                adv.id,
                sev.level if m.certain else "high",
                f"{pkg.name} {pkg.version}: {adv.summary[:160]}",
                f"{pkg.name}=={pkg.version} @ {inventory.site_of(pkg.location)}",
                {
                    "package": pkg.name,
                    "version": pkg.version,
                    "metadata": pkg.location,
                    "aliases": adv.aliases,
                    "fix_versions": [str(v) for v in m.fix_versions],
                    "certain": m.certain,
                    "reason": m.reason,
                    "severity_source": sev.source,
                },
            )


def _report_os_packages(report: Report, fs: FileSystem, c: _Collected, n: _Counts) -> None:
    listed: list[dict[str, str]] = []
    for path, layer in _final(fs, (k for k, v in c.meta.items() if v[0] != "python")):
        kind, data = c.meta[(path, layer)]
        pkgs = inventory.os_packages(kind, "/" + path, data)
        if kind not in n.os_managers:
            n.os_managers.append(kind)
        n.os_packages += len(pkgs)
        listed += [{"manager": p.manager, "name": p.name, "version": p.version} for p in pkgs]
    if n.os_packages:
        report.details["os_packages"] = listed[:MAX_LISTED]
        report.add_finding(
            "AISEC-IMG-OS-UNAUDITED",
            "info",
            f"{n.os_packages} OS package(s) ({', '.join(n.os_managers)}) NOT audited: OS advisories need a "
            "database the offline PyPI snapshot does not hold",
            "/",
            {"managers": n.os_managers, "count": n.os_packages},
        )


def _name_hits(c: _Collected, sec: SecretsSession) -> list[tuple[str, int, SecretHit]]:
    """Secrets in file names (a token used as a file or directory name)."""
    out = []
    for start in range(0, len(c.names), 10_000):
        chunk = c.names[start : start + 10_000]
        for hit in sec.scan_text("\n".join(p for p, _ in chunk), "image file names"):
            path, layer = chunk[hit.line - 1]
            out.append((path, layer, SecretHit(hit.type, "/" + path, 0, hit.fingerprint, None)))
    return out


def _report_secrets(report: Report, fs: FileSystem, c: _Collected, sec: SecretsSession, n: _Counts) -> None:
    suppressed = 0
    for path, layer, hit in sorted([*c.secrets, *_name_hits(c, sec)], key=lambda x: (x[0], x[1], x[2].line)):
        if hit.allowed is not None:
            suppressed += 1
            continue
        final = fs.is_final(path, layer)
        severity = "medium" if hit.type in HEURISTIC_TYPES else "high"
        where = "in an image file" if final else "in a file a later layer removed (still in the layer blob)"
        if hit.line == 0:
            where = "in a file name" + ("" if final else " a later layer removed (still in the layer blob)")
        n.secrets += 1
        n.secrets_removed += not final
        slug = re.sub(r"[^A-Z0-9]+", "-", hit.type.upper()).strip("-")
        report.add_finding(
            f"AISEC-IMG-SECRET-{slug}",
            severity,
            f"{hit.type} {where}",
            f"layer {layer}:/{path}" + (f":{hit.line}" if hit.line else " (file name)"),
            {"type": hit.type, "fingerprint": hit.fingerprint, "layer": layer, "in_final_fs": final},
        )
    if suppressed:
        report.metrics["secrets_suppressed"] = suppressed


def _report_models(report: Report, fs: FileSystem, c: _Collected, allow_formats: list[str], n: _Counts) -> None:
    from airflow_aisec.core.modelscan.report import add_findings

    for key in sorted(c.models):
        if not fs.is_final(*key):
            n.models_shadowed += 1
            continue
        n.models += 1
        before = len(report.findings)
        add_findings(report, c.models[key], True)
        for f in report.findings[before:]:
            f.details["layer"] = key[1]


def _report_escapes(report: Report, stats: WalkStats) -> None:
    for name in stats.escaped:
        report.add_finding(
            "AISEC-IMG-PATH-ESCAPE",
            "high",
            "Layer member whose path leaves the image root (ignored; a hostile or broken archive)",
            name,
        )


def _fill(
    report: Report, img: ImageSource, fs: FileSystem, stats: WalkStats, c: _Collected, n: _Counts, db: dict[str, Any]
) -> None:
    report.metrics.update(
        {
            "layers": stats.layers,
            "entries": stats.entries,
            "files": c.files,
            "bytes_uncompressed": stats.bytes_uncompressed,
            "whiteouts": fs.whiteouts,
            "python_packages": n.packages,
            "vulnerable_packages": n.vulnerable,
            "os_packages": n.os_packages,
            "secrets_found": n.secrets,
            "secrets_in_removed_files": n.secrets_removed,
            "model_files": n.models,
            "model_files_shadowed": n.models_shadowed,
            "files_unscanned": len(c.unscanned),
            "files_excluded": c.excluded,
            "binaries_not_secret_scanned": c.binaries,
        }
    )
    report.details["image"] = {
        "format": img.refs.format,
        "ref": img.refs.ref,
        "config_digest": img.refs.config_digest,
        "manifest_digest": img.refs.manifest_digest,
        "layers": [{"index": layer.index, "diff_id": layer.diff_id} for layer in img.refs.layers],
    }
    report.details["vulnerability_db"] = db
    if c.unscanned:
        report.details["unscanned"] = [
            {"location": f"layer {layer}:/{path}", "reason": reason} for path, layer, reason in c.unscanned[:MAX_LISTED]
        ]


def _decide(report: Report, c: _Collected, n: _Counts, fail_on: str, unscanned: str, os_packages: str) -> None:
    threshold = SEVERITY_RANK[fail_on]
    failing = [f for f in report.findings if SEVERITY_RANK[f.severity] >= threshold]
    below = [f for f in report.findings if f.severity != "info" and SEVERITY_RANK[f.severity] < threshold]
    parts = [
        f"{n.packages} Python package(s), {n.vulnerable} vulnerable",
        f"{n.secrets} secret(s)",
        f"{n.models} model file(s)",
        f"{len(report.findings)} finding(s)",
    ]
    summary = "; ".join(parts)
    undecided = []
    if c.unscanned:
        summary += f"; {len(c.unscanned)} file(s) NOT scanned"
        if unscanned == "error":
            undecided.append("files not scanned (unscanned='warn' accepts them)")
    if n.os_packages:
        summary += f"; {n.os_packages} OS package(s) NOT audited"
        if os_packages == "error":
            undecided.append("OS packages cannot be audited offline (os_packages='warn' accepts them)")
    if failing:
        status = "fail"
    elif undecided:
        status = "error"
        summary += " — cannot decide: " + "; ".join(undecided)
    elif below or c.unscanned or n.os_packages:
        status = "warn"
    else:
        status = "pass"
    if below and not failing:
        summary += f" (findings below fail_on={fail_on})"
    report.finish(status, summary)
