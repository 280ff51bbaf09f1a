"""Argument validators as values, the one place where an argument's type and range are checked.

Each validator is a small frozen object with a ``__repr__``, called as attrs calls one:
``validator(instance, attribute, value)``.  A class declares its checks
(``attrs.field(validator=whole(1))``); a function checks an argument with
:func:`check`.  They combine: :func:`and_` runs several in order, :func:`optional` lets
``None`` through.  A rejected value raises :class:`InputError` naming the argument::

    >>> check(0, "attempts", whole(1))
    Traceback (most recent call last):
    ...
    luma_async._errors.InputError: attempts must be a whole number of at least 1, not 0

``bool`` is never a number here (``True`` is not 1 second, nor 1 attempt).
"""

from __future__ import annotations

import math
from typing import Any, Generic, Protocol, TypeVar, cast

import attrs

from luma_async._errors import InputError

__all__ = [
    "SECONDS",
    "Validator",
    "and_",
    "bool_",
    "callable_",
    "check",
    "finite",
    "instance_of",
    "non_negative",
    "number_between",
    "one_of",
    "optional",
    "positive",
    "whole",
]

_T = TypeVar("_T")


class _Named(Protocol):
    """What a validator needs of attrs' ``Attribute``: the argument's name."""

    @property
    def name(self) -> str: ...


class Validator(Generic[_T]):
    """The base of every validator: ``describe`` is what the value must be.

    ``Validator[T]``: what it accepts is a ``T`` (for the type checkers: :func:`check`
    returns the value as one).
    """

    __slots__ = ()

    @property
    def describe(self) -> str:
        raise NotImplementedError

    def accepts(self, value: object) -> bool:
        raise NotImplementedError

    def message(self, name: str, value: object) -> str:
        return f"{name} must be {self.describe}, not {value!r}"

    def validate(self, name: str, value: object) -> None:
        """Raise :class:`InputError` if the argument ``name`` may not be ``value``."""
        if not self.accepts(value):
            raise InputError(self.message(name, value))

    def __call__(self, instance: object, attribute: _Named, value: _T) -> None:
        self.validate(attribute.name, value)


def check(value: object, name: str, validator: Validator[_T]) -> _T:
    """``value``, once ``validator`` accepted it as the argument ``name``."""
    validator.validate(name, value)
    return cast("_T", value)


@attrs.frozen(repr=False)
class _Number(Validator[Any]):
    """A real number (never a bool) within bounds; ``whole`` asks for an ``int``."""

    what: str
    low: float | None = None
    low_open: bool = False  # True: strictly above ``low``
    high: float | None = None
    high_open: bool = False  # True: strictly below ``high``
    whole: bool = False

    @property
    def describe(self) -> str:
        return self.what

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        if self.whole:
            if not isinstance(value, int):
                return False
        elif not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __repr__(self) -> str:
        return f"<validator: {self.what}>"


def positive(what: str = "a positive number", *, below: float | None = None) -> Validator[float]:
    """A finite number above 0 (and, with ``below``, under it)."""
    return _Number(what, low=0, low_open=True, high=below, high_open=True)


def non_negative(what: str = "zero or a positive number") -> Validator[float]:
    """A finite number of at least 0."""
    return _Number(what, low=0)


def finite(what: str = "a finite number") -> Validator[float]:
    """Any finite number: not a bool, not NaN, not infinite."""
    return _Number(what)


def number_between(low: float, high: float, what: str | None = None) -> Validator[float]:
    """A finite number from ``low`` to ``high``, both included."""
    return _Number(what or f"a number from {low} to {high}", low=low, high=high)


def whole(at_least: int, *, at_most: int | None = None, what: str | None = None) -> Validator[int]:
    """An ``int`` (never a bool, never a float) of at least ``at_least`` (and ``at_most``)."""
    if what is None:
        what = f"a whole number of at least {at_least}"
        if at_most is not None:
            what = f"a whole number from {at_least} to {at_most}"
    return _Number(what, low=at_least, high=at_most, whole=True)


@attrs.frozen(repr=False)
class _Bool(Validator[bool]):
    @property
    def describe(self) -> str:
        return "True or False"

    def accepts(self, value: object) -> bool:
        return isinstance(value, bool)

    def __repr__(self) -> str:
        return "<validator: True or False>"


_BOOL = _Bool()


def bool_() -> Validator[bool]:
    """``True`` or ``False`` only: not 0, 1, ``"yes"`` or ``None``."""
    return _BOOL


@attrs.frozen(repr=False)
class _OneOf(Validator[Any]):
    choices: tuple[object, ...]

    @property
    def describe(self) -> str:
        return "one of " + ", ".join(str(choice) for choice in self.choices)

    def accepts(self, value: object) -> bool:
        # the same type too: True is not a stand-in for 1, nor 1.0 for 1
        return any(
            isinstance(value, type(choice))
            and isinstance(value, bool) == isinstance(choice, bool)
            and value == choice
            for choice in self.choices
        )

    def message(self, name: str, value: object) -> str:
        return f"{name} must be {self.describe}; got {value!r}"

    def __repr__(self) -> str:
        return f"<validator: one of {self.choices!r}>"


def one_of(*choices: _T) -> Validator[_T]:
    """One of ``choices`` exactly (``True`` is not ``1``)."""
    return _OneOf(tuple(choices))


@attrs.frozen(repr=False)
class _InstanceOf(Validator[Any]):
    cls: type
    what: str

    @property
    def describe(self) -> str:
        return self.what

    def accepts(self, value: object) -> bool:
        return isinstance(value, self.cls)

    def message(self, name: str, value: object) -> str:
        return f"{name} must be {self.what}, not {type(value).__name__}"

    def __repr__(self) -> str:
        return f"<validator: instance of {self.cls.__qualname__}>"


def instance_of(cls: type[_T], what: str | None = None) -> Validator[_T]:
    """An instance of ``cls``; the message names the type that was given instead."""
    return _InstanceOf(cls, what or f"a {cls.__name__}")


@attrs.frozen(repr=False)
class _Callable(Validator[Any]):
    what: str

    @property
    def describe(self) -> str:
        return self.what

    def accepts(self, value: object) -> bool:
        return callable(value)

    def message(self, name: str, value: object) -> str:
        return f"{name} must be {self.what}, not {type(value).__name__}"

    def __repr__(self) -> str:
        return f"<validator: {self.what}>"


def callable_(what: str = "callable") -> Validator[Any]:
    """Anything that can be called (a function, a coroutine function, a callable object)."""
    return _Callable(what)


@attrs.frozen(repr=False)
class _Optional(Validator[Any]):
    inner: Validator[Any]
    what: str | None

    @property
    def describe(self) -> str:
        return self.what or f"{self.inner.describe} or None"

    def accepts(self, value: object) -> bool:
        return value is None or self.inner.accepts(value)

    def message(self, name: str, value: object) -> str:
        if self.what is None:
            return self.inner.message(name, value)
        return f"{name} must be {self.what}, not {value!r}"

    def __repr__(self) -> str:
        return f"<validator: optional({self.inner!r})>"


def optional(inner: Validator[_T], *, what: str | None = None) -> Validator[_T | None]:
    """``None``, or what ``inner`` accepts; ``what`` rewords the message (else ``inner``'s)."""
    return _Optional(inner, what)


@attrs.frozen(repr=False)
class _And(Validator[Any]):
    parts: tuple[Validator[Any], ...]

    @property
    def describe(self) -> str:
        return " and ".join(part.describe for part in self.parts)

    def accepts(self, value: object) -> bool:
        return all(part.accepts(value) for part in self.parts)

    def validate(self, name: str, value: object) -> None:
        for part in self.parts:  # the first that refuses says why, in its own words
            part.validate(name, value)

    def __repr__(self) -> str:
        return "<validator: and_(" + ", ".join(map(repr, self.parts)) + ")>"


def and_(*validators: Validator[_T]) -> Validator[_T]:
    """Every one of ``validators``, in order; the first to refuse raises."""
    return _And(tuple(validators))


#: A timeout or delay: a positive number of seconds, under a day.
SECONDS = positive("a positive number of seconds", below=86_400)
