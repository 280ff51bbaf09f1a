"""The benchmark package imports and its pure helpers work (no timings: ``nox -s bench``)."""

import asyncio
import math

import pytest

from bench import __main__ as bench_main
from bench import import_time, latency, many_watches, profiling, server, throughput
from bench.client import peak_rss_mb, rss_mb
from bench.goals import Goal, check_status, goals, table_rows
from bench.stats import fmt, format_table, ideal_looks, machine, median, percentile, ratio
from luma_async import PollPolicy, Task, TaskState
from luma_async._poll import next_wait


def test_the_benchmark_modules_import():
    assert server.OFFICIAL_PREFIX == "/dream-machine/v1"
    assert callable(throughput.run) and callable(latency.run) and callable(many_watches.run)


def test_median_percentile_and_ratio():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert ratio([2.0, 3.0, 10.0], [1.0, 1.0, 1.0]) == 3.0
    with pytest.raises(ValueError, match="no values"):
        median([])
    with pytest.raises(ValueError, match="equally long"):
        ratio([1.0], [])


def test_ideal_looks_follows_the_estimate_or_the_backoff():
    timed = PollPolicy(interval=1.0, max_interval=5.0)
    assert ideal_looks(timed, 1.0, 3.0) == 2  # at once, then at the estimate
    assert ideal_looks(timed, 0.0, 0.0) == 1
    blind = PollPolicy(interval=2.0, max_interval=15.0, use_estimate=False)
    assert ideal_looks(blind, 1.0, 3.0) == 3  # 0, 3 (pending x1.5), 6


@pytest.mark.parametrize(
    ("state", "estimate", "attempt"),
    [
        (TaskState.PENDING, None, 1),
        (TaskState.PENDING, None, 4),
        (TaskState.PROCESSING, None, 3),
        (TaskState.PROCESSING, 2.5, 1),
        (TaskState.PENDING, 30.0, 2),
        (TaskState.PROCESSING, 0.2, 2),
    ],
)
@pytest.mark.parametrize("use_estimate", [True, False])
def test_the_raw_loop_waits_as_long_as_the_library(state, estimate, attempt, use_estimate):
    policy = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.0, use_estimate=use_estimate)
    task = Task("t", state, estimate_wait_seconds=estimate)
    raw = many_watches.raw_wait(policy, attempt, state.value, estimate, 0.0)
    assert raw == pytest.approx(next_wait(policy, attempt, task, None))
    assert many_watches.raw_wait(policy, attempt, state.value, estimate, 0.25) == raw + 0.25


def test_rotations_give_every_client_every_position():
    order = throughput.rotations(["a", "b", "c"], 4)
    assert order == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_throughput_ratios_are_medians_of_rounds():
    wall = {"raw aiohttp": [1.0, 1.0, 2.0], "luma-async": [1.2, 1.0, 2.0], "lumaai": [12, 9, 30]}
    cpu = {"raw aiohttp": [1.0, 2.0, 1.0], "luma-async": [1.5, 2.0, 1.0], "lumaai": [3, 4, 5]}
    found = throughput.summarise(wall, cpu)
    assert found["luma-async"]["wall_ratio_raw"] == pytest.approx(1.0)
    assert found["luma-async"]["cpu_ratio_raw"] == pytest.approx(1.0)
    assert found["lumaai"]["wall_ratio_luma"] == pytest.approx(10.0)
    assert found["raw aiohttp"]["wall_us"] == pytest.approx(1e6)


@pytest.mark.asyncio
async def test_a_burst_makes_exactly_its_calls_and_no_more_at_once():
    calls, in_flight, most = 0, 0, 0

    async def fetch():
        nonlocal calls, in_flight, most
        calls += 1
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1

    await throughput.burst(fetch, 100, 8)
    assert (calls, most) == (100, 8)


def _watch_run(client, batch, round_, cpu, growth):
    return {
        "count": 100,
        "client": client,
        "batch": batch,
        "round": round_,
        "cpu_ms_per_task": cpu,
        "rss_growth_kb_per_task": growth,
        "peak_rss_mb": 50.0,
        "finished": 100,
        "error_count": 0,
        "gets_per_task": 2.0,
        "batch_posts_per_task": 0.0,
        "looks_per_task": 2.0,
        "cpu_ms_per_look": cpu / 2,
        "ideal_looks_per_task": 2,
        "lag_p50_s": 0.1,
        "lag_p95_s": 0.2,
    }


def test_watch_runs_pair_with_the_raw_loop_of_their_round():
    runs = [
        _watch_run("raw", False, 0, 1.0, 4.0),
        _watch_run("luma", False, 0, 1.5, 8.0),
        _watch_run("raw", False, 1, 2.0, 4.0),
        _watch_run("luma", False, 1, 2.0, 6.0),
    ]
    by_mode = {g["mode"]: g for g in many_watches.summarise(runs)}
    assert by_mode["GET only"]["cpu_ratio_raw"] == pytest.approx(1.25)  # median of 1.5 and 1.0
    assert by_mode["GET only"]["rss_kb_per_task"] == pytest.approx(7.0)
    assert by_mode["raw aiohttp loop"]["cpu_ratio_raw"] is None


def _results(**changes):
    results = {
        "throughput": {
            "clients": {
                "luma-async": {"wall_ratio_raw": 1.05, "cpu_ratio_raw": 1.2},
                "lumaai": {"wall_ratio_luma": 12.0},
            }
        },
        "followers": many_watches.summarise(
            [
                {**_watch_run(client, batch, 0, 1.0, growth), "count": count}
                for count in (5_000, 10_000)
                for client, batch, growth in (("raw", False, 4.0), ("luma", True, 6.0))
            ]
        ),
        "big": {"count": 100_000, "finished": 100_000, "error_count": 0, "peak_rss_mb": 900.0},
        "latency": {"count": 3, "callbacks": {"p95_ms": 99.0, "callbacks": True}},
        "import_time": {"extra_ms": 151.0},
    }
    return results | changes


def test_goals_compare_each_figure_with_its_limit():
    found = {g.measure: g for g in goals(_results())}
    assert found["throughput, wall: luma-async / raw"].mark == "pass"
    assert found["throughput, client CPU: luma-async / raw"].mark == "MISS"
    assert found["throughput, wall: lumaai / luma-async"].met
    assert found["5,000 waits, batch refresh: RSS growth per task"].met
    assert found["10,000 waits, batch refresh: CPU per task / raw loop"].value == 1.0
    assert found["100,000 waits, batch refresh: unfinished + errors"].met
    assert check_status(list(found.values())) == 1  # two misses
    met = goals(_results(import_time={"extra_ms": 10.0}))
    met = [g for g in met if g.measure != "throughput, client CPU: luma-async / raw"]
    assert check_status(met) == 0
    assert check_status([]) == 1
    assert found["detection, callbacks: p95"].met  # 99 < 100
    assert not found["import luma_async minus import aiohttp"].met
    assert ["5", "import luma_async minus import aiohttp", "151.0 ms", "≤ 150.0 ms", "MISS"] in (
        table_rows(list(found.values()))
    )


def test_a_goal_that_did_not_run_is_not_met():
    found = goals(_results(big=None, followers=[]))
    missing = [g for g in found if g.value is None]
    assert {g.number for g in missing} == {"2", "3"}
    assert len([g for g in missing if g.number == "2"]) == 2  # 5,000 and 10,000
    small = {"count": 1_000, "finished": 1_000, "error_count": 0, "peak_rss_mb": 50.0}
    assert [g.mark for g in goals(_results(big=small)) if g.number == "3"] == ["not run"]
    assert all(g.mark == "not run" and not g.met for g in missing)
    assert Goal("4", "x", 100.0, "<", 100, "ms").mark == "MISS"  # strictly below
    assert Goal("1", "x", 10.0, ">=", 10).met


def test_table_and_numbers_format():
    table = format_table([["a", 1], ["bb", 22]], ["x", "y"])
    assert table.splitlines()[0] == "| x  | y  |"
    assert table.splitlines()[1] == "|----|----|"
    assert fmt(1234.567) == "1,234.57"
    with pytest.raises(ValueError, match="cells"):
        format_table([["a"]], ["x", "y"])
    assert set(machine()) >= {"cpu", "cores", "python"}


def test_the_peak_rss_is_this_process_own():
    assert 0 < rss_mb() <= peak_rss_mb()


def test_importtime_output_is_parsed():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        200 |   tenacity\n"
        "import time:      5000 |     300000 | luma_async\n"
    )
    assert import_time.parse_importtime(stderr) == {"tenacity": 200, "luma_async": 300000}


def test_the_details_table_is_built_from_results():
    client = {"wall_us": 500.0, "cpu_us": 250.0, "wall_ratio_raw": 1.0, "cpu_ratio_raw": 1.0}
    results = _results(
        throughput={
            "per_round": 3000,
            "concurrency": 32,
            "rounds": 7,
            "clients": {"raw aiohttp": client, "luma-async": client},
        },
        big={
            **_watch_run("luma", True, 0, 1.0, 6.0),
            "rss_before_mb": 40.0,
            "rss_growth_kb_per_task": 6.0,
            "wall_s": 9.0,
        },
        latency={
            "count": 3,
            "polling": {"p50_ms": 1.0, "p95_ms": 2.0, "max_ms": math.pi, "interval_ms": 2000.0},
        },
        import_time={
            "extra_ms": 140.0,
            "aiohttp_ms": 300.0,
            "luma_async_ms": 440.0,
            "cumulative_ms": {"luma_async": 250.0},
        },
    )
    rows = bench_main.detail_rows(results)
    assert [
        "1 3,000 GETs x32, 7 rounds",
        "luma-async / raw aiohttp: wall, CPU",
        "1.00x, 1.00x",
    ] in (rows)
    assert any(row[2] == "100 / 0" for row in rows)
    assert any("(0.00)" in row[2] for row in rows)  # p95 2 ms against a 2 s interval


def test_profile_time_is_grouped_by_where_it_is_spent():
    generated = "<cattrs generated structure luma_async._models.Video>"
    assert profiling.bucket(generated) == profiling.bucket("/x/cattrs/converters.py")
    assert profiling.bucket("/work/luma_async/_http.py") == "luma-async"
    assert profiling.bucket("/x/site-packages/aiohttp/client.py") == "aiohttp"
    assert profiling.bucket("~") == "builtins (sockets, isinstance ...)"
    entries = {
        ("/a/luma_async/_http.py", 1, "f"): (1, 1, 0.25, 0.5, {}),
        ("/a/luma_async/_convert.py", 2, "g"): (1, 1, 0.5, 0.5, {}),
        ("/b/aiohttp/client.py", 3, "h"): (1, 1, 1.0, 2.0, {}),
    }
    assert profiling.shares(entries) == {"aiohttp": 1.0, "luma-async": 0.75}
