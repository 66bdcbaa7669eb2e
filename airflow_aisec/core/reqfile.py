"""Strict reading of pinned requirements files for the dependency audit.

pip's own parser (``pip_requirements_parser``, the one pip-audit uses) splits the file into lines;
this module decides, line by line, what the audit can vouch for:

* ``name==version`` / ``name===version`` (one exact PEP 440 pin, no wildcard) is audited — whatever
  its environment marker says (a line excluded by a marker on this interpreter may apply on the
  deployment's; it is audited and counted in ``marker_excluded``);
* everything else is *unauditable* and returned as an :class:`Unaudited` item of one kind
  (:data:`UNAUDITED_KINDS`): ``editable`` (``-e``), ``direct-url`` (``name @ URL``, VCS, local
  paths, archives and wheels by file: their content is not what an index version names),
  ``unpinned`` (no single exact pin: ranges, wildcards, bare names, compound specifiers, ``===``
  with a non-PEP 440 version), ``option`` (options that change where packages come from —
  ``--index-url``, ``--extra-index-url``, ``--find-links``, ``--trusted-host`` — and option lines
  the audit does not model, such as a lone ``--hash``), ``include`` (``-r``/``-c`` files that are
  not followed: URLs, files outside the top-level file's directory);
* ``-r`` and ``-c`` files inside the top-level file's directory are followed (depth at most
  :data:`MAX_INCLUDE_DEPTH`, each file read once, so cycles end); constraint pins are audited too;
* a line pip cannot parse, an invalid project name, a missing or non-regular included file is an
  :class:`~airflow_aisec.exceptions.AisecInputError` naming ``file:line``.

The caller decides, by policy, what unauditable items mean (``allow_unaudited``). Values that may
carry credentials (index URLs, direct URLs) never appear in an item: URL user-info is redacted and
options are named, not echoed. No Airflow import here.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_aisec.exceptions import AisecInputError

#: Kinds of requirement-file content the audit cannot inspect, plus ``unversioned`` (a package a
#: dependency source lists without an auditable version).
UNAUDITED_KINDS = ("editable", "direct-url", "unpinned", "option", "include", "unversioned")
#: Deepest chain of ``-r`` / ``-c`` includes followed.
MAX_INCLUDE_DEPTH = 8
#: Most requirement files read for one audit.
MAX_FILES = 256
#: Largest requirements file read.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Options that do not change which version of a pinned package is installed (listed, not refused).
HARMLESS_OPTIONS = frozenset(
    {"require_hashes", "pre", "prefer_binary", "no_binary", "only_binary", "use_feature", "no_index"}
)
#: Options that change where packages come from.
SOURCE_OPTIONS = frozenset({"index_url", "extra_index_urls", "find_links", "trusted_hosts"})

#: PEP 508 project names (what pip's own ``packaging`` accepts).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_QUERY = re.compile(r"(?<=[A-Za-z0-9/._-])\?[^\s#]*")
_FLAGS = {
    "index_url": "--index-url",
    "extra_index_urls": "--extra-index-url",
    "find_links": "--find-links",
    "trusted_hosts": "--trusted-host",
}


def redact(text: str, limit: int = 200) -> str:
    """``text`` without URL user-info or query (``https://user:token@host/?k=v`` → ``https://***@host/?***``)."""
    text = _QUERY.sub("?***", _USERINFO.sub("***@", text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Unaudited:
    """Something the audit did not inspect: its kind, where it is, what it is (redacted) and why."""

    kind: str
    where: str
    item: str
    reason: str

    def to_dict(self, allowed: bool) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "item": self.item, "reason": self.reason, "allowed": allowed}


@dataclass(frozen=True)
class Pin:
    """One audited requirement: canonical name, exact version, ``file:line``."""

    name: str
    version: Version
    where: str
    marker_excluded: bool = False


@dataclass
class ParsedRequirements:
    pins: list[Pin] = field(default_factory=list)
    unaudited: list[Unaudited] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    marker_excluded: list[str] = field(default_factory=list)
    options_ignored: list[str] = field(default_factory=list)


def parse_requirement_files(files: Sequence[str | os.PathLike[str]]) -> ParsedRequirements:
    """Read the top-level requirements ``files`` (and what they include) strictly; see the module docstring."""
    out = ParsedRequirements()
    seen: set[str] = set()
    for top in files:
        root = Path(top).resolve().parent
        _parse_file(Path(top), root, 0, False, out, seen, f"{os.fspath(top)}")
    return out


def _check_regular(path: Path, where: str) -> Path:
    try:
        st = path.stat()
    except OSError as exc:
        raise AisecInputError(f"{where}: requirements file {str(path)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AisecInputError(f"{where}: requirements file {str(path)!r} is not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise AisecInputError(f"{where}: requirements file {str(path)!r} is larger than {MAX_FILE_BYTES} bytes")
    return path.resolve()


def _parse_file(
    path: Path, root: Path, depth: int, constraint: bool, out: ParsedRequirements, seen: set[str], where: str
) -> None:
    from pip_requirements_parser import InstallRequirement, InvalidRequirementLine, OptionLine, RequirementsFile

    real = _check_regular(path, where)
    if str(real) in seen:
        return  # already read (a diamond or a cycle): its lines are audited once
    seen.add(str(real))
    if len(seen) > MAX_FILES:
        raise AisecInputError(f"{where}: more than {MAX_FILES} requirements files")
    out.files.append(str(path))
    try:
        parsed = list(RequirementsFile.parse(str(real), include_nested=False, is_constraint=constraint))
    except Exception as exc:  # the parser raises bare Exceptions on odd input
        raise AisecInputError(f"requirements file {str(path)!r} cannot be parsed: {redact(str(exc))}") from None
    for line in parsed:
        number = getattr(line, "line_number", None)
        at = f"{path}:{number}"
        if isinstance(line, InvalidRequirementLine):  # also IncorrectRequirementLine (legacy options)
            message = redact(" ".join(str(line.error_message).split()))
            raise AisecInputError(f"{at}: invalid requirement line: {message}")
        if isinstance(line, OptionLine):
            _option(line.options, path, at, root, depth, out, seen)
        elif isinstance(line, InstallRequirement):
            _requirement(line, at, out)


def _option(
    options: dict[str, Any], path: Path, at: str, root: Path, depth: int, out: ParsedRequirements, seen: set[str]
) -> None:
    if not options:
        out.unaudited.append(Unaudited("option", at, "(option line)", "an option line with no effect pip applies"))
    for key, value in options.items():
        if key in ("requirements", "constraints"):
            for target in value or ():
                _include(str(target), key == "constraints", path, at, root, depth, out, seen)
        elif key in HARMLESS_OPTIONS:
            out.options_ignored.append(f"{at}: --{key.replace('_', '-')}")
        elif key in SOURCE_OPTIONS:
            out.unaudited.append(
                Unaudited(
                    "option",
                    at,
                    _FLAGS[key],
                    "changes where packages come from: an audited name may not be the package installed",
                )
            )
        else:
            out.unaudited.append(
                Unaudited("option", at, f"--{key.replace('_', '-')}", "option the audit does not model")
            )


def _include(
    target: str,
    constraint: bool,
    path: Path,
    at: str,
    root: Path,
    depth: int,
    out: ParsedRequirements,
    seen: set[str],
) -> None:
    flag = "-c" if constraint else "-r"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target):
        out.unaudited.append(Unaudited("include", at, f"{flag} {redact(target)}", "a URL include is never fetched"))
        return
    candidate = Path(target) if os.path.isabs(target) else path.parent / target
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        out.unaudited.append(
            Unaudited(
                "include", at, f"{flag} {redact(target)}", f"outside the top-level file's directory {str(root)!r}"
            )
        )
        return
    if depth + 1 > MAX_INCLUDE_DEPTH:
        raise AisecInputError(f"{at}: includes nested deeper than {MAX_INCLUDE_DEPTH} levels")
    _parse_file(candidate, root, depth + 1, constraint, out, seen, at)


def _requirement(req: Any, at: str, out: ParsedRequirements) -> None:
    text = redact(" ".join(str(req.line or "").split()))
    if req.is_editable:
        out.unaudited.append(Unaudited("editable", at, text, "editable install: built from a local or VCS tree"))
        return
    if req.link is not None or req.req is None:
        out.unaudited.append(
            Unaudited("direct-url", at, text, "direct reference (URL, VCS, path or file): no index version to audit")
        )
        return
    name = str(req.name or "")
    if not _NAME.fullmatch(name):
        raise AisecInputError(f"{at}: invalid project name {name[:60]!r}")
    specs = list(req.specifier or ())
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or specs[0].version.endswith(".*"):
        out.unaudited.append(Unaudited("unpinned", at, text, "not pinned to one exact version (name==version)"))
        return
    try:
        version = Version(specs[0].version)
    except InvalidVersion:
        out.unaudited.append(Unaudited("unpinned", at, text, "exact pin to a version that is not PEP 440"))
        return
    excluded = False
    if req.marker is not None:
        try:
            excluded = not req.marker.evaluate()
        except Exception:  # an undefined marker variable: audited anyway
            excluded = True
    if excluded:
        out.marker_excluded.append(at)
    out.pins.append(Pin(canonicalize_name(name), version, at, excluded))
