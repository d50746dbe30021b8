"""The benchmark harness on tiny inputs: wrk output parsing, the result table, discovery.

No servers, no database, no network: the wrk outputs below were captured from real runs.
"""

from __future__ import annotations

import doctest
import types

import pytest

import bench.common
from bench.__main__ import discover, run_module
from bench.common import markdown_table, parse_wrk, row

# Printed by bench.common.WRK_LUA's done() (wrk 4.1.0, 2 threads, 32 connections).
WRK_SCRIPT_OUTPUT = """\
Running 3s test @ http://127.0.0.1:41235
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    38.60ms   30.71ms 239.44ms   77.35%
    Req/Sec   418.49     78.44   580.00     71.67%
  Latency Distribution
     50%   31.80ms
     75%   49.61ms
     90%   77.85ms
     99%  177.21ms
  2488 requests in 3.00s, 27.40MB read
Requests/sec:    829.10
Transfer/sec:      9.13MB
ONEMAP_WRK {"requests": 2488, "duration_us": 3000812, "bytes": 28731392, "p50_us": 31803, \
"p90_us": 77850, "p99_us": 177210, "mean_us": 38602.4, "max_us": 239440, "connect_errors": 0, \
"read_errors": 0, "write_errors": 0, "status_errors": 3, "timeouts": 1}
"""

# Plain `wrk --latency` without a script.
WRK_PLAIN_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/health
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  612.00us  21.07ms   88.12%
    Req/Sec    10.62k     1.01k   12.40k    70.50%
  Latency Distribution
     50%  850.00us
     75%    1.71ms
     90%    2.20ms
     99%    1.20s
  211423 requests in 10.01s, 33.47MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 7
Requests/sec:  21121.80
Transfer/sec:      3.34MB
"""


def test_parse_wrk_script_line() -> None:
    r = parse_wrk(WRK_SCRIPT_OUTPUT)
    assert r.requests == 2488
    assert r.requests_per_s == pytest.approx(2488 / 3.000812)
    assert r.p50_ms == pytest.approx(31.803)
    assert r.p90_ms == pytest.approx(77.85)
    assert r.p99_ms == pytest.approx(177.21)
    assert r.errors == 4  # 3 non-2xx + 1 timeout


def test_parse_wrk_plain_latency_report() -> None:
    r = parse_wrk(WRK_PLAIN_OUTPUT)
    assert r.requests == 211423
    assert r.duration_s == pytest.approx(10.01)
    assert r.requests_per_s == pytest.approx(21121.80)
    assert r.p50_ms == pytest.approx(0.85)  # microseconds converted
    assert r.p99_ms == pytest.approx(1200.0)  # seconds converted
    assert r.errors == 2 + 5 + 7


def test_parse_wrk_rejects_failed_run() -> None:
    with pytest.raises(ValueError, match="neither"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_row_ratio_is_onemap_over_peer() -> None:
    assert row("x", 900.0, "req/s", peer="tipg", peer_value=300.0)["ratio"] == pytest.approx(3.0)
    assert row("x", 900.0, "req/s")["ratio"] is None
    assert row("x", None, "", peer="p", peer_value=1.0)["ratio"] is None


def test_markdown_table() -> None:
    text = markdown_table(
        [
            row("items | bbox", 1234.5, "req/s", peer="tipg", peer_value=411.5, notes="a\nb"),
            row("locate p50", 3.14159, "ms"),
            {"benchmark": "foreign", "unit": "ms", "speed": 7},  # another module's shape
        ]
    )
    lines = text.splitlines()
    assert lines[0] == "| benchmark | peer | OneMap | peer value | OneMap/peer | unit | notes |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2] == "| items \\| bbox | tipg | 1,234 | 412 | 3.00× | req/s | a b |"
    assert lines[3] == "| locate p50 |  | 3.14 |  |  | ms |  |"
    assert lines[4] == "| foreign |  |  |  |  | ms | speed=7 |"
    # Every row has the same number of cells as the heading.
    assert {line.count(" | ") for line in lines if not line.startswith("|-")} == {6}


def test_discover_finds_bench_modules() -> None:
    names = discover()
    assert "bench_features" in names
    assert all(n.startswith("bench_") for n in names)
    assert discover(["features"]) == ["bench_features"]
    with pytest.raises(SystemExit, match="no such benchmark"):
        discover(["no_such_thing"])


def test_run_module_without_run_is_skipped_not_fatal() -> None:
    rows = run_module("bench_empty", ctx=None, load=lambda _: types.ModuleType("bench_empty"))
    assert len(rows) == 1
    assert rows[0]["benchmark"] == "empty"
    assert rows[0]["notes"].startswith("skipped")


def test_run_module_reports_errors() -> None:
    def broken(ctx: object) -> list[dict[str, object]]:
        raise RuntimeError("server did not start")

    mod = types.ModuleType("bench_broken")
    mod.run = broken  # type: ignore[attr-defined]
    rows = run_module("bench_broken", ctx=None, load=lambda _: mod)
    assert rows[0]["notes"] == "ERROR: RuntimeError: server did not start"

    def failing_import(name: str) -> types.ModuleType:
        raise ImportError("no module named shapely_x")

    rows = run_module("bench_x", ctx=None, load=failing_import)
    assert rows[0]["notes"].startswith("ERROR: import failed")


def test_run_module_passes_rows_through() -> None:
    mod = types.ModuleType("bench_ok")
    mod.run = lambda ctx: [row("ok", 1.0, "req/s", notes=str(ctx))]  # type: ignore[attr-defined]
    assert run_module("bench_ok", ctx="CTX", load=lambda _: mod)[0]["notes"] == "CTX"


def test_common_doctests() -> None:
    result = doctest.testmod(bench.common)
    assert result.attempted > 0
    assert result.failed == 0
