"""Raster tiles: coloured 256×256 PNGs of the registered COGs and of DEM derivatives.

``GET /raster/{dataset}/{z}/{x}/{y}.png`` where ``dataset`` is a row of the ``rasters``
table (``dem`` is drawn as colour relief) or ``hillshade`` / ``slope`` computed from the DEM.
A tile outside the dataset is a transparent 256×256 PNG (200), so map clients never log
errors at the edge of the data.  Rasterio work runs in the thread pool.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_service.deps import PoolDep
from geo_service.routers.common import base_url
from geo_service.routers.tiles import (
    TileStateDep,
    cached_response,
)
from layers.rasters import RasterInfo
from tiles.cache import make_etag
from tiles.raster import PNG_MEDIA_TYPE, RasterDataset, resolve_dataset, transparent_png
from tiles.tilejson import raster_tilejson
from tiles.tms import check_tile

router = APIRouter(tags=["Raster tiles"])

RASTERS_SQL = (
    "SELECT name, path, crs, width, height, bands, dtype, nodata, bounds_4326 FROM rasters "
    "WHERE name = $1 OR name = 'dem'"
)


async def load_dataset(pool: PoolDep, dataset: str) -> RasterDataset:
    """The dataset called ``dataset`` from the ``rasters`` table (404 if unknown)."""
    rows = await pool.fetch(RASTERS_SQL, dataset)
    registered = {
        r["name"]: RasterInfo(
            r["name"],
            Path(r["path"]),
            r["crs"],
            r["width"],
            r["height"],
            r["bands"],
            r["dtype"],
            r["nodata"],
            tuple(r["bounds_4326"]),  # type: ignore[arg-type]
        )
        for r in rows
    }
    return resolve_dataset(dataset, registered)


@router.get(
    "/raster/{dataset}/tilejson.json",
    summary="TileJSON 3.0 of a raster dataset (dem, hillshade, slope, or any registered COG)",
)
async def raster_tilejson_doc(request: Request, dataset: str, pool: PoolDep) -> JSONResponse:
    ds = await load_dataset(pool, dataset)
    url = f"{base_url(request)}/raster/{ds.name}/{{z}}/{{x}}/{{y}}.png"
    return JSONResponse(raster_tilejson(ds.name, url, ds.source.bounds_4326))


@router.get(
    "/raster/{dataset}/{z}/{x}/{y}.png",
    summary="A coloured PNG tile of a raster dataset",
    response_class=Response,
    responses={
        200: {
            "description": "256×256 PNG (transparent outside the dataset)",
            "content": {PNG_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        404: {"description": "Tile outside the grid (zoom 0–24) or unknown dataset"},
    },
)
async def raster_tile(
    request: Request, dataset: str, z: int, x: int, y: int, pool: PoolDep, state: TileStateDep
) -> Response:
    tile = check_tile(z, x, y)
    ds = await load_dataset(pool, dataset)
    key = ("png", ds.name, ds.rendering, str(ds.source.path), ds.mtime, z, x, y)
    etag = make_etag(*key)
    hit = state.cache.get(key)
    if hit is None:
        png = await run_in_threadpool(state.raster.render, ds, tile)
        hit = png if png is not None else transparent_png()
        state.cache.put(key, hit)
    return cached_response(request, hit, PNG_MEDIA_TYPE, etag)
