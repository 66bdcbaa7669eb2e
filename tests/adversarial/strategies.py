"""Hypothesis strategies shared by the adversarial suites."""

from __future__ import annotations

from hypothesis import strategies as st


def json_values(*, int_bound: int = 2**63, text_size: int = 12, key_size: int = 6, width: int = 4, leaves: int = 12):
    """Arbitrary plain JSON values (no NaN/Infinity): the raw material of hostile documents."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-int_bound, int_bound)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text_size),
        lambda children: (
            st.lists(children, max_size=width) | st.dictionaries(st.text(max_size=key_size), children, max_size=width)
        ),
        max_leaves=leaves,
    )
