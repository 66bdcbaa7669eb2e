"""Baselines and allow-lists are untrusted input: malformed ones are errors (exit 2), never skipped."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets import fingerprint, load_baseline, scan_secrets
from airflow_aisec.exceptions import AisecInputError
from tests.adversarial.secrets._common import FIXED, run_cli

SHA1 = hashlib.sha1(b"x").hexdigest()
GOOD_ENTRY = f'{{"type": "x", "filename": "a.py", "hashed_secret": "{SHA1}", "is_secret": false}}'
HOSTILE = {
    "duplicate_results": f'{{"results": {{}}, "results": {{"a.py": [{GOOD_ENTRY}]}}}}',
    "duplicate_is_secret": f'{{"results": {{"a.py": [{{"hashed_secret": "{SHA1}", "is_secret": true, "is_secret": false}}]}}}}',
    "nan": f'{{"results": {{"a.py": [{GOOD_ENTRY}]}}, "version": NaN}}',
    "huge_number": f'{{"results": {{"a.py": [{GOOD_ENTRY}]}}, "version": {"9" * 400}}}',
    "deep": '{"results": {"a.py": [' + "[" * 200 + "]" * 200 + "]}}",
    "results_list": f'{{"results": [{GOOD_ENTRY}]}}',
    "entry_not_object": '{"results": {"a.py": ["abc"]}}',
    "hash_not_string": '{"results": {"a.py": [{"hashed_secret": 12}]}}',
    "hash_not_sha1": '{"results": {"a.py": [{"hashed_secret": "*"}]}}',
    "is_secret_string": f'{{"results": {{"a.py": [{{"hashed_secret": "{SHA1}", "is_secret": "false"}}]}}}}',
    "bom": "\ufeff" + f'{{"results": {{"a.py": [{GOOD_ENTRY}]}}}}',
    "not_json": "results: {}",
    "empty": "",
    "bad_utf8": b'{"results": {"a\xff.py": []}}',
    "top_level_list": "[]",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_baselines_are_errors(tmp_path, capsys, case):
    raw = HOSTILE[case]
    path = tmp_path / "baseline.json"
    path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    with pytest.raises(AisecInputError, match="is not a detect-secrets baseline"):
        load_baseline(path)
    (tmp_path / "tree").mkdir()
    code, data, _ = run_cli(capsys, ["secrets", str(tmp_path / "tree"), "--baseline", str(path)])
    assert code == 2 and data["status"] == "error" and "baseline" in data["summary"]


@settings(max_examples=100)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    )
)
def test_generated_json_is_a_valid_baseline_or_an_input_error(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("bl") / "b.json"
    path.write_text(json.dumps(doc))
    valid = (
        isinstance(doc, dict)
        and isinstance(doc.get("results"), dict)
        and all(isinstance(v, list) for v in doc["results"].values())
        and all(isinstance(e, dict) for v in doc["results"].values() for e in v)
    )
    if not valid:
        with pytest.raises(AisecInputError, match="is not a detect-secrets baseline"):
            load_baseline(path)
        return
    try:
        entries = load_baseline(path)
    except AisecInputError:  # an entry without a SHA-1 hashed_secret: refused, also right
        return
    # accepted: it really is {"results": {file: [{"hashed_secret": <sha1>, ...}]}}
    assert isinstance(doc, dict) and isinstance(doc["results"], dict)
    assert all(len(h) == 40 for _, h in entries)


def test_an_unaudited_baseline_entry_for_another_file_does_not_suppress(tmp_path):
    (tmp_path / "a.py").write_text(f'T = "{FIXED["hf"]}"\n')
    sha = hashlib.sha1(FIXED["hf"].encode()).hexdigest()
    path = tmp_path / "bl.json"
    path.write_text(json.dumps({"results": {"other.py": [{"hashed_secret": sha}]}}))
    assert scan_secrets(tmp_path, baseline=path).status == "fail"


def test_one_github_baseline_entry_does_not_suppress_every_github_token(tmp_path):
    """detect-secrets hashes only the `ghp` prefix of GitHub tokens; so would a baseline made by it."""
    (tmp_path / "a.py").write_text(f'T = "ghp_{FIXED["openai"][8:44]}"\n')
    prefix_only = hashlib.sha1(b"ghp").hexdigest()
    path = tmp_path / "bl.json"
    path.write_text(json.dumps({"results": {"a.py": [{"hashed_secret": prefix_only, "is_secret": False}]}}))
    report = scan_secrets(tmp_path, baseline=path)
    assert report.status == "fail" and report.findings[0].id == "AISEC-SECRET-GITHUB-TOKEN"
    assert report.findings[0].details["fingerprint"] != fingerprint("ghp")


@pytest.mark.parametrize(
    "allow",
    [
        {"not-a-fingerprint": "x"},
        {fingerprint("x").upper(): "x"},
        {fingerprint("x"): ""},
        {fingerprint("x"): 3},
        {7: "x"},
        ["a", "b"],
    ],
)
def test_malformed_allow_entries_are_errors(tmp_path, allow):
    with pytest.raises(AisecInputError, match="allow"):
        scan_secrets(tmp_path, allow=allow)


def test_cli_allow_errors_never_echo_the_argument(tmp_path, capsys):
    token = FIXED["hf"]
    code, data, text = run_cli(capsys, ["secrets", str(tmp_path), "--allow", token])
    assert code == 2 and "--allow #1 must be FINGERPRINT=REASON" in data["summary"]
    assert token not in text
    code, data, text = run_cli(capsys, ["secrets", str(tmp_path), "--allow", f"{token}=x"])
    assert code == 2 and "not a fingerprint" in data["summary"] and token not in text
