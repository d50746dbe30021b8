"""``/stats``: the big screen's KPIs and one grid's figures.

The summary is cached per worker for a few seconds and dropped as soon as a layer it
counts changes (layer versions from LISTEN/NOTIFY), so a wall of screens polling it costs
one set of queries per change.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from emergency.incidents import kpis
from emergency.stats import grid_stats, summary
from geo_service.auth import RoleDep
from geo_service.deps import PoolDep, StateDep
from layers.catalog import CATALOG

router = APIRouter(prefix="/stats", tags=["stats"])

#: Seconds a summary is reused while no layer changes (incidents "today", runs, expiry).
SUMMARY_TTL_S = 5.0


@router.get("/summary", summary="KPIs: layer counts, active warnings, exposure, cameras, …")
async def stats_summary(state: StateDep, pool: PoolDep) -> JSONResponse:
    versions = state.layer_versions
    key = tuple(versions.version(layer.table) if versions else 0 for layer in CATALOG.values())
    cache: dict[str, Any] = state.stats_cache
    hit = cache.get("summary")
    if hit and hit[0] == key and time.monotonic() - hit[1] < SUMMARY_TTL_S:
        return JSONResponse(hit[2])
    async with pool.acquire() as conn:
        body = await summary(conn)
    cache["summary"] = (key, time.monotonic(), body)
    return JSONResponse(body)


@router.get("/grids/{code}", summary="One grid: worker (by role), counts, coverage, warnings")
async def stats_grid(code: str, pool: PoolDep, role: RoleDep) -> JSONResponse:
    async with pool.acquire() as conn:
        return JSONResponse(await grid_stats(conn, code, role))


@router.get(
    "/incidents",
    summary="智慧报表: incidents per grid, community, kind or department — reported, closed, "
    "on-time rate, open past the deadline, median hours to close",
)
async def stats_incidents(
    pool: PoolDep,
    by: str = Query("grid", description="grid, community, kind, department or all"),
    since: dt.datetime | None = Query(None, description="reported at or after (ISO time)"),
    until: dt.datetime | None = Query(None, description="reported before (ISO time)"),
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await kpis(conn, by, since, until)
