"""Adversarial suites: generated hostile inputs against every check.

Hypothesis runs derandomized (the same cases on every run, so CI is reproducible) with no per-example
deadline (CI machines are slow and shared); each test sets ``max_examples`` for its own budget.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "aisec-adversarial",
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
settings.load_profile("aisec-adversarial")
