"""Soak: 60 s at 64 connections over a mix of endpoints, errors, p99 and memory growth.

One OneMap with 2 workers on the demo city serves a shuffled list of requests:
vector tiles at zooms 12–16 (40 %), feature pages by bbox (20 %), ``/geo/locate``
(20 %) and ``/geo/geocode`` of real standard addresses (20 %).  After a warm-up that
goes through the whole list (so caches reach their steady size), the resident memory of
the server's processes is read, the soak runs, and it is read again.

Goals: zero errors (socket errors, timeouts, 4xx/5xx), p99 reported, memory growth under
10 % over the soak.  ``ONEMAP_BENCH_SOAK_S`` changes the soak's length (default 60).

Then the heavy mix of an outside probe, as long again: 64 connections cycling through
whole pages of 10,000 features (``limit=10000``), vector tiles and geocoding, while
``/health`` is asked every quarter second.  Goals: every ``/health`` answer 200 (its check
has its own database connection, so a saturated pool is not "down") and no 5xx (counted
from the server's access log, since wrk lumps every non-2xx together).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    BenchContext,
    BenchError,
    child_pids,
    http_get,
    load_average,
    row,
    run_wrk,
)

CONNECTIONS = 64
WARMUP_S = 20.0
N_PATHS = 4000
#: Seconds between two /health requests during the heavy mix.
HEALTH_EVERY_S = 0.25


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and all its descendants, from ``/proc``."""
    total_kb = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
            todo += child_pids(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_kb / 1024


def soak_paths(ctx: BenchContext) -> list[str]:
    """The shuffled request mix (the same every run)."""
    from tiles.tms import tiles_in_bbox

    rng = random.Random(11)
    n = N_PATHS // 5
    tiles = []
    for lon, lat in ctx.sample_points("buildings", 2 * n, seed="soak-tiles"):
        z = rng.choice((12, 13, 14, 15, 16))
        layers = rng.choice(("buildings", "grids,roads,rivers", "addresses,venues", "grids"))
        _, x, y = tiles_in_bbox((lon, lat, lon + 1e-9, lat + 1e-9), z, z)[0]
        tiles.append(f"/tiles/{layers}/{z}/{x}/{y}.mvt")
    items, locate = [], []
    for lon, lat in ctx.sample_points("addresses", n, seed="soak-points"):
        d = rng.uniform(0.001, 0.004)
        box = f"{lon - d:.6f},{lat - d:.6f},{lon + d:.6f},{lat + d:.6f}"
        items.append(f"/collections/addresses/items?bbox={box}&limit=50")
        locate.append(f"/geo/locate?lon={lon:.6f}&lat={lat:.6f}")
    geocode = [f"/geo/geocode?q={quote(a)}" for a in _addresses(ctx, n)]
    paths = tiles + items + locate + geocode
    rng.shuffle(paths)
    return paths


def _addresses(ctx: BenchContext, n: int) -> list[str]:
    import psycopg

    with psycopg.connect(ctx.database_url) as conn:
        rows = conn.execute(
            "SELECT full_address FROM addresses ORDER BY md5(id::text || 'soak') LIMIT %s", (n,)
        ).fetchall()
    if not rows:
        raise BenchError("no addresses in the bench database")
    return [str(r[0]) for r in rows]


def heavy_paths(paths: list[str]) -> list[str]:
    """The probe's mix: one whole 10,000-feature page for every tile and geocode request."""
    tiles = [p for p in paths if p.startswith("/tiles/")][:200]
    geocode = [p for p in paths if p.startswith("/geo/geocode")][:200]
    pages = [
        f"/collections/{layer}/items?limit=10000&offset={off}"
        for layer in ("addresses", "buildings")
        for off in (0, 10_000, 20_000)
    ]
    out: list[str] = []
    for i in range(max(len(tiles), len(geocode))):
        out.append(pages[i % len(pages)])
        out += tiles[i : i + 1] + geocode[i : i + 1]
    return out


class HealthPoller:
    """Ask ``/health`` every :data:`HEALTH_EVERY_S` seconds in a thread; status 0 means no
    answer within 5 s."""

    def __init__(self, base_url: str):
        self.url = base_url + "/health"
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = http_get(self.url, timeout_s=5)
            except OSError:
                status = 0
            self.statuses[status] += 1
            self._stop.wait(HEALTH_EVERY_S)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def access_log_statuses(log_path: Path, offset: int) -> Counter[int]:
    """Statuses of the access-log lines written to ``log_path`` after byte ``offset``."""
    out: Counter[int] = Counter()
    with log_path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"msg": "request"' not in line:
                continue
            try:
                out[int(json.loads(line)["status"])] += 1
            except (ValueError, KeyError):
                continue
    return out


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    soak_s = float(os.environ.get("ONEMAP_BENCH_SOAK_S", "60"))
    paths = soak_paths(ctx)
    server = ctx.start_onemap(workers=2)
    for p in (paths[0], "/geo/geocode?q=" + quote("测试")):
        status, _ = http_get(server.base_url + p, timeout_s=30)
        if status >= 500:
            raise BenchError(f"{p} → {status}")
    warm = run_wrk(server.base_url, paths, duration_s=WARMUP_S, connections=CONNECTIONS, threads=2)
    load_before = load_average()
    rss_before = tree_rss_mb(server.proc.pid)
    soak = run_wrk(server.base_url, paths, duration_s=soak_s, connections=CONNECTIONS, threads=2)
    rss_after = tree_rss_mb(server.proc.pid)
    heavy = heavy_paths(paths)
    offset = server.log_path.stat().st_size
    t0 = time.monotonic()
    with HealthPoller(server.base_url) as health:
        probe = run_wrk(
            server.base_url,
            heavy,
            duration_s=soak_s,
            connections=CONNECTIONS,
            threads=2,
            timeout_s=60,
        )
    probe_s = time.monotonic() - t0
    time.sleep(0.5)  # the last access-log lines
    statuses = access_log_statuses(server.log_path, offset)
    server.stop()
    n_5xx = sum(n for st, n in statuses.items() if st >= 500)
    not_ok = sum(n for st, n in health.statuses.items() if st != 200)
    health_codes = ", ".join(f"{st}×{n}" for st, n in sorted(health.statuses.items()))
    server_codes = ", ".join(f"{st}×{n}" for st, n in sorted(statuses.items()))
    growth = (rss_after - rss_before) / rss_before * 100 if rss_before else float("nan")
    mix = f"{len(paths):,} requests: tiles 40 %, items 20 %, locate 20 %, geocode 20 %"
    conditions = (
        f"{soak_s:g} s, wrk -c{CONNECTIONS} -t2, 2 workers, after a {WARMUP_S:g} s warm-up "
        f"({warm.requests:,} requests, {warm.errors} errors); load avg {load_before} → "
        f"{load_average()}"
    )
    return [
        row(
            "soak mixed endpoints: errors",
            float(soak.errors),
            "errors",
            notes=f"goal 0; {soak.requests:,} requests; {mix}; {conditions}",
        ),
        row("soak mixed endpoints: throughput", soak.requests_per_s, "req/s"),
        row(
            "soak mixed endpoints: p50 / p99",
            soak.p99_ms,
            "ms (p99)",
            notes=f"p50 {soak.p50_ms:.1f} ms, p90 {soak.p90_ms or 0:.1f} ms",
        ),
        row(
            "soak mixed endpoints: memory growth",
            growth,
            "%",
            notes=f"goal < 10 %; server processes' RSS {rss_before:.0f} MB → {rss_after:.0f} MB",
        ),
        row(
            "probe heavy mix: /health answers not 200",
            float(not_ok),
            "answers",
            notes=f"goal 0; /health every {HEALTH_EVERY_S:g} s for {probe_s:.0f} s: "
            f"{health_codes}; mix: 10,000-feature pages, tiles, geocode, wrk -c{CONNECTIONS}",
        ),
        row(
            "probe heavy mix: 5xx responses",
            float(n_5xx),
            "responses",
            notes=f"goal 0; {probe.requests:,} requests, {probe.errors} wrk errors; "
            f"server statuses {server_codes}",
        ),
        row(
            "probe heavy mix: p50 / p99",
            probe.p99_ms,
            "ms (p99)",
            notes=f"p50 {probe.p50_ms:.1f} ms; {probe.requests_per_s:.1f} req/s",
        ),
    ]
