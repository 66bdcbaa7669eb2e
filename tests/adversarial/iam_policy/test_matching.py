"""The glob machinery every rule rests on, checked against brute force: action and resource matching
never misses a string a pattern matches, and "could this resource pattern name an ARN of this type"
never answers no when such an ARN exists."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import catalogue as cat
from airflow_aisec.core.aws import iam

ALPHABET = "a/:"
WITNESSES = ["".join(p) for n in range(7) for p in itertools.product(ALPHABET, repeat=n)]

patterns = st.text(alphabet="a/:*?", max_size=7)
formats = st.lists(st.sampled_from(["a", "/", ":", "${X}"]), max_size=5).map("".join)


def _brute_glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _brute_format(fmt: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{X\})", fmt)
    last = max((i for i, p in enumerate(parts) if p == "${X}"), default=-1)
    return re.compile(
        "".join((".*" if i == last else "[^:]*") if p == "${X}" else re.escape(p) for i, p in enumerate(parts)),
        re.DOTALL,
    )


@settings(max_examples=300)
@given(pattern=patterns)
def test_glob_regex_agrees_with_brute_force(pattern):
    safe = cat.glob_regex(pattern, ignore_case=False)
    brute = _brute_glob(pattern)
    for w in WITNESSES:
        assert (safe.match(w) is not None) == (brute.fullmatch(w) is not None), (pattern, w)


@settings(max_examples=300)
@given(pattern=patterns, fmt=formats)
def test_could_match_format_never_misses_a_witness(pattern, fmt):
    if not fmt:
        return
    glob, form = _brute_glob(pattern), _brute_format(fmt)
    witness = next((w for w in WITNESSES if glob.fullmatch(w) and form.fullmatch(w)), None)
    if witness is not None:
        assert cat.resource_could_match_format(pattern, fmt), (pattern, fmt, witness)


@settings(max_examples=200)
@given(pattern=st.text(alphabet="ab*?", max_size=6))
def test_certainly_covers_prefix_is_exact_for_short_keys(pattern):
    """If the probe says "covers every key", every short key over a real alphabet is matched."""
    prefix = "arn:aws:s3:::b/"
    full = prefix + pattern
    if iam.certainly_covers_prefix(full, prefix):
        for key in ("a", "b", "ab", "ba", "zz/9", "a" * 9):
            assert iam.resource_certainly_matches(full, prefix + key), (pattern, key)


@settings(max_examples=50)
@given(pattern=st.text(alphabet="iamIAM:PpassRrole3*?", min_size=1, max_size=10))
def test_action_expansion_agrees_with_brute_force_over_the_whole_catalogue(pattern):
    brute = re.compile(_brute_glob(pattern).pattern, re.DOTALL | re.IGNORECASE)
    expected = frozenset(a for a in cat.catalogue().all if brute.fullmatch(a))
    assert cat.catalogue().expand(pattern) == expected, pattern
