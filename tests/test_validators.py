"""The shared validators: values with a repr, combinable, and every refusal an InputError
that names the argument."""

from __future__ import annotations

import doctest
import math
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from luma_async import InputError
from luma_async import _validators as v

NOT_NUMBERS: list[Any] = [True, False, None, "1", b"1", [1], math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", NOT_NUMBERS)
@pytest.mark.parametrize(
    "validator",
    [v.positive(), v.non_negative(), v.finite(), v.number_between(0, 60), v.SECONDS],
    ids=repr,
)
def test_number_validators_refuse_bools_text_and_non_finite_values(
    validator: v.Validator[float], bad: Any
) -> None:
    with pytest.raises(InputError, match=r"^delay must be "):
        v.check(bad, "delay", validator)


def test_positive_non_negative_and_between_draw_their_lines() -> None:
    assert v.check(0.5, "x", v.positive()) == 0.5
    with pytest.raises(InputError, match=r"x must be a positive number, not 0$"):
        v.check(0, "x", v.positive())
    assert v.check(0, "x", v.non_negative()) == 0
    with pytest.raises(InputError, match="zero or a positive number, not -1"):
        v.check(-1, "x", v.non_negative())
    assert v.check(60, "w", v.number_between(0, 60)) == 60
    assert v.check(0, "w", v.number_between(0, 60)) == 0
    with pytest.raises(InputError, match=r"w must be a number from 0 to 60, not 60\.5"):
        v.check(60.5, "w", v.number_between(0, 60))
    assert v.check(86_399.9, "t", v.SECONDS) == 86_399.9
    with pytest.raises(InputError, match="t must be a positive number of seconds, not 86400"):
        v.check(86_400, "t", v.SECONDS)


@given(st.one_of(st.integers(-5, 5), st.floats(), st.booleans(), st.none(), st.text()))
def test_whole_accepts_exactly_the_ints_at_or_above_its_bound(value: object) -> None:
    if type(value) is int and value >= 1:
        assert v.check(value, "count", v.whole(1)) == value
    else:
        with pytest.raises(InputError) as caught:
            v.check(value, "count", v.whole(1))
        assert str(caught.value) == f"count must be a whole number of at least 1, not {value!r}"


def test_whole_with_an_upper_bound() -> None:
    port = v.whole(0, at_most=65_535)
    assert v.check(65_535, "port", port) == 65_535
    with pytest.raises(InputError, match="port must be a whole number from 0 to 65535, not 65536"):
        v.check(65_536, "port", port)
    with pytest.raises(InputError, match=r"not 2\.0"):
        v.check(2.0, "port", port)  # a float is not a whole number here, even 2.0


def test_bool_accepts_only_true_and_false() -> None:
    assert v.check(True, "flag", v.bool_()) is True
    assert v.check(False, "flag", v.bool_()) is False
    for bad in (0, 1, "yes", None):
        with pytest.raises(InputError, match=f"flag must be True or False, not {bad!r}"):
            v.check(bad, "flag", v.bool_())


def test_one_of_wants_the_same_value_of_the_same_type() -> None:
    ratio = v.one_of("16:9", "9:16")
    assert v.check("16:9", "aspect_ratio", ratio) == "16:9"
    with pytest.raises(InputError, match=r"aspect_ratio must be one of 16:9, 9:16; got '4:3'"):
        v.check("4:3", "aspect_ratio", ratio)
    with pytest.raises(InputError):
        v.check(True, "n", v.one_of(1, 2))  # True == 1, but it is not the choice 1
    with pytest.raises(InputError):
        v.check(1.0, "n", v.one_of(1, 2))
    with pytest.raises(InputError):
        v.check([], "n", v.one_of(1, 2))  # unhashable: just not a choice


def test_instance_of_names_the_type_given() -> None:
    with pytest.raises(InputError, match=r"^retry must be a dict, not list$"):
        v.check([], "retry", v.instance_of(dict))
    with pytest.raises(InputError, match=r"^s must be an aiohttp session, not int$"):
        v.check(3, "s", v.instance_of(dict, "an aiohttp session"))


def test_optional_lets_none_through_and_keeps_or_rewords_the_message() -> None:
    maybe = v.optional(v.whole(1))
    assert v.check(None, "n", maybe) is None
    assert v.check(3, "n", maybe) == 3
    with pytest.raises(InputError, match=r"^n must be a whole number of at least 1, not 0$"):
        v.check(0, "n", maybe)
    reworded = v.optional(v.bool_(), what="True, False or None")
    with pytest.raises(InputError, match=r"^loop must be True, False or None, not 1$"):
        v.check(1, "loop", reworded)
    assert maybe.describe == "a whole number of at least 1 or None"


def test_and_runs_each_in_order_and_the_first_refusal_speaks() -> None:
    even = v.one_of(2, 4, 6)
    both = v.and_(v.whole(1), even)
    assert v.check(4, "n", both) == 4
    with pytest.raises(InputError, match="at least 1, not 0"):
        v.check(0, "n", both)
    with pytest.raises(InputError, match="one of 2, 4, 6; got 3"):
        v.check(3, "n", both)
    assert both.accepts(6)
    assert not both.accepts(5)


def test_validators_are_values_with_a_repr() -> None:
    assert repr(v.whole(1)) == "<validator: a whole number of at least 1>"
    assert repr(v.bool_()) == "<validator: True or False>"
    assert repr(v.optional(v.bool_())) == "<validator: optional(<validator: True or False>)>"
    assert "instance of dict" in repr(v.instance_of(dict))
    assert "one of ('a', 'b')" in repr(v.one_of("a", "b"))
    assert repr(v.and_(v.whole(1), v.bool_())).startswith("<validator: and_(")
    assert v.whole(1) == v.whole(1)  # frozen values: equal when they check the same
    assert hash(v.positive()) == hash(v.positive())


def test_they_work_as_attrs_validators_naming_the_field() -> None:
    @attrs.frozen
    class Options:
        retries: int = attrs.field(default=3, validator=v.whole(0))
        delay: float | None = attrs.field(default=None, validator=v.optional(v.positive()))

    assert Options(0, 1.5).retries == 0
    with pytest.raises(InputError, match=r"^retries must be a whole number of at least 0"):
        Options(-1)
    with pytest.raises(InputError, match=r"^delay must be a positive number, not -2"):
        Options(1, -2)


def test_the_module_docstring_example_runs() -> None:
    failures, tried = doctest.testmod(v, raise_on_error=False, verbose=False)
    assert tried >= 1
    assert failures == 0


def test_callable_accepts_functions_and_names_what_was_given() -> None:
    assert v.check(print, "progress", v.callable_()) is print
    assert v.check(None, "progress", v.optional(v.callable_())) is None
    with pytest.raises(InputError, match=r"^progress must be callable, not int$"):
        v.check(3, "progress", v.optional(v.callable_()))
