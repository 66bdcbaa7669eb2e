"""The prefilter changes nothing: the same hits (and the same values to redact) with it on and off.

Generated files mix every vendor token format, keyword assignments (case variants, LONG S, KELVIN
SIGN, ``contraseña``), quoted high-entropy strings, IPs, pragmas and non-ASCII text; then real files:
site-packages sources and this repository's tests.
"""

from __future__ import annotations

import base64
import json
import random
import string
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets.detectors import CHUNK, ScanContext, detector, hits_for, vendor_plugins
from airflow_aisec.core.secrets.redaction import Redactor

KELVIN, LONG_S = "\u212a", "\u017f"
B64 = string.ascii_letters + string.digits + "+/=_-"
FILENAMES = ["config.py", "settings.yaml", "main.go", "app.cpp", "key.c", "App.java", "notes.txt", ".env", "Dockerfile"]


@pytest.fixture(scope="module")
def scanners():
    """Both detector sets, open together: ``(without prefilter, with prefilter)``."""
    with detector(prefilter=False) as off, detector(prefilter=True) as on:
        yield off, on


def _hits(scan_lines, lines: list[str], filename: str) -> tuple[list[tuple], set[str]]:
    redactor = Redactor()
    hits = hits_for(ScanContext(scan_lines, redactor, 10**8), lines, filename)
    return [(h.type, h.line, h.fingerprint, h.hashed_secret, h.allow_reason) for h in hits], redactor._values


def assert_same(scanners, lines: list[str], filename: str) -> list[tuple]:
    off, on = scanners
    expected = _hits(off, lines, filename)
    assert _hits(on, lines, filename) == expected, (filename, lines)
    return expected[0]


def _jwt(payload: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.{part({'s': 1})}"


def _chars(alphabet: str, lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=lo, max_size=hi)


_VENDOR_REGEXES = [r for p in vendor_plugins() for r in getattr(p, "denylist", ())]
HAND_TOKENS = st.one_of(
    _chars(string.ascii_uppercase + string.digits, 16, 16).map(lambda s: "AKIA" + s),
    _chars(string.ascii_letters + string.digits, 36, 36).map(lambda s: "ghp_" + s),
    _chars(string.ascii_lowercase + string.digits, 8, 24).map(lambda s: "xoxb-123456-7890-" + s),
    _chars(string.ascii_letters + string.digits, 24, 24).map(lambda s: "sk_live_" + s),
    st.dictionaries(st.sampled_from("abcxyz"), st.integers(), max_size=3).map(_jwt),
    st.sampled_from(["-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----"]),
    _chars(string.ascii_letters, 34, 34).map(lambda s: "hf_" + s),
    _chars(string.ascii_letters + string.digits, 56, 56).map(lambda s: "sk-proj-" + s),
    _chars(string.ascii_letters + string.digits, 16, 24).map(lambda s: "glpat-" + s),
)
REGEX_TOKENS = st.sampled_from(_VENDOR_REGEXES).flatmap(st.from_regex)
KEYWORDS = st.sampled_from(
    ["password", "PASSWORD", "Password", f"{LONG_S}ecret", "SECRET", "api_key", f"API_{KELVIN}EY", "db_pass"]
    + ["contraseña", "CONTRASEÑA", "private_key", "my_pwd", "client_secret"]
)
ASSIGN = st.sampled_from([" = ", ": ", " := ", " == ", " => ", "=", "(", ".assign("])
QUOTE = st.sampled_from(['"', "'", "`", ""])
#: All-distinct characters: entropy log2(n), right at the plugins' limits (4.5 at 23 base64 characters, 3 at 9 hex).
DISTINCT = st.one_of(
    st.integers(18, 30).flatmap(lambda n: st.permutations(B64).map(lambda p: "".join(p[:n]))),
    st.integers(6, 14).flatmap(lambda n: st.permutations(string.hexdigits).map(lambda p: "".join(p[:n]))),
)
VALUES = st.one_of(_chars(B64, 4, 44), _chars(string.hexdigits, 6, 64), DISTINCT, HAND_TOKENS)
QUOTED = st.tuples(QUOTE, VALUES).map(lambda qv: qv[0] + qv[1] + qv[0])
IPS = st.one_of(
    st.tuples(*[st.integers(0, 300)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["8.8.8.8:53", "10.0.0.1", "192.168.1.20", "172.20.0.3", "1.2.3"]),
)
PROSE = st.text(alphabet=st.sampled_from("ab xyz.,:;=()[]{}#/\"'\tëéüß€ſ\u212a日本"), max_size=30)
FRAGMENT = st.one_of(
    HAND_TOKENS,
    REGEX_TOKENS,
    st.tuples(KEYWORDS, ASSIGN, QUOTED).map("".join),
    st.tuples(QUOTED, st.sampled_from([" == ", " != "]), KEYWORDS).map("".join),
    QUOTED,
    IPS,
    PROSE,
    st.sampled_from(["# pragma: allowlist secret", "# aisec: allow-secret test fixture", "x = get_secret()", "$VAR"]),
)
CASES = [lambda s: s, str.upper, str.lower, str.swapcase]
LINE = st.tuples(st.lists(FRAGMENT, min_size=1, max_size=3), st.sampled_from([" ", "", "\t", ", "])).map(
    lambda fs: fs[1].join(fs[0])
)
FILE_LINES = st.lists(st.tuples(LINE, st.sampled_from(CASES)).map(lambda lc: lc[1](lc[0])), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=FILE_LINES, filename=st.sampled_from(FILENAMES))
def test_generated_files_give_the_same_hits(scanners, lines, filename):
    assert_same(scanners, lines, filename)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(
        st.one_of(
            st.integers(20, 25).flatmap(lambda n: st.permutations(B64).map(lambda p: "".join(p[:n]))),
            st.integers(7, 11).flatmap(lambda n: st.permutations(string.hexdigits).map(lambda p: "".join(p[:n]))),
        ),
        min_size=1,
        max_size=8,
    ),
    quote=st.sampled_from(["'", '"']),
)
def test_quoted_strings_at_the_entropy_limits_give_the_same_hits(scanners, values, quote):
    assert_same(scanners, [f"value = {quote}{v}{quote}" for v in values], "data.py")


def test_the_generated_files_do_contain_findings_of_every_kind(scanners):
    """The generator above is not vacuous: a file of its fragments yields heuristic and vendor hits."""
    rng = random.Random(7)
    token = "".join(rng.choice(string.ascii_letters) for _ in range(34))
    lines = [
        f'password = "{"".join(rng.choice(B64) for _ in range(30))}"',
        f"hf = 'hf_{token}'",
        "server = 8.8.8.8",
        f"{LONG_S}ecret = 'Zx9QbT4kLm2Rv7Wp'",
        _jwt({"sub": "x"}),
    ]
    types = {h[0] for h in assert_same(scanners, lines, "config.py")}
    assert {"Secret Keyword", "Hugging Face Token", "JSON Web Token"} <= types


def test_long_lines_are_chunked_the_same_way(scanners):
    rng = random.Random(3)
    token = "hf_" + "".join(rng.choice(string.ascii_letters) for _ in range(34))
    filler = "".join(rng.choice("abc def.=\"'") for _ in range(CHUNK))
    hits = assert_same(scanners, [f"{filler} {token} {filler}", f"{token} {filler * 2}"], "blob.txt")
    assert {h[1] for h in hits if h[0] == "Hugging Face Token"} == {1, 2}


def _corpus() -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    sources = sorted(p for p in site.rglob("*.py") if p.stat().st_size <= 40_000)
    picked = random.Random(20261202).sample(sources, min(250, len(sources)))
    tests = sorted(p for p in Path(__file__).parents[2].rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return picked + tests


def test_real_files_give_the_same_hits(scanners):
    files = _corpus()
    assert len(files) > 300
    found = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        found += len(assert_same(scanners, text.splitlines(), str(path)))
    assert found > 0
