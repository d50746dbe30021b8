"""The MapLibre style of the whole map (``/styles/onemap.json``), built from the catalog,
and the glyphs its labels need (``/fonts/{fontstack}/{range}.pbf``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from geo_service.auth import RoleDep
from geo_service.deps import CatalogDep
from geo_service.errors import ApiError
from geo_service.routers.common import base_url
from geo_service.routers.screen import WebAssetsDep
from geo_service.web.assets import AssetNotFound, AssetNotInstalled
from tiles.style import build_style

router = APIRouter(tags=["Styles"])

#: Glyphs only change when set-up regenerates them from another font.
GLYPH_CACHE = "public, max-age=86400"


@router.get("/styles/onemap.json", summary="MapLibre style (v8) of the command-centre map")
async def onemap_style(request: Request, catalog: CatalogDep, role: RoleDep) -> JSONResponse:
    return JSONResponse(build_style(catalog, base_url(request), role))


@router.get(
    "/fonts/{fontstack}/{glyph_range}.pbf",
    summary="MapLibre glyphs (SDF PBF) of 256 code points, generated at set-up from a local font",
    responses={200: {"content": {"application/x-protobuf": {}}}},
)
async def glyphs(fontstack: str, glyph_range: str, assets: WebAssetsDep) -> FileResponse:
    """CJK ideographs, kana and hangul are not generated: the page draws them with the
    browser's own CJK font (MapLibre ``localIdeographFontFamily``); a range the font has no
    glyph in is a 404 ``no_glyphs``."""
    try:
        file = assets.glyph_file(fontstack, glyph_range)
    except AssetNotInstalled as exc:
        raise ApiError(404, "asset_not_installed", str(exc)) from None
    except AssetNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if file is None:
        raise ApiError(404, "no_glyphs", f"{fontstack} has no glyph in {glyph_range}")
    return FileResponse(
        file, media_type="application/x-protobuf", headers={"Cache-Control": GLYPH_CACHE}
    )
