"""Bits shared by the emergency-workflow routers: who is acting, JSON with the geo type."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from geo_service.auth import Caller
from layers.audit import Actor

GEOJSON = "application/geo+json"
#: OpenAPI ``responses`` of a route answering GeoJSON (with ``response_class=Response``).
GEOJSON_200: dict[int | str, dict[str, Any]] = {200: {"content": {GEOJSON: {}}}}
GEOJSON_201: dict[int | str, dict[str, Any]] = {
    201: {"content": {GEOJSON: {}}},
    200: {"description": "Already issued: the same warning", "content": {GEOJSON: {}}},
}


def actor_of(request: Request, caller: Caller) -> Actor:
    """The audit actor of a request: the key's name, its role and the client address."""
    host = request.client.host if request.client else None
    return Actor(caller.name, caller.role, host)


def geojson(body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, media_type=GEOJSON)
