"""Vector tiles (MVT) of ``buildings``: OneMap against tipg, a raw PostGIS ceiling, cache hits
and 304s.

Both servers run with 2 workers on the same database and are driven by the same wrk
settings (32 connections, 2 threads) over the same list of tiles around random buildings at
zooms 14–16 (``buildings`` starts at zoom 14 in the catalog: a z13 tile would be an empty
204 for OneMap and a full tile for tipg, so z13 is left out to keep the comparison fair).

* **uncached**: OneMap with its tile cache off (``ONEMAP_TILES_CACHE_MB=0``) vs tipg;
* **ceiling**: the same ``ST_AsMVT`` SQL run straight on PostGIS from 8 psycopg threads
  (no HTTP, no Python per tile) — the most any server on this machine could do;
* **cache hits**: OneMap with its LRU cache warm (every tile of the list cached);
* **304**: each request carries the tile's ETag in ``If-None-Match``.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import (
    WRK_LUA,
    BenchContext,
    BenchError,
    Server,
    WrkResult,
    _spawn,
    ensure_wrk,
    http_get,
    load_average,
    parse_wrk,
    row,
    tipg_version,
)

TABLE = "buildings"
ZOOMS = (14, 15, 16)
N_URLS = 2000
WORKERS = 2
WARMUP_S = 3.0
CEILING_THREADS = 8

#: wrk script sending ``If-None-Match``: lines of the file are ``path<TAB>etag``.
WRK_LUA_304 = r"""
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local paths = {}
local etags = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local p, e = line:match("([^\t]+)\t(.*)")
    if p then
      paths[#paths + 1] = p
      etags[#etags + 1] = e
    end
  end
  i = (tid or 0) * 7919 % #paths
end

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["If-None-Match"] = etags[i]})
end

""" + WRK_LUA[WRK_LUA.index("done = function") :]


def tile_list(ctx: BenchContext) -> list[tuple[int, int, int]]:
    """``N_URLS`` tiles (z, x, y) at zooms 14–16 holding random buildings (same every run)."""
    from tiles.tms import tiles_in_bbox

    rng = random.Random(7)
    out = []
    for lon, lat in ctx.sample_points(TABLE, N_URLS):
        z = rng.choice(ZOOMS)
        out.append(tiles_in_bbox((lon, lat, lon + 1e-9, lat + 1e-9), z, z)[0])
    return out


def start_onemap(ctx: BenchContext, cache_mb: float) -> Server:
    import os

    from bench.common import PROJECT_BIN, REPO

    port = ctx._free_port()
    env = {
        **os.environ,
        "ONEMAP_DATABASE_URL": ctx.database_url,
        "ONEMAP_DATA_DIR": str(ctx.data_dir),
        "ONEMAP_TILES_CACHE_MB": str(cache_mb),
        "ONEMAP_LOG_LEVEL": "WARNING",
    }
    cmd = [str(PROJECT_BIN / "onemap"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(WORKERS)]
    server = _spawn(f"onemap-cache{cache_mb:g}", cmd, env, port, REPO)
    ctx._stack.callback(server.log_path.unlink, missing_ok=True)
    ctx._stack.callback(server.stop)
    server.wait_ready("/styles/onemap.json")
    return server


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (local http)
        etag = resp.headers.get("ETag")
    if not etag:
        raise BenchError(f"no ETag on {url}")
    return etag


def wrk_304(ctx: BenchContext, server: Server, lines: list[str], duration_s: float) -> WrkResult:
    import subprocess

    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="onemap-wrk-") as tmp:
        script = Path(tmp) / "etag.lua"
        script.write_text(WRK_LUA_304)
        url_file = Path(tmp) / "paths.txt"
        url_file.write_text("\n".join(lines) + "\n")
        cmd = [wrk, f"-t{ctx.threads}", f"-c{ctx.connections}", f"-d{round(duration_s)}s"]
        cmd += ["--timeout=10s", "--latency", "-s", str(script), server.base_url, "--"]
        cmd.append(str(url_file))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed: {proc.stderr[-500:]}")
    return parse_wrk(proc.stdout)


def postgis_ceiling(url: str, tiles: list[tuple[int, int, int]], duration_s: float) -> float:
    """Tiles/s of OneMap's own ``ST_AsMVT`` SQL run directly from ``CEILING_THREADS``
    psycopg connections for ``duration_s``."""
    import psycopg

    from layers.catalog import CATALOG
    from layers.sql import to_psycopg
    from tiles.mvt import vector_query
    from tiles.tms import check_tile

    layer = CATALOG[TABLE]
    queries = []
    for z, x, y in tiles:
        q = vector_query((layer,), check_tile(z, x, y), "viewer")
        assert q is not None
        queries.append(to_psycopg(*q))
    done = [0] * CEILING_THREADS
    stop = time.monotonic() + duration_s

    def work(k: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            i = k * 7919 % len(queries)
            while time.monotonic() < stop:
                conn.execute(*queries[i]).fetchone()
                i = (i + 1) % len(queries)
                done[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(CEILING_THREADS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def _best(results: list[WrkResult]) -> WrkResult:
    return max(results, key=lambda r: r.requests_per_s)


def _errors(name: str, results: list[WrkResult]) -> list[str]:
    n = sum(r.errors for r in results)
    return [f"{name}: {n} errors/non-2xx"] if n else []


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    tiles = tile_list(ctx)
    om_paths = [f"/tiles/{TABLE}/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    tp_paths = [
        f"/collections/public.{TABLE}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles
    ]
    loads: list[str] = []

    # 1. Uncached OneMap vs tipg, alternating rounds.
    onemap = start_onemap(ctx, cache_mb=0)
    tipg = ctx.start_tipg(WORKERS, tables=[TABLE])
    for server, path in ((onemap, om_paths[0]), (tipg, tp_paths[0])):
        status, body = http_get(server.base_url + path)
        if status != 200 or not body:
            raise BenchError(f"{server.name} {path} → {status}")
    ctx.wrk(onemap, om_paths, WARMUP_S)
    ctx.wrk(tipg, tp_paths, WARMUP_S)
    om_runs: list[WrkResult] = []
    tp_runs: list[WrkResult] = []
    for _ in range(ctx.rounds):
        loads.append(load_average())
        om_runs.append(ctx.wrk(onemap, om_paths))
        tp_runs.append(ctx.wrk(tipg, tp_paths))
    tipg.stop()
    onemap.stop()

    # 2. Raw PostGIS ceiling (same SQL, no HTTP).
    loads.append(load_average())
    ceiling = postgis_ceiling(ctx.database_url, tiles, ctx.duration_s)

    # 3. Cache hits and 304s on a OneMap with its cache on.
    cached = start_onemap(ctx, cache_mb=256)
    ctx.wrk(cached, om_paths, max(WARMUP_S, 10.0))  # fills both workers' caches
    hit_runs = []
    for _ in range(ctx.rounds):
        loads.append(load_average())
        hit_runs.append(ctx.wrk(cached, om_paths))
    unique = sorted(set(om_paths))
    etag_lines = [f"{p}\t{etag_of(cached.base_url + p)}" for p in unique]
    nm_runs = []
    for _ in range(ctx.rounds):
        loads.append(load_average())
        nm_runs.append(wrk_304(ctx, cached, etag_lines, ctx.duration_s))
    cached.stop()

    om, tp, hit, nm = _best(om_runs), _best(tp_runs), _best(hit_runs), _best(nm_runs)
    peer = "tipg " + tipg_version()
    setup = (
        f"{TABLE} MVT, {N_URLS} tiles z{ZOOMS[0]}–{ZOOMS[-1]} around random buildings, "
        f"{WORKERS} workers each, wrk -c{ctx.connections} -t{ctx.threads} "
        f"{ctx.duration_s:g} s, best of {ctx.rounds}"
    )
    per_round = (
        "req/s per round OneMap "
        + "/".join(f"{r.requests_per_s:.0f}" for r in om_runs)
        + ", tipg "
        + "/".join(f"{r.requests_per_s:.0f}" for r in tp_runs)
        + f"; load avg {', '.join(loads)}"
    )
    return [
        row(
            "MVT buildings uncached: throughput",
            om.requests_per_s,
            "req/s",
            peer=peer,
            peer_value=tp.requests_per_s,
            notes="; ".join(
                [setup, "OneMap tile cache off", per_round, *_errors("OneMap", om_runs)]
                + _errors("tipg", tp_runs)
            ),
        ),
        row("MVT buildings uncached: p50", om.p50_ms, "ms", peer=peer, peer_value=tp.p50_ms),
        row("MVT buildings uncached: p99", om.p99_ms, "ms", peer=peer, peer_value=tp.p99_ms),
        row(
            "MVT buildings uncached vs raw PostGIS ceiling",
            om.requests_per_s,
            "req/s",
            peer="PostGIS ST_AsMVT direct",
            peer_value=ceiling,
            notes=f"same SQL from {CEILING_THREADS} psycopg threads, no HTTP",
        ),
        row(
            "MVT buildings cache hits: throughput",
            hit.requests_per_s,
            "req/s",
            peer=peer + " (uncached)",
            peer_value=tp.requests_per_s,
            notes="; ".join(
                [
                    "OneMap LRU warm (256 MB per worker)",
                    f"p50 {hit.p50_ms:.1f} ms, p99 {hit.p99_ms:.1f} ms",
                    *_errors("OneMap", hit_runs),
                ]
            ),
        ),
        row(
            "MVT buildings 304 Not Modified: throughput",
            nm.requests_per_s,
            "req/s",
            peer=peer + " (uncached)",
            peer_value=tp.requests_per_s,
            notes="; ".join(
                [
                    f"If-None-Match with each tile's ETag ({len(unique)} distinct tiles)",
                    f"p50 {nm.p50_ms:.1f} ms, p99 {nm.p99_ms:.1f} ms",
                    # wrk counts 3xx as success; errors here are sockets/timeouts/4xx/5xx
                    *_errors("OneMap", nm_runs),
                ]
            ),
        ),
    ]
