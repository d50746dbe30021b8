"""What every router shares: media types, the request's base URL, the readable-layer check,
GeoJSON responses and the audit actor of a request."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from geo_service.auth import Caller
from geo_service.errors import NotFound
from geo_service.state import app_state
from layers.audit import Actor
from layers.catalog import Catalog, Layer, role_allows

GEOJSON = "application/geo+json"
JSON = "application/json"
CSV = "text/csv"
SCHEMA_JSON = "application/schema+json"

#: OpenAPI ``responses`` of a route answering GeoJSON (with ``response_class=Response``).
GEOJSON_200: dict[int | str, dict[str, Any]] = {200: {"content": {GEOJSON: {}}}}
GEOJSON_201: dict[int | str, dict[str, Any]] = {
    201: {"content": {GEOJSON: {}}},
    200: {"description": "Already issued: the same warning", "content": {GEOJSON: {}}},
}


def base_url(request: Request) -> str:
    """The service's address, without a trailing slash: ``ONEMAP_PUBLIC_URL`` when set,
    else the one the caller used (scheme, ``Host`` and root path of the request).

    Every absolute URL the service writes (links, styles, TileJSON, ``Location``) starts
    with it, so with a public URL set no header of the caller ends up in a document.
    """
    public = app_state(request).settings.public_url
    if public:
        return public.rstrip("/")
    return str(request.base_url).rstrip("/")


def request_url(request: Request, query: str | None = None) -> str:
    """The URL of this request on :func:`base_url`, with its query (or ``query``)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if query is None:
        query = request.scope["query_string"].decode("latin-1")
    return base_url(request) + path + (f"?{query}" if query else "")


def readable_layer(catalog: Catalog, layer_id: str, role: str) -> Layer:
    """The layer, if the caller may read it (an unreadable layer is a 404, like a missing one,
    so its existence is not revealed)."""
    layer = catalog[layer_id]  # UnknownLayer: 404
    if not role_allows(role, layer.read_role):
        raise NotFound(f"unknown collection {layer_id!r}", code="unknown_layer")
    return layer


def actor_of(request: Request, caller: Caller) -> Actor:
    """The audit actor of a request: the key's name, its role and the client address."""
    host = request.client.host if request.client else None
    return Actor(caller.name, caller.role, host)


def geojson(body: Any, status_code: int = 200) -> JSONResponse:
    """A JSON body served as GeoJSON."""
    return JSONResponse(body, status_code=status_code, media_type=GEOJSON)


def geojson_text(text: str, headers: dict[str, str] | None = None) -> Response:
    """GeoJSON already serialised (e.g. by PostGIS), served without re-parsing."""
    return Response(text.encode(), media_type=GEOJSON, headers=headers)


def feature_collection_text(head: dict[str, Any], features: list[str]) -> str:
    """A FeatureCollection of ``head``'s members and features serialised by PostGIS, spliced
    together without parsing the features again."""
    members = json.dumps({"type": "FeatureCollection", **head}, ensure_ascii=False)
    return members[:-1] + ', "features": [' + ",".join(features) + "]}"
