"""Secrets scan of a working tree and of its git history, with detect-secrets' plugins plus ours.

* **Tree**: every regular file under a path, read without following symlinks and never opening a
  special file (FIFO, socket, device: reported as unscanned). Text is decoded leniently: UTF-8,
  UTF-16/32 with or without BOM (BOM or NUL pattern), anything else as UTF-8 with replacement (ASCII
  tokens survive). Files holding NUL bytes are also scanned as "strings" (ASCII, UTF-16 and UTF-32
  runs), so a token inside a binary file is found. File and directory names, symlink targets and
  each ``.git/config`` are scanned too.
* **History**: every object a clone carries, read as data (see :mod:`.git`): every commit
  reachable from any ref (branches, tags, remotes, stash, notes; merges included, so a merge
  resolution is scanned), the whole content of every blob of every commit's tree, every path name,
  every commit and tag object (messages, author lines), every ref name, and blobs or trees a tag
  points at. For a sub-directory of the repository: its blobs, and the messages of the commits
  that changed it (ref names and tags belong to the whole repository). A shallow, grafted,
  replaced or partial history, or a repository setting ``core.worktree``, is an error unless
  ``partial_history`` accepts the former (then reported).
* **Nothing dropped silently**: what is not scanned (files above ``max_file_bytes``, compressed files,
  special files, unreadable files, submodules, missing or oversized objects) is counted and listed
  (``details.unscanned``) and decided by ``unscanned``: ``error`` (default, exit 2) or ``warn``.
  Excluded directories and symlinks not followed are counted (and the directories listed).

Detection: detect-secrets' whole plugin set plus Hugging Face and OpenAI key detectors
(:mod:`.vendor_detectors`).

Suppression (each counted and listed in the report with its reason, never silently): a
detect-secrets baseline (strict JSON), inline ``aisec: allow-secret <reason>`` on the line or the
line above (and detect-secrets' ``pragma: allowlist secret``), ``allow`` fingerprints.

**No secret value can leave this module**: findings hold type, location and a fingerprint (truncated
salted SHA-256). Reasons are restricted to a short plain-text alphabet with no long words. Before a
report (or an error message) is returned, every string in it is checked against every value the
scan detected (any 8-character substring) and run through the detectors again; matches are replaced
by ``[REDACTED]``. detect-secrets' logger (whose messages print values) is disabled during a scan.

No Airflow import here.

Layout: :mod:`.scan` (the entry point and the report), :mod:`.tree` and :mod:`.history` (the two
walks, :mod:`.git` reads the repository), :mod:`.content` (one file's bytes through the detectors),
:mod:`.detectors`, :mod:`.reader` (bounded reads, decoding), :mod:`.redaction`, :mod:`.baseline`.
"""

from __future__ import annotations

from airflow_aisec.core.secrets.baseline import load_baseline
from airflow_aisec.core.secrets.content import LIST_LIMIT
from airflow_aisec.core.secrets.detectors import CHUNK, CHUNK_OVERLAP, HEURISTIC_TYPES, Hit
from airflow_aisec.core.secrets.history import OBJECT_MAX
from airflow_aisec.core.secrets.reader import compressed, decode
from airflow_aisec.core.secrets.redaction import GRAM, MIN_WHOLE, REDACTED, Redactor, clean_reason, fingerprint, seal
from airflow_aisec.core.secrets.scan import (
    DEFAULT_EXCLUDE_DIRS,
    DEFAULT_MAX_FILE_BYTES,
    FAIL_ON_LEVELS,
    MAX_FINDINGS,
    TAGS,
    UNSCANNED_POLICIES,
    redact_text,
    scan_secrets,
)

__all__ = [
    "CHUNK",
    "CHUNK_OVERLAP",
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_MAX_FILE_BYTES",
    "FAIL_ON_LEVELS",
    "GRAM",
    "HEURISTIC_TYPES",
    "LIST_LIMIT",
    "MAX_FINDINGS",
    "MIN_WHOLE",
    "OBJECT_MAX",
    "REDACTED",
    "TAGS",
    "UNSCANNED_POLICIES",
    "Hit",
    "Redactor",
    "clean_reason",
    "compressed",
    "decode",
    "fingerprint",
    "load_baseline",
    "redact_text",
    "scan_secrets",
    "seal",
]
