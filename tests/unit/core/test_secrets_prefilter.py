"""The secrets prefilter: literals every regex match must contain, and plugin filters that never reject a finding."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets import prefilter
from airflow_aisec.core.secrets.detectors import detector, vendor_plugins
from airflow_aisec.core.secrets.prefilter import LineFilter, plugin_filter, required_literals

KELVIN, LONG_S = "\u212a", "\u017f"


def lits(pattern: str, flags: int = 0) -> set[str] | None:
    req = required_literals(re.compile(pattern, flags))
    return None if req is None else set(req.literals)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("abc", {"abc"}),
        ("(?:foo|bar)baz", {"foobaz", "barbaz"}),
        ("x[ab]y", {"xay", "xby"}),
        ("a(?:bc)?d", {"ad", "abcd"}),  # optional group: both spellings
        ("x{3}", {"xxx"}),
        ("(?:ab){2,}", {"ab"}),  # unbounded repeat with min >= 1 keeps the item's requirement
        (r"(?<![a-z])sk_live_\w{24}", {"sk_live_"}),  # lookbehind and \w: nothing
        ("(?:ghp|gho)_", {"ghp_", "gho_"}),
        (r"^BEGIN\b KEY$", {"BEGIN KEY"}),  # anchors and \b are zero width
        ("(?:a|bc)(?:d|ef)", {"ad", "aef", "bcd", "bcef"}),
        ("k(?=xyz)", {"k"}),  # a lookahead's text is not part of the match
    ],
)
def test_literals_of_handpicked_regexes(pattern, expected):
    assert lits(pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    [".*", r"\w+", "a?", "(?:abc)*", "[^x]+", r"(x?)\1", "(?:abc|.)", r"(?:x|y*)", "(?:a{0,2})"],
)
def test_no_requirement_when_a_match_may_avoid_every_literal(pattern):
    assert lits(pattern) is None


def test_a_requirement_from_one_side_of_an_unknown_gap():
    assert lits("ab*c") in ({"a"}, {"c"})
    assert lits(r"AKIA\w+END") in ({"AKIA"}, {"END"})


def test_ignorecase_literals_are_folded_and_non_ascii_cased_characters_cut():
    req = required_literals(re.compile("Secret", re.IGNORECASE))
    assert req is not None and req.folded and set(req.literals) == {"secret"}
    assert lits("(?i:Key)x") == {"keyx"}  # a scoped flag makes the whole set case-insensitive
    assert lits("contraseña", re.IGNORECASE) == {"contrase"}
    assert lits(f"{LONG_S}ecret", re.IGNORECASE) == {"ecret"}
    assert lits("ñ", re.IGNORECASE) is None
    assert lits("€uro", re.IGNORECASE) == {"€uro"}  # an uncased character matches only itself


@pytest.mark.parametrize(
    ("pattern", "flags", "line", "expected"),
    [
        ("password", re.IGNORECASE, 'PASSWORD = "x"', True),
        ("password", re.IGNORECASE, "pass word", False),
        ("secret", re.IGNORECASE, f"{LONG_S}ecret = 1", True),  # LONG S folds to s: non-ASCII lines always pass
        ("key", re.IGNORECASE, f"{KELVIN}EY", True),
        (r"1\.2", re.IGNORECASE, "é 1.2", True),  # uncased literal: exact test also on a non-ASCII line
        (r"1\.2", re.IGNORECASE, "é 12", False),
        ("sk_live_", 0, "SK_LIVE_", False),
        ("^abc", 0, "x\nabc", True),  # the file-level test ignores anchors
    ],
)
def test_line_filter(pattern, flags, line, expected):
    regex = re.compile(pattern, flags)
    assert LineFilter([regex]).may_match_text(line) is expected
    assert bool(regex.search(line)) <= LineFilter([regex]).may_match_text(line)


def test_literal_sets_are_checked_with_one_regex_that_matches_exactly_the_literals():
    pattern = prefilter._alternation(["password", "passwd", "pwd", "api_key", "apikey", "secretx", "secret"])
    assert pattern is not None
    assert {w for w in ["password", "passwd", "pwd", "api_key", "apikey", "secret"] if pattern.fullmatch(w)} == {
        "password",
        "passwd",
        "pwd",
        "api_key",
        "apikey",
        "secret",
    }
    assert not pattern.search("pass apik_ey secre")


@pytest.fixture(scope="module")
def plugins():
    """Every plugin of the active detector set (heuristics as detect-secrets runs them, then vendors)."""
    from detect_secrets.settings import get_plugins

    with detector():
        yield [*get_plugins(), *vendor_plugins()]


def _regexes(plugins) -> list[re.Pattern[str]]:
    from detect_secrets.plugins import keyword

    found: dict[str, re.Pattern[str]] = {}
    tables = (*keyword.REGEX_BY_FILETYPE.values(), keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
    for regex in [r for t in tables for r in t]:
        found[regex.pattern + str(regex.flags)] = regex
    for plugin in plugins:
        for regex in [*getattr(plugin, "denylist", ()), getattr(plugin, "regex", None)]:
            if isinstance(regex, re.Pattern):
                found[regex.pattern + str(regex.flags)] = regex
    return list(found.values())


def test_every_plugin_of_the_detector_set_is_filtered(plugins):
    assert prefilter.detect_secrets_verified()
    names = {type(p).__name__ for p in plugins}
    assert {"KeywordDetector", "Base64HighEntropyString", "AWSKeyDetector", "HuggingFaceTokenDetector"} <= names
    filters = {type(p).__name__: plugin_filter(p) for p in plugins}
    assert all(f is not None for f in filters.values()), [n for n, f in filters.items() if f is None]
    assert [n for n, f in filters.items() if f is not None and not f.literal] == []


MUTATIONS = [
    lambda s: s,
    str.upper,
    str.lower,
    str.swapcase,
    lambda s: s.replace("s", LONG_S).replace("k", KELVIN).replace("K", KELVIN),
]
NOISE = st.text(alphabet=st.sampled_from("ab Z09_-.:=\"'/\tëſ\u212aé"), max_size=12)


def _check_regex(regex: re.Pattern[str], data: st.DataObject) -> None:
    line_filter = LineFilter([regex])
    try:
        core = data.draw(st.from_regex(regex), label="core")
    except Exception:
        core = ""
    line = data.draw(NOISE) + data.draw(st.sampled_from(MUTATIONS))(core) + data.draw(NOISE)
    assume(regex.search(line))
    assert line_filter.may_match_text(line), (regex.pattern, line)
    assert line_filter.may_match(line)


def test_generated_matches_of_every_regex_pass_the_prefilter(plugins):
    regexes = _regexes(plugins)
    assert len(regexes) > 40

    @settings(max_examples=15, suppress_health_check=list(HealthCheck), deadline=None)
    @given(data=st.data())
    def check(regex, data):
        _check_regex(regex, data)

    for regex in regexes:
        check(regex)


FILENAMES = ["a.py", "a.yaml", "a.go", "a.cpp", "a.c", "a.java", "a.txt", "a.env", "a"]


@settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
@given(data=st.data())
def test_a_plugin_finding_on_a_line_always_passes_its_filter(plugins, data):
    plugin = data.draw(st.sampled_from(plugins))
    regexes = [r for r in (*getattr(plugin, "denylist", ()), getattr(plugin, "regex", None)) if r is not None]
    parts = [data.draw(st.from_regex(r)) for r in regexes[:2]]
    quoted = data.draw(st.from_regex(r"[\"'][A-Za-z0-9+/=_-]{6,40}[\"']|[\"'][0-9a-f]{6,16}[\"']", fullmatch=True))
    keyword = data.draw(st.sampled_from(["password = ", "API_KEY: ", "secret=", "pwd := ", ""]))
    line = data.draw(st.sampled_from(MUTATIONS))(keyword + quoted + " " + " ".join(parts))
    line_filter = plugin_filter(plugin)
    assert line_filter is not None
    for filename in FILENAMES:
        if plugin.analyze_line(filename=filename, line=line, line_number=1):
            assert line_filter.may_match(line), (type(plugin).__name__, line)
            assert line_filter.may_match_text(line)


@pytest.mark.parametrize("limit_and_len", [(4.5, 22), (3.0, 8), (0.0, 1)])
def test_entropy_regex_needs_the_length_the_limit_implies(limit_and_len):
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    limit, length = limit_and_len
    narrowed = prefilter._entropy_regex(Base64HighEntropyString(limit=limit))
    assert narrowed is not None
    assert narrowed.search('"' + "a" * length + '"')
    assert not narrowed.search('"' + "a" * (length - 1) + '"')


def test_entropy_findings_at_every_length_pass_the_narrowed_regex(plugins):
    """Strings of distinct characters have the highest entropy a length allows: the boundary case."""
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    entropy = [p for p in plugins if isinstance(p, HighEntropyStringsPlugin)]
    assert len(entropy) == 2
    found = 0
    for plugin in entropy:
        line_filter = plugin_filter(plugin)
        assert line_filter is not None
        alphabet = "".join(dict.fromkeys(plugin.charset))
        for n in range(1, len(alphabet) + 1):
            for value in (alphabet[:n], alphabet[-n:]):
                line = f'x = "{value}"'
                if plugin.analyze_line(filename="a.py", line=line, line_number=1):
                    found += 1
                    assert line_filter.may_match(line), (type(plugin).__name__, n)
    assert found > 20


def test_another_detect_secrets_version_is_not_trusted(monkeypatch):
    import importlib.metadata

    assert prefilter.detect_secrets_verified()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.6.0")
    assert not prefilter.detect_secrets_verified()


def test_without_a_verified_detect_secrets_the_original_scan_runs(monkeypatch):
    def shortcut(*args, **kwargs):
        raise AssertionError("prefilter used")

    monkeypatch.setattr(prefilter, "detect_secrets_verified", lambda: False)
    monkeypatch.setattr(prefilter, "process_line_based_plugins", shortcut)
    monkeypatch.setattr(prefilter, "plugin_filter", shortcut)
    token = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQaZwSxEd"
    with detector() as scan_lines:
        found = list(scan_lines([(1, 'password = "Zx9QbT4kLm2Rv7Wp"'), (2, f"t = '{token}'")], "a.py"))
    assert {"Secret Keyword", "Hugging Face Token"} <= {s.type for s in found}
