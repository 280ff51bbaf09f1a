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
