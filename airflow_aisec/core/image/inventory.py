"""What is installed in an image: Python distributions and OS packages, read from their metadata files.

Python: every ``*.dist-info/METADATA`` and ``*.egg-info/PKG-INFO`` (or an ``.egg-info`` file) of the
final filesystem, wherever it lies, so a second copy of a package in another ``site-packages`` is
found and audited too. OS packages: Debian/Ubuntu ``var/lib/dpkg/status`` (and ``status.d/``),
Alpine ``lib/apk/db/installed``, and the presence of an RPM database (its SQLite/BDB formats are
listed, not parsed). No Airflow import here.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser

#: Largest metadata file read (METADATA of real distributions is < 1 MiB; dpkg status < 10 MiB).
MAX_METADATA_BYTES = 32 * 1024 * 1024

_PY_META = re.compile(r"(^|/)[^/]+\.dist-info/METADATA$|(^|/)[^/]+\.egg-info/PKG-INFO$|(^|/)[^/]+\.egg-info$")
_DPKG = re.compile(r"^var/lib/dpkg/(status|status\.d/[^/]+)$")
_APK = "lib/apk/db/installed"
_RPM = re.compile(r"^(var/lib/rpm|usr/lib/sysimage/rpm)/(Packages|Packages\.db|rpmdb\.sqlite)$")


@dataclass(frozen=True)
class PythonPackage:
    name: str
    version: str
    location: str  #: the metadata file's path in the image


@dataclass(frozen=True)
class OsPackage:
    manager: str  #: ``dpkg``, ``apk`` or ``rpm``
    name: str
    version: str
    location: str


def wanted(path: str) -> str | None:
    """Which metadata kind ``path`` is (``python``, ``dpkg``, ``apk``, ``rpm``), or ``None``."""
    if _PY_META.search(path):
        return "python"
    if _DPKG.match(path):
        return "dpkg"
    if path == _APK:
        return "apk"
    if _RPM.match(path):
        return "rpm"
    return None


def python_package(path: str, data: bytes) -> PythonPackage | str:
    """The distribution a metadata file declares, or a reason it cannot be read."""
    try:
        headers = BytesHeaderParser().parsebytes(data)
    except Exception as exc:  # the email parser is lenient; anything it raises means unreadable
        return f"unreadable metadata ({type(exc).__name__})"
    name, version = headers.get("Name"), headers.get("Version")
    if not isinstance(name, str) or not isinstance(version, str) or not name.strip() or not version.strip():
        return "metadata without Name and Version"
    return PythonPackage(name.strip(), version.strip(), path)


def os_packages(kind: str, path: str, data: bytes) -> list[OsPackage]:
    """OS packages listed by a dpkg status or apk installed database (rpm: one entry for the database)."""
    text = data.decode("utf-8", "replace")
    if kind == "rpm":
        return [OsPackage("rpm", "(rpm database)", "", path)]
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if kind == "apk" and len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], line[2:].strip())
            elif kind == "dpkg" and ":" in line and not line[:1].isspace():
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
        if kind == "dpkg" and fields.get("Package"):
            if "installed" in fields.get("Status", "install ok installed").split():
                out.append(OsPackage("dpkg", fields["Package"], fields.get("Version", ""), path))
        elif kind == "apk" and fields.get("P"):
            out.append(OsPackage("apk", fields["P"], fields.get("V", ""), path))
    return out


def site_of(location: str) -> str:
    """The directory holding a distribution's metadata (its ``site-packages``)."""
    return (
        posixpath.dirname(posixpath.dirname(location))
        if location.endswith(("METADATA", "PKG-INFO"))
        else posixpath.dirname(location)
    )
