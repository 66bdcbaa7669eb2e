"""What a dependency audit reads: sources (environment, requirements files, project) as pip-audit dependency sources."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.core.reqfile import ParsedRequirements, Unaudited, parse_requirement_files
from airflow_aisec.exceptions import AisecInputError


@dataclass(frozen=True)
class SourceSpec:
    """One thing to audit: ``kind`` in ``environment | path | requirements | project``."""

    kind: str
    target: str = ""
    files: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "environment":
            return f"environment:{self.target}"
        if self.kind == "requirements":
            return "requirements:" + ",".join(self.files)
        return f"{self.kind}:{self.target}"


def source_specs(
    *, requirements: Sequence[str] = (), path: str | None = None, project: str | None = None
) -> list[SourceSpec]:
    """What to audit (validated); with nothing given, the running interpreter's environment."""
    import sys

    specs: list[SourceSpec] = []
    # A source given but empty (a template that rendered "") must not fall back to auditing this environment.
    if any(not str(r).strip() for r in requirements or ()):
        raise AisecInputError("requirements: an empty file name (did a template render to nothing?)")
    for label, value in (("path", path), ("project", project)):
        if value is not None and not str(value).strip():
            raise AisecInputError(f"{label}: empty (did a template render to nothing?)")
    reqs = [str(r) for r in requirements or ()]
    for req in reqs:
        if not Path(req).is_file():
            raise AisecInputError(f"requirements file {req!r} does not exist")
    if reqs:
        specs.append(SourceSpec("requirements", files=tuple(reqs)))
    if path:
        specs.extend(SourceSpec("path", target=str(site)) for site in _site_packages(path))
    if project:
        specs.append(SourceSpec("project", target=str(_project_dir(project))))
    if not specs:
        specs.append(SourceSpec("environment", target=sys.prefix))
    return specs


def _site_packages(path: str) -> list[Path]:
    """A virtualenv / prefix directory → every site-packages in it; a site-packages directory as is.

    A prefix can hold several (``lib/python3.10`` and ``lib/python3.12``, ``lib`` and ``lib64``): each
    is audited, none is silently chosen over the others (directories reached twice through a symlink
    are audited once).
    """
    p = Path(path)
    if not p.is_dir():
        raise AisecInputError(f"environment path {path!r} is not a directory")
    patterns = ("lib/python3*/site-packages", "lib64/python3*/site-packages", "Lib/site-packages")
    candidates: list[Path] = []
    seen: set[Path] = set()
    # A directory holding metadata is audited itself — and a stray ``*.dist-info`` at a virtualenv's root
    # must not replace the site-packages below it: both are audited.
    if any(p.glob("*.dist-info")) or any(p.glob("*.egg-info")) or p.name in ("site-packages", "dist-packages"):
        seen.add(p.resolve())
        candidates.append(p)
    for pattern in patterns:
        for site in sorted(p.glob(pattern)):
            if site.is_dir() and site.resolve() not in seen:
                seen.add(site.resolve())
                candidates.append(site)
    if not candidates:
        raise AisecInputError(f"environment path {path!r} is neither a virtualenv nor a site-packages directory")
    return candidates


def _project_dir(project: str) -> Path:
    p = Path(project)
    if p.is_file() and (p.name == "pyproject.toml" or p.name.startswith("pylock.")):
        p = p.parent
    if not p.is_dir():
        raise AisecInputError(f"project {project!r} is not a directory")
    if not (_pylocks(p) or (p / "pyproject.toml").is_file()):
        raise AisecInputError(f"project {project!r} has neither pylock.toml nor pyproject.toml")
    return p


def _pylocks(p: Path) -> list[Path]:
    locks = sorted(p.glob("pylock.*.toml"))
    if (p / "pylock.toml").is_file():
        locks.append(p / "pylock.toml")
    return locks


def lock_direct_references(spec: SourceSpec) -> list[Unaudited]:
    """Lock entries installed from a VCS, a directory or an archive: audited by their version, but counted.

    Their content is not what the index release of that version holds (kind ``direct-url``); entries
    without a version are pip-audit's ``unversioned`` skips.
    """
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    out = []
    for lock in _pylocks(Path(spec.target)):
        try:
            data = tomllib.loads(lock.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AisecInputError(f"lock file {str(lock)!r} cannot be read: {exc}") from None
        packages = data.get("packages") if isinstance(data, dict) else None
        for i, pkg in enumerate(packages if isinstance(packages, list) else ()):
            if not isinstance(pkg, dict) or not pkg.get("version"):
                continue
            kinds = [k for k in ("vcs", "directory", "archive") if k in pkg]
            if kinds:
                out.append(
                    Unaudited(
                        "direct-url",
                        f"{lock}:packages[{i}]",
                        f"{str(pkg.get('name'))[:100]} {str(pkg.get('version'))[:50]} ({kinds[0]})",
                        f"installed from a {kinds[0]}, not an index release: its version says little about its content",
                    )
                )
    return out


def _validate_lock(lock: Path) -> None:
    """Refuse lock entries pip-audit would mis-read: a name that is not PEP 508 (``"requests "``, a
    zero-width space — never equal to the advisory's name, so silently clean), a non-string version,
    entries that are not tables."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    from airflow_aisec.core.reqfile import _NAME

    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AisecInputError(f"lock file {str(lock)!r} cannot be read: {exc}") from None
    packages = data.get("packages")
    if not isinstance(packages, list):
        raise AisecInputError(f"lock file {str(lock)!r}: 'packages' must be an array of tables")
    for i, pkg in enumerate(packages):
        where = f"lock file {str(lock)!r} packages[{i}]"
        if not isinstance(pkg, dict):
            raise AisecInputError(f"{where}: not a table")
        name = pkg.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise AisecInputError(f"{where}: invalid project name {str(name)[:60]!r}")
        if "version" in pkg and not isinstance(pkg["version"], str):
            raise AisecInputError(f"{where}: version must be a string")


def dependency_source(spec: SourceSpec, parsed: ParsedRequirements | None = None) -> Any:
    from pip_audit._dependency_source import PipSource, PyLockSource, PyProjectSource

    if spec.kind == "environment":
        return PipSource()
    if spec.kind == "path":
        return PipSource(paths=[Path(spec.target)])
    if spec.kind == "requirements":
        return _pinned_source(parsed or parse_requirement_files(spec.files))
    locks = _pylocks(Path(spec.target))
    if locks:
        for lock in locks:
            _validate_lock(lock)
        return PyLockSource(locks)
    return PyProjectSource(Path(spec.target) / "pyproject.toml")


def _pinned_source(parsed: ParsedRequirements) -> Any:
    """A pip-audit ``DependencySource`` yielding the exact pins :mod:`~airflow_aisec.core.reqfile` read."""
    from pip_audit._dependency_source import DependencySource
    from pip_audit._service import ResolvedDependency

    class PinnedSource(DependencySource):
        def collect(self) -> Any:
            seen: set[tuple[str, Any]] = set()
            for pin in parsed.pins:
                if (pin.name, pin.version) not in seen:
                    seen.add((pin.name, pin.version))
                    yield ResolvedDependency(name=pin.name, version=pin.version)

        def fix(self, fix_version: Any) -> None:  # pragma: no cover - the audit never fixes
            raise NotImplementedError

    return PinnedSource()


@dataclass
class Collected:
    source: SourceSpec
    results: list[tuple[Any, list[Any]]] = field(default_factory=list)
    #: installed distributions the dependency source did not list (``path`` sources)
    unlisted: list[Unaudited] = field(default_factory=list)


def unlisted_distributions(spec: SourceSpec, results: list[tuple[Any, list[Any]]]) -> list[Unaudited]:
    """``*.dist-info`` / ``*.egg-info`` entries of a site-packages directory that pip did not list.

    pip silently ignores distributions whose metadata it rejects (an invalid name, say), and lists one
    version when two of a name are installed side by side; the others are still on disk (and may be
    what is imported), so they are reported instead of dropped. Compared by (name, PEP 440 version).
    """
    from importlib.metadata import PathDistribution

    from packaging.version import Version

    from airflow_aisec.core.osv import lookup_key

    listed: set[tuple[str, Version | None]] = {
        (lookup_key(str(dep.name)), getattr(dep, "version", None)) for dep, _ in results
    }
    out = []
    site = Path(spec.target)
    for entry in sorted(site.iterdir()):
        if not entry.name.lower().endswith((".dist-info", ".egg-info")):
            continue
        name, version = "", None
        try:
            metadata = PathDistribution(entry).metadata
            name = metadata["Name"] or ""
            version = Version(str(metadata["Version"] or ""))
        except Exception:  # unreadable or invalid metadata is exactly what must not vanish: reported below
            pass
        key = lookup_key(name) if name else ""
        if key and (key, version) in listed:  # listed (a skipped one, without version, is reported already)
            continue
        shadowed = bool(key) and any(k == key for k, _ in listed)
        why = (
            f"is another installed version of {key!r}: pip lists only one of them"
            if shadowed
            else "that pip does not list (rejected or unreadable)"
        )
        out.append(
            Unaudited(
                "unversioned",
                spec.label,
                (f"{name} {version}" if shadowed and version is not None else name or entry.name)[:200],
                f"installed metadata {entry.name[:100]!r} {why}",
            )
        )
    return out


def describe_sources(specs: Iterable[SourceSpec]) -> list[str]:
    return [s.label for s in specs]
