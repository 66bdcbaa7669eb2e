"""detect-secrets plugins for the token families ML teams leak most and detect-secrets lacks.

Loaded by detect-secrets from this file's path (its custom-plugin mechanism), next to its own plugin
set. Patterns are anchored on the vendors' published prefixes, so they stay precise; a token may follow
``_`` or ``-`` (``cfg-sk-proj-…``, ``x_hf_…`` in file names and identifiers), never a letter or digit:

* Hugging Face user access tokens ``hf_`` + 34 letters, organisation API tokens ``api_org_`` + 34 letters;
* OpenAI project / service-account / admin keys ``sk-proj-…``, ``sk-svcacct-…``, ``sk-admin-…`` and
  legacy user keys ``sk-`` + 48 alphanumerics (detect-secrets' own OpenAI plugin only knows the
  ``T3BlbkFJ`` marker form).
"""

from __future__ import annotations

import re

from detect_secrets.plugins.base import RegexBasedDetector


class HuggingFaceTokenDetector(RegexBasedDetector):
    """Hugging Face access tokens (``hf_…``, ``api_org_…``)."""

    secret_type = "Hugging Face Token"
    denylist = (
        re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z]{34}(?![A-Za-z0-9])"),
        re.compile(r"(?<![A-Za-z0-9])api_org_[A-Za-z]{34}(?![A-Za-z0-9])"),
    )


class OpenAIApiKeyDetector(RegexBasedDetector):
    """OpenAI API keys: project, service-account, admin and legacy user keys."""

    secret_type = "OpenAI API Key"
    denylist = (
        re.compile(r"(?<![A-Za-z0-9])sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])"),
        re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9]{48}(?![A-Za-z0-9_-])"),
    )
