"""Arguments are checked before any request is sent; every refusal is an InputError."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luma_async import ExtendRequest, GenerateRequest, InputError
from luma_async._inputs import (
    ASPECT_RATIOS,
    check_base_url,
    check_http_url,
    check_prompt,
    check_task_id,
    extend_body,
    generate_body,
    image_value,
)

TASK_ID = "9d4b7516-77e5-481a-b015-48313946f33b"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiny_png() -> bytes:
    """A real 1x1 RGB PNG."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


PNG = tiny_png()
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # SOI, APP0 JFIF, EOI
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


# --- task ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("good", [TASK_ID, "abc", "task_1.2:3", "A" * 128])
def test_good_task_ids(good: str) -> None:
    assert check_task_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "../etc/passwd",
        "..",
        "abc/../def",
        "with space",
        " leading",
        "trailing\n",
        "a?b=c",
        "a#b",
        "%2e%2e",
        "A" * 129,
        "tâche",
    ],
)
def test_bad_task_ids(bad: str) -> None:
    with pytest.raises(InputError, match="is not a task id"):
        check_task_id(bad)


@pytest.mark.parametrize("bad", [None, 123, b"abc", ["abc"]])
def test_task_id_must_be_a_string(bad: object) -> None:
    with pytest.raises(InputError, match=r"task_id must be a string.*not "):
        check_task_id(bad)


def test_long_task_id_is_shortened_in_the_message() -> None:
    with pytest.raises(InputError) as info:
        check_task_id("x/" * 500)
    assert len(str(info.value)) < 400
    assert "..." in str(info.value)


def test_task_id_message_names_the_argument() -> None:
    with pytest.raises(InputError, match="parent_id"):
        check_task_id("a/b", name="parent_id")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=150))
def test_any_text_as_task_id_passes_or_is_refused_cleanly(text: str) -> None:
    try:
        assert check_task_id(text) == text
    except InputError:
        return
    # what passes is safe in a URL path
    assert "/" not in text
    assert not text.startswith(".")
    assert text.isascii()
    assert text.strip() == text


# --- prompts -----------------------------------------------------------------------------------


def test_good_prompt_is_kept_verbatim() -> None:
    assert check_prompt("  a cat dancing, 4k  ") == "  a cat dancing, 4k  "
    assert check_prompt("x" * 5000) == "x" * 5000


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("x" * 5001, "5001 characters"),
        ("a cat\x00dancing", "NUL"),
        (None, "must be a string"),
        (42, "must be a string"),
        (b"a cat", "must be a string"),
    ],
)
def test_bad_prompts(bad: object, words: str) -> None:
    with pytest.raises(InputError, match=words):
        check_prompt(bad)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_as_prompt_passes_or_is_refused_cleanly(text: str) -> None:
    try:
        assert check_prompt(text) == text
    except InputError:
        assert not text.strip() or "\x00" in text


# --- request bodies ---------------------------------------------------------------------------


def test_generate_body_leaves_unset_fields_out() -> None:
    assert generate_body(GenerateRequest("a cat")) == {"user_prompt": "a cat"}


def test_generate_body_with_every_field() -> None:
    body = generate_body(
        GenerateRequest(
            "a cat",
            aspect_ratio="9:16",
            expand_prompt=False,
            image_url="https://example.com/first.png",
            image_end_url=PNG,
            notify_hook="https://hooks.example.com/luma?token=1",
            loop=True,
            model_name="ray-2",
            resolution="1080p",
            duration="5s",
        )
    )
    assert body == {
        "user_prompt": "a cat",
        "aspect_ratio": "9:16",
        "expand_prompt": False,  # False is sent, not dropped
        "image_url": "https://example.com/first.png",
        "image_end_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "notify_hook": "https://hooks.example.com/luma?token=1",
        "loop": True,
        "model_name": "ray-2",
        "resolution": "1080p",
        "duration": "5s",
    }


def test_extend_body_leaves_unset_fields_out() -> None:
    assert extend_body(ExtendRequest(TASK_ID, "then it jumps")) == {"user_prompt": "then it jumps"}
    body = extend_body(ExtendRequest(TASK_ID, "then it jumps", expand_prompt=True))
    assert body == {"user_prompt": "then it jumps", "expand_prompt": True}


def test_extend_body_checks_the_task_id_and_prompt() -> None:
    with pytest.raises(InputError, match="is not a task id"):
        extend_body(ExtendRequest("../x", "go on"))
    with pytest.raises(InputError, match="empty"):
        extend_body(ExtendRequest(TASK_ID, " "))


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_known_aspect_ratios(ratio: str) -> None:
    assert generate_body(GenerateRequest("a", aspect_ratio=ratio))["aspect_ratio"] == ratio


@pytest.mark.parametrize("ratio", ["16/9", "16:10", "", "wide", 1.77])
def test_unknown_aspect_ratios(ratio: Any) -> None:
    with pytest.raises(InputError, match=r"aspect_ratio must be one of 1:1, .*16:9"):
        generate_body(GenerateRequest("a", aspect_ratio=ratio))


@pytest.mark.parametrize("resolution", ["720p", "1080p"])
def test_known_resolutions(resolution: str) -> None:
    body = generate_body(GenerateRequest("a", resolution=resolution))
    assert body["resolution"] == resolution


@pytest.mark.parametrize("resolution", ["720", "8k", 1080, ""])
def test_unknown_resolutions(resolution: Any) -> None:
    with pytest.raises(InputError, match="resolution must be one of"):
        generate_body(GenerateRequest("a", resolution=resolution))


@pytest.mark.parametrize("field", ["expand_prompt", "loop"])
@pytest.mark.parametrize("value", [1, 0, "true", "yes"])
def test_bools_must_be_bools(field: str, value: Any) -> None:
    with pytest.raises(InputError, match=rf"{field} must be True, False or None"):
        generate_body(GenerateRequest("a", **{field: value}))


def test_extend_bool_must_be_a_bool() -> None:
    with pytest.raises(InputError, match="expand_prompt"):
        extend_body(ExtendRequest(TASK_ID, "a", expand_prompt=1))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "   ", "x" * 201, 5])
def test_short_text_options(value: Any) -> None:
    with pytest.raises(InputError, match="model_name must be a short non-empty string"):
        generate_body(GenerateRequest("a", model_name=value))


@pytest.mark.parametrize(
    "hook", ["https://hooks.example.com/luma", "http://10.0.0.5:8080/cb", "http://[::1]:9/x"]
)
def test_good_notify_hooks(hook: str) -> None:
    assert extend_body(ExtendRequest(TASK_ID, "a", notify_hook=hook))["notify_hook"] == hook


@pytest.mark.parametrize(
    "hook",
    [
        "ftp://example.com/cb",
        "javascript:alert(1)",
        "hooks.example.com/cb",
        "https://",
        "https:///path-only",
        "https://example.com:99999/cb",
        "https://example.com:port/cb",
        "https://exa mple.com/cb",
        "https://example.com/a b",
        "https://[::1/cb",
        "data:image/png;base64,AAAA",  # a data URI is no callback
        "",
    ],
)
def test_bad_notify_hooks(hook: str) -> None:
    with pytest.raises(InputError, match="notify_hook"):
        generate_body(GenerateRequest("a", notify_hook=hook))


def test_notify_hook_must_be_a_string() -> None:
    with pytest.raises(InputError, match="notify_hook must be a URL string"):
        generate_body(GenerateRequest("a", notify_hook=b"https://x"))  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60) | st.text(max_size=40).map(lambda tail: "https://" + tail))
def test_any_text_as_url_passes_or_is_refused_cleanly(text: str) -> None:
    try:
        checked = check_http_url(text, "notify_hook")
    except InputError as exc:
        message = str(exc)
    else:
        assert checked == text
        assert text.startswith(("http://", "https://"))
        return
    assert "notify_hook" in message


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_image_file_becomes_a_data_uri(tmp_path: Path, data: bytes, mime: str) -> None:
    path = tmp_path / "frame.bin"  # the content decides the type, not the suffix
    path.write_bytes(data)
    value = image_value(path, "image_url")
    assert value == f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    assert image_value(data, "image_url") == value  # bytes give the same
    assert image_value(bytearray(data), "image_url") == value


def test_image_bytes_in_request_body(tmp_path: Path) -> None:
    path = tmp_path / "first.gif"
    path.write_bytes(GIF)
    body = extend_body(ExtendRequest(TASK_ID, "a", image_url=path, image_end_url=WEBP))
    assert body["image_url"].startswith("data:image/gif;base64,")
    assert body["image_end_url"].startswith("data:image/webp;base64,")
    assert base64.b64decode(body["image_url"].split(",", 1)[1]) == GIF


def test_missing_image_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"image_url file .*missing\.png cannot be read"):
        image_value(tmp_path / "missing.png", "image_url")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be read"):
        image_value(tmp_path, "image_url")


def test_oversized_image_file(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG + b"\x00" * 100)
    with pytest.raises(InputError, match=r"has \d+ bytes; the limit is 64"):
        image_value(path, "image_end_url", max_bytes=64)
    assert image_value(path, "image_end_url", max_bytes=len(PNG) + 100) is not None


def test_oversized_image_bytes() -> None:
    with pytest.raises(InputError, match="the limit is 10"):
        image_value(PNG, "image_url", max_bytes=10)


def test_oversized_image_in_request_body() -> None:
    with pytest.raises(InputError, match="limit"):
        generate_body(GenerateRequest("a", image_url=PNG), max_image_bytes=10)


def test_empty_image(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        image_value(path, "image_url")
    with pytest.raises(InputError, match="is empty"):
        image_value(b"", "image_url")


@pytest.mark.parametrize("data", [b"hello world", b"%PDF-1.7\n", b"\x00\x00\x00\x18ftypmp42"])
def test_non_image_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match="is not a PNG, JPEG, GIF, WebP or BMP image"):
        image_value(path, "image_url")
    with pytest.raises(InputError, match="not a PNG"):
        image_value(data, "image_url")


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "DATA:image/JPEG;base64," + base64.b64encode(JPEG).decode(),
        "https://cdn.example.com/first.png",
        "http://127.0.0.1:8000/a.png",
    ],
)
def test_valid_image_strings_pass_unchanged(uri: str) -> None:
    assert image_value(uri, "image_url") == uri


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("data:text/plain;base64,aGVsbG8=", "not 'data:image/<type>;base64,<data>'"),
        ("data:image/png,rawbytes", "not 'data:image/<type>;base64,<data>'"),
        ("data:image/png;base64,not base64!", "base64 payload is invalid"),
        ("data:image/png;base64,abc", "base64 payload is invalid"),
        ("ftp://example.com/a.png", "an http(s) URL or a data: URI"),
        ("/home/me/a.png", "an http(s) URL or a data: URI"),
        ("first.png", "an http(s) URL or a data: URI"),
    ],
)
def test_invalid_image_strings(uri: str, words: str) -> None:
    with pytest.raises(InputError, match="image_url") as info:
        image_value(uri, "image_url")
    assert words in str(info.value)


def test_a_string_path_gets_a_hint() -> None:
    with pytest.raises(InputError, match=r"pathlib\.Path"):
        image_value("data:oops", "image_url")


@pytest.mark.parametrize("value", [123, 1.5, ["https://x/a.png"], {"url": "https://x"}])
def test_image_of_a_wrong_type(value: object) -> None:
    with pytest.raises(
        InputError, match=r"must be an http\(s\) URL, a data: URI, a pathlib\.Path or bytes"
    ):
        image_value(value, "image_url")


def test_no_image_is_none() -> None:
    assert image_value(None, "image_url") is None


# --- base URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.gpt.ge", "https://api.gpt.ge"),
        ("https://api.gpt.ge/", "https://api.gpt.ge"),
        ("https://proxy.example.com/v1/", "https://proxy.example.com/v1"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://localhost:8123/", "http://localhost:8123"),
        ("http://[::1]:8123", "http://[::1]:8123"),
        ("http://api.localhost", "http://api.localhost"),
    ],
)
def test_good_base_urls(url: str, expected: str) -> None:
    assert check_base_url(url, allow_insecure=False) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.gpt.ge",
        "http://10.0.0.1:8000",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
    ],
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(InputError, match=r"plain http.*allow_insecure_http=True"):
        check_base_url(url, allow_insecure=False)
    assert check_base_url(url, allow_insecure=True) == url


@pytest.mark.parametrize(
    "url", ["https://api.gpt.ge/?key=1", "https://api.gpt.ge/#frag", "https://api.gpt.ge?x"]
)
def test_base_url_with_query_or_fragment(url: str) -> None:
    with pytest.raises(InputError, match="query or fragment"):
        check_base_url(url, allow_insecure=True)


@pytest.mark.parametrize("url", ["api.gpt.ge", "ftp://api.gpt.ge", "", None, 443])
def test_base_url_must_be_an_http_url(url: object) -> None:
    with pytest.raises(InputError, match="base_url"):
        check_base_url(url, allow_insecure=True)


def test_an_empty_data_uri_is_refused() -> None:
    with pytest.raises(InputError, match="no image"):
        image_value("data:image/png;base64,", "image_url")
