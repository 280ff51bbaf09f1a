"""Maps an error answer (status, headers, body) onto the error tree. Pure: no I/O.

``decode_error_body`` reads the raw bytes (JSON when it is JSON, else text); ``error_from_response``
picks the class by gateway code, then by status; ``parse_retry_after`` reads ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from luma_async._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UpstreamAuthenticationError,
    is_json_list,
    is_json_object,
)

__all__ = ["decode_error_body", "error_from_response", "header", "parse_retry_after"]

_MAX_DETAIL = 300


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}

_BY_CODE: dict[str, type[APIError]] = {
    "task_not_exist": NotFoundError,
    "task_origin_not_exist": NotFoundError,  # extend of an unknown parent
    "quota_not_enough": PermissionDeniedError,
    "insufficient_user_quota": PermissionDeniedError,  # one-api
    "fail_to_fetch_task": ServerError,  # the upstream failed
    "upstream_not_authenticated": UpstreamAuthenticationError,
}
#: What the Go proxy passes through when its own upstream session (cookie) expired.
_UPSTREAM_UNAUTHENTICATED = "not authenticated"

_MAX_RETRY_AFTER = 300.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped at 300."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
        seconds = (when - current).total_seconds()
    if seconds != seconds:  # NaN  # noqa: PLR0124
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _describe(body: Any) -> tuple[str | None, str | None]:
    """(detail, code) from any of the three error-body families, or (None, None)."""
    if is_json_list(body) and len(body) == 1:
        body = body[0]
    if not is_json_object(body):
        return None, None
    detail: Any = body.get("detail")
    code: Any = body.get("code")
    if is_json_object(detail):
        code = detail.get("code", code)
        detail = detail.get("reason") or detail.get("message") or detail.get("msg")
    elif is_json_list(detail):  # FastAPI-style validation errors
        detail = "; ".join(
            str(item.get("msg", item)) if is_json_object(item) else str(item) for item in detail
        )
    error: Any = body.get("error")
    if detail is None and is_json_object(error):
        detail = error.get("message")
        code = code if code is not None else error.get("code") or error.get("type")
    elif detail is None and isinstance(error, str):
        detail = error
    if detail is None:
        detail = body.get("message") or body.get("msg")
    # blank once white space is folded ("\r", "  "): no detail, so the fallback says so
    text = None if detail is None else _clip(str(detail)) or None
    code_text = None if code is None else _clip(str(code)) or None
    return text, code_text


def decode_error_body(raw: bytes, content_type: str = "") -> Any:
    """The error body as JSON when it is JSON, else as text (HTML pages, empty bodies)."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or "json" in content_type:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
        except (ValueError, RecursionError):  # a deeply nested body must not escape as a crash
            return text
        try:  # the Go proxy appends its own document to the upstream's: the first is the cause
            first, _ = json.JSONDecoder().raw_decode(stripped)
        except (ValueError, RecursionError):
            return text
        return first
    return text


def error_from_response(
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: Any,
) -> APIError:
    """Map an error answer onto the tree. Pure: no I/O, no clock but ``Retry-After`` dates.

    ``body`` is what :func:`decode_error_body` made of the raw bytes.
    """
    detail, code = _describe(body)
    if (
        status == 401
        and code is None
        and detail is not None
        and detail.strip().lower() == _UPSTREAM_UNAUTHENTICATED
    ):
        code = "upstream_not_authenticated"
        detail = (
            f"{detail} (passed through from upstream): the aggregator's own Luma account "
            "failed; your API key was accepted. Tell the aggregator, or try again later"
        )
    if detail is None:
        if isinstance(body, str) and body.strip():
            kind = "an HTML page" if "<" in body[:200] else "a non-JSON body"
            detail = f"{kind}: {_clip(_strip_tags(body))}"
        else:
            detail = "no details in the answer"
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    kwargs: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "detail": detail,
        "code": code,
        "body": body,
        "headers": headers,
        "retry_after": parse_retry_after(header(headers, "Retry-After")),
    }
    return cls(**kwargs)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (a plain dict of headers included)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _strip_tags(html: str) -> str:
    out: list[str] = []
    inside = False
    for char in html:
        if char == "<":
            inside = True
            out.append(" ")
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
