"""Answer repeat vector-tile requests before routing: cache hits and 304s in microseconds.

A big screen or a tile CDN asks for the same tiles over and over.  For an anonymous
``GET`` of ``/tiles/{layers}/{z}/{x}/{y}.mvt`` or
``/collections/{id}/tiles/WebMercatorQuad/{z}/{x}/{y}`` (no query string, no API key),
this middleware computes the tile's key and ETag exactly as the tiles router does
(:func:`geo_service.routers.tiles.vector_tile_key`) and answers

* ``304 Not Modified`` when ``If-None-Match`` matches, without touching the cache;
* ``200`` from the worker's LRU cache on a hit.

Everything else — a miss, an error, a risk layer (its run must be looked up), a caller
with a key (its role must be checked against the database), the layer listener being
disconnected — goes on to the application unchanged, so the router stays the one place
that renders tiles and reports errors.  Only the FastAPI routing and dependency
resolution are skipped, which is most of the cost of a cached tile.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from geo_service.routers.tiles import validator_headers, vector_tile_key
from geo_service.state import AppState
from tiles.cache import etag_matches, make_etag
from tiles.mvt import MVT_MEDIA_TYPE, LayerSet, parse_layers
from tiles.tms import TMS_ID, check_tile

_MULTI = re.compile(r"/tiles/([^/]+)/(\d{1,2})/(\d{1,8})/(\d{1,8})\.mvt")
_OGC = re.compile(r"/collections/([^/]+)/tiles/" + TMS_ID + r"/(\d{1,2})/(\d{1,8})/(\d{1,8})")
#: Parsed layer lists are memoised per (spec, role); bounded against hostile variety.
_MAX_MEMO = 1024


class TileFastPath:
    """ASGI middleware serving cached vector tiles and 304s to anonymous callers."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._layersets: dict[tuple[str, str], LayerSet] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or not await self._answer(scope, send)
        ):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Send the response and return True, or return False to let the app answer."""
        path: str = scope["path"]
        m = _MULTI.fullmatch(path) if path.startswith("/tiles/") else _OGC.fullmatch(path)
        if m is None:
            return False
        if_none_match: bytes | None = None
        for name, value in scope["headers"]:
            if name in (b"authorization", b"x-api-key"):
                return False
            if name == b"if-none-match":
                if_none_match = value
        state: AppState = scope["app"].state.onemap
        versions_src = state.listening_versions()
        if versions_src is None:
            return False
        role: str = state.settings.anonymous_role
        layerset = self._layerset(state, m.group(1), role)
        if layerset is None or layerset.risk:
            return False
        try:
            tile = check_tile(int(m.group(2)), int(m.group(3)), int(m.group(4)))
        except Exception:  # out of the grid: the router answers with its 404
            return False
        versions = tuple(versions_src.version(t) for t in layerset.tables)
        key = vector_tile_key(layerset, versions, tile, role, None)
        etag = make_etag(*key)
        headers = validator_headers(etag, credentials=False)
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), etag):
            await _send(send, 304, headers, b"")
            return True
        data = state.tiles.cache.get(key)
        if data is None:
            return False
        if data:
            headers["Content-Type"] = MVT_MEDIA_TYPE
            await _send(send, 200, headers, data)
        else:
            await _send(send, 204, headers, b"")
        return True

    def _layerset(self, state: Any, spec: str, role: str) -> LayerSet | None:
        memo_key = (spec, role)
        layerset = self._layersets.get(memo_key)
        if layerset is None:
            try:
                layerset = parse_layers(spec, state.catalog, role)
            except Exception:  # unknown layer etc.: the router answers with the error
                return None
            if len(self._layersets) >= _MAX_MEMO:
                self._layersets.clear()
            self._layersets[memo_key] = layerset
        return layerset


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if status != 304:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
