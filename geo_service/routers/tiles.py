"""Vector tiles: OGC API – Tiles per collection, multi-layer MVT and TileJSON 3.0.

Responses carry an ``ETag`` made of the layers' versions (kept current in every worker by
LISTEN/NOTIFY), the tile address and the parameters; ``If-None-Match`` gives a 304 without
touching the database.  Rendered tiles are kept in a bytes-bounded LRU cache per worker;
when a layer's version moves its tiles are dropped, so a write is in the next tile.

Status codes: 200 MVT, 204 empty tile, 304 not modified, 404 zoom outside 0–24, x/y
outside the grid, unknown layer or run, 422 malformed path (e.g. a non-integer zoom).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_service.auth import RoleDep
from geo_service.deps import CatalogDep, PoolDep
from geo_service.routers.common import base_url, readable_layer
from geo_service.state import TileState, app_state
from layers.catalog import Layer
from layers.sql import extent_sql
from tiles.cache import etag_matches, make_etag
from tiles.mvt import MVT_MEDIA_TYPE, LayerSet, parse_layers, vector_layer_fields
from tiles.render import RiskRun, render_async, resolve_run_async
from tiles.tilejson import (
    CATALOG_MAX_ZOOM,
    OGC_CRS_3857,
    OGC_TMS_URI,
    ogc_tileset,
    ogc_tilesets,
    tile_matrix_set_doc,
    tile_matrix_sets_doc,
    vector_tilejson,
)
from tiles.tms import TMS_ID, Tile, check_tile, tile_matrix_set

router = APIRouter(tags=["Tiles"])

#: Browsers and CDNs keep a tile 60 s, then revalidate with If-None-Match (cheap 304).
CACHE_CONTROL_PUBLIC = "public, max-age=60, must-revalidate"
#: Responses to a caller with an API key may hold sensitive fields: never in shared caches.
CACHE_CONTROL_PRIVATE = "private, max-age=60, must-revalidate"
#: Bumped when the rendering changes, so old ETags stop matching.
RENDER_VERSION = 1


def get_tile_state(request: Request) -> TileState:
    """Dependency: the worker's :class:`TileState`."""
    return app_state(request).tiles


TileStateDep = Annotated[TileState, Depends(get_tile_state)]


async def layer_versions(request: Request, tables: tuple[str, ...]) -> tuple[int, ...] | None:
    """Current versions of ``tables``; ``None`` when the change listener is not connected
    (then nothing may be cached, since no invalidation would arrive)."""
    lv = app_state(request).layer_versions
    if lv is None:
        return None
    if not lv.connected.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lv.connected.wait(), timeout=1.0)
        if not lv.connected.is_set():
            return None
    return tuple(lv.version(t) for t in tables)


def has_credentials(request: Request) -> bool:
    return "authorization" in request.headers or "x-api-key" in request.headers


def validator_headers(etag: str | None, credentials: bool) -> dict[str, str]:
    """``ETag``/``Cache-Control``/``Vary`` of a tile response (``no-store`` without an ETag)."""
    if etag is None:
        return {"Cache-Control": "no-store"}
    return {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL_PRIVATE if credentials else CACHE_CONTROL_PUBLIC,
        "Vary": "Authorization, X-API-Key",
    }


def vector_tile_key(
    layerset: LayerSet,
    versions: tuple[int, ...],
    tile: Tile,
    role: str,
    run_id: int | None,
) -> tuple[Any, ...]:
    """Everything a vector tile's bytes depend on: its cache key, hashed into its ETag."""
    return ("mvt", RENDER_VERSION, layerset.ids, versions, tile.z, tile.x, tile.y, role, run_id)


def cached_response(
    request: Request,
    data: bytes,
    media_type: str,
    etag: str | None,
    empty_status: int = 204,
) -> Response:
    """A tile response with validators: 304 on a matching If-None-Match, 204 when empty."""
    headers = validator_headers(etag, has_credentials(request))
    if etag is not None and etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=empty_status, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


async def serve_vector_tile(
    request: Request,
    pool: Any,
    state: TileState,
    layerset: LayerSet,
    tile: Tile,
    role: str,
    run: int | None,
) -> Response:
    """The shared body of every MVT endpoint."""
    risk_run: RiskRun | None = None
    if layerset.risk:
        async with pool.acquire() as conn:
            risk_run = await resolve_run_async(conn, run)
    versions = await layer_versions(request, layerset.tables)
    cacheable = versions is not None and (risk_run is None or risk_run.immutable)
    etag: str | None = None
    key: tuple[Any, ...] = ()
    if cacheable:
        assert versions is not None
        key = vector_tile_key(layerset, versions, tile, role, risk_run.id if risk_run else None)
        etag = make_etag(*key)
        if etag_matches(request.headers.get("if-none-match"), etag):
            return cached_response(request, b"", MVT_MEDIA_TYPE, etag)
        hit = state.cache.get(key)
        if hit is not None:
            return cached_response(request, hit, MVT_MEDIA_TYPE, etag)
    async with pool.acquire() as conn:
        data = await render_async(conn, layerset, tile, role, risk_run)
    if cacheable:
        state.cache.put(key, data, layerset.tables)
    return cached_response(request, data, MVT_MEDIA_TYPE, etag)


async def data_extent(
    pool: Any, state: TileState, tables: tuple[str, ...], versions: tuple[int, ...] | None
) -> tuple[float, float, float, float] | None:
    """Extent of ``tables`` in degrees (memoised per layer versions); ``None`` when empty."""
    if not tables:
        return None
    key = (tables, versions)
    if versions is not None and key in state.extents:
        return state.extents[key]
    row = await pool.fetchrow(extent_sql(tables))
    ext = None if row is None or row[0] is None else tuple(float(v) for v in row)
    if versions is not None:
        if len(state.extents) > 256:
            state.extents.clear()
        state.extents[key] = ext  # type: ignore[assignment]
    return ext  # type: ignore[return-value]


MVT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A Mapbox Vector Tile (extent 4096); source-layer names are layer ids",
        "content": {MVT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
    204: {"description": "The tile holds no feature"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    404: {"description": "Tile outside the grid (zoom 0–24), unknown layer, run or matrix set"},
}
ZDoc = "Zoom level (tile matrix), 0–24"
RunQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**63 - 1,
        description="Risk run id for the `risk` layer (default: the latest finished run)",
    ),
]


TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"


def local_tiling_schemes(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """``doc`` with its tiling-scheme links pointing at this server's ``/tileMatrixSets``
    (clients follow them to read the grid; the service runs offline, so the OGC registry's
    address cannot be the one they fetch).  ``tileMatrixSetURI`` keeps naming the OGC one."""
    for tileset in [doc, *doc.get("tilesets", [])]:
        for lk in tileset.get("links", []):
            if lk.get("rel") == TILING_SCHEME_REL:
                lk["href"] = f"{base}/tileMatrixSets/{TMS_ID}"
    return doc


def with_tms_1_members(doc: dict[str, Any]) -> dict[str, Any]:
    """A 2DTMS 2.0 document with the members of 2DTMS 1.0 added (``identifier``,
    ``supportedCRS``, ``boundingBox``, ``topLeftCorner``, …), which clients written against
    the first version (GDAL 3.6) read; 2.0 readers ignore them."""
    crs = doc["crs"] if isinstance(doc["crs"], str) else doc["crs"].get("uri", "")
    matrices = doc["tileMatrices"]
    first = matrices[0]
    x0, y0 = first["pointOfOrigin"]
    x1 = x0 + first["cellSize"] * first["tileWidth"] * first["matrixWidth"]
    y1 = y0 - first["cellSize"] * first["tileHeight"] * first["matrixHeight"]
    out = {
        **doc,
        "type": "TileMatrixSetType",
        "identifier": doc["id"],
        "supportedCRS": crs,
        "boundingBox": {
            "type": "BoundingBoxType",
            "crs": crs,
            "lowerCorner": [min(x0, x1), min(y0, y1)],
            "upperCorner": [max(x0, x1), max(y0, y1)],
        },
    }
    out["tileMatrices"] = [
        {
            **tm,
            "type": "TileMatrixType",
            "identifier": tm["id"],
            "topLeftCorner": tm["pointOfOrigin"],
        }
        for tm in matrices
    ]
    return out


@router.get("/tileMatrixSets", summary="Tile matrix sets (OGC API – Tiles)")
async def tile_matrix_sets(request: Request) -> JSONResponse:
    return JSONResponse(tile_matrix_sets_doc(base_url(request)))


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    summary="A tile matrix set's definition (OGC Two Dimensional Tile Matrix Set 2.0)",
)
async def tile_matrix_set_definition(tileMatrixSetId: str) -> JSONResponse:
    tile_matrix_set(tileMatrixSetId)  # UnknownTileMatrixSet → 404
    return JSONResponse(with_tms_1_members(tile_matrix_set_doc()))


#: TileJSON field types → JSON Schema types (OGC API – Tiles ``propertiesSchema``).
_SCHEMA_TYPES = {"String": "string", "Number": "number", "Boolean": "boolean"}
_DIMENSION = {"Point": 0, "LineString": 1, "MultiLineString": 1}


def dataset_tileset(base: str, layers: list[Layer], role: str, summary: bool) -> dict[str, Any]:
    """The tileset of the whole map: every layer ``role`` may read, in one MVT per tile
    (``/tiles/{layers}/{z}/{x}/{y}.mvt``)."""
    ids = ",".join(lyr.id for lyr in layers)
    doc: dict[str, Any] = {
        "title": "OneMap 一张图 — every layer",
        "dataType": "vector",
        "crs": OGC_CRS_3857,
        "tileMatrixSetURI": OGC_TMS_URI,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/tiles/{TMS_ID}"},
            {
                "rel": TILING_SCHEME_REL,
                "type": "application/json",
                "href": f"{base}/tileMatrixSets/{TMS_ID}",
            },
            {
                "rel": "item",
                "type": MVT_MEDIA_TYPE,
                "templated": True,
                "href": f"{base}/tiles/{ids}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.mvt",
            },
        ],
    }
    if not summary:
        doc["layers"] = [
            {
                "id": lyr.id,
                "title": f"{lyr.title_zh} {lyr.title_en}",
                "dataType": "vector",
                "minTileMatrix": str(lyr.min_zoom),
                "maxTileMatrix": str(min(lyr.max_zoom, CATALOG_MAX_ZOOM)),
                "geometryDimension": _DIMENSION.get(lyr.geometry_type, 2),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {
                        name: {"type": _SCHEMA_TYPES.get(t, "string")}
                        for name, t in vector_layer_fields(lyr, role).items()
                    },
                },
            }
            for lyr in layers
        ]
    return doc


@router.get("/tiles", summary="Vector tilesets of the whole map (OGC API – Tiles)")
async def dataset_tilesets(request: Request, catalog: CatalogDep, role: RoleDep) -> JSONResponse:
    base = base_url(request)
    layers = list(catalog.readable_by(role))
    return JSONResponse(
        {
            "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tiles"}],
            "tilesets": [dataset_tileset(base, layers, role, summary=True)],
        }
    )


@router.get(
    "/tiles/{tileMatrixSetId}",
    summary="The vector tileset of the whole map (OGC API – Tiles)",
)
async def dataset_tileset_doc(
    request: Request, tileMatrixSetId: str, catalog: CatalogDep, role: RoleDep
) -> JSONResponse:
    tile_matrix_set(tileMatrixSetId)  # UnknownTileMatrixSet → 404
    layers = list(catalog.readable_by(role))
    return JSONResponse(dataset_tileset(base_url(request), layers, role, summary=False))


@router.get(
    "/collections/{collectionId}/tiles",
    summary="Tilesets of a collection (OGC API – Tiles)",
)
async def collection_tilesets(
    request: Request, collectionId: str, catalog: CatalogDep, role: RoleDep
) -> JSONResponse:
    layer = readable_layer(catalog, collectionId, role)
    base = base_url(request)
    return JSONResponse(local_tiling_schemes(ogc_tilesets(base, layer), base))


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    summary="A tileset of a collection (OGC API – Tiles)",
)
async def collection_tileset(
    request: Request, collectionId: str, tileMatrixSetId: str, catalog: CatalogDep, role: RoleDep
) -> JSONResponse:
    layer = readable_layer(catalog, collectionId, role)
    tile_matrix_set(tileMatrixSetId)
    base = base_url(request)
    return JSONResponse(local_tiling_schemes(ogc_tileset(base, layer), base))


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{z}/{x}/{y}",
    summary="A vector tile of a collection (OGC API – Tiles, MVT)",
    response_class=Response,
    responses=MVT_RESPONSES,
)
async def collection_tile(
    request: Request,
    collectionId: str,
    tileMatrixSetId: str,
    z: int,
    x: int,
    y: int,
    catalog: CatalogDep,
    role: RoleDep,
    pool: PoolDep,
    state: TileStateDep,
) -> Response:
    layer = readable_layer(catalog, collectionId, role)
    tile_matrix_set(tileMatrixSetId)
    tile = check_tile(z, x, y)
    return await serve_vector_tile(request, pool, state, LayerSet((layer,)), tile, role, None)


@router.get(
    "/tiles/{layers}/tilejson.json",
    summary="TileJSON 3.0 of one or several comma-separated layers (and `risk`)",
)
async def vector_tilejson_doc(
    request: Request,
    layers: str,
    catalog: CatalogDep,
    role: RoleDep,
    pool: PoolDep,
    state: TileStateDep,
    run: RunQuery = None,
) -> JSONResponse:
    layerset = parse_layers(layers, catalog, role)
    tables = layerset.tables or (("admin_areas",) if layerset.risk else ())
    versions = await layer_versions(request, tables)
    bounds = await data_extent(pool, state, tables, versions)
    url = f"{base_url(request)}/tiles/{','.join(layerset.ids)}/{{z}}/{{x}}/{{y}}.mvt"
    if run is not None and layerset.risk:
        url += f"?run={int(run)}"
    return JSONResponse(vector_tilejson(layerset, role, url, bounds))


@router.get(
    "/tiles/{layers}/{z}/{x}/{y}.mvt",
    summary="A vector tile of one or several comma-separated layers (and `risk`)",
    response_class=Response,
    responses=MVT_RESPONSES,
)
async def layers_tile(
    request: Request,
    layers: str,
    z: int,
    x: int,
    y: int,
    catalog: CatalogDep,
    role: RoleDep,
    pool: PoolDep,
    state: TileStateDep,
    run: RunQuery = None,
) -> Response:
    tile = check_tile(z, x, y)
    layerset = parse_layers(layers, catalog, role)
    return await serve_vector_tile(request, pool, state, layerset, tile, role, run)


__all__ = ["TMS_ID", "router"]
