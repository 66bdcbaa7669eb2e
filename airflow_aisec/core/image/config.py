"""Risks written in the image configuration itself: the user it runs as, its environment, labels and build history.

Each check is a small function returning findings (:class:`ConfigFinding`); :data:`CONFIG_CHECKS`
lists them. Values are never copied into a finding: an ``ENV`` entry is named by its key, a history
step by its index. Secret detection in ``ENV``, labels and ``created_by`` goes through the secrets
engine (:mod:`._secrets`). No Airflow import here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec.core.image._secrets import HEURISTIC_TYPES, SecretsSession

_SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)"
)
_REMOTE_ADD = re.compile(r"(?i)(?:^|[\s;&|]|#\(nop\)\s*)ADD\s+((?:--[a-z-]+(?:=\S+)?\s+)*)(https?|git)://")
_BASE_NAME = "org.opencontainers.image.base.name"
_BASE_DIGEST = "org.opencontainers.image.base.digest"
_ROOT_USERS = {"", "root", "0"}


@dataclass
class ConfigFinding:
    id: str
    severity: str
    title: str
    location: str
    details: dict[str, Any] = field(default_factory=dict)


def _container(config: dict[str, Any]) -> dict[str, Any]:
    inner = config.get("config")
    return inner if isinstance(inner, dict) else {}


def check_user(config: dict[str, Any], _: SecretsSession) -> list[ConfigFinding]:
    """No ``USER``, or ``USER root``/``0``: processes in the container run as root."""
    user = _container(config).get("User")
    name = str(user or "").split(":", 1)[0].strip()
    if name in _ROOT_USERS:
        title = "Image runs as root (no USER set)" if not name else f"Image runs as root (USER {name})"
        return [ConfigFinding("AISEC-IMG-ROOT-USER", "medium", title, "config.User", {"user": name or None})]
    return []


def _env(config: dict[str, Any]) -> list[tuple[str, str]]:
    env = _container(config).get("Env")
    out = []
    for item in env if isinstance(env, list) else []:
        if isinstance(item, str):
            key, _, value = item.partition("=")
            out.append((key, value))
    return out


def check_env(config: dict[str, Any], secrets: SecretsSession) -> list[ConfigFinding]:
    """Secrets in ``ENV``: a detected token, or a secret-named variable with a literal value."""
    findings: list[ConfigFinding] = []
    for key, value in _env(config):
        location = f"config.Env[{key}]"
        hits = [h for h in secrets.scan_text(f"{key}={value}", location) if h.allowed is None]
        if hits:
            secrets.learn(value)
            findings += [_secret_finding(h.type, location, h.fingerprint, "in the image ENV") for h in hits]
        elif _SECRET_KEY.search(key) and value.strip() and not value.strip().startswith("$"):
            secrets.learn(value)
            findings.append(
                ConfigFinding(
                    "AISEC-IMG-ENV-SECRET-NAME",
                    "high",
                    "Secret-named variable with a literal value baked into the image ENV",
                    location,
                    {"key": key, "value_length": len(value)},
                )
            )
    return findings


def check_labels(config: dict[str, Any], secrets: SecretsSession) -> list[ConfigFinding]:
    """Secrets in image labels."""
    labels = _container(config).get("Labels")
    findings = []
    for key, value in (labels if isinstance(labels, dict) else {}).items():
        location = f"config.Labels[{key}]"
        for h in secrets.scan_text(f"{key}={value}", location):
            if h.allowed is None:
                findings.append(_secret_finding(h.type, location, h.fingerprint, "in an image label"))
    return findings


def _history(config: dict[str, Any]) -> list[dict[str, Any]]:
    history = config.get("history")
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def check_history(config: dict[str, Any], secrets: SecretsSession) -> list[ConfigFinding]:
    """Build steps: secrets in ``created_by``, and ``ADD`` of a remote URL without a pinned checksum."""
    findings = []
    for i, step in enumerate(_history(config)):
        command = str(step.get("created_by") or "")
        location = f"config.history[{i}]"
        for h in secrets.scan_text(command, location):
            if h.allowed is None:
                findings.append(_secret_finding(h.type, location, h.fingerprint, "in a build command (image history)"))
        m = _REMOTE_ADD.search(command)
        if m and "--checksum" not in (m.group(1) or ""):
            findings.append(
                ConfigFinding(
                    "AISEC-IMG-REMOTE-ADD",
                    "medium",
                    "ADD of a remote URL without --checksum: the layer's content was not pinned when built",
                    location,
                    {"scheme": m.group(2).lower()},
                )
            )
    return findings


def check_base_pinned(config: dict[str, Any], _: SecretsSession) -> list[ConfigFinding]:
    """A base image named in the OCI labels but not pinned by digest."""
    labels = _container(config).get("Labels")
    labels = labels if isinstance(labels, dict) else {}
    base = labels.get(_BASE_NAME)
    if not isinstance(base, str) or not base:
        return []
    digest = labels.get(_BASE_DIGEST)
    if "@sha256:" in base or (isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
        return []
    return [
        ConfigFinding(
            "AISEC-IMG-BASE-UNPINNED",
            "low",
            "Base image named in the labels but not pinned by digest",
            f"config.Labels[{_BASE_NAME}]",
            {"base": base[:200]},
        )
    ]


def _secret_finding(kind: str, location: str, fingerprint: str, where: str) -> ConfigFinding:
    severity = "medium" if kind in HEURISTIC_TYPES else "high"
    slug = re.sub(r"[^A-Z0-9]+", "-", kind.upper()).strip("-")
    return ConfigFinding(
        f"AISEC-IMG-SECRET-{slug}", severity, f"{kind} {where}", location, {"type": kind, "fingerprint": fingerprint}
    )


#: Every configuration check, in report order.
CONFIG_CHECKS: tuple[Callable[[dict[str, Any], SecretsSession], list[ConfigFinding]], ...] = (
    check_user,
    check_env,
    check_labels,
    check_history,
    check_base_pinned,
)
