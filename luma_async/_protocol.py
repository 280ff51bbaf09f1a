"""The API as pure data: each call is a :class:`Request`, each answer is deciphered here.

No I/O and no aiohttp (gidgethub's ``sansio``): a request is a method, a path, a JSON body,
whether it is paid (creates a billed job, so never re-sent once it may have landed), and
the decoder of its answer.  :meth:`Request.decipher` turns ``(status, headers, body)`` into
the value the caller gets, or the error the status means (:func:`error_for`), or, for a paid
request whose 2xx cannot be read, :class:`SubmissionUncertainError`: the service said yes.

Every endpoint path of the API is written in this module and nowhere else.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, cast

import attrs

from luma_async._construct import slot_setters
from luma_async._convert import (
    account_from_json,
    batch_from_json,
    check_answer_for,
    decode_json,
    task_from_json,
    uploaded_from_json,
    url_from_json,
    usage_from_json,
)
from luma_async._error_map import decode_error_body, error_from_response
from luma_async._errors import (
    APIError,
    DecodeError,
    SubmissionUncertainError,
)
from luma_async._models import Account, Task, UploadedFile, Usage

__all__ = [
    "BATCH_TASKS_PATH",
    "MAX_BODY",
    "Request",
    "account",
    "batch_tasks",
    "download_video_url",
    "error_for",
    "extend",
    "extend_path",
    "file_upload",
    "generate",
    "get",
    "usage",
]

T = TypeVar("T")

#: The largest answer read (decoded): a bigger one is refused, never parsed.
MAX_BODY = 16 * 1024 * 1024
_JSON = "application/json"


@attrs.frozen
class Request(Generic[T]):
    """One API call, described: what to send and how to read its answer.

    ``what`` names the call in errors and logs (``"extend <id>"``); ``request`` is the
    caller's own request object, carried by :class:`SubmissionUncertainError`; ``retry``
    false sends it once whatever happens (a poll: the poll loop does its own retries).
    """

    method: str
    path: str
    what: str
    decode: Callable[[Any], T]
    body: Any = None
    paid: bool = False
    retry: bool = True
    request: Any = None

    def content(self) -> tuple[bytes | None, str | None]:
        """The body as sent, and its Content-Type (JSON; none without a body)."""
        if self.body is None:
            return None, None
        return json.dumps(self.body).encode(), _JSON

    def decipher(self, status: int, headers: Mapping[str, str], raw: bytes) -> T:
        """The value of the answer ``(status, headers, raw)``, or the error it means."""
        if status >= 300 or len(raw) > MAX_BODY:
            if status < 300 and self.paid:  # a 2xx too large to read: the job may exist
                large = DecodeError(f"{self.what}: the answer is larger than {MAX_BODY} bytes")
                raise self.uncertain_answer(status, raw, large) from large
            raise error_for(self.method, self.path, status, headers, raw)
        try:
            return self.decode(decode_json(raw, what=self.what))
        except DecodeError as exc:
            if not self.paid:
                raise
            raise self.uncertain_answer(status, raw, exc) from exc

    def uncertain_answer(
        self, status: int, raw: bytes, error: DecodeError
    ) -> SubmissionUncertainError:
        """A 2xx to this paid request that cannot be read: the job may exist."""
        task_id = find_task_id(raw)
        found = f" (it names task {task_id})" if task_id else ""
        return SubmissionUncertainError(
            f"{self.what}: the service accepted the request ({status}) but its answer cannot be "
            f"read{found}: {error}. The request may have created a paid task; it was NOT "
            "re-sent. Check your task list before submitting it again.",
            method=self.method,
            path=self.path,
            request=self.request,
            status=status,
            answer=raw,
            task_id=task_id,
        )

    def uncertain_failure(self, error: Exception) -> SubmissionUncertainError:
        """This paid request failed in a way that says it may have landed."""
        return SubmissionUncertainError(
            f"{self.what}: {error}. The request may have created a paid task; it was NOT "
            "re-sent. Check your task list before submitting it again.",
            method=self.method,
            path=self.path,
            request=self.request,
            status=error.status if isinstance(error, APIError) else None,
        )


def error_for(
    method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes
) -> APIError:
    """The error a non-2xx answer means (or a 2xx too large to read)."""
    if len(raw) > MAX_BODY:
        return APIError(
            method=method,
            path=path,
            status=status,
            detail=f"the answer is larger than {MAX_BODY} bytes; refusing to read it",
            headers=dict(headers),
        )
    if 300 <= status < 400:
        where = headers.get("Location", "elsewhere")
        return APIError(
            method=method,
            path=path,
            status=status,
            detail=f"unexpected redirect to {where}; check base_url (redirects are not followed "
            "so that the API key never leaves the API's host)",
            headers=dict(headers),
        )
    body = decode_error_body(raw, headers.get("Content-Type", ""))
    return error_from_response(method, path, status, dict(headers), body)


# -- the endpoints ---------------------------------------------------------------------------

_GENERATIONS = "/luma/generations"
BATCH_TASKS_PATH = "/luma/tasks"


def extend_path(task_id: str) -> str:
    return f"{_GENERATIONS}/{task_id}/extend"


def generate(body: Mapping[str, Any], request: object) -> Request[Task]:
    """``POST /luma/generations``: a new generation (paid)."""
    return Request(
        "POST",
        _GENERATIONS,
        "generate",
        functools.partial(task_from_json, what="generate"),
        body=body,
        paid=True,
        request=request,
    )


def extend(task_id: str, body: Mapping[str, Any], request: object) -> Request[Task]:
    """``POST /luma/generations/{id}/extend``: extend a finished video (paid)."""
    what = f"extend {task_id}"
    return Request(
        "POST",
        extend_path(task_id),
        what,
        functools.partial(task_from_json, what=what),
        body=body,
        paid=True,
        request=request,
    )


def _task_for(task_id: str, what: str, data: Any) -> Task:
    return check_answer_for(task_from_json(data, what=what), task_id, what=what)


_new: Callable[[type[Any]], Any] = object.__new__
#: Request's slots, set one by one for the request of every poll (see ``_construct``).
_REQUEST = slot_setters(
    Request, "method", "path", "what", "decode", "body", "paid", "retry", "request"
)


def get(task_id: str, *, poll: bool = False) -> Request[Task]:
    """``GET /luma/generations/{id}``: the task now; an answer for another task is a
    :class:`WrongTaskError` (transient).  ``poll``: one attempt, the poll loop retries.

    The same value as ``Request("GET", path, what, decode, retry=not poll)``, built
    without attrs' frozen ``__init__``: this is the request of every poll.
    """
    what = f"{'poll' if poll else 'get'} {task_id}"
    request: Request[Task] = _new(Request)
    set_method, set_path, set_what, set_decode, set_body, set_paid, set_retry, set_request = (
        _REQUEST
    )
    set_method(request, "GET")
    set_path(request, f"{_GENERATIONS}/{task_id}")
    set_what(request, what)
    set_decode(request, functools.partial(_task_for, task_id, what))
    set_body(request, None)
    set_paid(request, False)  # noqa: FBT003 - a slot's value
    set_retry(request, not poll)
    set_request(request, None)
    return request


def download_video_url(task_id: str) -> Request[str]:
    """``GET /luma/generations/{id}/download_video_url``: a link without watermark."""
    what = f"download_video_url {task_id}"
    return Request(
        "GET",
        f"{_GENERATIONS}/{task_id}/download_video_url",
        what,
        functools.partial(url_from_json, what=what),
    )


def file_upload(value: str, request: object) -> Request[UploadedFile]:
    """``POST /luma/generations/file_upload``: an image the service keeps (counted as paid:
    never re-sent once it may have landed)."""
    return Request(
        "POST",
        f"{_GENERATIONS}/file_upload",
        "upload",
        functools.partial(uploaded_from_json, what="upload"),
        body={"url": value},
        paid=True,
        request=request,
    )


def batch_tasks(ids: list[str]) -> Request[list[Task] | str]:
    """``POST /luma/tasks``: many tasks at once where offered (not paid: a query).
    The value is the tasks, or what came instead when the answer is no list of tasks."""
    return Request("POST", BATCH_TASKS_PATH, "batch refresh", _batch_answer, body={"ids": ids})


def _batch_answer(data: Any) -> list[Task] | str:
    tasks = batch_from_json(data)
    if tasks is not None:
        return tasks
    if isinstance(data, dict):
        return "an object without a list under 'data'"
    return type(data).__name__


def usage() -> Request[Usage]:
    """``GET /luma/subscription/usage``: the credits of the account."""
    return Request(
        "GET", "/luma/subscription/usage", "usage", functools.partial(usage_from_json, what="usage")
    )


def account() -> Request[Account]:
    """``GET /luma/users/me``: the upstream account."""
    return Request(
        "GET", "/luma/users/me", "account", functools.partial(account_from_json, what="account")
    )


_ID_FIELD = re.compile(rb'"(?:task_id|id)"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')
_ID_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def find_task_id(raw: bytes) -> str | None:
    """The id of the task an unreadable answer names, when one can still be found in it."""
    head = raw[: 256 * 1024]
    try:
        data: Any = json.loads(head)
    except (ValueError, RecursionError):
        data = None
    while isinstance(data, dict):  # a task, or a gateway's {"code", "data": <task>}
        fields = cast("dict[str, Any]", data)
        for name in ("id", "task_id"):
            value = fields.get(name)
            if isinstance(value, str) and _ID_VALUE.fullmatch(value):
                return value
        data = fields.get("data")
    match = _ID_FIELD.search(head)
    return match.group(1).decode() if match else None
