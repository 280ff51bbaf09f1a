"""What the emulated deployments write on the wire: pure functions of a task and the time.

No server, no clock, no I/O here: a :class:`Deployment` (the emulator's wire options as a
value) writes a task in its task shape with its media where it puts them (using
:mod:`.tasks`), in its envelope; its errors in its dialect; the rows of the batch query.
Requests are checked by :func:`field_error`.  The server (``server.py``) turns a
:class:`Reply` into an HTTP answer; tests call everything here directly.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from luma_async.testing._emulator.tasks import (
    FINAL,
    EmulatedTask,
    Links,
    Media,
    TaskShape,
    artifact_object,
    classic_object,
    image_ref,
    official_object,
    place_media,
)

Dialect = Literal["proxy", "gateway"]
Envelope = Literal["bare", "list", "wrapped"]
#: How ``POST /luma/tasks`` answers: a list of tasks (bare, or wrapped as the envelope is),
#: new-api's rows with the task nested under ``data``, the answers of deployments without
#: the route (``missing``: as any unrouted path; ``html``: new-api's dashboard page with
#: status 200; ``400``/``403``: an error; ``null``: ``{"code": "success", "data": null}``).
BatchRoute = Literal["list", "nested", "missing", "html", "400", "403", "null"]
#: What a path the deployment has no route for answers: ``404``, or new-api's ``html``
#: dashboard page with status 200.
Unrouted = Literal["404", "html"]

DIALECTS: tuple[Dialect, ...] = ("proxy", "gateway")
ENVELOPES: tuple[Envelope, ...] = ("bare", "list", "wrapped")
BATCH_ROUTES: tuple[BatchRoute, ...] = ("list", "nested", "missing", "html", "400", "403", "null")
UNROUTED: tuple[Unrouted, ...] = ("404", "html")

GATEWAY_STATUS = {"pending": "IN_PROGRESS", "processing": "IN_PROGRESS", "completed": "SUCCESS"}
#: The Go proxy's 401 when its upstream session expired: the upstream body, then its own.
UPSTREAM_UNAUTHENTICATED_BODY = (
    b'{"detail":"Not authenticated"}{"detail":{"reason":"unexpected end of JSON input","code":1}}'
)
#: new-api's web page, which it serves with status 200 for any path it has no route for.
DASHBOARD = (
    '<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>New API</title>'
    '<script type="module" crossorigin src="/assets/index.js"></script></head>'
    '<body><div id="root"></div></body></html>'
)
_GATEWAY_CODES = {
    400: "invalid_request",
    403: "quota_not_enough",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}
_STR, _BOOL = (str,), (bool,)
#: Known optional request fields and the JSON types they must have.
GENERATE_FIELDS: Mapping[str, tuple[type, ...]] = {
    "aspect_ratio": _STR,
    "expand_prompt": _BOOL,
    "image_url": _STR,
    "image_end_url": _STR,
    "notify_hook": _STR,
    "loop": _BOOL,
    "model_name": _STR,
    "resolution": _STR,
    "duration": (str, int),
}
EXTEND_FIELDS = {k: v for k, v in GENERATE_FIELDS.items() if k != "aspect_ratio"}
_URL_FIELDS = ("image_url", "image_end_url", "notify_hook")


@attrs.frozen
class Reply:
    """An answer to send: status, body bytes, content type (and charset), extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    charset: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict[str, str])

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode())

    @classmethod
    def html(cls, page: str, status: int = 200) -> Reply:
        return cls(status, page.encode(), "text/html", "utf-8")

    def decoded(self) -> Any:
        """The body as JSON (for tests)."""
        return json.loads(self.body)


def origin(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def dashboard() -> Reply:
    return Reply.html(DASHBOARD)


def field_error(body: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]]) -> str | None:
    """Why a generate/extend body is refused (400), or ``None`` when it is acceptable."""
    prompt = body.get("user_prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "user_prompt is required: a non-empty string"
    for name, kinds in fields.items():
        if name not in body:
            continue
        value = body[name]
        if value is None:
            return f"{name} must be left out, not null"
        if not isinstance(value, kinds):
            return f"{name} must be a " + " or ".join(k.__name__ for k in kinds)
        if name in _URL_FIELDS and not acceptable_url(str(value), images=name != "notify_hook"):
            return f"{name} is not an http(s) URL or image data URI"
    return None


def acceptable_url(value: str, *, images: bool) -> bool:
    if value.startswith(("https://", "http://")):
        return True
    return images and value.startswith("data:image/")


@attrs.frozen
class Deployment:
    """How one deployment writes its answers (the emulator's wire options, as values)."""

    dialect: Dialect = "proxy"
    envelope: Envelope = "bare"
    task_shape: TaskShape = "classic"
    media: Media = "all"
    estimate_wait: bool = True
    time_scale: float = 1.0

    def task(
        self, task: EmulatedTask, *, elapsed: float, linked: bool, video_url: str, image_base: str
    ) -> dict[str, Any]:
        """The task object, ``elapsed`` emulated seconds after creation.

        ``linked``: whether a completed task shows its media yet; ``video_url``: its video
        link; ``image_base``: the origin serving its stills.
        """
        state = task.state_at(elapsed)
        linked = linked and state == "completed"
        estimate: float | None = None
        if self.estimate_wait and state not in FINAL:
            total = task.pending_seconds + task.processing_seconds
            # Real seconds, as a client experiences them: the emulated rest times the scale.
            estimate = round(max(total - elapsed, 0.0) * self.time_scale, 3)
        links = Links(
            url=video_url if linked else None,
            thumbnail=image_ref(task, "thumbnail", image_base) if linked else None,
            last_frame=image_ref(task, "last_frame", image_base) if linked else None,
        )
        failure = (task.fail_reason or "failed") if state == "failed" else None
        if self.task_shape == "official":
            return official_object(task, state, links, failure)
        if self.task_shape == "classic":
            body = classic_object(task, state, links, failure, estimate)
        else:
            body = artifact_object(task, state, links, failure, estimate)
        if self.media != "all":
            place_media(body, self.media, self.task_shape)
        return body

    def wrap(self, payload: Any) -> Any:
        """A task answer in the deployment's envelope."""
        if self.envelope == "list":
            return [payload]
        if self.envelope == "wrapped":
            return {"code": "success", "message": "", "data": payload}
        return payload

    def wrap_object(self, payload: dict[str, Any]) -> Any:
        """A non-task object (usage, account): wrapped only by the ``wrapped`` envelope."""
        if self.envelope == "wrapped":
            return {"code": "success", "message": "", "data": payload}
        return payload

    def error(self, status: int, message: str, *, code: str | None = None) -> Reply:
        """An error answer in the dialect of the deployment."""
        if self.dialect == "proxy":
            if status == 401:
                return Reply.json({"detail": {"reason": message, "code": 1}}, status)
            return Reply.json({"detail": message}, status)
        if status == 401:
            return Reply.json(
                {"error": {"message": message, "type": "invalid_request_error"}}, status
            )
        default = _GATEWAY_CODES.get(status, "upstream_error" if status >= 500 else "error")
        return Reply.json({"code": code or default, "message": message, "data": None}, status)

    def not_found(self, task_id: str) -> Reply:
        """An unknown task: the proxy's 404, the gateway's 400 ``task_not_exist``."""
        if self.dialect == "gateway":
            return self.error(400, f"task {task_id} does not exist", code="task_not_exist")
        return self.error(404, "Not found")

    def upstream_unauthenticated(self) -> Reply:
        """The aggregator's own Luma session expired: upstream's 401, passed through."""
        if self.dialect == "proxy":  # the Go proxy appends its own document to upstream's
            return Reply(401, UPSTREAM_UNAUTHENTICATED_BODY)
        return Reply(401, b'{"detail":"Not authenticated"}')

    def batch(
        self, rows: list[tuple[EmulatedTask, str, dict[str, Any], int]], *, nested: bool
    ) -> Any:
        """The answer of ``POST /luma/tasks`` for ``(task, state, task object, row id)`` rows."""
        found: list[dict[str, Any]] = []
        for task, state, item, row_id in rows:
            if nested:
                found.append(gateway_row(task, state, item, row_id))
                continue
            if self.envelope == "wrapped":
                item["status"] = GATEWAY_STATUS.get(state, "FAILURE")
            found.append(item)
        if self.envelope == "wrapped" or nested:
            return {"code": "success", "message": "", "data": found}
        return found


def gateway_row(
    task: EmulatedTask, state: str, item: dict[str, Any], row_id: int
) -> dict[str, Any]:
    """new-api's task row: its own integer id, the Luma task id, and the task under data."""
    submitted = int(task.created_at.timestamp())
    done = state in FINAL
    return {
        "id": row_id,
        "created_at": submitted,
        "updated_at": submitted,
        "task_id": task.id,
        "platform": "luma",
        "user_id": 1,
        "channel_id": 1,
        "quota": 0,
        "action": "LUMA_EXTEND" if task.kind == "extend" else "LUMA_VIDEO",
        "status": GATEWAY_STATUS.get(state, "FAILURE"),
        "fail_reason": (task.fail_reason or "failed") if state == "failed" else "",
        "submit_time": submitted,
        "start_time": submitted + int(task.pending_seconds) if state != "pending" else 0,
        "finish_time": submitted + 60 if done else 0,
        "progress": "100%" if done else "50%",
        "properties": {},
        "data": item,
    }
