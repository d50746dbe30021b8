"""``/analysis``: exposure of a run's risk cells, CSV of exposed addresses, camera coverage."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from emergency import warnings as wmod
from emergency.areas import Area, area_summary
from emergency.coverage import TARGET_SHARE, camera_coverage
from emergency.exposure import compute_exposure, mask_exposure
from emergency.levels import LEVEL_NAME, parse_level
from geo_service.auth import RoleDep
from geo_service.deps import PoolDep
from geo_service.routers.exports import addresses_csv
from geo_service.state import app_state

router = APIRouter(prefix="/analysis", tags=["analysis"])

#: Dissolved areas kept per worker, keyed by (run, level): a finished run never changes.
AREA_CACHE_SIZE = 32


async def _area(request: Request, conn: Any, run: int, level_min: str) -> tuple[Area, dict]:
    level_n = parse_level(level_min)
    cache: OrderedDict[tuple[int, int], tuple[Area, dict]] = app_state(request).run_area_cache
    key = (run, level_n)
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    value = await wmod.run_area(conn, run, level_n)
    cache[key] = value
    while len(cache) > AREA_CACHE_SIZE:
        cache.popitem(last=False)
    return value


@router.get("/exposure", summary="Who and what lies in a run's cells at or above a level")
async def exposure(
    request: Request,
    pool: PoolDep,
    role: RoleDep,
    run: int = Query(..., ge=1, le=2**63 - 1, description="Risk run id"),
    level_min: str = Query("blue", description="blue, yellow, orange or red"),
    limit: int = Query(1000, ge=0, le=100_000, description="Most addresses/venues listed"),
) -> JSONResponse:
    async with pool.acquire() as conn:
        whole, per_level = await _area(request, conn, run, level_min)
        doc = await compute_exposure(conn, whole.wkb, limit)
    doc["run_id"] = run
    doc["level_min"] = LEVEL_NAME[parse_level(level_min)]
    doc["area"] = area_summary(whole, per_level)
    return JSONResponse(mask_exposure(doc, role))


@router.get(
    "/exposure/addresses.csv",
    summary="Every standard address in a run's cells at or above a level (CSV)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def exposure_addresses(
    request: Request,
    pool: PoolDep,
    run: int = Query(..., ge=1, le=2**63 - 1, description="Risk run id"),
    level_min: str = Query("blue", description="blue, yellow, orange or red"),
) -> StreamingResponse:
    async with pool.acquire() as conn:
        whole, _ = await _area(request, conn, run, level_min)
    name = f"run{run}-{LEVEL_NAME[parse_level(level_min)]}-addresses.csv"
    return addresses_csv(pool, whole.wkb, name)


@router.get(
    "/camera-coverage",
    summary="Share of key sites seen by at least one online camera (overall, per community "
    "and grid) and the key sites none sees",
)
async def coverage(
    pool: PoolDep,
    community: str | None = Query(None, description="Only this community (code)"),
    target: float = Query(TARGET_SHARE, ge=0, le=1, description="Share aimed at"),
) -> JSONResponse:
    async with pool.acquire() as conn:
        return JSONResponse(await camera_coverage(conn, community, target))
