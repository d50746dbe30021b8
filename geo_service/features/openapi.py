"""The OpenAPI document as OGC API clients read it.

FastAPI writes OpenAPI 3.1 from the routes' signatures; the landing page and ``/conformance``
promise OpenAPI 3.0 (Features Part 1 ``oas30``), and clients such as GDAL's OAPIF driver read
the parameters of ``/collections/{collectionId}/items`` to decide what they may ask the
server to filter.  This module turns the generated document into that one:

* 3.1 → 3.0.3 (``anyOf [..., null]`` → ``nullable``, no ``info.summary``);
* the OGC parameters of ``/items`` typed as the standard's OpenAPI fragments give them
  (``limit`` an integer with minimum/maximum/default, ``bbox`` an array of 4 or 6 numbers,
  enums for ``crs``, ``bbox-crs``, ``filter-lang`` and ``f``), and one path per collection
  whose queryable properties are documented parameters;
* every status an operation can answer, with OneMap's error body, and every media type.

Everything is built from the catalog; the properties documented are those the anonymous
role may see, since the document is the same for every caller.
"""

from __future__ import annotations

import copy
from typing import Any

from geo_service.features.params import DEFAULT_LIMIT, MAX_LIMIT, SUPPORTED_CRS
from layers.catalog import Catalog, Layer, Property

OPENAPI_30 = "3.0.3"
JSON = "application/json"

#: Statuses documented on operations, and when each applies.
STATUS_TEXT = {
    "400": "Bad request: a parameter or the body is wrong (the body says which), or the Host "
    "is not served",
    "401": "Missing, malformed or unknown API key",
    "403": "The API key's role may not do this",
    "404": "Not found (unknown collection, feature, run, tile, …)",
    "409": "Conflict with the current state",
    "413": "Request body too large",
    "422": "The request is well formed but cannot be processed",
    "429": "Too many requests (see Retry-After)",
    "503": "The database is unavailable or the query ran out of time",
}


def to_openapi_30(spec: dict[str, Any]) -> dict[str, Any]:
    """The 3.0.3 equivalent of a 3.1 document as FastAPI writes it (a new dict)."""
    out: dict[str, Any] = _schema_30(copy.deepcopy(spec))
    out["openapi"] = OPENAPI_30
    info = out.get("info", {})
    summary = info.pop("summary", None)
    if summary:
        info["description"] = summary + (
            "\n\n" + info["description"] if "description" in info else ""
        )
    return out


def _schema_30(node: Any) -> Any:
    """3.1 JSON Schema constructs → 3.0, recursively."""
    if isinstance(node, list):
        return [_schema_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _schema_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        alts = node.get(key)
        if not isinstance(alts, list):
            continue
        rest = [a for a in alts if a != {"type": "null"}]
        if len(rest) == len(alts):
            continue
        node["nullable"] = True
        if len(rest) == 1:
            del node[key]
            only = rest[0]
            if "$ref" in only:
                node["allOf"] = [only]
            else:
                for k, v in only.items():
                    node.setdefault(k, v)
        else:
            node[key] = rest
    t = node.get("type")
    if isinstance(t, list):
        types = [x for x in t if x != "null"]
        if len(types) < len(t):
            node["nullable"] = True
        node["type"] = types[0] if len(types) == 1 else types
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "examples" in node and isinstance(node["examples"], list) and "in" not in node:
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[inclusive] = node[bound]
            node[bound] = True
    return node


# --- OGC parameters -----------------------------------------------------------------------

_CRS_ENUM = list(SUPPORTED_CRS)


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


#: The typed form of the OGC query parameters of ``/items`` (Features Part 1, 2 and 3).
ITEMS_PARAMETERS: dict[str, dict[str, Any]] = {
    "limit": _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        f"Page size; a larger value is clamped to {MAX_LIMIT}",
        style="form",
        explode=False,
    ),
    "offset": _query(
        "offset",
        {"type": "integer", "minimum": 0, "default": 0},
        "Features to skip (the `next`/`prev` links carry it)",
    ),
    "bbox": _query(
        "bbox",
        {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
        "minx,miny,maxx,maxy (or six numbers with heights) in the axis order of `bbox-crs` "
        "(default CRS84, longitude first)",
        style="form",
        explode=False,
    ),
    "bbox-crs": _query(
        "bbox-crs",
        {"type": "string", "format": "uri", "enum": _CRS_ENUM},
        "CRS of `bbox` (default CRS84)",
    ),
    "crs": _query(
        "crs",
        {"type": "string", "format": "uri", "enum": _CRS_ENUM},
        "CRS of the returned geometries (default CRS84); named in the Content-Crs header",
    ),
    "datetime": _query(
        "datetime",
        {"type": "string"},
        "An instant or an interval `start/end` (open end `..`); on a collection without time "
        "every feature matches",
        style="form",
        explode=False,
    ),
    "filter": _query("filter", {"type": "string"}, "CQL2 filter (see `filter-lang`)"),
    "filter-lang": _query(
        "filter-lang",
        {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"], "default": "cql2-text"},
        "Language of `filter`; `cql-text`, the name in the drafts of Features Part 3, is read as "
        "cql2-text for older clients",
    ),
    "filter-crs": _query(
        "filter-crs",
        {"type": "string", "format": "uri", "enum": _CRS_ENUM, "default": _CRS_ENUM[0]},
        "CRS of the geometries in `filter`, in its axis order (default CRS84)",
    ),
    "sortby": _query(
        "sortby", {"type": "string"}, "Comma-separated properties, `-` for descending"
    ),
    "properties": _query("properties", {"type": "string"}, "Comma-separated properties to return"),
    "f": _query(
        "f",
        {"type": "string", "enum": ["json", "geojson", "csv"]},
        "Output format; without it the Accept header chooses (GeoJSON by default)",
    ),
}

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def property_parameter(p: Property) -> dict[str, Any]:
    """A queryable property as an equality-filter query parameter (Features Part 1,
    /req/core/fc-filters)."""
    if p.type == "datetime":
        schema: dict[str, Any] = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": _JSON_TYPES[p.type]}
    if p.enum:
        schema["enum"] = list(p.enum)
    return _query(p.name, schema, p.description or p.name, style="form", explode=False)


def _typed(
    params: list[dict[str, Any]], names: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """``params`` with those named in ``names`` (default: all OGC ones) in their typed form."""
    out = []
    for p in params:
        if p.get("in") == "path" and p["name"] == "collectionId":
            p = {**p, "description": "A collection (layer) id"}
        typed = p["in"] == "query" and (names is None or p["name"] in names)
        out.append(copy.deepcopy(ITEMS_PARAMETERS.get(p["name"], p)) if typed else p)
    return out


def add_ogc_parameters(spec: dict[str, Any], catalog: Catalog, role: str) -> None:
    """Type the OGC parameters of ``/items`` and add ``/collections/{id}/items`` for each
    collection ``role`` may read, with its visible properties as parameters (in place)."""
    paths: dict[str, Any] = spec["paths"]
    for path, ops in paths.items():
        if path.startswith("/collections/{collectionId}") and "get" in ops:
            ops["get"]["parameters"] = _typed(ops["get"].get("parameters", []), frozenset({"crs"}))
    generic = paths.get("/collections/{collectionId}/items", {}).get("get")
    if generic is None:
        return
    generic["parameters"] = _typed(generic.get("parameters", []))
    for layer in catalog.readable_by(role):
        op = copy.deepcopy(generic)
        op["operationId"] = f"getFeatures_{layer.id}"
        op["summary"] = f"Features of {layer.id} ({layer.title_zh} {layer.title_en})"
        op["parameters"] = [
            p for p in op["parameters"] if p["in"] != "path"
        ] + _property_parameters(layer, role)
        paths[f"/collections/{layer.id}/items"] = {"get": op}


def _property_parameters(layer: Layer, role: str) -> list[dict[str, Any]]:
    taken = set(ITEMS_PARAMETERS)
    return [property_parameter(p) for p in layer.visible_properties(role) if p.name not in taken]


# --- statuses and media types -------------------------------------------------------------


def _error_response(status: str) -> dict[str, Any]:
    return {
        "description": STATUS_TEXT[status],
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_statuses(
    spec: dict[str, Any], authenticated: set[tuple[str, str]], error_schema: dict[str, Any]
) -> None:
    """Add to every operation the error statuses it can answer (in place).

    Args:
        authenticated: (path, method) of operations that look at the caller's API key
            (401 for a bad key, 403 for a role too low).
        error_schema: the JSON Schema of the error body, stored as ``Error``.
    """
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = error_schema
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            wanted = ["400", "503"]
            if not path.startswith("/health"):
                wanted.append("429")
            if (path, method) in authenticated or path.startswith("/collections/"):
                wanted += ["401", "403"]
            # Parameters name things (a layer, a run, a warning) that may not exist.
            if op.get("parameters") or "requestBody" in op or path.startswith("/collections/"):
                wanted.append("404")
            if "requestBody" in op:
                wanted += ["409", "413", "422"]
            for status in wanted:
                if status not in responses:
                    responses[status] = _error_response(status)
                else:
                    responses[status].setdefault("content", {JSON: {}})
            if "422" in responses:
                content = responses["422"].setdefault("content", {})
                content.setdefault(JSON, {"schema": {"$ref": "#/components/schemas/Error"}})
