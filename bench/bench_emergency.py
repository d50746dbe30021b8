"""Emergency workflow: exposure of a red warning over 10 % of the demo district, and one event
fanned out to 200 SSE clients.

* **exposure**: a risk run whose red cells (H3 res 9) cover the 10 % of the district nearest
  its centre (the dense part) is inserted; OneMap (2 workers) issues a warning from it —
  dissolve the cells, count and list addresses and venues, grids with population shares,
  cameras seeing in, nearest shelters, write it all in one transaction — and answers
  ``GET /analysis/exposure`` for the same run.  The peer is the plain PostGIS way of counting
  the addresses alone: one ``ST_Intersects`` against the whole dissolved area (no
  subdivision), run straight on the database.  Goal: ≤ 1 s.
* **SSE fan-out**: 200 clients hold ``GET /events`` open across the 2 workers; an event is
  committed with :func:`layers.events.record_event`, and the time from the commit to its
  arrival at the last client is measured (best and worst of several rounds).  Goal: ≤ 2 s.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
from typing import Any

from bench.common import BenchContext, BenchError, load_average, row

SHARE = 0.10
RES = 9
ROUNDS = 5
SSE_CLIENTS = 200
SSE_ROUNDS = 5


def _make_run(url: str) -> tuple[int, int]:
    """Insert a done flood run whose red cells cover ``SHARE`` of the district; returns
    (run id, cells)."""
    import h3
    import psycopg
    import shapely

    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT ST_AsBinary(geom), ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) "
            "FROM admin_areas WHERE level = 'district' LIMIT 1"
        ).fetchone()
        if found is None:
            raise BenchError("the database has no district")
        wkb, cx, cy = found
        district = shapely.from_wkb(bytes(wkb))
        cells = h3.geo_to_cells(district.__geo_interface__, RES)
        centre = h3.latlng_to_cell(cy, cx, RES)
        cells = sorted(cells, key=lambda c: (h3.grid_distance(centre, c), c))
        chosen = cells[: max(1, round(len(cells) * SHARE))]
        inserted = conn.execute(
            "INSERT INTO risk_runs (model, status, summary, finished_at) "
            "VALUES ('flood', 'done', '{\"bench\": true}', now()) RETURNING id"
        ).fetchone()
        assert inserted is not None
        run_id = inserted[0]
        with conn.cursor().copy("COPY risk_cells (run_id, h3, res, level, score) FROM STDIN") as cp:
            for c in chosen:
                cp.write_row((run_id, h3.str_to_int(c), RES, 4, 1.0))
    return int(run_id), len(chosen)


def _post(url: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (local http)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get_s(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 (local http)
        resp.read()
        if resp.status != 200:
            raise BenchError(f"GET {url} → {resp.status}")
    return time.perf_counter() - t0


def _peer_count_s(url: str, code: str) -> tuple[float, int]:
    """Plain PostGIS: count addresses intersecting the whole warning area (best of ROUNDS)."""
    import psycopg

    best, n = float("inf"), 0
    with psycopg.connect(url) as conn:
        conn.execute("SET jit = off")
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            got = conn.execute(
                "SELECT count(*) FROM addresses a, warnings w "
                "WHERE w.code = %s AND ST_Intersects(a.geom, w.geom)",
                (code,),
            ).fetchone()
            assert got is not None
            n = got[0]
            best = min(best, time.perf_counter() - t0)
    return best, int(n)


async def _parts_s(url: str, code: str) -> dict[str, float]:
    """Best-of-ROUNDS seconds of each exposure query on the warning's area, straight on the
    database (where the time of an issue goes)."""
    import asyncpg

    from emergency import exposure as ex

    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        wkb = await conn.fetchval("SELECT ST_AsBinary(geom) FROM warnings WHERE code = $1", code)
        queries = {
            "addresses": (ex.ADDRESSES_SQL, (wkb, ex.LIST_LIMIT)),
            "venues": (ex.VENUES_SQL, (wkb, ex.LIST_LIMIT)),
            "grids": (ex.GRIDS_SQL, (wkb,)),
            "cameras": (ex.CAMERAS_SQL, (wkb,)),
            "shelters": (ex.SHELTERS_SQL, (wkb, ex.NEAREST_SHELTERS * 10)),
        }
        out = {}
        for name, (sql, args) in queries.items():
            best = float("inf")
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                await conn.fetch(sql, *args)
                best = min(best, time.perf_counter() - t0)
            out[name] = best
        return out
    finally:
        await conn.close()


async def _sse_round_trip(base: str, url: str, rounds: int) -> list[float]:
    """Seconds from commit to arrival at the slowest of SSE_CLIENTS clients, per round."""
    import psycopg

    from layers.events import record_event

    host, port = base.removeprefix("http://").split(":")
    streams = []
    for _ in range(SSE_CLIENTS):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        streams.append((reader, writer))
    for reader, _ in streams:  # headers + the ": connected" comment
        await asyncio.wait_for(reader.readuntil(b": connected\n\n"), 30)
    await asyncio.sleep(1.0)
    worst: list[float] = []
    try:
        for i in range(rounds):
            marker = f'"bench_round": {i}'.encode()

            async def wait_for(reader: asyncio.StreamReader, marker: bytes = marker) -> float:
                while True:
                    line = await reader.readline()
                    if not line:
                        raise BenchError("an SSE client was disconnected")
                    if marker in line:
                        return time.monotonic()

            waiters = [asyncio.create_task(wait_for(r)) for r, _ in streams]
            await asyncio.sleep(0.05)
            with psycopg.connect(url) as conn:
                record_event(conn, "bench_ping", {"bench_round": i})
                conn.commit()
                committed = time.monotonic()
            arrivals = await asyncio.wait_for(asyncio.gather(*waiters), 30)
            worst.append(max(arrivals) - committed)
            await asyncio.sleep(0.5)
    finally:
        for _, writer in streams:
            writer.close()
    return worst


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    from layers.keys import create_key

    url = ctx.database_url
    run_id, n_cells = _make_run(url)
    key, _ = create_key(url, "bench", "operator")
    server = ctx.start_onemap(workers=2)
    base = server.base_url

    issue_s: list[float] = []
    summary: dict[str, Any] = {}
    code = ""
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        status, body = _post(base + "/warnings", {"run_id": run_id, "level_min": "red"}, key)
        issue_s.append(time.perf_counter() - t0)
        if status != 201:
            raise BenchError(f"POST /warnings → {status}: {body}")
        code = body["id"]
        summary = body["properties"]["exposure"]["summary"]
        status, body = _post(base + f"/warnings/{code}/lift", {}, key)
        if status != 200:
            raise BenchError(f"lift → {status}: {body}")
    _post(base + "/warnings", {"run_id": run_id, "level_min": "red"}, key)
    analysis_url = f"{base}/analysis/exposure?run={run_id}&level_min=red"
    analysis_s = [_get_s(analysis_url) for _ in range(ROUNDS)]
    peer_s, peer_n = _peer_count_s(url, code)
    if peer_n != summary.get("addresses"):
        raise BenchError(
            f"address counts differ: OneMap {summary.get('addresses')}, PostGIS {peer_n}"
        )

    parts = asyncio.run(_parts_s(url, code))
    sse = asyncio.run(_sse_round_trip(base, url, SSE_ROUNDS))
    facts = (
        f"{n_cells} red cells ({summary.get('area_km2')} km²), {summary.get('addresses'):,} "
        f"addresses, {summary.get('venues')} venues, {summary.get('grids')} grids; load "
        f"{load_average()}"
    )
    return [
        row(
            "exposure: issue a red warning (10% of district, full exposure, 1 transaction)",
            statistics.median(issue_s),
            "s",
            peer="PostGIS ST_Intersects(addresses, whole area), count only",
            peer_value=peer_s,
            notes=f"median of {ROUNDS}; best {min(issue_s):.2f} s; goal ≤ 1 s; {facts}",
        ),
        row(
            "exposure: addresses query alone (count + 1000 listed + per grid)",
            parts["addresses"],
            "s",
            peer="PostGIS ST_Intersects(addresses, whole area), count only",
            peer_value=peer_s,
            notes="best of {}; all parts: {}".format(
                ROUNDS, ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items())
            ),
        ),
        row(
            "exposure: GET /analysis/exposure (same area, dissolve cached)",
            statistics.median(analysis_s),
            "s",
            peer="PostGIS ST_Intersects(addresses, whole area), count only",
            peer_value=peer_s,
            notes=f"median of {ROUNDS}; goal ≤ 1 s",
        ),
        row(
            f"SSE: commit → event at all {SSE_CLIENTS} clients (2 workers)",
            max(sse),
            "s",
            notes=f"worst of {SSE_ROUNDS} rounds; best {min(sse) * 1000:.0f} ms; goal ≤ 2 s",
        ),
    ]
