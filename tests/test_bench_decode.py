"""The decoding micro-benchmark's plumbing (no timing is asserted: see test_bench_smoke)."""

from __future__ import annotations

import json

import pytest

from bench import decode
from bench.__main__ import detail_rows
from luma_async import Task, TaskState
from luma_async._convert import task_from_json


@pytest.mark.parametrize("shape", list(decode.SHAPES))
def test_each_timed_body_is_a_task_the_floor_reads_alike(shape: str) -> None:
    body = json.loads(json.dumps(decode.SHAPES[shape]()))
    task = task_from_json(body)
    task_id, state, created_at, url = decode._lookup(body)
    assert (task.id, task.state) == (task_id, state)
    assert created_at is not None
    if task.state is TaskState.COMPLETED:
        assert task.video is not None
        assert url in (task.video.url, None)  # the official shape's link is a bare string


def test_a_run_reports_every_shape_and_feeds_the_details_table() -> None:
    results = decode.run(rounds=1, count=2, old=task_from_json)
    assert set(results["shapes"]) == set(decode.SHAPES)
    for figures in results["shapes"].values():
        assert {"floor", "loads", "new", "old", "ratio", "new_over_old"} <= set(figures)
    rows = decode.rows(results)
    assert len(rows) == len(decode.SHAPES)
    assert len(rows[0]) == len(decode.header(results))
    throughput = {"per_round": 1, "concurrency": 1, "rounds": 1, "clients": {}}
    details = detail_rows(
        {
            "decode": results,
            "throughput": throughput,
            "followers": [],
            "latency": {},
            "import_time": {"aiohttp_ms": 1.0, "luma_async_ms": 2.0, "cumulative_ms": {}},
        }
    )
    assert sum(row[0].startswith("0 task decoding") for row in details) == len(decode.SHAPES)


def test_the_bodies_decode_to_the_shapes_they_are_named_for() -> None:
    artifact = task_from_json(decode.SHAPES["artifact"]())
    assert artifact.video is not None and artifact.video.raw is not None
    official = task_from_json(decode.SHAPES["official"]())
    assert official.video is not None and official.video.thumbnail is not None
    pending = task_from_json(decode.SHAPES["pending"]())
    assert isinstance(pending, Task) and pending.video is None
