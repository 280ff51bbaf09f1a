"""The error tree and the one pure function that maps error answers onto it."""

from __future__ import annotations

import email.utils
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luma_async
from luma_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    InputError,
    LumaError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    Task,
    TaskFailedError,
    TransportError,
)
from luma_async._error_map import decode_error_body, error_from_response, parse_retry_after

from . import strategies

FIXTURES = Path(__file__).parent / "fixtures"
PATH = "/luma/generations/0c6e2a8f-1b7d-4e9a-bf3c-5d8e7a6b4c2d"


def body_of(name: str) -> Any:
    return decode_error_body((FIXTURES / name).read_bytes(), "application/json")


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> APIError:
    return error_from_response("GET", PATH, status, headers or {}, body)


# --- the tree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        InputError,
        TransportError,
        APIError,
        DecodeError,
        TaskFailedError,
        PollTimeoutError,
        SubmissionUncertainError,
    ],
)
def test_every_branch_is_a_luma_error(cls: type[Exception]) -> None:
    assert issubclass(cls, LumaError)


@pytest.mark.parametrize(
    "cls",
    [
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        ServerError,
    ],
)
def test_status_errors_are_api_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, APIError)
    assert issubclass(cls, LumaError)


def test_input_error_is_a_value_error_and_nothing_else_is() -> None:
    assert issubclass(InputError, ValueError)
    assert not issubclass(APIError, ValueError)
    assert not issubclass(DecodeError, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise InputError("bad")


def test_branches_do_not_overlap() -> None:
    assert not issubclass(DecodeError, APIError)
    assert not issubclass(TransportError, APIError)
    assert not issubclass(NotFoundError, BadRequestError)
    assert not issubclass(ServerError, TransportError)


def test_public_names_are_exported() -> None:
    for name in ("LumaError", "APIError", "RateLimitError", "SubmissionUncertainError"):
        assert name in luma_async.__all__


#: Names the package module imports for itself, not for its users.
OWN_IMPORTS = {"annotations", "Any", "TYPE_CHECKING"}
#: Public names ``luma_async.__getattr__`` loads on first use, so not in ``vars()`` up front.
LAZY = {"CallbackReceiver", "__version__"}


def test_exported_members() -> None:
    """``__all__`` is exactly the public names the package holds: none missing, none stale."""
    exported = set(luma_async.__all__)
    assert len(exported) == len(luma_async.__all__)  # no name twice
    held = {
        name
        for name, value in vars(luma_async).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert exported == (held - OWN_IMPORTS) | LAZY
    for name in exported:
        assert getattr(luma_async, name) is not None, name


def test_task_outcome_errors_say_what_happened() -> None:
    failed = Task(id="t-1", state="failed", failure_reason="flagged")
    error = TaskFailedError(failed)
    assert error.task is failed
    assert str(error) == "task t-1 failed: flagged"
    assert "no reason given" in str(TaskFailedError(Task(id="t-2", state="failed")))
    timeout = PollTimeoutError("t-3", Task(id="t-3", state="processing"), 12.34)
    assert timeout.task_id == "t-3"
    assert "t-3" in str(timeout)
    assert "12.3s" in str(timeout)
    assert "processing" in str(timeout)
    assert "never seen" in str(PollTimeoutError("t-4", None, 1.0))


# --- the three body families ------------------------------------------------------------


def test_proxy_detail_string() -> None:
    error = answer(404, body_of("error_detail_string.json"))
    assert type(error) is NotFoundError
    assert error.detail == "Not found"
    assert error.code is None
    assert error.body == {"detail": "Not found"}
    assert str(error) == f"GET {PATH} answered 404: Not found"


def test_proxy_detail_object() -> None:
    error = answer(401, body_of("error_detail_object.json"))
    assert type(error) is AuthenticationError
    assert error.detail == "unauthorized secret token"
    assert error.code == "1"
    assert "unauthorized secret token" in str(error)
    assert "401" in str(error)


def test_gateway_task_not_exist_is_not_found_despite_400() -> None:
    error = answer(400, body_of("error_task_not_exist.json"))
    assert type(error) is NotFoundError
    assert error.status == 400
    assert error.code == "task_not_exist"
    assert "not exist" in error.detail
    assert "[task_not_exist]" in str(error)


def test_gateway_quota_not_enough_is_permission_denied() -> None:
    for status in (403, 400):
        error = answer(status, body_of("error_quota.json"))
        assert type(error) is PermissionDeniedError
        assert error.code == "quota_not_enough"
        assert error.detail == "user quota is not enough"


def test_gateway_token_error() -> None:
    error = answer(401, body_of("error_token.json"))
    assert type(error) is AuthenticationError
    assert error.detail.startswith("Invalid token")
    assert error.code == "new_api_error"


def test_other_gateway_codes_do_not_change_the_class() -> None:
    error = answer(400, {"code": "invalid_request", "message": "prompt too long", "data": None})
    assert type(error) is BadRequestError
    assert error.detail == "prompt too long"


def test_fastapi_validation_list() -> None:
    body = {"detail": [{"loc": ["body", "user_prompt"], "msg": "field required"}, "also bad"]}
    error = answer(422, body)
    assert type(error) is BadRequestError
    assert "field required" in error.detail
    assert "also bad" in error.detail


def test_error_string_body_field() -> None:
    assert answer(500, {"error": "upstream timeout"}).detail == "upstream timeout"


def test_one_element_list_body() -> None:
    assert answer(404, [{"detail": "gone"}]).detail == "gone"


# --- status classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (402, APIError),
        (405, APIError),
        (409, APIError),
        (418, APIError),
        (451, APIError),
    ],
)
def test_status_to_class(status: int, cls: type[APIError]) -> None:
    error = error_from_response("POST", "/luma/generations", status, {}, {"detail": "why"})
    assert type(error) is cls
    assert error.status == status
    assert error.method == "POST"
    assert error.path == "/luma/generations"
    assert error.detail == "why"
    message = str(error)
    assert "POST" in message
    assert "/luma/generations" in message
    assert str(status) in message
    assert "why" in message


def test_headers_are_kept() -> None:
    error = answer(503, None, {"X-Request-Id": "abc"})
    assert error.headers["X-Request-Id"] == "abc"


# --- 429 and Retry-After ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),  # any case
        ({"RETRY-AFTER": " 3 "}, 3.0),
        ({"Retry-After": "86400"}, 300.0),  # capped
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_rate_limit_carries_retry_after(headers: dict[str, str], expected: float | None) -> None:
    error = answer(429, {"detail": "too many requests"}, headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    in_ten = email.utils.formatdate(now + 10, usegmt=True)
    assert parse_retry_after(in_ten, now=now) == pytest.approx(10.0)
    in_a_day = email.utils.formatdate(now + 86_400, usegmt=True)
    assert parse_retry_after(in_a_day, now=now) == 300.0
    past = email.utils.formatdate(now - 60, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_parse_retry_after_http_date_uses_the_wall_clock_by_default() -> None:
    far = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert parse_retry_after(far) == 300.0
    assert parse_retry_after("Thu, 01 Jan 2015 00:00:00 GMT") == 0.0


@pytest.mark.parametrize("value", ["", "soon", "Mon, 99 Foo 2024", "1,5", "inf-ish", None])
def test_parse_retry_after_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_parse_retry_after_infinity_is_capped() -> None:
    assert parse_retry_after("inf") == 300.0


# --- bodies that are not JSON ---------------------------------------------------------------


def test_html_body() -> None:
    raw = (FIXTURES / "error_gateway.html").read_bytes()
    body = decode_error_body(raw, "text/html")
    assert isinstance(body, str)
    error = error_from_response("GET", PATH, 502, {}, body)
    assert type(error) is ServerError
    assert "HTML" in error.detail
    assert "502 Bad Gateway" in error.detail
    assert "<" not in error.detail  # tags stripped
    assert error.body == body


def test_plain_text_body() -> None:
    error = answer(503, decode_error_body(b"upstream connect error", "text/plain"))
    assert type(error) is ServerError
    assert "upstream connect error" in error.detail


@pytest.mark.parametrize("raw", [b"", b"   "])
def test_empty_body(raw: bytes) -> None:
    error = answer(500, decode_error_body(raw))
    assert type(error) is ServerError
    assert error.detail == "no details in the answer"
    assert str(error) == f"GET {PATH} answered 500: no details in the answer"


def test_json_without_any_known_field() -> None:
    error = answer(400, {"something": "else"})
    assert type(error) is BadRequestError
    assert error.detail == "no details in the answer"
    assert error.body == {"something": "else"}


def test_long_detail_is_clipped() -> None:
    error = answer(400, {"detail": "x" * 10_000})
    assert len(error.detail) <= 300
    assert error.detail.endswith("...")


def test_decode_error_body() -> None:
    assert decode_error_body(b"") is None
    assert decode_error_body(b'{"detail": "x"}') == {"detail": "x"}
    assert decode_error_body(b'  [{"detail": "x"}]') == [{"detail": "x"}]
    assert decode_error_body(b'"quoted"', "application/json") == "quoted"
    assert decode_error_body(b"{broken", "application/json") == "{broken"
    assert decode_error_body(b"\xff\xfe\x00\x80garbage") == "\ufffd\ufffd\x00\ufffdgarbage"
    assert decode_error_body(b"<html></html>") == "<html></html>"


def test_decode_error_body_survives_deep_nesting() -> None:
    raw = b"[" * 100_000
    body = decode_error_body(raw, "application/json")
    assert body == raw.decode()
    assert isinstance(answer(502, body), ServerError)


# --- properties ---------------------------------------------------------------------------

json_values = strategies.json_values(
    keys=st.sampled_from(["detail", "code", "message", "error", "reason", "msg", "type", "data"])
    | st.text(max_size=6),
    scalars=strategies.json_scalars(text_size=20, floats=st.floats(allow_nan=False)),
)
statuses = st.integers(400, 599)
header_values = st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after", "Content-Type"]),
    st.text(max_size=30) | st.integers(-1000, 10**6).map(str),
    max_size=2,
)


def check(error: APIError, status: int) -> None:
    assert isinstance(error, APIError)
    assert error.status == status
    assert isinstance(error.detail, str)
    assert error.detail
    assert isinstance(str(error), str)
    assert str(status) in str(error)
    if status >= 500 and not isinstance(error, (NotFoundError, PermissionDeniedError)):
        assert isinstance(error, ServerError)
    if isinstance(error, RateLimitError):
        assert error.retry_after is None or 0.0 <= error.retry_after <= 300.0


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200), status=statuses, headers=header_values)
def test_arbitrary_bytes_never_raise(raw: bytes, status: int, headers: dict[str, str]) -> None:
    body = decode_error_body(raw, headers.get("Content-Type", ""))
    check(error_from_response("GET", PATH, status, headers, body), status)


@settings(max_examples=200, deadline=None)
@given(body=json_values, status=statuses, headers=header_values)
def test_arbitrary_json_never_raises(body: Any, status: int, headers: dict[str, str]) -> None:
    raw = json.dumps(body).encode()
    check(error_from_response("DELETE", PATH, status, headers, decode_error_body(raw)), status)
    check(error_from_response("DELETE", PATH, status, headers, body), status)


@pytest.mark.parametrize("blank", ["", "\r", "  \n\t", "\u2003"])
def test_a_blank_detail_is_no_detail(blank: str) -> None:
    """Found by Hypothesis: ``{"detail": "\\r"}`` gave an empty message."""
    error = error_from_response("GET", PATH, 400, {}, {"detail": blank, "code": blank})
    assert error.detail == "no details in the answer"
    assert error.code is None
    assert str(error).endswith("answered 400: no details in the answer")
