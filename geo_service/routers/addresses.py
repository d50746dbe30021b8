"""``/geo``: standard-address parsing, geocoding (single and batch) and reverse geocoding.

The address index (the table's names; the rows stay in PostgreSQL) lives in the worker's
state (``AppState.address_index``) and is reloaded when the ``addresses`` or
``admin_areas`` layer version changes (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from geo_service.auth import RoleDep
from geo_service.deps import CatalogDep, PoolDep
from geo_service.errors import ApiError, BadRequest
from geo_service.features.params import parse_lonlat
from geo_service.features.spatial import nearest_address
from geo_service.state import AppState, app_state
from layers.addresses import AddressIndex, default_gazetteer, parse
from layers.addresses.normalise import CONTROL
from layers.addresses.parse import MAX_CHARS

router = APIRouter(prefix="/geo", tags=["addresses"])
log = logging.getLogger("onemap.geocode")
MAX_BATCH = 10_000


async def _load(state: AppState) -> AddressIndex:
    lv = state.layer_versions
    version = (lv.version("addresses"), lv.version("admin_areas")) if lv else (0, 0)
    assert state.pool is not None, "address index asked for outside the app's lifespan"
    async with state.pool.acquire() as conn:
        index = await AddressIndex.load_async(conn, default_gazetteer())
    state.address_index = (version, index)
    return index


async def _reload(state: AppState) -> None:
    try:
        await _load(state)
    except Exception as exc:  # the next request after the next change tries again
        log.warning("address index not reloaded: %r", exc)


async def address_index(state: AppState) -> AddressIndex:
    """The app's address index. When the address or admin layers change, the current one
    keeps answering while one background task loads the new one (the rows are looked up
    in the database anyway; only new names wait for it)."""
    lv = state.layer_versions
    version = (lv.version("addresses"), lv.version("admin_areas")) if lv else (0, 0)
    cached = state.address_index
    if cached is not None:
        if cached[0] != version and (state.address_reload is None or state.address_reload.done()):
            state.address_reload = asyncio.create_task(_reload(state), name="onemap-address-reload")
        return cached[1]
    async with state.address_index_lock:
        if state.address_index is not None:
            return state.address_index[1]
        return await _load(state)


async def warm_address_index(state: AppState, versions_timeout_s: float = 10.0) -> None:
    """Load the index when a worker starts, so its first geocode does not wait for it (a
    province's names take seconds), once the layer versions are known (so the first
    request does not load it again). A failure is logged; the first request retries."""
    if state.layer_versions is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.layer_versions.connected.wait(), versions_timeout_s)
    try:
        index = await address_index(state)
    except Exception as exc:  # the request path reports it to the caller
        log.warning("address index not loaded at start-up: %r", exc)
        return
    log.info("address index loaded", extra={"names": index.names})


async def get_address_index(request: Request) -> AddressIndex:
    return await address_index(app_state(request))


IndexDep = Annotated[AddressIndex, Depends(get_address_index)]


def _check_query(q: str | None) -> str:
    if q is None or not CONTROL.sub("", q).strip():
        raise BadRequest("q: an address is required", code="empty_query")
    if len(q) > MAX_CHARS:
        raise BadRequest(f"q: at most {MAX_CHARS} characters", code="query_too_long")
    return q


@router.get("/parse", summary="Parse a Chinese address into its components")
async def geo_parse(
    index: IndexDep, q: str | None = Query(None, description="Free-text address")
) -> JSONResponse:
    p = parse(_check_query(q), index.gazetteer)
    return JSONResponse({"query": q, "normalised": p.normalised, "components": p.as_dict()})


@router.get("/geocode", summary="Geocode one address (scored cascade)")
async def geo_geocode(
    index: IndexDep,
    pool: PoolDep,
    q: str | None = Query(None, description="Free-text address or code"),
) -> JSONResponse:
    """``match_level`` is room/building/number/road/community/street/district/none;
    ``score`` is 0–1; lon/lat in degrees (EPSG:4326)."""
    query = _check_query(q)
    (result,) = await index.geocode_many_async(pool, [query])
    body = result.as_dict()
    body["components"] = result.parsed
    return JSONResponse(body)


class GeocodeBatch(BaseModel):
    addresses: list[Any]


@router.post("/geocode", summary=f"Geocode up to {MAX_BATCH} addresses")
async def geo_geocode_batch(index: IndexDep, pool: PoolDep, body: GeocodeBatch) -> JSONResponse:
    if len(body.addresses) > MAX_BATCH:
        raise ApiError(413, "too_many_addresses", f"at most {MAX_BATCH} addresses per request")
    # a lone surrogate (JSON allows the escape) could not be echoed back as UTF-8
    queries = [
        a[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8") if isinstance(a, str) else ""
        for a in body.addresses
    ]
    results = await index.geocode_many_async(pool, queries)
    return JSONResponse({"results": [r.as_dict() for r in results], "count": len(results)})


@router.get("/reverse", summary="Nearest standard address to a point")
async def geo_reverse(
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    lon: str | None = Query(None, description="Longitude, degrees (EPSG:4326)"),
    lat: str | None = Query(None, description="Latitude, degrees (EPSG:4326)"),
) -> JSONResponse:
    """The nearest address by exact spheroidal distance (``distance_m``, metres) among
    the 16 nearest by planar KNN, with its admin levels and grid (the query of
    ``/geo/locate``'s ``nearest_address``)."""
    x, y = parse_lonlat(lon, lat)
    async with pool.acquire() as conn:
        found = await nearest_address(conn, catalog, role, x, y)
    if found is None:
        return JSONResponse({"match_level": "none", "address": None})
    address = {**found["address"], "lon": found["lon"], "lat": found["lat"]}
    return JSONResponse(
        {"match_level": "nearest", "distance_m": found["distance_m"], "address": address}
    )
