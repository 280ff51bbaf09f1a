"""The emulator, spoken to over real HTTP with a plain aiohttp client (not the SDK)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from luma_async import _clock
from luma_async.testing import LumaEmulator, virtual_time
from luma_async.testing._emulator import EmulatorThread, _ranged, serve
from luma_async.testing._mp4 import build_mp4, build_png

from . import strategies
from .helpers import eventually

pytestmark = pytest.mark.asyncio

pytest_plugins = ["pytester"]

KEY = "emulator-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@attrs.frozen
class Reply:
    status: int
    body: Any
    headers: Any


class Client:
    """A thin aiohttp wrapper: the API key is sent unless told otherwise."""

    def __init__(self, http: aiohttp.ClientSession, emu: LumaEmulator) -> None:
        self.http = http
        self.emu = emu

    async def __call__(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> Reply:
        target = url or self.emu.base_url + path
        async with self.http.request(
            method,
            target,
            json=json_body,
            data=data,
            headers=AUTH if headers is None else headers,
            **kwargs,
        ) as response:
            raw = await response.read()
            body: Any = raw
            if response.content_type == "application/json":
                body = json.loads(raw)
            return Reply(response.status, body, response.headers)

    async def generate(self, prompt: str = "a cat dancing", **fields: Any) -> Any:
        reply = await self("POST", "/luma/generations", json_body={"user_prompt": prompt, **fields})
        assert reply.status == 200, reply.body
        return reply.body

    async def get(self, task_id: str) -> Reply:
        return await self("GET", f"/luma/generations/{task_id}")


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[tuple[LumaEmulator, Client]]:
    async with LumaEmulator(**options) as emu, aiohttp.ClientSession() as http:
        yield emu, Client(http, emu)


@pytest.fixture
def clock() -> Iterator[Any]:
    with virtual_time() as virtual:
        yield virtual


@contextlib.asynccontextmanager
async def receiver(statuses: list[int]) -> AsyncIterator[tuple[str, list[Any]]]:
    """A callback receiver on loopback answering ``statuses`` in turn, then 200."""
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


# -- lifecycle and auth -------------------------------------------------------------------------


async def test_lifecycle_urls_and_idempotent_close() -> None:
    emu = LumaEmulator()
    assert not emu.running
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.base_url
    await emu.start()
    await emu.start()  # no-op
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.base_url)
    assert re.fullmatch(r"http://localhost:\d+", emu.video_base_url)
    assert emu.port != emu.video_port
    await emu.close()
    await emu.close()
    assert not emu.running


@pytest.mark.parametrize(
    "options",
    [
        {"dialect": "soap"},
        {"envelope": "box"},
        {"task_shape": "round"},
        {"time_scale": 0},
        {"pending_seconds": -1},
        {"callback_attempts": 0},
        {"link_delay_polls": -1},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LumaEmulator(**options)


async def test_auth_proxy_dialect() -> None:
    async with running() as (emu, call):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            reply = await call(
                "POST", "/luma/generations", json_body={"user_prompt": "x"}, headers=headers
            )
            assert reply.status == 401
            assert reply.body == {"detail": {"reason": "unauthorized secret token", "code": 1}}
        assert (
            await call("GET", "/luma/generations/x", headers={"Authorization": f"bearer {KEY}"})
        ).status == 404
        assert emu.created == []
        assert [r.status for r in emu.requests] == [401, 401, 401, 404]


async def test_auth_and_not_found_gateway_dialect() -> None:
    async with running(dialect="gateway") as (_, call):
        reply = await call("GET", "/luma/generations/nope", headers={})
        assert reply.status == 401
        assert reply.body["error"]["type"] == "invalid_request_error"
        assert isinstance(reply.body["error"]["message"], str)
        reply = await call("GET", "/luma/generations/nope")
        assert reply.status == 400
        assert reply.body["code"] == "task_not_exist"
        assert reply.body["data"] is None
        reply = await call("POST", "/luma/generations", json_body={})
        assert reply.status == 400
        assert reply.body["code"] == "invalid_request"


async def test_unknown_paths_are_404() -> None:
    async with running() as (emu, call):
        assert (await call("GET", "/luma/nothing")).status == 404
        assert (await call("GET", "/luma/nothing", headers={})).status == 401
        assert (await call("GET", "/elsewhere", headers={})).status == 404
        reply = await call("GET", "", url=f"{emu.video_base_url}/elsewhere", headers={})
        assert reply.status == 404
        assert [r.host for r in emu.requests] == ["api", "api", "api", "video"]


# -- generate and the state machine ---------------------------------------------------------------


async def test_state_progression_on_virtual_time(clock: Any) -> None:
    async with running() as (emu, call):
        task = await call.generate("cat dance", aspect_ratio="9:16", expand_prompt=True)
        uuid.UUID(task["id"])
        assert ISO.fullmatch(task["created_at"])
        assert task["prompt"] == "cat dance"
        assert task["state"] == "pending"
        assert task["video"] is None
        assert task["liked"] is None
        assert task["estimate_wait_seconds"] == 10.0
        clock.advance(1.5)
        assert (await call.get(task["id"])).body["estimate_wait_seconds"] == 8.5
        clock.advance(0.5)
        assert (await call.get(task["id"])).body["state"] == "processing"
        clock.advance(7.9)
        assert (await call.get(task["id"])).body["state"] == "processing"
        clock.advance(0.1)
        done = (await call.get(task["id"])).body
        assert done["state"] == "completed"
        assert done["estimate_wait_seconds"] is None
        video = done["video"]
        assert video["url"] == f"{emu.video_base_url}/videos/{task['id']}.mp4"
        assert video["download_url"].startswith(video["url"])
        assert (video["width"], video["height"]) == (752, 1360)
        assert isinstance(video["thumbnail"], str)
        assert done["thumbnail"]["url"].endswith("/thumbnail.png")
        assert done["last_frame"]["url"].endswith("/last_frame.png")
        assert emu.gets_for(task["id"]) == 4
        assert emu.state_of(task["id"]) == "completed"


async def test_time_scale_and_per_task_durations(clock: Any) -> None:
    async with running(time_scale=0.01, estimate_wait=False) as (emu, call):
        first = await call.generate()
        second = await call.generate()
        assert first["estimate_wait_seconds"] is None
        emu.set_durations(second["id"], pending=100, processing=100)
        clock.advance(0.1)  # 10 emulated seconds
        assert (await call.get(first["id"])).body["state"] == "completed"
        assert (await call.get(second["id"])).body["state"] == "pending"
        emu.set_durations(second["id"], pending=0)
        assert (await call.get(second["id"])).body["state"] == "processing"
        with pytest.raises(KeyError, match="no task"):
            emu.set_durations("nope", pending=1)


async def test_failures_classic_shape(clock: Any) -> None:
    async with running() as (emu, call):
        marked = await call.generate("a [fail] prompt")
        later = await call.generate("fails at the end")
        now = await call.generate("fails at once")
        emu.fail_task(later["id"], reason="moderation")
        emu.fail_task(now["id"], reason="gpu on fire", now=True)
        reply = (await call.get(now["id"])).body
        assert (reply["state"], reply["fail_reason"]) == ("failed", "gpu on fire")
        assert (await call.get(later["id"])).body["state"] == "pending"
        clock.advance(10)
        reply = (await call.get(later["id"])).body
        assert (reply["state"], reply["fail_reason"], reply["video"]) == (
            "failed",
            "moderation",
            None,
        )
        reply = (await call.get(marked["id"])).body
        assert reply["state"] == "failed"
        assert "fail marker" in reply["fail_reason"]
        ok = await call.generate("fine")
        clock.advance(10)
        with pytest.raises(ValueError, match="already completed"):
            emu.fail_task(ok["id"])
        assert "fail_reason" not in emu.task_json(ok["id"])


async def test_link_delay_polls(clock: Any) -> None:
    async with running(link_delay_polls=2, pending_seconds=0, processing_seconds=1) as (emu, call):
        task = await call.generate()
        clock.advance(1)
        assert emu.task_json(task["id"])["video"] is None  # not a read
        first, second, third = [(await call.get(task["id"])).body for _ in range(3)]
        assert (first["state"], first["video"]) == ("completed", None)
        assert (second["state"], second["video"]) == ("completed", None)
        assert third["video"]["url"]


async def test_envelope_list_and_wrapped() -> None:
    async with running(envelope="list") as (_, call):
        created = await call.generate()
        assert isinstance(created, list)
        assert len(created) == 1
        assert (await call.get(created[0]["id"])).body[0]["id"] == created[0]["id"]
    async with running(envelope="wrapped") as (_, call):
        created = await call.generate()
        assert created["code"] == "success"
        assert created["message"] == ""
        reply = await call.get(created["data"]["id"])
        assert reply.body["data"]["state"] == "pending"


async def test_artifact_shape(clock: Any) -> None:
    async with running(task_shape="artifact") as (emu, call):
        task = await call.generate("moon", aspect_ratio="1:1", loop=True)
        assert "prompt" not in task
        assert task["request"] == {"prompt": "moon", "aspect_ratio": "1:1", "loop": True}
        assert task["queue_state"] == "queued"
        assert task["artifact"]["created_at"] == "0001-01-01T00:00:00Z"
        assert task["failure_reason"] is None
        assert task["video_raw"] is None
        uuid.UUID(task["batch_id"])
        clock.advance(10)
        done = (await call.get(task["id"])).body
        assert done["state"] == "completed"
        assert done["queue_state"] is None
        assert done["video"]["thumbnail"]["url"].endswith(".png")
        assert done["artifact"]["video"] == done["video"]
        assert done["video_raw"]["duration"] == 5.0
        assert ISO.fullmatch(done["artifact"]["created_at"])
        failing = await call.generate("x [fail]")
        clock.advance(10)
        assert (await call.get(failing["id"])).body["failure_reason"]
        assert emu.count("get") == 2


# -- requests are validated -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "user_prompt"),
        (b'{"user_prompt": "   "}', "user_prompt"),
        (b'{"user_prompt": 5}', "user_prompt"),
        (b'{"user_prompt": "x", "aspect_ratio": 16}', "aspect_ratio must be a str"),
        (b'{"user_prompt": "x", "expand_prompt": "yes"}', "expand_prompt must be a bool"),
        (b'{"user_prompt": "x", "loop": null}', "not null"),
        (b'{"user_prompt": "x", "image_url": "ftp://a/b.png"}', "image_url"),
        (b'{"user_prompt": "x", "notify_hook": "data:image/png;base64,AA=="}', "notify_hook"),
    ],
)
async def test_generate_rejects_bad_bodies(body: bytes, message: str) -> None:
    async with running() as (emu, call):
        reply = await call("POST", "/luma/generations", data=body)
        assert reply.status == 400
        assert message in reply.body["detail"]
        assert emu.created == []


async def test_optional_fields_and_unknown_fields_are_accepted() -> None:
    async with running() as (emu, call):
        task = await call.generate(
            "x",
            image_url="https://example.com/a.png",
            image_end_url="data:image/png;base64,AAAA",
            model_name="ray-2",
            resolution="720p",
            duration="5s",
            future_field={"a": 1},
        )
        assert emu.tasks[task["id"]].request["future_field"] == {"a": 1}
        assert emu.requests[0].json["model_name"] == "ray-2"


async def test_body_too_large() -> None:
    async with running(max_body_bytes=100, dialect="gateway") as (emu, call):
        reply = await call("POST", "/luma/generations", json_body={"user_prompt": "x" * 200})
        assert reply.status == 413
        assert reply.body["code"] == "request_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the read limit applies
            yield b'{"user_prompt": "'
            yield b"y" * 200
            yield b'"}'

        reply = await call("POST", "/luma/generations", data=chunks())
        assert reply.status == 413
        assert emu.created == []


# -- extend, download link, uploads, batch --------------------------------------------------------


async def test_extend(clock: Any) -> None:
    async with running() as (emu, call):
        parent = await call.generate("base", aspect_ratio="4:3")
        path = f"/luma/generations/{parent['id']}/extend"
        reply = await call("POST", path, json_body={"user_prompt": "more"})
        assert reply.status == 400
        assert "pending" in reply.body["detail"]
        missing = await call(
            "POST", "/luma/generations/nope/extend", json_body={"user_prompt": "m"}
        )
        assert (missing.status, missing.body) == (404, {"detail": "Not found"})
        clock.advance(10)
        bad = await call("POST", path, json_body={"user_prompt": ""})
        assert bad.status == 400
        reply = await call("POST", path, json_body={"user_prompt": "more", "expand_prompt": False})
        assert reply.status == 200
        child = reply.body
        assert child["id"] != parent["id"]
        assert child["state"] == "pending"
        record = emu.tasks[child["id"]]
        assert (record.parent_id, record.kind, record.aspect_ratio) == (
            parent["id"],
            "extend",
            "4:3",
        )
        assert emu.requests[-1].created_id == child["id"]
        assert emu.requests[-1].task_id == parent["id"]
        clock.advance(10)
        grand = await call(
            "POST", f"/luma/generations/{child['id']}/extend", json_body={"user_prompt": "again"}
        )
        assert emu.tasks[grand.body["id"]].video_seconds == 15.0
        assert emu.created == [parent["id"], child["id"], grand.body["id"]]
        assert emu.count("extend") == 5


async def test_download_video_url_and_expiry(clock: Any) -> None:
    async with running(dialect="gateway") as (emu, call):
        task = await call.generate()
        path = f"/luma/generations/{task['id']}/download_video_url"
        early = await call("GET", path)
        assert early.status == 400
        assert "not ready" in early.body["message"]
        assert (await call("GET", "/luma/generations/nope/download_video_url")).status == 400
        clock.advance(10)
        reply = await call("GET", path)
        assert reply.status == 200
        url = reply.body["url"]
        assert url.startswith(f"{emu.video_base_url}/videos/{task['id']}.mp4?watermark=0&expires=")
        expires = int(url.rsplit("=", 1)[1])
        assert 3500 < expires - time.time() <= 3600
        video = await call("GET", "", url=url, headers={})
        assert (video.status, video.body) == (200, emu.video_bytes)
        stale = await call("GET", "", url=url.replace(str(expires), "12"), headers={})
        assert stale.status == 403


async def test_file_upload() -> None:
    async with running() as (emu, call):
        png = build_png()
        data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
        reply = await call("POST", "/luma/generations/file_upload", json_body={"url": data_uri})
        assert reply.status == 200
        assert set(reply.body) == {"id", "presigned_url", "public_url"}
        public = reply.body["public_url"]
        assert public.startswith(f"{emu.video_base_url}/files/")
        assert public.endswith(".png")
        served = await call("GET", "", url=public, headers={})
        assert (served.status, served.body, served.headers["Content-Type"]) == (
            200,
            png,
            "image/png",
        )
        jpeg = "data:image/jpeg;name=a.jpg;base64," + base64.b64encode(b"\xff\xd8").decode()
        reply = await call("POST", "/luma/generations/file_upload", json_body={"url": jpeg})
        assert reply.body["public_url"].endswith(".jpg")
        https = "https://example.com/cat.png"
        reply = await call("POST", "/luma/generations/file_upload", json_body={"url": https})
        assert reply.body["public_url"] == https
        for bad in (
            "data:image/png;base64,@@@",
            "data:image/png;base64,",
            "data:text/plain;base64,QUJD",
            "ftp://example.com/x.png",
            "",
            5,
        ):
            reply = await call("POST", "/luma/generations/file_upload", json_body={"url": bad})
            assert reply.status == 400, bad
        missing = await call("GET", "", url=f"{emu.video_base_url}/files/nope.png", headers={})
        assert missing.status == 404
        assert emu.count("file_upload") == 9


async def test_batch_endpoint(clock: Any) -> None:
    async with running() as (emu, call):
        one, two = await call.generate("one"), await call.generate("two [fail]")
        reply = await call(
            "POST", "/luma/tasks", json_body={"ids": [two["id"], "nope", one["id"], two["id"]]}
        )
        assert reply.status == 200
        assert [t["id"] for t in reply.body] == [two["id"], one["id"]]
        assert "status" not in reply.body[0]
        assert (await call("POST", "/luma/tasks", json_body={"ids": "x"})).status == 400
    async with running(envelope="wrapped") as (emu, call):
        one = (await call.generate("one"))["data"]
        two = (await call.generate("two [fail]"))["data"]
        three = (await call.generate("three"))["data"]
        emu.set_durations(three["id"], pending=100)
        clock.advance(10)
        reply = await call(
            "POST", "/luma/tasks", json_body={"ids": [one["id"], two["id"], three["id"]]}
        )
        assert reply.body["code"] == "success"
        assert [(t["state"], t["status"]) for t in reply.body["data"]] == [
            ("completed", "SUCCESS"),
            ("failed", "FAILURE"),
            ("pending", "IN_PROGRESS"),
        ]
    async with running(batch_endpoint=False) as (emu, call):
        reply = await call("POST", "/luma/tasks", json_body={"ids": []})
        assert reply.status == 404
        assert emu.count("tasks") == 1


# -- the video host ------------------------------------------------------------------------------


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Top-level ISO-BMFF boxes of data[start:end] -> (payload start, payload end)."""
    end = len(data) if end is None else end
    found = {}
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        assert size >= 8
        found[kind] = (start + 8, start + size)
        start += size
    assert start == end
    return found


def test_video_is_a_well_formed_h264_mp4() -> None:
    data = build_mp4()
    assert 2_000 < len(data) < 20_000
    top = _boxes(data)
    assert list(top) == [b"ftyp", b"moov", b"mdat"]
    moov = _boxes(data, *top[b"moov"])
    assert set(moov) == {b"mvhd", b"trak"}
    trak = _boxes(data, *moov[b"trak"])
    mdia = _boxes(data, *trak[b"mdia"])
    minf = _boxes(data, *mdia[b"minf"])
    stbl = _boxes(data, *minf[b"stbl"])
    assert set(stbl) == {b"stsd", b"stts", b"stsc", b"stsz", b"stco"}
    count = struct.unpack(">I", data[stbl[b"stsz"][0] + 8 : stbl[b"stsz"][0] + 12])[0]
    sizes = struct.unpack(f">{count}I", data[stbl[b"stsz"][0] + 12 : stbl[b"stsz"][1]])
    offset = struct.unpack(">I", data[stbl[b"stco"][0] + 8 : stbl[b"stco"][1]])[0]
    assert offset == top[b"mdat"][0]
    assert sum(sizes) == top[b"mdat"][1] - top[b"mdat"][0]
    position = offset
    for size in sizes:  # each sample: one length-prefixed IDR NAL unit
        (length,) = struct.unpack(">I", data[position : position + 4])
        assert length == size - 4
        assert data[position + 4] == 0x65
        position += size
    assert b"avcC" in data[stbl[b"stsd"][0] : stbl[b"stsd"][1]]
    with pytest.raises(ValueError):
        build_mp4(width=20)
    with pytest.raises(ValueError):
        build_mp4(frames=0)
    assert build_png().startswith(b"\x89PNG\r\n\x1a\n")


async def test_video_ranges(clock: Any) -> None:
    async with running(pending_seconds=0, processing_seconds=0) as (emu, call):
        task = await call.generate()
        video_url = (await call.get(task["id"])).body["video"]["url"]
        data = emu.video_bytes
        size = len(data)

        async def fetch(range_header: str | None, method: str = "GET") -> Reply:
            headers = {} if range_header is None else {"Range": range_header}
            return await call(method, "", url=video_url, headers=headers)

        full = await fetch(None)
        assert (full.status, full.body) == (200, data)
        assert full.headers["Accept-Ranges"] == "bytes"
        assert full.headers["Content-Type"] == "video/mp4"
        assert int(full.headers["Content-Length"]) == size
        part = await fetch("bytes=0-99")
        assert (part.status, part.body) == (206, data[:100])
        assert part.headers["Content-Range"] == f"bytes 0-99/{size}"
        assert part.headers["Content-Length"] == "100"
        tail = await fetch("bytes=100-")
        assert (tail.status, tail.body) == (206, data[100:])
        suffix = await fetch("bytes=-10")
        assert (suffix.status, suffix.body) == (206, data[-10:])
        clipped = await fetch(f"bytes=10-{size + 50}")
        assert clipped.body == data[10:]
        for bad in (f"bytes={size}-", "bytes=50-10", "bytes=-0", "bytes=-", "bytes=a-b"):
            reply = await fetch(bad)
            assert reply.status == 416, bad
            assert reply.headers["Content-Range"] == f"bytes */{size}"
        assert (await fetch("bytes=0-1,5-9")).status == 200  # multipart ranges: the whole file
        assert (await fetch("items=0-1")).status == 200
        head = await fetch(None, "HEAD")
        assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(size))
        unknown = await call("GET", "", url=f"{emu.video_base_url}/videos/nope.mp4", headers={})
        assert unknown.status == 404
        thumb = (await call.get(task["id"])).body["thumbnail"]["url"]
        image = await call("GET", "", url=thumb, headers={})
        assert (image.status, image.body) == (200, emu.image_bytes)
        lost = await call(
            "GET", "", url=f"{emu.video_base_url}/images/nope/thumbnail.png", headers={}
        )
        assert lost.status == 404
        assert emu.count("video") == 14
        assert emu.count("image") == 2
        assert all("Authorization" not in r.headers for r in emu.video_requests)


async def test_video_not_served_before_completion() -> None:
    async with running() as (emu, call):
        task = await call.generate()
        reply = await call(
            "GET", "", url=f"{emu.video_base_url}/videos/{task['id']}.mp4", headers={}
        )
        assert reply.status == 404


async def test_video_redirect_goes_to_the_other_origin(clock: Any) -> None:
    async with running(video_redirect=True, pending_seconds=0, processing_seconds=0) as (emu, call):
        task = await call.generate()
        video = (await call.get(task["id"])).body["video"]
        assert video["url"] == f"{emu.base_url}/cdn/{task['id']}.mp4"
        redirect = await call("GET", "", url=video["download_url"], allow_redirects=False)
        assert redirect.status == 302
        location = redirect.headers["Location"]
        assert location == f"{emu.video_base_url}/videos/{task['id']}.mp4?download=1"
        followed = await call("GET", "", url=location, headers={})
        assert followed.body == emu.video_bytes
        assert [r.route for r in emu.requests[-2:]] == ["cdn", "video"]
        assert all("Authorization" not in r.headers for r in emu.video_requests)


# -- callbacks -----------------------------------------------------------------------------------


async def test_callbacks_on_every_state_change_with_retries() -> None:
    async with (
        receiver([500]) as (hook, received),
        running(pending_seconds=0.05, processing_seconds=0.05, callback_retry_seconds=0.01) as (
            emu,
            call,
        ),
    ):
        task = await call.generate("hooked", notify_hook=hook)
        await eventually(lambda: any(b["state"] == "completed" for b in received))
        await asyncio.sleep(0.05)  # nothing after the final state
        assert [b["state"] for b in received] == ["pending", "pending", "processing", "completed"]
        assert received[-1]["video"]["url"]
        assert received[-1]["id"] == task["id"]
        assert [(c.state, c.status, c.attempt) for c in emu.callbacks] == [
            ("pending", 500, 1),
            ("pending", 200, 2),
            ("processing", 200, 1),
            ("completed", 200, 1),
        ]
        assert {c.url for c in emu.callbacks} == {hook}


async def test_callbacks_give_up_duplicate_and_use_the_envelope() -> None:
    async with (
        receiver([503, 503, 503]) as (hook, received),
        running(
            pending_seconds=10, envelope="wrapped", callback_attempts=2, callback_retry_seconds=0.01
        ) as (emu, call),
    ):
        emu.callback_duplicates = 1
        task = (await call.generate("x", notify_hook=hook))["data"]
        await eventually(lambda: len(emu.callbacks) == 4)
        # two copies of one delivery: one gives up after 2 attempts, the other succeeds
        assert sorted((c.attempt, c.status) for c in emu.callbacks) == [
            (1, 503),
            (1, 503),
            (2, 200),
            (2, 503),
        ]
        assert all(b["data"]["id"] == task["id"] for b in received)
        emu.fail_task(task["id"], "stop", now=True)
        await eventually(lambda: received[-1]["data"]["state"] == "failed")
        assert received[-1]["data"]["fail_reason"] == "stop"
        dead = "http://127.0.0.1:9/unreachable"
        emu.callback_duplicates = 0
        await call.generate("y", notify_hook=dead)
        await eventually(lambda: sum(c.url == dead for c in emu.callbacks) == 2)
        assert {c.status for c in emu.callbacks if c.url == dead} == {None}


async def test_close_cancels_callbacks_in_flight() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.01)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with running() as (emu, call):
            await call.generate("x", notify_hook=f"http://127.0.0.1:{runner.addresses[0][1]}/")
            await asyncio.sleep(0.05)
        assert emu.callbacks == []  # cancelled cleanly, nothing leaked
    finally:
        release.set()
        await runner.cleanup()


# -- faults --------------------------------------------------------------------------------------


async def test_fault_status_bodies_per_dialect() -> None:
    async with running() as (emu, call):
        emu.inject("generate", status=500)
        emu.inject("get", status=429, retry_after=7)
        emu.inject("get", status=503, html=True)
        emu.inject("get", status=502, body="upstream <oops>", headers={"X-Gateway": "yes"})
        emu.inject("get", body=b'{"trunc')
        emu.inject("get", body={"weird": True})
        emu.inject("get", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
        emu.inject("get", html=True)
        emu.inject("get", status=599)
        emu.inject("get", status=500, body='{"detail": "raw"}')
        reply = await call("POST", "/luma/generations", json_body={"user_prompt": "x"})
        assert (reply.status, reply.body) == (500, {"detail": "Internal Server Error"})
        assert emu.created == []  # a fault before processing: nothing was created
        reply = await call.get("x")
        assert (reply.status, reply.headers["Retry-After"]) == (429, "7")
        reply = await call.get("x")
        assert reply.status == 503
        assert reply.headers["Content-Type"].startswith("text/html")
        assert b"<h1>503 Service Unavailable</h1>" in reply.body
        reply = await call.get("x")
        assert (reply.status, reply.body, reply.headers["X-Gateway"]) == (
            502,
            b"upstream <oops>",
            "yes",
        )
        reply = await call.get("x")
        assert (reply.status, reply.body) == (200, b'{"trunc')
        reply = await call.get("x")
        assert (reply.status, reply.body) == (200, {"weird": True})
        reply = await call.get("x")
        assert (reply.status, reply.headers["Retry-After"]) == (
            429,
            "Wed, 21 Oct 2015 07:28:00 GMT",
        )
        assert (await call.get("x")).status == 502
        assert (await call.get("x")).body == {"detail": "Error"}
        assert (await call.get("x")).body == {"detail": "raw"}
        assert (await call.get("x")).status == 404  # the queue is empty again
        assert emu.pending_faults == []
    async with running(dialect="gateway") as (emu, call):
        emu.inject("get", status=503)
        emu.inject("get", status=403)
        emu.inject("get", status=401)
        assert (await call.get("x")).body == {
            "code": "upstream_error",
            "message": "Service Unavailable",
            "data": None,
        }
        assert (await call.get("x")).body["code"] == "quota_not_enough"
        assert "error" in (await call.get("x")).body


async def test_fault_count_fifo_wildcard_and_clear() -> None:
    async with running() as (emu, call):
        emu.inject("get", status=500, count=2)
        emu.inject("*", status=502)
        emu.inject("get", status=503)
        statuses = [(await call.get("x")).status for _ in range(5)]
        assert statuses == [500, 500, 502, 503, 404]
        emu.inject("*", status=504)
        video = await call("GET", "", url=f"{emu.video_base_url}/videos/x.mp4", headers={})
        assert video.status == 504
        emu.inject("video", status=500)
        emu.clear_faults()
        assert emu.pending_faults == []
        with pytest.raises(ValueError, match="unknown route"):
            emu.inject("post")
        with pytest.raises(ValueError, match="count"):
            emu.inject("get", count=0)


async def test_fault_injected_from_another_thread() -> None:
    async with running() as (emu, call):
        thread = threading.Thread(target=lambda: emu.inject("get", status=418))
        thread.start()
        thread.join()
        assert (await call.get("x")).status == 418


async def test_fault_drop_and_delay(clock: Any) -> None:
    async with running() as (emu, call):
        emu.inject("generate", drop=True)
        with pytest.raises(aiohttp.ClientError):
            await call("POST", "/luma/generations", json_body={"user_prompt": "x"})
        assert emu.created == []
        assert emu.requests[-1].status is None
        emu.inject("get", delay=30.0)
        emu.inject("get", delay=5.0, status=500)
        start = _clock.monotonic()
        assert (await call.get("x")).status == 404  # slow, then the real answer
        assert _clock.monotonic() - start >= 30.0
        assert (await call.get("x")).status == 500
        assert _clock.monotonic() - start >= 35.0


async def test_fault_after_processing_creates_the_task() -> None:
    async with running() as (emu, call):
        emu.inject("generate", status=500, after_processing=True)
        reply = await call("POST", "/luma/generations", json_body={"user_prompt": "paid"})
        assert reply.status == 500
        assert len(emu.created) == 1  # the answer was lost, the paid job was not
        assert emu.requests[-1].created_id == emu.created[0]
        emu.inject("generate", drop=True, after_processing=True)
        with pytest.raises(aiohttp.ClientError):
            await call("POST", "/luma/generations", json_body={"user_prompt": "paid"})
        assert emu.creations_by_prompt() == {"paid": 2}
        emu.inject("generate", delay=0.01, after_processing=True)  # slow but real answer
        assert (
            await call("POST", "/luma/generations", json_body={"user_prompt": "paid"})
        ).status == 200
        assert emu.creations_by_prompt()["paid"] == 3


# -- restart, records, concurrency -------------------------------------------------------------


async def test_restart_keeps_tasks_and_drops_connections() -> None:
    async with running() as (emu, call):
        task = await call.generate()
        port, video_port = emu.port, emu.video_port
        emu.inject("get", delay=5.0)
        in_flight = asyncio.ensure_future(call.get(task["id"]))
        await eventually(lambda: emu.count("get") == 1)
        await emu.restart()
        with pytest.raises(aiohttp.ClientError):
            await in_flight
        assert (emu.port, emu.video_port) == (port, video_port)
        async with aiohttp.ClientSession() as fresh:
            reply = await Client(fresh, emu).get(task["id"])
        assert (reply.status, reply.body["id"]) == (200, task["id"])
        emu.clear_faults()
    with pytest.raises(RuntimeError):
        await emu.restart()


async def test_records() -> None:
    async with running() as (emu, call):
        first = await call.generate("same")
        await call.generate("same")
        await call.generate("other")
        await call.get(first["id"])
        await call.get(first["id"])
        await call.get("unknown")
        assert emu.creations_by_prompt() == {"same": 2, "other": 1}
        assert emu.count("generate") == 3
        assert emu.count("get") == 3
        assert emu.count("*") == 6
        assert emu.gets_for(first["id"]) == 2
        record = emu.requests[0]
        assert (record.method, record.path, record.route, record.status) == (
            "POST",
            "/luma/generations",
            "generate",
            200,
        )
        assert record.json == {"user_prompt": "same"}
        assert record.headers["authorization"] == f"Bearer {KEY}"
        assert isinstance(record.at, float)
        assert emu.requests[3].json is None
        assert emu.requests[3].task_id == first["id"]
        emu.reset_records()
        assert (emu.requests, emu.created, emu.callbacks) == ([], [], [])
        assert len(emu.tasks) == 3  # tasks stay


async def test_hundreds_of_concurrent_requests() -> None:
    async with running() as (emu, call):
        started = time.monotonic()
        tasks = await asyncio.gather(*(call.generate(f"p{i}") for i in range(300)))
        replies = await asyncio.gather(*(call.get(t["id"]) for t in tasks))
        assert all(r.status == 200 for r in replies)
        assert len(set(emu.created)) == 300
        assert time.monotonic() - started < 10


# -- threads, serve(), pytest plugin -------------------------------------------------------------


def _urlopen(url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_in_thread_from_sync_code() -> None:
    with LumaEmulator.in_thread(dialect="gateway") as emu:
        status, body = _urlopen(f"{emu.base_url}/luma/generations/nope", AUTH)
        assert status == 400
        assert json.loads(body)["code"] == "task_not_exist"
        port = emu.port
        emu.run_threadsafe(emu.restart())
        assert emu.port == port
        assert _urlopen(f"{emu.base_url}/luma/generations/nope", {})[0] == 401
    assert not emu.running
    with pytest.raises(RuntimeError, match="event loop"):
        emu.run_threadsafe(emu.restart())


def test_emulator_thread_start_failure_and_double_start() -> None:
    with LumaEmulator.in_thread() as emu:
        busy = EmulatorThread(LumaEmulator(port=emu.port))
        with pytest.raises(OSError):
            busy.start()
        runner = EmulatorThread(LumaEmulator())
        runner.start()
        with pytest.raises(RuntimeError, match="already running"):
            runner.start()
        runner.stop()
        runner.stop()


async def test_run_threadsafe_refuses_its_own_loop() -> None:
    async with running() as (emu, _):
        with pytest.raises(RuntimeError, match="own loop"):
            emu.run_threadsafe(emu.restart())


async def test_serve_until_cancelled() -> None:
    ready: asyncio.Queue[LumaEmulator] = asyncio.Queue()
    server = asyncio.ensure_future(serve(port=0, ready=ready.put_nowait, dialect="gateway"))
    emu = await asyncio.wait_for(ready.get(), 5)
    async with aiohttp.ClientSession() as http:
        assert (await Client(http, emu).get("x")).status == 400
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert not emu.running


async def test_serve_forever_closes_when_cancelled() -> None:
    emu = LumaEmulator()
    server = asyncio.ensure_future(emu.serve_forever())
    await eventually(lambda: emu.running)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert not emu.running


def test_pytest_plugin(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import asyncio
        import aiohttp
        import pytest

        @pytest.mark.luma_emulator(dialect="gateway", envelope="wrapped")
        def test_fixture(luma_emulator):
            async def main():
                headers = {"Authorization": "Bearer " + luma_emulator.api_key}
                async with aiohttp.ClientSession(headers=headers) as http:
                    url = luma_emulator.base_url + "/luma/generations"
                    async with http.post(url, json={"user_prompt": "hi"}) as r:
                        assert r.status == 200
                        assert (await r.json())["code"] == "success"
            asyncio.run(main())
            assert luma_emulator.count("generate") == 1

        def test_default(luma_emulator):
            assert luma_emulator.dialect == "proxy"

        @pytest.mark.luma_emulator("positional")
        def test_bad_marker(luma_emulator):
            pass

        def test_virtual_time(luma_virtual_time):
            from luma_async import _clock
            start = _clock.monotonic()
            luma_virtual_time.advance(5)
            assert _clock.monotonic() == start + 5
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error", "--strict-markers")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*keyword options only*"])


# -- properties ----------------------------------------------------------------------------------

_JSON = strategies.json_values(
    keys=st.text(max_size=5),
    scalars=strategies.json_scalars(text_size=8, floats=st.floats(allow_nan=False)),
    max_size=3,
    max_leaves=6,
)
_FIELDS = st.sampled_from(
    ["user_prompt", "aspect_ratio", "expand_prompt", "image_url", "notify_hook", "loop", "x"]
)


def test_any_json_body_is_answered_200_or_400() -> None:
    with LumaEmulator.in_thread() as emu:

        @settings(max_examples=60, deadline=None)
        @given(body=st.dictionaries(_FIELDS, _JSON, max_size=4) | _JSON)
        def check(body: Any) -> None:
            status, raw = _urlopen(
                f"{emu.base_url}/luma/generations",
                {**AUTH, "Content-Type": "application/json"},
                json.dumps(body).encode(),
            )
            if status != 200:
                assert "detail" in json.loads(raw)
            prompt = body.get("user_prompt") if isinstance(body, dict) else None
            valid = isinstance(body, dict) and set(body) <= {"user_prompt", "x"}
            valid = valid and isinstance(prompt, str) and bool(prompt.strip())
            if valid:
                assert status == 200
            else:
                assert status in (200, 400)

        check()
        assert all(r.status in (200, 400) for r in emu.requests)


@settings(max_examples=200, deadline=None)
@given(
    header=st.one_of(
        st.builds(
            "bytes={}-{}".format,
            st.integers(0, 300) | st.just(""),
            st.integers(0, 300) | st.just(""),
        ),
        st.text(max_size=12),
    )
)
def test_ranges_are_served_exactly(header: str) -> None:
    data = bytes(range(256))
    request = make_mocked_request("GET", "/videos/x.mp4", headers={"Range": header})
    response = _ranged(request, data, "video/mp4")
    assert response.status in (200, 206, 416)
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/256", response.headers["Content-Range"])
        assert match is not None
        start, end = int(match[1]), int(match[2])
        assert 0 <= start <= end < 256
        assert response.body == data[start : end + 1]
    elif response.status == 416:
        assert response.headers["Content-Range"] == "bytes */256"
    else:
        assert response.body == data


def test_nal_units_escape_start_code_look_alikes() -> None:
    from luma_async.testing._mp4 import _nal  # noqa: PLC0415

    assert (
        _nal(0x65, b"\x00\x00\x01\x00\x00\x00\x07") == b"\x65\x00\x00\x03\x01\x00\x00\x03\x00\x07"
    )
