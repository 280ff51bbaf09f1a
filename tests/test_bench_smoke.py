"""The benchmark package imports and its pure helpers work (no timings: ``nox -s bench``)."""

import math

import pytest

from bench import __main__ as bench_main
from bench import import_time, latency, many_watches, request_cost, server
from bench.stats import fmt, format_table, ideal_looks, machine, median, percentile, ratio
from luma_async import PollPolicy


def test_the_benchmark_modules_import():
    assert server.OFFICIAL_PREFIX == "/dream-machine/v1"
    assert callable(request_cost.run) and callable(latency.run) and callable(many_watches.run)


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


def test_table_and_numbers_format():
    table = format_table([["a", 1], ["bb", 22]], ["x", "y"])
    assert table.splitlines()[0] == "| x  | y  |"
    assert table.splitlines()[1] == "|----|----|"
    assert fmt(1234.567) == "1,234.57"
    with pytest.raises(ValueError, match="cells"):
        format_table([["a"]], ["x", "y"])
    assert set(machine()) >= {"cpu", "cores", "python"}


def test_importtime_output_is_parsed():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        200 |   tenacity\n"
        "import time:      5000 |     300000 | luma_async\n"
    )
    assert import_time.parse_importtime(stderr) == {"tenacity": 200, "luma_async": 300000}


def test_the_results_table_is_built_from_results():
    client = {"wall_us": 500.0, "cpu_us": 250.0, "wall_ratio": 1.0, "cpu_ratio": 1.0}
    watch = {
        "count": 10,
        "batch": True,
        "finished": 10,
        "errors": [],
        "peak_rss_mb": 60.0,
        "rss_before_mb": 40.0,
        "cpu_ms_per_task": 0.5,
        "gets_per_task": 0.0,
        "batch_posts_per_task": 0.1,
        "looks_per_task": 2.1,
        "ideal_looks_per_task": 2,
        "lag_p50_s": 0.2,
        "lag_p95_s": 0.5,
        "wall_s": 6.0,
    }
    results = {
        "request_cost": {"clients": {"raw aiohttp": client, "luma-async": client}},
        "watches": [watch],
        "latency": {"count": 3, "polling": {"p50_ms": 1.0, "p95_ms": 2.0, "max_ms": math.pi}},
        "import_time": {"wall_ms": 300.0, "cumulative_ms": {"luma_async": 250.0}},
    }
    rows = bench_main.rows(results)
    assert [
        "1 one GET",
        "luma-async / raw aiohttp: wall, CPU (median ratio)",
        "1.00x, 1.00x",
        "<= 1.10x",
    ] in rows
    assert any(row[2] == "10 / 0" for row in rows)
