"""What mutation testing of the error modules showed no test pinned (docs/mutation.md).

``_error_map`` (an error answer onto the tree) and ``_errors`` (the tree: attributes and
messages); ``_redact`` is in ``test_mutants_redact.py``.  Each test or group names the mutants
it kills (``x_<function>__mutmut_<n>``).  Values are exact: what a user reads in a message or
an attribute.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from luma_async import (
    APIError,
    BadRequestError,
    DecodeError,
    DownloadError,
    ExtendRequest,
    LumaSession,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    Task,
    TaskFailedError,
    TransportError,
    UpstreamAuthenticationError,
    WrongTaskError,
)
from luma_async._convert import check_answer_for, tasks_from_json
from luma_async._download_files import fs_error
from luma_async._error_map import error_from_response, header, parse_retry_after
from luma_async._protocol import extend
from luma_async.testing import VirtualClock

from .helpers import free_port

PATH = "/luma/generations/t-1"


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> APIError:
    return error_from_response("GET", PATH, status, headers or {}, body)


# -- _error_map: the class ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("task_not_exist", NotFoundError),
        ("task_origin_not_exist", NotFoundError),
        ("quota_not_enough", PermissionDeniedError),
        ("insufficient_user_quota", PermissionDeniedError),
        ("fail_to_fetch_task", ServerError),
        ("upstream_not_authenticated", UpstreamAuthenticationError),
    ],
)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_a_gateway_code_picks_the_class_whatever_the_status(
    code: str, cls: type[APIError], status: int
) -> None:
    # Every entry of the gateway-code table, under every status a gateway sends it with.
    error = answer(status, {"code": code, "message": "why", "data": None})
    assert type(error) is cls
    assert (error.status, error.code, error.detail) == (status, code, "why")
    assert str(error) == f"GET {PATH} answered {status} [{code}]: why"


def test_an_unknown_code_leaves_the_class_to_the_status() -> None:
    # The code is looked up as given: 'XXXX' for a missing one finds nothing either way
    # (x_error_from_response__mutmut_43 is equivalent), a code never changes a 404.
    assert type(answer(404, {"code": "XXXX", "message": "m"})) is NotFoundError
    assert type(answer(418, {"code": "new_api_error", "message": "m"})) is APIError
    assert type(answer(429, {"code": "new_api_error", "message": "m"})) is RateLimitError


# -- _error_map: the detail and the code --------------------------------------------------------


def test_a_detail_of_exactly_300_characters_is_kept_whole() -> None:
    # Kills x__clip__mutmut_6 ('<' for '<=') and _9 (297 characters + '...' become 296).
    assert answer(400, {"detail": "x" * 300}).detail == "x" * 300
    assert answer(400, {"detail": "y" * 301}).detail == "y" * 297 + "..."
    assert answer(400, {"detail": "a  b\n\tc"}).detail == "a b c"  # white space folded


def test_the_outer_code_stays_when_the_detail_object_has_none() -> None:
    # Kills x__describe__mutmut_20 and _22 (the detail object's missing code erased the
    # body's own code, and with it the class).
    error = answer(400, {"code": "task_not_exist", "detail": {"reason": "no such task"}})
    assert type(error) is NotFoundError
    assert (error.code, error.detail) == ("task_not_exist", "no such task")
    inner = answer(400, {"code": "outer", "detail": {"reason": "r", "code": 7}})
    assert inner.code == "7"  # the detail object's own code wins


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"reason": "by reason", "message": "m", "msg": "s"}, "by reason"),
        ({"message": "by message", "msg": "s"}, "by message"),
        ({"message": "by message"}, "by message"),
        ({"msg": "by msg"}, "by msg"),
        ({"reason": "", "message": "", "msg": "last"}, "last"),
    ],
)
def test_a_detail_object_is_read_by_reason_then_message_then_msg(
    detail: dict[str, str], expected: str
) -> None:
    # Kills x__describe__mutmut_26 ('and' for the second 'or'), _31 to _33 ('message' key
    # lost), _34 to _36 ('msg' key lost).
    error = answer(401, {"detail": detail})
    assert error.detail == expected
    assert str(error) == f"GET {PATH} answered 401: {expected}"


def test_a_validation_list_is_joined_message_by_message() -> None:
    # FastAPI's 422: each item's 'msg', an item without one as it is, other values as text.
    # Kills x__describe__mutmut_37 (the list not joined), _40 (separator), _41, _44, _47 to
    # _50 (each item shown whole instead of its 'msg'), _45 (an item without 'msg' shown as
    # 'None').
    body = {
        "detail": [
            {"loc": ["body", "user_prompt"], "msg": "field required", "type": "missing"},
            {"loc": ["body"], "type": "extra"},
            "also bad",
            3,
        ]
    }
    error = answer(422, body)
    assert type(error) is BadRequestError
    assert error.detail == "field required; {'loc': ['body'], 'type': 'extra'}; also bad; 3"


def test_an_error_objects_code_does_not_replace_the_bodys() -> None:
    # Kills x__describe__mutmut_64 (the body's code overwritten by error.code).
    error = answer(403, {"code": "quota_not_enough", "error": {"message": "m", "code": "other"}})
    assert (type(error), error.code, error.detail) == (
        PermissionDeniedError,
        "quota_not_enough",
        "m",
    )
    typed = answer(401, {"error": {"message": "Invalid token", "type": "new_api_error"}})
    assert (typed.code, typed.detail) == ("new_api_error", "Invalid token")


def test_an_error_string_does_not_replace_the_detail() -> None:
    # Kills x__describe__mutmut_74 ('or' for 'and': the error string won over the detail).
    assert answer(500, {"detail": "the detail", "error": "the error"}).detail == "the detail"
    assert answer(500, {"error": "the error"}).detail == "the error"


def test_a_top_level_msg_is_the_detail() -> None:
    # Kills x__describe__mutmut_83 to _85 (the 'msg' key lost).
    assert answer(400, {"msg": "bad prompt"}).detail == "bad prompt"
    assert answer(400, {"message": "", "msg": "bad prompt"}).detail == "bad prompt"


def test_an_expired_upstream_account_says_the_key_was_accepted() -> None:
    # Kills x_error_from_response__mutmut_16 (the advice's second half).
    error = answer(401, {"detail": "Not authenticated"})
    assert type(error) is UpstreamAuthenticationError
    assert error.code == "upstream_not_authenticated"
    assert error.detail == (
        "Not authenticated (passed through from upstream): the aggregator's own Luma account "
        "failed; your API key was accepted. Tell the aggregator, or try again later"
    )


def test_a_body_that_is_not_json_is_named_and_shown_without_tags() -> None:
    # Kills x_error_from_response__mutmut_23 (every text called an HTML page), _24, _26, _30
    # to _32 (the words), _29 (a '<' at index 200 counted) and x__strip_tags__mutmut_6, _7
    # (tag names kept), _9 (a tag not replaced by one space).
    page = "<html><body><h1>502 Bad Gateway</h1>nginx<br>1.25</body></html>"
    assert answer(502, page).detail == "an HTML page: 502 Bad Gateway nginx 1.25"
    assert answer(503, "upstream connect error").detail == "a non-JSON body: upstream connect error"
    late = "x" * 200 + "<b>"
    assert answer(503, late).detail == "a non-JSON body: " + "x" * 200
    early = "x" * 199 + "<b>"
    assert answer(503, early).detail == "an HTML page: " + "x" * 199


# -- _error_map: headers and Retry-After --------------------------------------------------------


def test_the_exact_spelling_of_a_header_wins_over_another_case() -> None:
    # A plain dict may hold two spellings; the one asked for is read, else the first in any
    # case.  Kills x_header__mutmut_1, _2 (the exact lookup lost) and
    # x_error_from_response__mutmut_74, _75 ('Retry-After' asked in another case).
    headers = {"retry-after": "9", "Retry-After": "5"}
    assert header(headers, "Retry-After") == "5"
    assert header(headers, "RETRY-after") == "9"
    assert header({}, "Retry-After") is None
    assert answer(429, None, headers).retry_after == 5.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("300", 300.0),
        ("1e400", 300.0),  # huge: capped
        ("-1", 0.0),  # negative: no wait
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # an HTTP date
        ("Wed, 21 Oct 2015 07:28:30", 30.0),  # a date without a time zone is UTC
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # now
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # past
        ("Thu, 22 Oct 2015 07:28:00 GMT", 300.0),  # far: capped
        ("soon", None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),  # no such day
        ("nan", None),
    ],
)
def test_retry_after_in_every_form(value: str, seconds: float | None) -> None:
    now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == seconds
    error = answer(429, {"detail": "slow down"}, {"Retry-After": value})
    if "2015" not in value:  # a number of seconds does not depend on the clock
        assert error.retry_after == seconds


# -- _errors: what each error carries -----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_refused_connection_is_a_transport_error_never_sent(vclock: VirtualClock) -> None:
    # Kills xǁTransportErrorǁ__init____mutmut_3 (no message), _4 to _6 (method, path, sent).
    base_url = f"http://127.0.0.1:{free_port()}"
    retry = RetryPolicy(attempts=2, initial=0.1)
    async with LumaSession("key-for-nobody", base_url=base_url, retry=retry) as luma:
        with pytest.raises(TransportError) as caught:
            await luma.generate("a fox")
    error = caught.value
    assert (error.method, error.path, error.sent) == ("POST", "/luma/generations", False)
    assert str(error).startswith(f"POST /luma/generations: could not connect to {base_url}: ")


def test_a_transport_error_built_by_hand_knows_nothing_more() -> None:
    # A user's fake transport raises TransportError("...") as its signature allows.
    # Kills xǁTransportErrorǁ__init____mutmut_1, _2 (the defaults of method and path).
    error = TransportError("down")
    assert (str(error), error.method, error.path, error.sent) == ("down", "", "", None)


def test_a_decode_error_keeps_the_body_it_could_not_read() -> None:
    # Kills xǁDecodeErrorǁ__init____mutmut_2 (the body lost).
    with pytest.raises(DecodeError) as caught:
        tasks_from_json({"data": None}, what="batch query")
    assert str(caught.value) == "batch query: expected a list of tasks, got dict"
    assert caught.value.body == {"data": None}
    assert DecodeError("m").body is None


def test_an_answer_for_another_task_names_both() -> None:
    # Kills xǁWrongTaskErrorǁ__init____mutmut_1 to _5 (the message, asked, answered).
    with pytest.raises(WrongTaskError) as caught:
        check_answer_for(Task("t-2", "pending"), "t-1", what="get t-1")
    error = caught.value
    assert str(error) == (
        "get t-1: the service answered with task t-2 instead of t-1; the answer was discarded"
    )
    assert (error.asked, error.answered, error.body) == ("t-1", "t-2", None)


def test_task_outcome_messages_are_exact() -> None:
    # Kills xǁTaskFailedErrorǁ__init____mutmut_5 and xǁPollTimeoutErrorǁ__init____mutmut_8,
    # _11 to _13 (the words of the messages).
    assert str(TaskFailedError(Task("t-2", "failed"))) == "task t-2 failed (no reason given)"
    assert str(PollTimeoutError("t-4", None, 1.04)) == (
        "task t-4 not finished after 1.0s (last state: never seen); "
        "it may still finish: poll it again later, or raise PollPolicy.timeout"
    )


def test_an_unreadable_2xx_to_an_extend_carries_everything_known() -> None:
    # The service said yes to a paid extend, but its answer broke off: the error carries the
    # request, the status, the raw answer and the id it still names.  Kills
    # xǁSubmissionUncertainErrorǁ__init____mutmut_1 to _7.
    request = ExtendRequest("parent-1", "and then it rains")
    raw = b'{"id": "child-9", "state": "pend'
    exchange = extend("parent-1", {"user_prompt": "and then it rains"}, request)
    with pytest.raises(SubmissionUncertainError) as caught:
        exchange.decipher(201, {}, raw)
    error = caught.value
    assert (error.method, error.path) == ("POST", "/luma/generations/parent-1/extend")
    assert error.request is request
    assert (error.status, error.answer, error.task_id) == (201, raw, "child-9")
    assert str(error).startswith(
        "extend parent-1: the service accepted the request (201) but its answer cannot be "
        "read (it names task child-9): "
    )


def test_a_download_error_says_where_and_how_far() -> None:
    # Kills xǁDownloadErrorǁ__init____mutmut_2 to _6 (message, url, path, received,
    # expected: the size announced) and _1 (received defaults to 0 bytes).
    path = Path("/videos/fox.mp4")
    full = OSError(errno.ENOSPC, "No space left on device")
    error = fs_error(full, "https://cdn.example/v.mp4?X-Signature=s3cr3t", path, received=4096)
    assert str(error) == (
        "GET https://cdn.example/v.mp4: cannot save to /videos/fox.mp4: No space left on device"
    )
    assert (error.url, error.path, error.received, error.expected) == (
        "https://cdn.example/v.mp4",
        path,
        4096,
        None,
    )
    fresh = DownloadError("m", url="u", path=path)
    assert (fresh.received, fresh.expected) == (0, None)
    short = DownloadError("short", url="u", path=path, received=5, expected=10)
    assert (short.received, short.expected) == (5, 10)
