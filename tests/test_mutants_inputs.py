"""Argument checks (``_inputs.py``, ``_validators.py``, ``_options.py``) that mutation testing
(docs/mutation.md) showed no test pinned.

Each test names the mutants it kills (mutmut 3.8.1 names, as measured for docs/mutation.md).
"""

from __future__ import annotations

import functools

import pytest

from luma_async import ExtendRequest, GenerateRequest, InputError, LumaSession
from luma_async._inputs import (
    check_base_url,
    check_list,
    extend_body,
    generate_body,
    image_value,
)
from luma_async._validators import SECONDS, and_, check, finite, positive, whole

from .test_mutants import message

TASK_ID = "9a3c1e2b-0000-4000-8000-000000000001"


# -- model_name: a short text ------------------------------------------------------------------


def test_a_model_name_of_200_characters_is_sent_one_more_is_refused() -> None:
    # Kills _inputs.x__check_text__mutmut_6 (`> 200` made `>= 200`).
    name = "m" * 200
    assert generate_body(GenerateRequest("a fox", model_name=name))["model_name"] == name
    longer = name + "m"
    assert message(lambda: generate_body(GenerateRequest("a fox", model_name=longer))) == (
        f"model_name must be a short non-empty string, not {longer!r}"
    )


# -- data: URIs: the size is judged before the payload is decoded -------------------------------


def test_an_oversized_data_uri_is_refused_for_its_size_even_with_bad_padding() -> None:
    # Kills _inputs.x__decoded_size__mutmut_12 (at most 3 '=' counted, not 2): 8 characters
    # with '===' count as 8 * 3 // 4 - 2 = 4 bytes, over a limit of 3, and that is what the
    # caller hears; counting 3 would let it through to "invalid base64".
    uri = "data:image/png;base64,AAAAA==="
    assert message(lambda: image_value(uri, "image_url", max_bytes=3)) == (
        "image_url data: URI has 4 bytes; the limit is 3: shrink the image"
    )
    assert message(lambda: image_value(uri, "image_url", max_bytes=4)).startswith(
        "image_url is a data: URI whose base64 payload is invalid: "
    )


# -- the base URL -------------------------------------------------------------------------------

CREDENTIALS = (
    "base_url must not carry credentials (user:password@host): the API key is the only "
    "credential, sent as a bearer token. Remove the part before '@' from the host"
)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@gw.example",
        # mutmut_14 of _netloc also cuts the authority at an 'X': "ALE", no '@'
        "https://ALEX:s3cret@gw.example/luma",
        # rsplit (mutmut_8 of _netloc) reads the authority after the *last* '://': "other"
        "https://user:s3cret@gw.example/v1?next=http://other",
    ],
)
def test_a_base_url_with_credentials_is_refused_without_showing_them(url: str) -> None:
    # Kills _inputs.x_check_base_url__mutmut_6, _7, _9, _10, _11 (the message's words and
    # case) and x__netloc__mutmut_8, _14.
    for allow_insecure in (False, True):
        said = message(functools.partial(check_base_url, url, allow_insecure=allow_insecure))
        assert said == CREDENTIALS
        assert "s3cret" not in said
    with pytest.raises(InputError) as caught:  # and so the session refuses it the same way
        LumaSession("sk-test", base_url=url)
    assert str(caught.value) == CREDENTIALS


def test_an_at_sign_in_the_path_is_no_credential() -> None:
    # Kills _inputs.x__netloc__mutmut_20 (the authority cut at the *last* '/': it would hold
    # "gw.example/users/@me").
    url = "https://gw.example/users/@me/luma/"
    assert check_base_url(url, allow_insecure=False) == "https://gw.example/users/@me/luma"


def test_only_slashes_are_trimmed_from_the_end_of_a_base_url() -> None:
    # Kills _inputs.x_check_base_url__mutmut_39 (`rstrip("XX/XX")` would also eat the 'X').
    assert check_base_url("https://gw.example/LUMAX/", allow_insecure=False) == (
        "https://gw.example/LUMAX"
    )


def test_base_url_messages_name_it_and_say_what_to_do() -> None:
    # Kills _inputs.x_check_base_url__mutmut_17 (the argument's name in the URL check) and
    # _34 (the plain-http message).
    assert message(lambda: check_base_url("ftp://gw.example", allow_insecure=True)) == (
        "base_url must be an http(s) URL with a host name; got 'ftp://gw.example'"
    )
    assert message(lambda: check_base_url("http://gw.example", allow_insecure=False)) == (
        "base_url 'http://gw.example' is plain http to a non-loopback host: the API key would "
        "travel unencrypted. Use https, or pass allow_insecure_http=True if you really mean it"
    )


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://[::1]:8123", True),
        ("http://[0:0:0:0:0:0:0:1]/luma", True),
        ("http://127.0.0.2:8123", True),
        ("http://[::2]:8123", False),
        ("http://[fe80::1]:8123", False),
    ],
)
def test_plain_http_is_allowed_to_a_loopback_address_only(url: str, loopback: bool) -> None:
    # Pins _is_loopback on the host as urlsplit gives it (IPv6 without brackets): the
    # `.strip("[]")` it had was never needed (its mutants _10 and _11 survived every test).
    if loopback:
        assert check_base_url(url, allow_insecure=False) == url.rstrip("/")
    else:
        assert "plain http to a non-loopback host" in message(
            lambda: check_base_url(url, allow_insecure=False)
        )


# -- lists of ids or prompts (watch_many, extend_chain) ------------------------------------------


@pytest.mark.parametrize(("values", "kind"), [("abc", "str"), (b"abc", "bytes"), (5, "int")])
def test_a_list_argument_must_be_an_iterable_of_strings(values: object, kind: str) -> None:
    # Kills the message mutants of _inputs.check_list (was _session._listed).
    assert message(lambda: check_list(values, "prompts")) == (  # type: ignore[arg-type]
        f"prompts must be a list (or other iterable) of strings, not {kind}"
    )


def test_a_list_argument_may_be_any_iterable_but_not_empty() -> None:
    assert check_list((p for p in ("a", "b")), "prompts") == ["a", "b"]
    assert check_list({"x": 1}, "task_ids") == ["x"]
    assert message(lambda: check_list([], "task_ids")) == "task_ids is empty"
    assert message(lambda: check_list(iter(()), "prompts")) == "prompts is empty"


# -- the callback receiver's hook in a body ----------------------------------------------------


def test_the_hook_is_sent_only_when_the_request_names_none() -> None:
    # Kills the mutants of the `hook` of _inputs._common (the receiver's notify_hook).
    hook = "https://me.example/luma-hook/secret"
    assert generate_body(GenerateRequest("a fox"), hook=hook)["notify_hook"] == hook
    assert extend_body(ExtendRequest(TASK_ID, "on"), hook=hook)["notify_hook"] == hook
    own = "https://mine.example/hook"
    request = ExtendRequest(TASK_ID, "on", notify_hook=own)
    assert extend_body(request, hook=hook)["notify_hook"] == own
    assert "notify_hook" not in generate_body(GenerateRequest("a fox"), hook=None)
    assert message(lambda: generate_body(GenerateRequest("a fox"), hook="ftp://me")) == (
        "notify_hook must be an http(s) URL with a host name; got 'ftp://me'"
    )


# -- _validators: the shared checks -------------------------------------------------------------


def test_a_timeout_must_be_under_a_day() -> None:
    # Kills _validators.x_positive__mutmut_6, _7, _11, _12 and _15 (the upper bound of
    # SECONDS dropped, or made inclusive).
    assert check(86_399.5, "timeout", SECONDS) == 86_399.5
    assert message(lambda: check(86_400, "timeout", SECONDS)) == (
        "timeout must be a positive number of seconds, not 86400"
    )
    with pytest.raises(InputError, match=r"^timeout must be a positive number of seconds"):
        LumaSession("sk-test", timeout=86_400)


def test_finite_says_what_it_wants() -> None:
    # Kills _validators.x_finite__mutmut_1, _2 and _3 (its default description).
    assert (
        message(lambda: check(float("nan"), "x", finite())) == "x must be a finite number, not nan"
    )
    assert check(-1.5, "x", finite()) == -1.5


def test_the_batch_window_may_not_be_negative() -> None:
    # Kills _validators.x_number_between__mutmut_2 and _5 (the lower bound dropped).
    with pytest.raises(InputError) as caught:
        LumaSession("sk-test", batch_window=-0.01)
    assert str(caught.value) == "batch_window must be a number of seconds from 0 to 60, not -0.01"
    assert LumaSession("sk-test", batch_window=0)._options.batch_window == 0


def test_and_names_the_argument_in_the_first_refusal_and_shows_its_parts() -> None:
    # Kills _validators.xǁ_Andǁvalidate__mutmut_1 (the name lost) and
    # xǁ_Andǁ__repr____mutmut_6 and _11.
    both = and_(whole(1), positive("a number above 0"))
    assert message(lambda: check(0, "count", both)) == (
        "count must be a whole number of at least 1, not 0"
    )
    assert repr(both) == (
        "<validator: and_(<validator: a whole number of at least 1>, "
        "<validator: a number above 0>)>"
    )


# -- _options: the session's options ------------------------------------------------------------


def test_a_mangled_key_is_refused_with_what_to_check() -> None:
    # Kills _options.x__api_key__mutmut_7, _10 and _11.
    with pytest.raises(InputError) as caught:
        LumaSession("sk-\u00e9t\u00e9 key")
    assert str(caught.value) == (
        "the API key contains whitespace, control or non-ASCII characters; check how it was copied"
    )


def test_a_base_url_that_is_no_string_is_an_input_error() -> None:
    # Kills _options.x__url_or_environment__mutmut_8 (`.rstrip` called on an int: an
    # AttributeError, not the InputError that names base_url).
    with pytest.raises(InputError) as caught:
        LumaSession("sk-test", base_url=443)  # type: ignore[arg-type]
    assert str(caught.value) == "base_url must be a URL string, not int"


def test_the_session_keeps_its_base_url_without_the_trailing_slash_only() -> None:
    # Kills _options.x__url_or_environment__mutmut_11 (`rstrip("XX/XX")`).
    luma = LumaSession("sk-test", base_url="https://gw.example/LUMAX/")
    assert luma.base_url == "https://gw.example/LUMAX"
