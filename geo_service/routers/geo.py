"""``/geo``: locate a point, nearest features, features inside or touching a geometry.

Sensitive properties (grid workers, contacts) are omitted for roles below the layer's
``sensitive_role``, as in the OGC API Features routes.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import shapely
import shapely.geometry
import shapely.validation
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from geo_service.auth import CallerDep, RoleDep
from geo_service.deps import CatalogDep, PoolDep
from geo_service.errors import ApiError, BadRequest
from geo_service.features.cql import MAX_ANONYMOUS_FILTER_VERTICES
from geo_service.features.params import parse_float, parse_int, parse_lonlat
from geo_service.features.spatial import MAX_VERTICES, locate, nearby_sql, within_sql
from geo_service.routers.common import (
    GEOJSON_200,
    JSON,
    feature_collection_text,
    geojson_text,
    readable_layer,
)

router = APIRouter(prefix="/geo", tags=["geo"])

DEFAULT_RADIUS_M = 1000.0
MAX_RADIUS_M = 50_000.0
MAX_NEARBY = 1000
MAX_WITHIN = 10_000
#: Largest accepted request body of POST /geo/within (bytes).
MAX_BODY_BYTES = 8 * 1024 * 1024


@router.get("/locate", summary="Admin hierarchy, grid and nearest standard address at a point")
async def geo_locate(
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    lon: str | None = Query(None, description="Longitude, degrees (EPSG:4326)"),
    lat: str | None = Query(None, description="Latitude, degrees (EPSG:4326)"),
) -> JSONResponse:
    """``admin`` holds district/street/community (null where none contains the point);
    ``nearest_address.distance_m`` is the spheroidal distance in metres."""
    x, y = parse_lonlat(lon, lat)
    async with pool.acquire() as conn:
        body = await locate(conn, catalog, role, x, y)
    return JSONResponse(body)


@router.get(
    "/nearby",
    summary="Nearest features of a layer, with their distance in metres",
    response_class=Response,
    responses=GEOJSON_200,
)
async def geo_nearby(
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    layer: str = Query(..., description="Collection id"),
    lon: str | None = Query(None, description="Longitude, degrees (EPSG:4326)"),
    lat: str | None = Query(None, description="Latitude, degrees (EPSG:4326)"),
    radius: str | None = Query(
        None, description="Search radius in metres (default 1000, max 50000)"
    ),
    limit: str | None = Query(None, description=f"Most features (default 10, max {MAX_NEARBY})"),
    category: str | None = Query(None, description="Only this category (layers with `category`)"),
) -> Response:
    lyr = readable_layer(catalog, layer, role)
    x, y = parse_lonlat(lon, lat)
    radius_m = (
        DEFAULT_RADIUS_M if radius in (None, "") else parse_float("radius", radius, 0, MAX_RADIUS_M)
    )
    n = parse_int("limit", limit, 10, 1, MAX_NEARBY)
    if category is not None:
        lyr.get_property("category")  # UnknownProperty: 400 naming it
    props = list(lyr.visible_properties(role))
    sql, values = nearby_sql(lyr, props, x, y, radius_m, n, category)
    async with pool.acquire() as conn:
        rows = await conn.fetch(sql, *values)
    head = {"layer": lyr.id, "center": [x, y], "radius_m": radius_m, "numberReturned": len(rows)}
    return geojson_text(feature_collection_text(head, [r[0] for r in rows]))


class WithinRequest(BaseModel):
    """Body of ``POST /geo/within``."""

    geometry: dict[str, Any] = Field(..., description="GeoJSON geometry in EPSG:4326 (lon/lat)")
    layers: list[str] = Field(..., min_length=1, max_length=50, description="Collection ids")
    predicate: Literal["intersects", "within"] = "intersects"
    limit: int = Field(1000, ge=1, le=MAX_WITHIN, description="Most features returned per layer")


class InvalidGeometry(ApiError):
    def __init__(self, detail: str):
        super().__init__(422, "invalid_geometry", detail)


class TooLarge(ApiError):
    def __init__(self, detail: str):
        super().__init__(413, "payload_too_large", detail)


def check_geometry(geojson: dict[str, Any], max_vertices: int = MAX_VERTICES) -> shapely.Geometry:
    """A shapely geometry from GeoJSON, refusing malformed, invalid or oversized input."""
    try:
        geom = shapely.geometry.shape(geojson)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise InvalidGeometry(f"invalid GeoJSON geometry: {exc or type(exc).__name__}") from None
    if geom.is_empty:
        raise InvalidGeometry("the geometry is empty")
    n = int(shapely.get_num_coordinates(geom))
    if n > max_vertices:
        raise TooLarge(
            f"the geometry has {n} vertices; at most {max_vertices} are accepted"
            + (" without an API key" if max_vertices < MAX_VERTICES else "")
        )
    x0, y0, x1, y1 = geom.bounds
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise InvalidGeometry("coordinates must be lon/lat degrees within ±180/±90 (EPSG:4326)")
    if not geom.is_valid:
        raise InvalidGeometry(f"invalid geometry: {shapely.validation.explain_validity(geom)}")
    return geom


async def _read_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(f"request body larger than {MAX_BODY_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise TooLarge(f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "request body must be a JSON object")
    return data


@router.post(
    "/within",
    summary="Features of some layers inside / intersecting a GeoJSON geometry",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": WithinRequest.model_json_schema()}},
        }
    },
)
async def geo_within(
    request: Request, pool: PoolDep, catalog: CatalogDep, caller: CallerDep
) -> Response:
    """Per layer: a GeoJSON FeatureCollection (at most ``limit`` features, by id) with
    ``numberMatched`` (exact) and ``numberReturned``. Callers without an API key may send
    geometries of at most 1,000 vertices (with a key 100,000)."""
    role = caller.role
    data = await _read_body(request)
    try:
        body = WithinRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    anonymous = caller.key_prefix is None
    geom = check_geometry(
        body.geometry, MAX_ANONYMOUS_FILTER_VERTICES if anonymous else MAX_VERTICES
    )
    layers = [readable_layer(catalog, lid, role) for lid in dict.fromkeys(body.layers)]
    wkb = shapely.to_wkb(geom)
    parts: list[str] = []
    async with pool.acquire() as conn:
        for lyr in layers:
            props = list(lyr.visible_properties(role))
            sql, values = within_sql(lyr, props, wkb, body.predicate, body.limit)
            row = await conn.fetchrow(sql, *values)
            matched, features = int(row["matched"]), row["features"]
            returned = min(matched, body.limit)
            parts.append(
                json.dumps(lyr.id)
                + ': {"type": "FeatureCollection", '
                + f'"numberMatched": {matched}, "numberReturned": {returned}, '
                + f'"features": {features}}}'
            )
    if not parts:
        raise BadRequest("no layers given")
    text = '{"predicate": ' + json.dumps(body.predicate) + ', "layers": {' + ", ".join(parts) + "}}"
    return Response(text.encode(), media_type=JSON)
