"""Catalog look-ups that fail as :class:`~geo_service.errors.ApiError`.

The catalog raises :class:`layers.errors.UnknownLayer` / ``UnknownProperty``.  Those are
mapped to HTTP by :data:`geo_service.errors.STATUS_CODES`, but through the catch-all
``Exception`` handler, which Starlette runs in ``ServerErrorMiddleware``: it sends the right
response and then re-raises (a traceback in the server log; an exception in ASGI test
clients).  Converting them here, with the status and code taken from that same table, keeps
the table the single source of truth while making these ordinary 4xx responses.
"""

from __future__ import annotations

from geo_service.errors import STATUS_CODES, ApiError
from layers.catalog import Catalog, Layer, Property
from layers.errors import LayersError


def as_api_error(exc: LayersError) -> ApiError:
    """``exc`` as an :class:`ApiError` with the status/code of :data:`STATUS_CODES`."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            status, code = STATUS_CODES[cls]
            return ApiError(status, code, str(exc))
    return ApiError(400, "bad_request", str(exc))


def layer_of(catalog: Catalog, layer_id: str) -> Layer:
    """The catalog layer ``layer_id`` (404 ``unknown_layer`` if none)."""
    try:
        return catalog[layer_id]
    except LayersError as exc:
        raise as_api_error(exc) from None


def property_of(layer: Layer, name: str) -> Property:
    """The property ``name`` of ``layer`` (400 ``unknown_property`` naming it if none)."""
    try:
        return layer.get_property(name)
    except LayersError as exc:
        raise as_api_error(exc) from None
