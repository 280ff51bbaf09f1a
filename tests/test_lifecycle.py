"""A session's life as explicit states: UNOPENED -> OPENED -> CLOSED (httpx's ClientState).

Every wrong transition has one message; every use of a closed session is a
:class:`SessionClosedError` (a :class:`LumaError`, and a ``RuntimeError`` as it always was),
and nothing reaches the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from luma_async import ExtendRequest, LumaError, LumaSession, SessionClosedError
from luma_async._session import SessionState
from luma_async.testing import LumaEmulator

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


def new_session(emulator: LumaEmulator) -> LumaSession:
    return LumaSession(emulator.api_key, base_url=emulator.base_url)


async def drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


#: Every public way to use a session, as (name, call): none may work once it is closed.
USES: list[tuple[str, Callable[[LumaSession, Path], Awaitable[object] | object]]] = [
    ("generate", lambda luma, _: luma.generate("a fox")),
    ("extend", lambda luma, _: luma.extend("task-1", "more")),
    ("submit_extend", lambda luma, _: luma.submit_extend(ExtendRequest("task-1", "more"))),
    ("get", lambda luma, _: luma.get("task-1")),
    ("usage", lambda luma, _: luma.usage()),
    ("account", lambda luma, _: luma.account()),
    ("download_video_url", lambda luma, _: luma.download_video_url("task-1")),
    ("download", lambda luma, tmp: luma.download("https://cdn.example/v.mp4", tmp)),
    ("upload", lambda luma, _: luma.upload(PNG)),
    ("poll", lambda luma, _: luma.poll("task-1")),
    ("wait", lambda luma, _: luma.wait("task-1")),
    ("watch_many", lambda luma, _: luma.watch_many(["task-1", "task-2"])),
    ("subscribe", lambda luma, _: luma.subscribe("task-1", queue=asyncio.Queue())),
    ("start_callbacks", lambda luma, _: luma.start_callbacks()),
    ("extend_many", lambda luma, _: luma.extend_many([ExtendRequest("task-1", "more")])),
    ("extend_chain", lambda luma, _: drain(luma.extend_chain("task-1", ["more"]))),
]


@pytest.mark.asyncio
async def test_a_new_session_is_unopened_and_usable_without_async_with(
    emulator: LumaEmulator,
) -> None:
    luma = new_session(emulator)
    assert luma._state is SessionState.UNOPENED
    assert "unopened" in repr(luma)
    assert not luma.closed
    task = await luma.generate("a fox")  # allowed today, and still
    assert (await luma.get(task.id)).id == task.id
    assert luma._state is SessionState.UNOPENED
    await luma.aclose()
    assert luma._state is SessionState.CLOSED
    assert luma.closed


@pytest.mark.asyncio
async def test_async_with_opens_and_its_end_closes(emulator: LumaEmulator) -> None:
    luma = new_session(emulator)
    async with luma as entered:
        assert entered is luma
        assert luma._state is SessionState.OPENED
        assert ", open>" in repr(luma)
        client = luma._aiohttp()
    assert luma._state is SessionState.CLOSED
    assert "closed" in repr(luma)
    assert client.closed


@pytest.mark.asyncio
async def test_a_session_used_before_async_with_can_still_be_opened(
    emulator: LumaEmulator,
) -> None:
    luma = new_session(emulator)
    await luma.generate("a fox")
    async with luma:
        assert luma._state is SessionState.OPENED
        await luma.generate("a hen")
    assert luma.closed
    assert len(emulator.created) == 2


@pytest.mark.asyncio
async def test_opening_twice_says_so_and_leaves_the_session_open(
    emulator: LumaEmulator,
) -> None:
    async with new_session(emulator) as luma:
        with pytest.raises(RuntimeError, match=r"^cannot open a LumaSession more than once") as e:
            await luma.__aenter__()
        assert not isinstance(e.value, SessionClosedError)  # it is not closed: still usable
        assert luma._state is SessionState.OPENED
        await luma.generate("a fox")


@pytest.mark.parametrize("entered", [True, False])
@pytest.mark.asyncio
async def test_opening_a_closed_session_is_a_session_closed_error(
    emulator: LumaEmulator, entered: bool
) -> None:
    luma = new_session(emulator)
    if entered:
        async with luma:
            pass
    else:
        await luma.aclose()
    with pytest.raises(SessionClosedError, match=r"^this LumaSession is closed; create a new one$"):
        async with luma:
            pass
    assert luma._state is SessionState.CLOSED


@pytest.mark.asyncio
async def test_closing_is_idempotent_in_every_state(emulator: LumaEmulator) -> None:
    never_used = new_session(emulator)
    await never_used.aclose()
    await never_used.aclose()
    assert never_used.closed

    async with new_session(emulator) as luma:
        await luma.aclose()  # inside the block: the block's end closes nothing more
        await luma.aclose()
        assert luma.closed
    assert luma.closed


@pytest.mark.parametrize(("name", "use"), USES, ids=[name for name, _ in USES])
@pytest.mark.asyncio
async def test_every_use_of_a_closed_session_is_a_session_closed_error(
    emulator: LumaEmulator,
    tmp_path: Path,
    name: str,
    use: Callable[[LumaSession, Path], Awaitable[object] | object],
) -> None:
    async with new_session(emulator) as luma:
        pass
    seen = len(emulator.requests)
    with pytest.raises(SessionClosedError, match="this LumaSession is closed") as caught:
        outcome = use(luma, tmp_path)
        if asyncio.iscoroutine(outcome):
            await outcome
    assert isinstance(caught.value, LumaError)
    assert isinstance(caught.value, RuntimeError)  # what it was before it had a class
    assert emulator.created == []
    assert len(emulator.requests) == seen, name  # nothing reached the service


@pytest.mark.asyncio
async def test_notify_on_a_closed_session_only_says_nothing_is_watched(
    emulator: LumaEmulator,
) -> None:
    luma = new_session(emulator)
    await luma.aclose()
    assert luma.notify("task-1") is False  # a late callback delivery must not raise
