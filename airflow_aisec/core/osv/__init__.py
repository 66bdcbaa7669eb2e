"""Offline OSV vulnerability database for PyPI: load once, index by package, match per the OSV spec.

The database is a zip of OSV JSON records (the layout of OSV's per-ecosystem ``all.zip`` exports:
one ``<ID>.json`` per advisory) or a directory of such files. :meth:`OsvDatabase.load` reads it once
into an index keyed by the PEP 503-normalised package name; matching is then a dictionary lookup
plus version comparisons with :mod:`packaging.version` (PEP 440 ordering).

Matching follows https://ossf.github.io/osv-schema/#evaluation:

* a version is affected when it is listed in ``affected[].versions`` **or** falls inside one of
  the ``ECOSYSTEM`` ranges (``introduced`` / ``fixed`` / ``last_affected`` events, bounded by
  ``limit``); ``GIT`` ranges cannot be evaluated against package versions and are ignored;
* ``withdrawn`` records never match;
* versions are compared as PEP 440 versions everywhere (``0.5`` == ``0.5.0`` == ``v0.5`` ==
  ``0!0.5``), and local labels (``+ubuntu1``) are ignored: a local build of an affected release is
  affected (fail closed);
* version strings that PEP 440 cannot parse (legacy releases such as ``0.7.4.svn.r2010``) never
  crash the matcher: listed versions are compared as normalised strings, and a range with an
  unparsable bound (or no ``introduced`` event at all) is *indeterminate* — the explicit ``versions``
  list (an empty one lists nothing) then decides alone, and a
  record with neither is reported as a possible match that needs a human (fail closed). So is an
  ``affected`` entry that carries no version information the matcher can evaluate (no ``versions``,
  no ``ECOSYSTEM``/``SEMVER`` range: e.g. only ``GIT`` ranges, or nothing at all).

Records are untrusted input: every member is parsed with :mod:`airflow_aisec.utils.strictjson` and
checked field by field (types, lengths, timestamps); anything odd is an error naming the member, never
a skipped record. The archive itself is bounded (members, bytes per member and in total, compression
ratio). Freshness is the :data:`FRESHNESS_RANK`-th newest ``modified`` date, so one outlier record
cannot make an old database look fresh; a record modified in the future is an error.

Layout: :mod:`.database` (loading, bounds, index, queries), :mod:`.records` (record validation),
:mod:`.matching` (versions and ranges), :mod:`.severity`, :mod:`.sync` (``aisec osv-sync``).

No Airflow import here.
"""

from __future__ import annotations

from airflow_aisec.core.osv.database import (
    FRESHNESS_RANK,
    MAX_DB_BYTES,
    MAX_MEMBERS,
    MAX_RATIO,
    MAX_RECORD_BYTES,
    MAX_TOTAL_BYTES,
    OSV_DB_ENV,
    RATIO_MIN_BYTES,
    OsvDatabase,
    resolve_db_path,
)
from airflow_aisec.core.osv.matching import Advisory, Match, parse_version, version_key
from airflow_aisec.core.osv.records import (
    ECOSYSTEM,
    FUTURE_SKEW,
    MAX_NAME_CHARS,
    MAX_VERSION_CHARS,
    RANGE_TYPES,
    is_pypi,
    lookup_key,
    parse_timestamp,
    record_timestamp,
    validate_record,
)
from airflow_aisec.core.osv.severity import SEVERITY_LEVELS, Severity, cvss_severity, severity_of
from airflow_aisec.core.osv.sync import DEFAULT_SYNC_SOURCE, MAX_SYNC_BYTES, sync

__all__ = [
    "DEFAULT_SYNC_SOURCE",
    "ECOSYSTEM",
    "FRESHNESS_RANK",
    "FUTURE_SKEW",
    "MAX_DB_BYTES",
    "MAX_MEMBERS",
    "MAX_NAME_CHARS",
    "MAX_RATIO",
    "MAX_RECORD_BYTES",
    "MAX_SYNC_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_VERSION_CHARS",
    "OSV_DB_ENV",
    "RANGE_TYPES",
    "RATIO_MIN_BYTES",
    "SEVERITY_LEVELS",
    "Advisory",
    "Match",
    "OsvDatabase",
    "Severity",
    "cvss_severity",
    "is_pypi",
    "lookup_key",
    "parse_timestamp",
    "parse_version",
    "record_timestamp",
    "resolve_db_path",
    "severity_of",
    "sync",
    "validate_record",
    "version_key",
]
