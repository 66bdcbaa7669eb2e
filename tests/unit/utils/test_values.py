from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.values import FALSE_SPELLINGS, TRUE_SPELLINGS, parse_bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("True", True), (" yes ", True), ("ON", True)]
    + [("false", False), ("No", False), ("off", False), ("0", False), ("", False)],
)
def test_known_spellings(value, expected):
    assert parse_bool(value, "flag") is expected


@pytest.mark.parametrize("value", ["maybe", "y", "t", "2", "enabled", None, 2, 1.0, [], "tru e"])
def test_unknown_spellings_are_errors_naming_the_input(value):
    with pytest.raises(AisecInputError, match=re.escape(f"flag must be true or false, not {value!r}")):
        parse_bool(value, "flag")


@given(st.text(max_size=8))
def test_any_text_is_true_false_or_an_error_never_a_guess(text):
    norm = text.strip().lower()
    if norm in TRUE_SPELLINGS:
        assert parse_bool(text, "flag") is True
    elif norm in FALSE_SPELLINGS:
        assert parse_bool(text, "flag") is False
    else:
        with pytest.raises(AisecInputError, match="flag must be true or false"):
            parse_bool(text, "flag")


def test_operators_use_the_one_parser():
    from airflow_aisec.operators import cloud, retrain

    assert cloud._as_bool is parse_bool
    assert retrain.parse_bool is parse_bool
