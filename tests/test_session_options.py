"""The session's options: one frozen value, checked by shared validators; and the image limit
applies to every form of image alike."""

from __future__ import annotations

import base64

import pytest

from luma_async import InputError, LumaSession
from luma_async._inputs import image_value
from luma_async.testing import LumaEmulator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_of(size: int) -> bytes:
    return PNG_SIGNATURE + b"\0" * (size - len(PNG_SIGNATURE))


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# -- the image size limit is the session's, for data: URIs too ----------------------------------


@pytest.mark.asyncio
async def test_a_data_uri_over_the_sessions_image_limit_is_refused(
    emulator: LumaEmulator,
) -> None:
    big = png_of(5 * 1024)
    async with LumaSession(
        emulator.api_key, base_url=emulator.base_url, max_image_bytes=100
    ) as luma:
        with pytest.raises(InputError, match=r"image_url .*5120 bytes.*the limit is 100"):
            await luma.generate("a fox", image_url=data_uri(big))
        with pytest.raises(InputError, match="the limit is 100"):  # the same bytes: as before
            await luma.generate("a fox", image_url=big)
        with pytest.raises(InputError, match="the limit is 100"):
            await luma.extend("task-1", "more", image_end_url=data_uri(big))
        with pytest.raises(InputError, match="the limit is 100"):
            await luma.upload(data_uri(big))
    assert emulator.created == []  # nothing was sent


@pytest.mark.asyncio
async def test_a_data_uri_at_exactly_the_limit_is_accepted(emulator: LumaEmulator) -> None:
    async with LumaSession(
        emulator.api_key, base_url=emulator.base_url, max_image_bytes=100
    ) as luma:
        for size in (98, 99, 100):  # every amount of base64 padding
            task = await luma.generate("a fox", image_url=data_uri(png_of(size)))
            assert task.id
        with pytest.raises(InputError, match="101 bytes"):
            await luma.generate("a fox", image_url=data_uri(png_of(101)))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 99, 100, 101, 4096])
def test_a_data_uri_is_measured_by_its_decoded_bytes(size: int) -> None:
    uri = data_uri(png_of(max(size, len(PNG_SIGNATURE)))[:size])
    assert image_value(uri, "image_url", max_bytes=size) == uri
    if size > 1:
        with pytest.raises(InputError, match=f"has {size} bytes; the limit is {size - 1}"):
            image_value(uri, "image_url", max_bytes=size - 1)


def test_the_default_limit_still_applies_to_data_uris() -> None:
    huge = "data:image/png;base64," + "A" * (11 * 1024 * 1024 * 4 // 3)
    with pytest.raises(InputError, match="the limit is 10485760"):
        image_value(huge, "image_url")


# -- the session's options: one frozen value, every argument checked -------------------------

KEY = "sk-test-0123456789"

BAD_ARGUMENTS: list[tuple[dict[str, object], str]] = [
    ({"timeout": 0}, r"^timeout must be a positive number of seconds, not 0$"),
    ({"timeout": True}, r"^timeout must be a positive number of seconds, not True$"),
    ({"timeout": 86_400}, r"^timeout must be a positive number of seconds"),
    ({"timeout": float("nan")}, r"^timeout must be a positive number of seconds"),
    ({"timeout": "60"}, r"^timeout must be a positive number of seconds, not '60'$"),
    ({"max_image_bytes": 0}, r"^max_image_bytes must be a whole number of bytes of at least 1"),
    ({"max_image_bytes": True}, r"^max_image_bytes must be a whole number of bytes"),
    ({"max_image_bytes": 100.0}, r"^max_image_bytes must be a whole number of bytes"),
    ({"batch_window": 61}, r"^batch_window must be a number of seconds from 0 to 60, not 61$"),
    ({"batch_window": False}, r"^batch_window must be a number of seconds from 0 to 60"),
    ({"allow_insecure_http": 1}, r"^allow_insecure_http must be True or False, not 1$"),
    ({"batch_refresh": "yes"}, r"^batch_refresh must be True or False, not 'yes'$"),
    ({"session": object()}, r"^session must be an aiohttp\.ClientSession, not object$"),
    ({"retry": {}}, r"^retry must be a RetryPolicy, not dict$"),
    ({"poll": 2.0}, r"^poll must be a PollPolicy, not float$"),
    ({"budget": 10}, r"^budget must be a RequestBudget, not int$"),
    ({"base_url": "http://api.example"}, r"plain http to a non-loopback host"),
    ({"base_url": "https://user:pw@api.example"}, r"must not carry credentials"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS)
def test_every_bad_option_is_an_input_error_naming_it(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        LumaSession(KEY, **arguments)  # type: ignore[arg-type]


def test_options_are_checked_in_order_allow_insecure_http_before_the_url_it_governs() -> None:
    with pytest.raises(InputError, match=r"^allow_insecure_http must be True or False"):
        LumaSession(KEY, base_url="http://api.example", allow_insecure_http="yes")  # type: ignore[arg-type]
    luma = LumaSession(KEY, base_url="http://api.example/", allow_insecure_http=True)
    assert luma.base_url == "http://api.example"


@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_missing_key_is_an_input_error(monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    monkeypatch.delenv("LUMA_API_KEY", raising=False)
    with pytest.raises(
        InputError, match=r"^no API key: pass api_key=\.\.\. or set the LUMA_API_KEY"
    ):
        LumaSession(key)


@pytest.mark.parametrize("key", ["sk-with space", "sk-\u00e9t\u00e9-key", "sk-\nkey"])
def test_a_mangled_key_is_an_input_error(key: str) -> None:
    with pytest.raises(InputError, match="whitespace, control or non-ASCII"):
        LumaSession(key)


def test_the_environment_fills_in_key_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMA_API_KEY", KEY)
    monkeypatch.setenv("LUMA_BASE_URL", "https://gateway.example/v1/")
    luma = LumaSession()
    assert luma.base_url == "https://gateway.example/v1"
    monkeypatch.delenv("LUMA_BASE_URL")
    assert LumaSession().base_url == "https://api.gpt.ge"
    assert LumaSession(base_url="https://mine.example").base_url == "https://mine.example"


def test_the_options_are_one_frozen_value_that_never_shows_the_key() -> None:
    import attrs  # noqa: PLC0415

    from luma_async._options import SessionOptions  # noqa: PLC0415

    luma = LumaSession(KEY, timeout=5, max_image_bytes=100, batch_window=0)
    options = luma._options
    assert isinstance(options, SessionOptions)
    assert (options.timeout, options.max_image_bytes, options.batch_window) == (5, 100, 0)
    assert KEY not in repr(options)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.timeout = 1  # type: ignore[misc]
    assert luma.max_image_bytes == 100
