"""``/incidents``: report at a point (operator) → grid, community and grid worker; list."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from emergency.incidents import (
    NewIncident,
    list_incidents,
    mask_incident,
    report_incident,
    report_incident_once,
    set_status,
)
from geo_service.auth import OperatorDep, RoleDep
from geo_service.deps import PoolDep
from geo_service.errors import BadRequest
from geo_service.features.params import parse_float
from geo_service.routers.common import GEOJSON, GEOJSON_200, actor_of, geojson

router = APIRouter(prefix="/incidents", tags=["incidents"])


class PointIn(BaseModel):
    type: str = Field(..., pattern="^Point$")
    coordinates: list[float] = Field(..., min_length=2, max_length=3)


class IncidentIn(BaseModel):
    """An incident at ``lon``/``lat`` (degrees, EPSG:4326) or a GeoJSON Point ``geometry``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(..., max_length=50, description="e.g. flood, landslide, fallen_tree")
    description: str | None = Field(None, max_length=2000)
    lon: float | None = None
    lat: float | None = None
    geometry: PointIn | None = None
    reporter: str | None = Field(None, max_length=200, description="Default: the key's name")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(..., description="open, in_progress or closed")


@router.post(
    "",
    status_code=201,
    summary="Report an incident (operator); assigned to its grid",
    response_class=Response,
    responses={
        201: {"content": {GEOJSON: {}}},
        200: {"description": "A replay of an Idempotency-Key: the incident reported then"},
        409: {"description": "The Idempotency-Key was used for a different report"},
    },
)
async def report(
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    body: IncidentIn,
    idempotency_key: str | None = Header(
        None,
        max_length=200,
        description="Any unique string (e.g. a UUID) per report: resending the same report "
        "with it (a retry after a lost answer) returns the first incident with 200 instead "
        "of creating another; for 24 h, per API key",
    ),
) -> JSONResponse:
    if body.geometry is not None:
        lon, lat = body.geometry.coordinates[0], body.geometry.coordinates[1]
    elif body.lon is not None and body.lat is not None:
        lon, lat = body.lon, body.lat
    else:
        raise BadRequest("give lon and lat, or a GeoJSON Point geometry", "invalid_input")
    inc = NewIncident(body.kind, lon, lat, body.description, body.reporter)
    actor = actor_of(request, caller)
    async with pool.acquire() as conn:
        if idempotency_key is None:
            feature, created = await report_incident(conn, inc, actor), True
        else:
            feature, created = await report_incident_once(conn, inc, actor, idempotency_key)
    return geojson(mask_incident(feature, caller.role), 201 if created else 200)


@router.get(
    "",
    summary="Incidents, newest first, with filters (GeoJSON)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def list_(
    pool: PoolDep,
    role: RoleDep,
    status: str | None = Query(None, description="open, in_progress or closed"),
    kind: str | None = Query(None),
    grid_code: str | None = Query(None),
    community_code: str | None = Query(None),
    since: dt.datetime | None = Query(None, description="reported at or after (ISO time)"),
    until: dt.datetime | None = Query(None, description="reported before (ISO time)"),
    bbox: str | None = Query(None, description="west,south,east,north in degrees"),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=10**9),
) -> JSONResponse:
    box = None
    if bbox:
        parts = bbox.split(",")
        if len(parts) != 4:
            raise BadRequest("bbox must be west,south,east,north", "invalid_bbox")
        w, s, e, n = (parse_float("bbox", p, -180, 180) for p in parts)
        if not (w <= e and s <= n and -90 <= s and n <= 90):
            raise BadRequest("bbox must be west,south,east,north", "invalid_bbox")
        box = (w, s, e, n)
    async with pool.acquire() as conn:
        fc = await list_incidents(
            conn,
            status=status,
            kind=kind,
            grid_code=grid_code,
            community_code=community_code,
            since=since,
            until=until,
            bbox=box,
            limit=limit,
            offset=offset,
        )
    fc["features"] = [mask_incident(f, role) for f in fc["features"]]
    return geojson(fc)


@router.post(
    "/{code}/status",
    summary="Move an incident to open, in_progress or closed",
    response_class=Response,
    responses=GEOJSON_200,
)
async def status(
    code: str, request: Request, pool: PoolDep, caller: OperatorDep, body: StatusIn
) -> JSONResponse:
    async with pool.acquire() as conn:
        await set_status(conn, code, body.status, actor_of(request, caller))
        fc = await list_incidents(conn, code=code)
    return geojson(mask_incident(fc["features"][0], caller.role))
