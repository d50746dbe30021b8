"""The command-centre big screen (``/screen``) and the browser libraries it loads.

``GET /screen`` is a full-screen dark page (MapLibre GL JS + ECharts) in Simplified Chinese,
English with ``?lang=en``.  Everything it loads comes from this server: the page's own
files under ``/screen/static/``, npm-installed libraries under ``/vendor/<package>/<file>``
(an allow-list of exact files; Leaflet is served for folium maps too), the style and glyphs
from :mod:`geo_service.routers.styles`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from geo_service.deps import CatalogDep
from geo_service.errors import ApiError
from geo_service.state import app_state
from geo_service.web.assets import (
    STATIC_DIR,
    AssetNotFound,
    AssetNotInstalled,
    WebAssets,
    media_type,
)
from layers.catalog import Catalog

router = APIRouter(tags=["Screen"])

#: Vendor files carry their package version in the lock file; a day of caching is safe and
#: ``make setup`` changes the file's mtime (new ETag) when the version moves.
VENDOR_CACHE = "public, max-age=86400"
#: The page's own files change with deployments: revalidate every time (cheap 304).
STATIC_CACHE = "no-cache"

_TITLES = {"zh": "一张图 · 指挥中心", "en": "OneMap · Command Centre"}


def get_web_assets(request: Request) -> WebAssets:
    """Dependency: where the installed assets are (resolved once per worker)."""
    state = app_state(request)
    if state.web_assets is None:
        state.web_assets = WebAssets.from_env()
    return state.web_assets


WebAssetsDep = Annotated[WebAssets, Depends(get_web_assets)]


def _serve(file: Path, cache_control: str) -> FileResponse:
    return FileResponse(file, media_type=media_type(file), headers={"Cache-Control": cache_control})


def _not_found(exc: Exception) -> ApiError:
    if isinstance(exc, AssetNotInstalled):
        return ApiError(404, "asset_not_installed", str(exc))
    return ApiError(404, "not_found", str(exc))


@router.get(
    "/screen",
    summary="The command-centre big-screen page (zh; en with ?lang=en)",
    response_class=HTMLResponse,
)
async def screen_page(
    catalog: CatalogDep,
    lang: Literal["zh", "en"] = Query("zh", description="Page language"),
) -> HTMLResponse:
    html = (STATIC_DIR / "screen.html").read_text(encoding="utf-8")
    html = (
        html.replace("{{lang}}", "zh-CN" if lang == "zh" else "en")
        .replace("{{title}}", _TITLES[lang])
        .replace("{{catalog}}", catalog_json(catalog))
    )
    return HTMLResponse(html, headers={"Cache-Control": STATIC_CACHE})


def catalog_json(catalog: Catalog) -> str:
    """Titles and properties of every layer, as JSON safe inside a ``<script>`` element."""
    doc = {
        layer.id: {
            "title_zh": layer.title_zh,
            "title_en": layer.title_en,
            "properties": [
                {"name": p.name, "description": p.description, "sensitive": p.sensitive}
                for p in layer.properties
            ],
        }
        for layer in catalog.values()
    }
    # "<" only occurs inside JSON strings, where \u003c means the same: no "</script>" or
    # "<!--" can end or bend the element.
    return json.dumps(doc, ensure_ascii=False).replace("<", "\\u003c")


@router.get(
    "/screen/static/{name}", summary="A file of the big-screen page", include_in_schema=False
)
async def screen_static(name: str) -> FileResponse:
    try:
        return _serve(WebAssets.static_file(name), STATIC_CACHE)
    except AssetNotFound as exc:
        raise _not_found(exc) from None


@router.get(
    "/vendor/{package}/{path:path}",
    summary="An allow-listed file of a browser library installed from npm at set-up",
)
async def vendor_file(package: str, path: str, assets: WebAssetsDep) -> FileResponse:
    try:
        return _serve(assets.vendor_file(package, path), VENDOR_CACHE)
    except (AssetNotFound, AssetNotInstalled) as exc:
        raise _not_found(exc) from None
