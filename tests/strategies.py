"""Hypothesis strategies shared by the property tests: JSON as a server might send it."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Floats that survive ``json.dumps`` as standard JSON.
FINITE = st.floats(allow_nan=False, allow_infinity=False)


#: Integers a JavaScript reader keeps exactly.
SAFE_INTEGERS = st.integers(-(2**53), 2**53)


def json_scalars(
    *,
    text_size: int = 12,
    integers: st.SearchStrategy[int] | None = None,
    floats: st.SearchStrategy[float] = FINITE,
) -> st.SearchStrategy[Any]:
    """``null``, booleans, numbers and short strings."""
    ints = st.integers() if integers is None else integers
    return st.none() | st.booleans() | ints | floats | st.text(max_size=text_size)


def json_values(
    *,
    keys: st.SearchStrategy[str] | None = None,
    scalars: st.SearchStrategy[Any] | None = None,
    max_size: int = 4,
    max_leaves: int = 12,
) -> st.SearchStrategy[Any]:
    """Any JSON document: scalars, lists and objects nested to ``max_leaves`` leaves."""
    keys = st.text(max_size=8) if keys is None else keys
    scalars = json_scalars() if scalars is None else scalars
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=max_size)
            | st.dictionaries(keys, children, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
