"""What mutation testing of ``_redact`` showed no test pinned (docs/mutation.md).

The API key scrubbed from whatever leaves the library, in every form a server may echo.  Each
test or group names the mutants it kills (``x_<function>__mutmut_<n>``).
"""

from __future__ import annotations

from typing import Any

import pytest

from luma_async import APIError, SubmissionUncertainError, TransportError
from luma_async._error_map import error_from_response
from luma_async._redact import Redactor

PATH = "/luma/generations/t-1"


# -- _redact: the key, in every form a server may echo ------------------------------------------

KEY = "sk-Ab/9_zQ"  # 10 characters: letters of both cases, a digit, '-', '_' and '/'
# Each test builds its own Redactor: one built at import would be built by the unmutated code
# (mutmut forks its runs after the test modules are imported), and would kill nothing.


def escaped(key: str, upper: bool = False) -> str:
    """``key`` as JSON writes it with every character escaped (``\u0073...``)."""
    return "".join((f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}") for c in key)


def percent(key: str, upper: bool = True) -> str:
    """``key`` URL-encoded character by character (``%73%6B...``)."""
    return "".join((f"%{b:02X}" if upper else f"%{b:02x}") for b in key.encode())


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        escaped(KEY),
        escaped(KEY, upper=True),
        percent(KEY),
        percent(KEY, upper=False),
        KEY.replace("/", "\\/"),  # JSON's escaped slash
        escaped(KEY[:4]) + percent(KEY[4:7]) + KEY[7:],  # a mix, character by character
    ],
)
def test_every_form_of_the_key_becomes_three_stars(form: str) -> None:
    # Kills the mutants of _char_forms and _hex_digits that drop or misspell a form (a
    # lower- or upper-case hex digit, the '\u' prefix, the 4-digit width, '%', '\/').
    scrub = Redactor(KEY)
    text = f'{{"echo": "{form}", "again": "{form}"}}'
    assert scrub.text(text) == '{"echo": "***", "again": "***"}'
    assert scrub.bytes(text.encode()) == b'{"echo": "***", "again": "***"}'


def test_text_without_the_key_is_left_alone() -> None:
    # Near misses stay: a prefix of the key, its other case, a '%' or '\' elsewhere.
    scrub = Redactor(KEY)
    for text in ("sk-Ab/9_z", "SK-AB/9_ZQ", "100% sure", "C:\\dir", "sk-Ab/9_z%52"):
        assert scrub.text(text) == text
        assert scrub.bytes(text.encode()) == text.encode()
    assert scrub.text("sk-Ab/9_z%51!") == "***!"  # the last character percent-encoded


def test_a_short_key_is_not_hunted_in_text_but_is_in_raw_bytes() -> None:
    # Under 8 characters a "key" is a test stub: text is left alone (hunting "abc" would
    # mangle words), raw bytes still lose the exact key; 8 characters are hunted everywhere.
    stub = Redactor("abc")
    assert stub.text("abc abcd") == "abc abcd"
    assert stub.bytes(b"xabcx") == b"x***x"
    assert stub.bytes(b"x%61bc") == b"x%61bc"
    assert Redactor("").bytes(b"body") == b"body"
    error = APIError(method="GET", path="/p", status=500, detail="abc")
    stub.error(error)
    assert error.detail == "abc"
    eight = Redactor("12345678")
    assert eight.text("k=12345678") == "k=***"
    assert eight.text("k=%31%32%33%34%35%36%37%38") == "k=***"


def test_json_values_are_scrubbed_keys_and_all() -> None:
    scrub = Redactor(KEY)
    value = {KEY: [KEY, escaped(KEY), 7, None, {"k": KEY.encode()}], "n": 1.5, "ok": True}
    assert scrub.value(value) == {
        "***": ["***", "***", 7, None, {"k": b"***"}],
        "n": 1.5,
        "ok": True,
    }


def test_an_error_and_its_causes_lose_the_key_everywhere() -> None:
    # The message, detail, code, body and headers of an API error, the answer of an uncertain
    # submission, and every exception chained to them (cause and context, once each).
    scrub = Redactor(KEY)
    api = error_from_response(
        "GET",
        PATH,
        401,
        {"X-Echo": KEY, KEY: "as a name"},
        {"detail": f"bad key {escaped(KEY)}", "code": KEY, "extra": [percent(KEY)]},
    )
    root = ValueError(f"socket said {KEY}")
    api.__context__ = root
    top = SubmissionUncertainError(
        f"POST /p: {KEY}", method="POST", path="/p", request=None, answer=KEY.encode()
    )
    top.__cause__ = api
    root.__context__ = top  # a cycle: walked once
    scrub.error(top)
    assert str(top) == "POST /p: ***"
    assert top.answer == b"***"
    assert (api.detail, api.code) == ("bad key ***", "***")
    assert api.body == {"detail": "bad key ***", "code": "***", "extra": ["***"]}
    assert dict(api.headers) == {"X-Echo": "***", "***": "as a name"}
    assert str(api) == f"GET {PATH} answered 401 [***]: bad key ***"
    assert str(root) == "socket said ***"


class ReadOnlyArgsError(Exception):
    """A foreign exception whose ``args`` cannot be set (AttributeError)."""

    @property
    def args(self) -> tuple[Any, ...]:  # type: ignore[override]
        return ("read-only",)


class PickyArgsError(Exception):
    """A foreign exception that refuses new ``args`` with a TypeError."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "args":
            raise TypeError("args are mine")
        super().__setattr__(name, value)


def test_an_odd_exception_in_the_chain_does_not_stop_the_scrubbing() -> None:
    # Kills xǁRedactorǁerror__mutmut_10 to _13 (AttributeError or TypeError no longer
    # suppressed: the scrubbing itself crashed and the key stayed in the causes below).
    scrub = Redactor(KEY)
    deepest = ValueError(f"echo {KEY}")
    picky = PickyArgsError(f"picky {KEY}")
    picky.__cause__ = deepest
    odd = ReadOnlyArgsError()
    odd.__cause__ = picky
    top = TransportError(f"GET /p: {KEY}", method="GET", path="/p")
    top.__cause__ = odd
    scrub.error(top)
    assert (str(top), str(deepest)) == ("GET /p: ***", "echo ***")
    assert picky.args == (f"picky {KEY}",)  # it refused: left as it was
