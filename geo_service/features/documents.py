"""The JSON documents of OGC API – Features, generated from the layer catalog."""

from __future__ import annotations

from typing import Any

import asyncpg

from geo_service.features.params import CRS84, STORAGE_CRS, SUPPORTED_CRS
from geo_service.routers.common import CSV, GEOJSON, JSON, SCHEMA_JSON
from layers.catalog import Layer, Property
from layers.sql import extent_sql, ident

OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]


def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def landing(base: str) -> dict[str, Any]:
    return {
        "title": "OneMap 一张图",
        "description": "Layers of the smart-community and emergency one map, as OGC API Features.",
        "links": [
            link(f"{base}/", "self", JSON, "This document"),
            link(f"{base}/api", "service-desc", OPENAPI, "OpenAPI 3.0 definition"),
            link(f"{base}/docs", "service-doc", "text/html", "API documentation"),
            link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            link(f"{base}/collections", "data", JSON, "Collections"),
            link(
                f"{base}/functions",
                "http://www.opengis.net/def/rel/ogc/1.0/functions",
                JSON,
                "Filter functions",
            ),
            link(
                f"{base}/tileMatrixSets",
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                JSON,
                "Tile matrix sets",
            ),
            link(
                f"{base}/tiles",
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                JSON,
                "Vector tilesets of the whole map",
            ),
        ],
    }


#: The functions a CQL2 filter may call (Features Part 3, /req/functions/get-response):
#: the case-insensitive comparison of CQL2; spatial, temporal and array operators are
#: predicates, listed by /conformance instead.
FUNCTIONS: list[dict[str, Any]] = [
    {
        "name": "casei",
        "description": "The string in lower case, for case-insensitive comparisons "
        "(CASEI(name) = CASEI('Abc'))",
        "arguments": [{"title": "value", "type": ["string"]}],
        "returns": ["string"],
    },
]


def functions(base: str) -> dict[str, Any]:
    """The ``/functions`` document."""
    return {
        "functions": FUNCTIONS,
        "links": [link(f"{base}/functions", "self", JSON, "Filter functions")],
    }


def collection(base: str, layer: Layer, extent: dict[str, Any] | None) -> dict[str, Any]:
    href = f"{base}/collections/{layer.id}"
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.title_zh} {layer.title_en}",
        "description": layer.description or layer.title_en,
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": STORAGE_CRS.uri,
        "links": [
            link(href, "self", JSON, "This collection"),
            link(f"{href}/items", "items", GEOJSON, "Features (GeoJSON)"),
            link(f"{href}/items?f=csv", "items", CSV, "Features (CSV)"),
            link(f"{href}/queryables", QUERYABLES_REL, SCHEMA_JSON, "Queryables"),
            link(
                f"{href}/tiles",
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                JSON,
                "Vector tilesets",
            ),
        ],
    }
    if extent:
        doc["extent"] = extent
    return doc


_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def property_schema(p: Property) -> dict[str, Any]:
    if p.type == "datetime":
        s: dict[str, Any] = {"type": "string", "format": "date-time"}
    else:
        s = {"type": _JSON_TYPES[p.type]}
    s["title"] = p.name
    s["description"] = p.description
    if p.enum:
        s["enum"] = list(p.enum)
    return s


#: Catalog geometry type → JSON Schema ``format`` of a spatial queryable (Features Part 3,
#: /req/queryables/geom-format; the value is a geometry, no ``$ref`` to a remote schema).
GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPoint": "geometry-multipoint",
    "LineString": "geometry-linestring",
    "MultiLineString": "geometry-multilinestring",
    "Polygon": "geometry-polygon",
    "MultiPolygon": "geometry-multipolygon",
    "GeometryCollection": "geometry-geometrycollection",
}


def queryables(base: str, layer: Layer, props: list[Property]) -> dict[str, Any]:
    """JSON Schema (2020-12) of what a filter may use (only properties the caller may see)."""
    properties: dict[str, Any] = {
        "geometry": {
            "title": "geometry",
            "description": f"The feature's geometry ({layer.geometry_type})",
            "format": GEOMETRY_FORMATS.get(layer.geometry_type, "geometry-any"),
            "x-ogc-role": "primary-geometry",
        }
    }
    for p in props:
        properties[p.name] = property_schema(p)
        if p.name == layer.key:
            properties[p.name]["x-ogc-role"] = "id"
        if p.name == layer.time_field:
            properties[p.name]["x-ogc-role"] = "primary-instant"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{layer.id}/queryables",
        "type": "object",
        "title": f"{layer.title_zh} {layer.title_en}",
        "properties": properties,
        "additionalProperties": False,
    }


#: Tables with fewer rows than this get an exact ST_Extent; bigger ones ST_EstimatedExtent.
EXACT_EXTENT_MAX_ROWS = 200_000


async def extents(conn: asyncpg.Connection, layers: list[Layer]) -> dict[str, dict[str, Any]]:
    """Spatial (and temporal, for layers with a time field) extents, one query per layer."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        table = ident(layer.table)
        reltuples = await conn.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1::text)", layer.table
        )
        estimated = reltuples is not None and reltuples > EXACT_EXTENT_MAX_ROWS
        box = await conn.fetchrow(extent_sql([layer.table], estimated=estimated))
        ext: dict[str, Any] = {}
        if box is not None and box[0] is not None:
            ext["spatial"] = {"bbox": [[round(float(v), 7) for v in box]], "crs": CRS84}
        if layer.time_field:
            col = ident(layer.time_field)
            t0, t1 = await conn.fetchrow(f"SELECT min({col}), max({col}) FROM {table}")  # noqa: S608 (catalog identifiers, bound values)
            ext["temporal"] = {
                "interval": [[t0.isoformat() if t0 else None, t1.isoformat() if t1 else None]],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            }
        if ext:
            out[layer.id] = ext
    return out
