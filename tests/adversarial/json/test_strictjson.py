"""Untrusted JSON: whatever Python's lenient parser would accept with a surprise is an error naming the input."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils import strictjson
from tests.adversarial.strategies import json_values

PLAIN = json_values(text_size=20, key_size=8, leaves=30)


@settings(max_examples=300)
@given(PLAIN)
def test_ordinary_json_round_trips(value: object) -> None:
    assert strictjson.loads(json.dumps(value), source="doc") == value


@settings(max_examples=200)
@given(key=st.text(max_size=10), a=PLAIN, b=PLAIN, prefix=st.dictionaries(st.text(max_size=5), PLAIN, max_size=3))
def test_duplicate_keys_are_refused_wherever_they_are(key: str, a: object, b: object, prefix: dict) -> None:
    prefix.pop(key, None)
    body = ", ".join(
        [
            *(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in prefix.items()),
            f"{json.dumps(key)}: {json.dumps(a)}",
            f"{json.dumps(key)}: {json.dumps(b)}",
        ]
    )
    doc = '{"outer": [{' + body + "}]}"
    with pytest.raises(AisecInputError, match=r"policy\.json: invalid JSON: duplicate key"):
        strictjson.loads(doc, source="policy.json")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("NaN", "NaN is not JSON"),
        ('{"a": Infinity}', "Infinity is not JSON"),
        ('{"a": -Infinity}', "Infinity is not JSON"),
        ('{"n": ' + "9" * 400 + "}", "integer literal of 400"),
        ('{"n": 1e999}', "out of range"),
        ("\ufeff{}", "byte-order mark"),
        ('{"a": 1', "invalid JSON"),
        ("[" * 100 + "]" * 100, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_surprises_are_refused(doc: str, message: str) -> None:
    with pytest.raises(AisecInputError, match=message):
        strictjson.loads(doc, source="advisory.json")


def test_invalid_utf8_and_oversize_are_refused() -> None:
    with pytest.raises(AisecInputError, match="not valid UTF-8"):
        strictjson.loads(b'{"a": "\xff"}', source="log")
    with pytest.raises(AisecInputError, match="exceeds the limit"):
        strictjson.loads(b"[1]" * 10, source="log", max_bytes=8)


@settings(max_examples=200)
@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)))
def test_typed_access_never_lets_a_wrong_type_through(value: object) -> None:
    with pytest.raises(AisecInputError, match=r"doc\.name: expected a string"):
        strictjson.get_str({"name": value}, "name", "doc")


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(AisecInputError, match="expected an integer"):
        strictjson.get_int({"n": True}, "n", "doc")
    assert strictjson.get_int({"n": 3}, "n", "doc", lo=0, hi=5) == 3
    with pytest.raises(AisecInputError, match=r"outside \[0, 5\]"):
        strictjson.get_int({"n": 9}, "n", "doc", lo=0, hi=5)


NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T00:00:00Z", "2027-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01", "yesterday", 17, None, ""],
)
def test_implausible_timestamps_are_refused(value: object) -> None:
    with pytest.raises(AisecInputError, match="modified"):
        strictjson.parse_timestamp(value, "advisory.modified", now=NOW)


def test_plausible_timestamps_parse_to_utc() -> None:
    assert strictjson.parse_timestamp("2026-12-01T23:00:00-02:00", "t", now=NOW) == datetime(
        2026, 12, 2, 1, tzinfo=timezone.utc
    )
    assert strictjson.parse_timestamp("2024-10-10T00:00:00", "t", now=NOW).tzinfo == timezone.utc
