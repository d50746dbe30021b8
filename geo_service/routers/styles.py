"""The MapLibre style of the whole map (``/styles/onemap.json``), built from the catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_service.auth import RoleDep
from geo_service.deps import CatalogDep
from geo_service.routers.tiles import base_url
from tiles.style import build_style

router = APIRouter(tags=["Styles"])


@router.get("/styles/onemap.json", summary="MapLibre style (v8) of the command-centre map")
async def onemap_style(request: Request, catalog: CatalogDep, role: RoleDep) -> JSONResponse:
    return JSONResponse(build_style(catalog, base_url(request), role))
