"""The emulator's HTTP plumbing: every request recorded, faulted, checked, then answered.

Each route's handler (``handlers.py``) runs inside :meth:`Server._endpoint`, which records
the request, applies an injected fault (before or after the handler), refuses a wrong key
(or answers as an expired upstream) and turns a :class:`~.shapes.Reply` into an aiohttp
answer.  A handler refuses a request by raising :class:`_Answer`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from luma_async import _clock
from luma_async.testing._emulator.callbacks import Callbacks
from luma_async.testing._emulator.faults import API_ROUTES, Fault, fault_reply
from luma_async.testing._emulator.shapes import Reply, dashboard, field_error
from luma_async.testing._emulator.state import RecordedRequest
from luma_async.testing._emulator.tasks import VIDEO_SECONDS_PER_EXTEND, EmulatedTask, iso

Handler = Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]]


class _Answer(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside a handler to answer at once (a rejected request)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _respond(reply: Reply) -> web.Response:
    """The aiohttp answer of a :class:`Reply` (its headers win over the content type)."""
    response = web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)
    if reply.charset is not None:
        response.charset = reply.charset
    response.headers.update(reply.headers)
    return response


def _drop(request: web.Request) -> None:
    """Close the connection without an answer (aiohttp then fails to write, silently)."""
    transport = request.transport
    if transport is not None:
        transport.close()


class Server(Callbacks):
    """Request plumbing of :class:`LumaEmulator`; the routes are in ``handlers.py``."""

    def _endpoint(
        self, route: str, handler: Handler, host: Literal["api", "video"] = "api"
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:

        async def endpoint(request: web.Request) -> web.StreamResponse:
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                route=route,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                json=None,
                at=_clock.monotonic(),
                host=host,
                query=dict(request.query),
                task_id=request.match_info.get("task_id"),
            )
            self.requests.append(record)
            fault = self._faults.take(route) if route != "unknown" else None
            response = await self._answer(request, record, handler, fault)
            record.status = None if response is None else response.status
            return response if response is not None else web.Response(status=499)

        return endpoint

    async def _answer(
        self, request: web.Request, record: RecordedRequest, handler: Handler, fault: Fault | None
    ) -> web.StreamResponse | None:
        """The response to send, or ``None`` when the connection was dropped."""
        if fault is not None and not fault.after_processing:
            done, faulted = await self._apply(fault, request, record)
            if done:
                return faulted
        try:
            guarded = record.route in API_ROUTES or (
                record.host == "api" and request.path.startswith("/luma/")
            )
            if guarded and not self._authorized(request):
                response: web.StreamResponse = self._error(401, "unauthorized secret token")
            elif guarded and self.upstream_expired:
                response = _respond(self._deployment.upstream_unauthenticated())
            else:
                response = await handler(request, record)
        except _Answer as answer:
            response = answer.response
        if fault is not None and fault.after_processing:  # the work is done, its answer lost
            done, faulted = await self._apply(fault, request, record)
            if done:
                return faulted
        return response

    async def _apply(
        self, fault: Fault, request: web.Request, record: RecordedRequest
    ) -> tuple[bool, web.StreamResponse | None]:
        """Carry out ``fault``: whether it decided the answer, and that answer (``None``:
        the connection was dropped).  A fault that does not answer only delays."""
        if fault.delay:
            await _clock.sleep(fault.delay)
        if fault.drop:
            _drop(request)
            return True, None
        if fault.other_task:
            return True, self._other_task_answer(record.task_id)
        if fault.answers:
            return True, _respond(fault_reply(fault, self._deployment))
        return False, None

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    def _error(self, status: int, message: str, *, code: str | None = None) -> web.Response:
        """An error answer in the dialect of the deployment."""
        return _respond(self._deployment.error(status, message, code=code))

    def _not_found(self, task_id: str) -> _Answer:
        return _Answer(_respond(self._deployment.not_found(task_id)))

    def _unrouted_answer(self) -> web.Response:
        if self.unrouted == "html":
            return _respond(dashboard())
        return self._error(404, "Not Found")

    async def _body(self, request: web.Request, record: RecordedRequest) -> dict[str, Any]:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Answer(self._error(413, f"request body over {self.max_body_bytes} bytes"))
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Answer(
                self._error(413, f"request body over {self.max_body_bytes} bytes")
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Answer(self._error(400, "the request body is not valid JSON")) from None
        record.json = body
        if not isinstance(body, dict):
            raise _Answer(self._error(400, "the request body must be a JSON object"))
        return cast("dict[str, Any]", body)

    def _check_fields(
        self, body: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]]
    ) -> None:
        problem = field_error(body, fields)
        if problem is not None:
            raise _Answer(self._error(400, problem))

    def _create(
        self,
        body: dict[str, Any],
        *,
        kind: Literal["generate", "extend"],
        parent: EmulatedTask | None,
    ) -> EmulatedTask:
        prompt = body["user_prompt"]
        task = EmulatedTask(
            id=str(uuid.uuid4()),
            prompt=prompt,
            kind=kind,
            request=body,
            created_at=dt.datetime.now(dt.timezone.utc),
            created_clock=_clock.monotonic(),
            pending_seconds=self.pending_seconds,
            processing_seconds=self.processing_seconds,
            aspect_ratio=(
                parent.aspect_ratio if parent else str(body.get("aspect_ratio") or "16:9")
            ),
            parent_id=parent.id if parent else None,
            batch_id=str(uuid.uuid4()),
            video_seconds=(parent.video_seconds if parent else 0.0) + VIDEO_SECONDS_PER_EXTEND,
        )
        if self.fail_marker and self.fail_marker in prompt:
            task.fail_reason = "The prompt was refused by the emulator's fail marker"
        self.tasks[task.id] = task
        self.created.append(task.id)
        if task.notify_hook is not None:
            self._notice(task)
            self._ensure_ticker()
        return task

    def _task_answer(self, task: EmulatedTask, *, read: bool = True) -> web.Response:
        return _json_response(self._wrap(self._render(task, read=read)))

    def _other_task_answer(self, asked: str | None) -> web.Response:
        """A task answer for some task other than ``asked`` (a gateway bug or a cache)."""
        other = next((t for t in self.tasks.values() if t.id != asked), None)
        if other is not None:
            body = self._render(other, read=False)
        else:
            body = {
                "id": str(uuid.uuid4()),
                "prompt": "someone else's video",
                "state": "completed",
                "created_at": iso(dt.datetime.now(dt.timezone.utc)),
                "video": {"url": f"{self.video_base_url}/videos/elsewhere.mp4"},
            }
        return _json_response(self._wrap(body))
