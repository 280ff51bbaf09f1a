"""The emulator's routes: one handler per endpoint of the API host and the video host.

Handlers read and change the state (``state.py``), write through the deployment's wire
shapes (``shapes.py``) and refuse a request by raising ``_Answer`` (``server.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
import zlib
from typing import Any

from aiohttp import web

from luma_async.testing._emulator.server import (
    Server,
    _Answer,
    _json_response,
    _respond,
)
from luma_async.testing._emulator.shapes import (
    EXTEND_FIELDS,
    GENERATE_FIELDS,
    BatchRoute,
    dashboard,
    reason,
)
from luma_async.testing._emulator.state import RecordedRequest
from luma_async.testing._emulator.tasks import EmulatedTask

_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)", re.DOTALL
)


_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)")


def _ranged(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """Serve ``data`` honouring one ``Range: bytes=`` header (206, or 416 when unsatisfiable)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"emu-{size}-{zlib.crc32(data):08x}"'}
    spec = request.headers.get("Range")
    if spec is None or not spec.strip().startswith("bytes=") or "," in spec:
        return web.Response(body=data, content_type=content_type, headers=headers)
    match = _RANGE.fullmatch(spec.strip())
    start, end = size, size - 1  # unsatisfiable unless the header says otherwise
    if match is not None and match["start"]:
        start = int(match["start"])
        if match["end"]:
            end = int(match["end"])
            if end < start:
                start = size
            end = min(end, size - 1)
    elif match is not None and match["end"] and int(match["end"]) > 0:
        start = max(size - int(match["end"]), 0)
    if start >= size:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return web.Response(
        status=206, body=data[start : end + 1], content_type=content_type, headers=headers
    )


class Handlers(Server):
    """The routes of :class:`LumaEmulator` and how it starts and stops listening."""

    async def _listen(self) -> None:
        api = web.Application(client_max_size=self.max_body_bytes)
        add = api.router.add_route
        add("POST", "/luma/generations", self._endpoint("generate", self._generate))
        add("POST", "/luma/generations/file_upload", self._endpoint("file_upload", self._upload))
        add("POST", "/luma/generations/{task_id}/extend", self._endpoint("extend", self._extend))
        add("GET", "/luma/generations/{task_id}", self._endpoint("get", self._get))
        add(
            "GET",
            "/luma/generations/{task_id}/download_video_url",
            self._endpoint("download_video_url", self._download_url),
        )
        add("POST", "/luma/tasks", self._endpoint("tasks", self._batch))
        add("GET", "/luma/subscription/usage", self._endpoint("usage", self._usage))
        add("GET", "/luma/users/me", self._endpoint("account", self._account))
        api.router.add_get("/cdn/{task_id}.mp4", self._endpoint("cdn", self._cdn))
        api.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._not_routed))
        video = web.Application()
        video.router.add_get("/videos/{task_id}.mp4", self._endpoint("video", self._video, "video"))
        video.router.add_get("/files/{name}", self._endpoint("file", self._file, "video"))
        video.router.add_get(
            "/images/{task_id}/{kind}.png", self._endpoint("image", self._image, "video")
        )
        video.router.add_route(
            "*", "/{tail:.*}", self._endpoint("unknown", self._not_routed, "video")
        )
        for app, attr in ((api, "port"), (video, "video_port")):
            runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=0.05, handle_signals=False
            )
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, self.host, getattr(self, attr), backlog=1024)
            await site.start()
            setattr(self, attr, runner.addresses[0][1])

    async def _stop_listening(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    # -- handlers ----------------------------------------------------------------------------

    async def _generate(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        body = await self._body(request, record)
        self._check_fields(body, GENERATE_FIELDS)
        task = self._create(body, kind="generate", parent=None)
        record.created_id = task.id
        return self._task_answer(task)

    async def _extend(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        parent_id = request.match_info["task_id"]
        body = await self._body(request, record)
        parent = self.tasks.get(parent_id)
        if parent is None:
            raise self._not_found(parent_id)
        state = parent.state_at(self._elapsed(parent))
        if state != "completed":
            raise _Answer(
                self._error(
                    400, f"task {parent_id} is {state}: only a completed task can be extended"
                )
            )
        self._check_fields(body, EXTEND_FIELDS)
        task = self._create(body, kind="extend", parent=parent)
        record.created_id = task.id
        return self._task_answer(task)

    async def _get(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            raise self._not_found(request.match_info["task_id"])
        return self._task_answer(task)

    async def _download_url(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        task = self.tasks.get(task_id)
        if task is None:
            raise self._not_found(task_id)
        state = task.state_at(self._elapsed(task))
        if state != "completed" or task.completed_reads < self.link_delay_polls:
            raise _Answer(self._error(400, f"the video of task {task_id} is not ready ({state})"))
        expires = int(time.time()) + 3600
        url = f"{self.video_base_url}/videos/{task_id}.mp4?watermark=0&expires={expires}"
        return _json_response({"url": url})

    async def _upload(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        body = await self._body(request, record)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise _Answer(self._error(400, "url is required: an https URL or an image data URI"))
        upload_id = str(uuid.uuid4())
        if url.startswith(("https://", "http://")):
            return _json_response({"id": upload_id, "presigned_url": url, "public_url": url})
        match = _DATA_URI.fullmatch(url)
        if match is None or not match["mime"].startswith("image/"):
            raise _Answer(self._error(400, "url must be an http(s) URL or a base64 image data URI"))
        try:
            data = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise _Answer(self._error(400, "the data URI is not valid base64")) from None
        if not data:
            raise _Answer(self._error(400, "the data URI holds no data"))
        subtype = match["mime"].split("/", 1)[1].lower()
        ext = {"jpeg": "jpg", "svg+xml": "svg"}.get(subtype, re.sub(r"[^a-z0-9]", "", subtype))
        name = f"{upload_id}.{ext or 'bin'}"
        self.uploads[name] = (match["mime"], data)
        public = f"{self.video_base_url}/files/{name}"
        return _json_response(
            {
                "id": upload_id,
                "presigned_url": f"{public}?X-Amz-Signature=emulated",
                "public_url": public,
            }
        )

    async def _batch(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        route: BatchRoute = self.batch_route if self.batch_endpoint else "missing"
        if route == "missing":
            return self._unrouted_answer()
        if route == "html":
            return _respond(dashboard())
        if route in ("400", "403"):
            status = int(route)
            raise _Answer(self._error(status, f"{reason(status)}: no batch query here"))
        if route == "null":
            return _json_response({"code": "success", "message": "", "data": None})
        body = await self._body(request, record)
        ids: Any = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):  # pyright: ignore[reportUnknownVariableType]
            raise _Answer(self._error(400, "ids must be a list of task id strings"))
        wanted: list[str] = ids  # pyright: ignore[reportUnknownVariableType]
        rows: list[tuple[EmulatedTask, str, dict[str, Any], int]] = []
        for task_id in dict.fromkeys(wanted):
            task = self.tasks.get(task_id)
            if task is None:
                continue
            item = self._render(task, read=True)
            row_id = 13917 + self.created.index(task.id) if task.id in self.created else 13917
            rows.append((task, task.state_at(self._elapsed(task)), item, row_id))
        return _json_response(self._deployment.batch(rows, nested=route == "nested"))

    async def _usage(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if not self.account_routes:
            return self._unrouted_answer()
        used = float(len(self.tasks))
        payload = {
            "available": max(self.credit_limit - used, 0.0),
            "used": used,
            "total": self.credit_limit,
            "plan": "emulated",
            "period_end": "2099-01-01T00:00:00Z",
        }
        return _json_response(self._deployment.wrap_object(payload))

    async def _account(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if not self.account_routes:
            return self._unrouted_answer()
        payload = {
            "id": "emulated-account",
            "email": "luma@emulator.invalid",
            "name": "Emulated upstream account",
            "plan": "emulated",
            "created_at": "2024-06-12T00:00:00Z",
        }
        return _json_response(self._deployment.wrap_object(payload))

    async def _cdn(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        location = f"{self.video_base_url}/videos/{request.match_info['task_id']}.mp4"
        if request.query_string:
            location += f"?{request.query_string}"
        return web.Response(status=302, headers={"Location": location})

    async def _not_routed(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        if record.host == "api":
            return self._unrouted_answer()
        return self._error(404, "Not Found")

    async def _video(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None or task.state_at(self._elapsed(task)) != "completed":
            return web.Response(status=404, text="no such video")
        expires = request.query.get("expires")
        if expires is not None and (not expires.isdigit() or int(expires) < time.time()):
            return web.Response(status=403, text="the link has expired")
        return _ranged(request, self.video_bytes, "video/mp4")

    async def _file(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        upload = self.uploads.get(request.match_info["name"])
        if upload is None:
            return web.Response(status=404, text="no such file")
        return _ranged(request, upload[1], upload[0])

    async def _image(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if request.match_info["task_id"] not in self.tasks:
            return web.Response(status=404, text="no such image")
        return _ranged(request, self.image_bytes, "image/png")
