"""OGC API Features items (``limit=100`` + ``bbox``) against tipg, and ``/geo/locate``.

Both servers run with 2 workers on the same database and table (``buildings`` of the demo
city) and are driven by the same wrk settings (32 connections, 2 threads) over the same
random bboxes, in alternating rounds.  ``/geo/locate`` has no peer; its goal is
1,000 requests/s with 2 workers.
"""

from __future__ import annotations

import json
import random
from typing import Any

from bench.common import (
    BenchContext,
    BenchError,
    Server,
    WrkResult,
    http_get,
    load_average,
    row,
    tipg_version,
)

TABLE = "buildings"
LIMIT = 100
N_URLS = 2000
#: bbox side lengths, degrees (about 0.3–2 km at 22.5°N).
BBOX_SIDE_DEG = (0.003, 0.02)
WORKERS = 2
WARMUP_S = 3.0
GOAL_ITEMS_RATIO = 2.0
GOAL_LOCATE_RPS = 1000.0


def bboxes_around(
    centres: list[tuple[float, float]], seed: int = 1
) -> list[tuple[float, float, float, float]]:
    """One box (minx, miny, maxx, maxy; degrees, EPSG:4326) of random size around each centre.

    Boxes are centred on features rather than anywhere in the district, because a map client
    asks for where the data is and a ``limit=100`` page should usually be full.
    """
    rng = random.Random(seed)
    out = []
    for x, y in centres:
        w, h = rng.uniform(*BBOX_SIDE_DEG) / 2, rng.uniform(*BBOX_SIDE_DEG) / 2
        out.append((round(x - w, 6), round(y - h, 6), round(x + w, 6), round(y + h, 6)))
    return out


def random_points(
    extent: tuple[float, float, float, float], n: int, seed: int = 2
) -> list[tuple[float, float]]:
    """``n`` (lon, lat) points in degrees inside ``extent``."""
    rng = random.Random(seed)
    minx, miny, maxx, maxy = extent
    return [
        (round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)) for _ in range(n)
    ]


def _bbox_param(b: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.6f}" for v in b)


def _check_same_answers(
    onemap: Server, tipg: Server, om_paths: list[str], tp_paths: list[str]
) -> str:
    """Both servers answer 200 with the same numberMatched on a sample; returns a note."""
    returned = []
    for om_path, tp_path in list(zip(om_paths, tp_paths, strict=True))[:25]:
        answers = []
        for server, path in ((onemap, om_path), (tipg, tp_path)):
            status, body = http_get(server.base_url + path)
            if status != 200:
                raise BenchError(f"{server.name} {path} → {status}: {body[:300]!r}")
            answers.append(json.loads(body))
        om, tp = answers
        if om["numberMatched"] != tp["numberMatched"]:
            raise BenchError(
                f"the servers disagree on {om_path}: OneMap matched {om['numberMatched']}, "
                f"tipg {tp['numberMatched']}"
            )
        returned.append(om["numberReturned"])
    return f"mean {sum(returned) / len(returned):.0f} features/page (sample of {len(returned)})"


def _best(results: list[WrkResult]) -> WrkResult:
    return max(results, key=lambda r: r.requests_per_s)


def _errors_note(name: str, results: list[WrkResult]) -> list[str]:
    n = sum(r.errors for r in results)
    return [f"{name}: {n} errors/non-2xx"] if n else []


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    extent = ctx.district_bbox
    boxes = bboxes_around(ctx.sample_points(TABLE, N_URLS))
    om_paths = [f"/collections/{TABLE}/items?limit={LIMIT}&bbox={_bbox_param(b)}" for b in boxes]
    tp_paths = [
        f"/collections/public.{TABLE}/items?limit={LIMIT}&bbox={_bbox_param(b)}" for b in boxes
    ]
    locate_paths = [f"/geo/locate?lon={x}&lat={y}" for x, y in random_points(extent, N_URLS)]

    onemap = ctx.start_onemap(WORKERS)
    tipg = ctx.start_tipg(WORKERS, tables=[TABLE])
    sample_note = _check_same_answers(onemap, tipg, om_paths, tp_paths)

    ctx.wrk(onemap, om_paths, WARMUP_S)
    ctx.wrk(tipg, tp_paths, WARMUP_S)
    om_runs: list[WrkResult] = []
    tp_runs: list[WrkResult] = []
    loads: list[str] = []
    for _ in range(ctx.rounds):
        loads.append(load_average())
        om_runs.append(ctx.wrk(onemap, om_paths))
        tp_runs.append(ctx.wrk(tipg, tp_paths))
    tipg.stop()  # leave the CPU to OneMap for /geo/locate

    ctx.wrk(onemap, locate_paths, WARMUP_S)
    loc_runs = []
    for _ in range(ctx.rounds):
        loads.append(load_average())
        loc_runs.append(ctx.wrk(onemap, locate_paths))

    om, tp, loc = _best(om_runs), _best(tp_runs), _best(loc_runs)
    setup = (
        f"{TABLE}, limit={LIMIT}, {N_URLS} bboxes of {BBOX_SIDE_DEG[0]}–{BBOX_SIDE_DEG[1]}° "
        "around random buildings, "
        f"{WORKERS} workers each, wrk -c{ctx.connections} -t{ctx.threads} "
        f"{ctx.duration_s:g} s, best of {ctx.rounds}"
    )
    runs = (
        "req/s per round OneMap "
        + "/".join(f"{r.requests_per_s:.0f}" for r in om_runs)
        + ", tipg "
        + "/".join(f"{r.requests_per_s:.0f}" for r in tp_runs)
        + f"; load avg before rounds {', '.join(loads)}"
    )
    ratio = om.requests_per_s / tp.requests_per_s if tp.requests_per_s else 0.0
    goal = f"goal ≥ {GOAL_ITEMS_RATIO:g}× {'met' if ratio >= GOAL_ITEMS_RATIO else 'NOT met'}"
    errs = _errors_note("OneMap", om_runs) + _errors_note("tipg", tp_runs)
    peer = "tipg " + tipg_version()
    name = "items bbox limit=100"
    loc_goal = "met" if loc.requests_per_s >= GOAL_LOCATE_RPS else "NOT met"
    return [
        row(
            f"{name}: throughput",
            om.requests_per_s,
            "req/s",
            peer=peer,
            peer_value=tp.requests_per_s,
            notes="; ".join([setup, goal, sample_note, runs, *errs]),
        ),
        row(
            f"{name}: p50",
            om.p50_ms,
            "ms",
            peer=peer,
            peer_value=tp.p50_ms,
            notes="lower is better",
        ),
        row(
            f"{name}: p99",
            om.p99_ms,
            "ms",
            peer=peer,
            peer_value=tp.p99_ms,
            notes="lower is better",
        ),
        row(
            "/geo/locate: throughput",
            loc.requests_per_s,
            "req/s",
            notes="; ".join(
                [
                    f"{N_URLS} random points in the district, {WORKERS} workers, "
                    f"best of {ctx.rounds}",
                    f"goal ≥ {GOAL_LOCATE_RPS:,.0f} req/s {loc_goal}",
                    "per round " + "/".join(f"{r.requests_per_s:.0f}" for r in loc_runs),
                    *_errors_note("OneMap", loc_runs),
                ]
            ),
        ),
        row("/geo/locate: p50", loc.p50_ms, "ms"),
        row("/geo/locate: p99", loc.p99_ms, "ms"),
    ]
