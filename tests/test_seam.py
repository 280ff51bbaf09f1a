"""The sans-io seam: a real LumaSession over an in-memory transport, no socket at all.

The transport below replays recorded answers (``tests/samples/``) for each ``(method,
path)``; everything above it (the protocol's requests and decoders, the retry driver, the
budget, the watch hub, the batch refresh) is the library's own code, unchanged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import pytest_socket

from luma_async import LumaSession, SubmissionUncertainError
from luma_async._clock import VirtualClock
from luma_async._transport import SendError

SAMPLES = Path(__file__).parent / "samples"
BASE = "http://127.0.0.1:9"  # the discard port: any real connection attempt would fail
JSON = {"Content-Type": "application/json"}
Scripted = tuple[int, Mapping[str, str], bytes] | SendError


def sample(name: str, **changes: Any) -> bytes:
    data = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    data.update(changes)
    return json.dumps(data).encode()


class Replay:
    """A :class:`~luma_async._transport.Transport` answering from a script, in memory.

    ``script[(method, path)]`` is the list of answers in order; the last one repeats.
    """

    def __init__(self, script: dict[tuple[str, str], list[Scripted]]) -> None:
        self.script = script
        self.sent: list[tuple[str, str, dict[str, str], Any]] = []
        self.closed = False

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        assert url.startswith(BASE), url
        path = url[len(BASE) :]
        self.sent.append((method, path, dict(headers), None if body is None else json.loads(body)))
        answers = self.script[method, path]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, SendError):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.sent if (m, p) == (method, path))


@pytest_asyncio.fixture
async def no_socket() -> AsyncIterator[None]:
    """No socket may be opened during the test (the event loop's own already exists)."""
    pytest_socket.disable_socket(allow_unix_socket=False)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


def session(transport: Replay, **options: Any) -> LumaSession:
    luma = LumaSession("sk-seam", base_url=BASE, **options)
    luma._use_transport(transport)
    return luma


TASK = "d1f0c2a4-6b3e-4e8a-9c7d-2f5b8a1e3c90"
PARENT = "parent-0001"


@pytest.mark.asyncio
async def test_generate_then_wait_over_recorded_answers(
    vclock: VirtualClock, no_socket: None
) -> None:
    replay = Replay(
        {
            ("POST", "/luma/generations"): [(200, JSON, sample("official_task_dreaming.json"))],
            ("GET", f"/luma/generations/{TASK}"): [
                (200, JSON, sample("official_task_dreaming.json")),
                (503, {}, b"upstream busy"),  # a passing failure: the poll goes on
                (200, JSON, sample("official_task_completed.json")),
            ],
        }
    )
    async with session(replay) as luma:
        task = await luma.generate("a teddy bear in sunglasses")
        done = await luma.wait(task.id, first=task)
    assert done.id == TASK
    assert str(done.video.url).endswith("/video.mp4")
    method, path, headers, body = replay.sent[0]
    assert (method, path) == ("POST", "/luma/generations")
    assert body["user_prompt"] == "a teddy bear in sunglasses"
    assert headers["Authorization"] == "Bearer sk-seam"
    assert headers["Content-Type"] == "application/json"
    assert replay.count("GET", f"/luma/generations/{TASK}") == 3
    assert replay.closed  # the session closes the transport it sends through


@pytest.mark.asyncio
async def test_a_5xx_to_a_paid_post_is_uncertain_and_sent_once(
    vclock: VirtualClock, no_socket: None
) -> None:
    path = f"/luma/generations/{PARENT}/extend"
    gateway = (SAMPLES / "error_fail_to_fetch_task.json").read_bytes()
    replay = Replay({("POST", path): [(502, JSON, gateway)]})
    async with session(replay) as luma:
        with pytest.raises(SubmissionUncertainError) as caught:
            await luma.extend(PARENT, "and then it rains")
    assert replay.count("POST", path) == 1  # never re-sent: it may have landed
    assert caught.value.status == 502
    assert caught.value.path == path


@pytest.mark.asyncio
async def test_a_paid_post_that_never_left_is_sent_again(
    vclock: VirtualClock, no_socket: None
) -> None:
    replay = Replay(
        {
            ("POST", "/luma/generations"): [
                SendError("connection refused", sent=False),
                (200, JSON, sample("official_task_dreaming.json")),
            ]
        }
    )
    async with session(replay) as luma:
        task = await luma.generate("a teddy bear in sunglasses")
    assert task.id == TASK
    assert replay.count("POST", "/luma/generations") == 2


@pytest.mark.asyncio
async def test_a_get_is_retried_through_the_seam(
    vclock: VirtualClock, no_socket: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = f"/luma/generations/{TASK}"
    replay = Replay(
        {
            ("GET", path): [
                (503, {"Retry-After": "2"}, b"busy"),
                SendError("connection reset", sent=True),
                (200, JSON, sample("official_task_dreaming.json", id="someone-else")),
                (200, JSON, sample("official_task_completed.json")),
            ]
        }
    )
    caplog.set_level(logging.INFO, logger="luma_async")
    async with session(replay) as luma:
        started = vclock.monotonic()
        task = await luma.get(TASK)
    assert task.state == "completed"
    assert replay.count("GET", path) == 4  # a 503, a broken connection, another task's answer
    assert vclock.monotonic() - started >= 2.0  # the Retry-After was honoured
    # one driver, numbered as one loop: the first attempt (outside tenacity) is retry 1
    retries = [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]
    assert [re.search(r"retry (\d+) in", m).group(1) for m in retries] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert all(m.startswith(f"GET {path}: ") for m in retries)


@pytest.mark.asyncio
async def test_the_batch_refresh_works_over_the_seam(vclock: VirtualClock, no_socket: None) -> None:
    nested = json.loads((SAMPLES / "gateway_batch_nested.json").read_text(encoding="utf-8"))
    ids = [row["task_id"] for row in nested["data"]][:2]
    replay = Replay(
        {
            ("POST", "/luma/tasks"): [(200, JSON, json.dumps(nested).encode())],
            ("GET", f"/luma/generations/{ids[0]}"): [
                (200, JSON, sample("official_task_completed.json", id=ids[0]))
            ],
        }
    )
    async with session(replay, batch_refresh=True) as luma:
        finished = {change.task_id async for change in luma.watch_many(ids) if change.task.video}
        assert luma._hub.batch_supported is True
    assert finished == set(ids)
    # both asked in one query; the one still processing, then alone, was fetched by GET
    assert replay.sent[0][:2] == ("POST", "/luma/tasks")
    assert sorted(replay.sent[0][3]["ids"]) == sorted(ids)
    assert replay.count("POST", "/luma/tasks") == 1
    assert replay.count("GET", f"/luma/generations/{ids[1]}") == 0
