"""Spatial queries behind ``/geo``: locate a point, nearest features, features in a geometry.

Distances are true distances in metres on the WGS 84 spheroid (PostGIS ``geography``);
indexes are used through the EPSG:4326 ``geometry`` column (GiST KNN ``<->`` and ``&&``).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from geo_service.features.sqlbits import feature_json, point_sql
from layers.catalog import Catalog, Layer, Property
from layers.sql import Params, ident

#: Most vertices accepted in a query geometry.
MAX_VERTICES = 100_000
#: Nearest-address candidates taken by planar KNN before the exact spheroidal sort.
ADDRESS_CANDIDATES = 16
#: Metres per degree used to widen index boxes; below the true ~110.6 km per degree of
#: latitude, so the boxes are always supersets of the true radius.
M_PER_DEG_LOWER = 110_000.0


def _json_object(props: tuple[Property, ...] | list[Property], alias: str) -> str:
    args = []
    for p in props:
        args += ["'" + p.name + "'", f"{alias}.{ident(p.name)}"]
    return "json_build_object(" + ", ".join(args) + ")"


def nearest_address_sql(catalog: Catalog, role: str, cte: str = "p") -> str:
    """A scalar subquery: the address nearest the point ``g`` of the CTE ``cte`` (EPSG:4326)
    as JSON ``{address, distance_m, lon, lat}`` — exact spheroidal distance among the
    :data:`ADDRESS_CANDIDATES` nearest by planar KNN; NULL when there is no address."""
    addresses = catalog["addresses"]
    addr_obj = _json_object(addresses.visible_properties(role), "c")
    return f"""SELECT json_build_object('address', {addr_obj}, 'distance_m', round(d::numeric, 2),
                         'lon', ST_X(c.geom), 'lat', ST_Y(c.geom))
     FROM (SELECT c.*, ST_Distance(c.geom::geography, {cte}.g::geography) AS d
             FROM {cte} CROSS JOIN LATERAL (
                   -- LATERAL keeps the point a constant for the KNN index scan
                   SELECT * FROM {ident(addresses.table)} c ORDER BY c.geom <-> {cte}.g
                   LIMIT {ADDRESS_CANDIDATES}) c
            ORDER BY d LIMIT 1) c"""  # noqa: S608 (catalog identifiers, bound values)


async def nearest_address(
    conn: asyncpg.Connection, catalog: Catalog, role: str, lon: float, lat: float
) -> dict[str, Any] | None:
    """The nearest standard address to a point: ``{address, distance_m, lon, lat}``."""
    params = Params()
    pt = point_sql(params, lon, lat)
    nearest = nearest_address_sql(catalog, role)
    sql = f"WITH p AS (SELECT {pt} AS g) SELECT ({nearest})"  # noqa: S608 (catalog names)
    found: dict[str, Any] | None = _decode(await conn.fetchval(sql, *params.values))
    return found


def locate_sql(catalog: Catalog, role: str, lon: float, lat: float) -> tuple[str, list[Any]]:
    """One statement: admin areas containing the point, its grid, the nearest address."""
    params = Params()
    pt = point_sql(params, lon, lat)
    admin, grids = catalog["admin_areas"], catalog["grids"]
    admin_obj = _json_object(admin.visible_properties(role), "a")
    grid_obj = _json_object(grids.visible_properties(role), "g")
    sql = f"""
WITH p AS (SELECT {pt} AS g)
SELECT
  (SELECT json_agg({admin_obj} ORDER BY ST_Area(a.geom) DESC)
     FROM {ident(admin.table)} a, p WHERE ST_Intersects(a.geom, p.g)) AS admin,
  (SELECT {grid_obj} FROM {ident(grids.table)} g, p
     WHERE ST_Intersects(g.geom, p.g) ORDER BY ST_Area(g.geom) LIMIT 1) AS grid,
  ({nearest_address_sql(catalog, role)}) AS address
"""  # noqa: S608 (catalog identifiers, bound values)
    return sql, params.values


async def locate(
    conn: asyncpg.Connection, catalog: Catalog, role: str, lon: float, lat: float
) -> dict[str, Any]:
    """Admin hierarchy (district/street/community), grid and nearest standard address."""
    sql, values = locate_sql(catalog, role, lon, lat)
    row = await conn.fetchrow(sql, *values)
    admin = _decode(row["admin"]) or []
    levels: dict[str, Any] = {lvl: None for lvl in ("district", "street", "community")}
    for area in admin:
        if area.get("level") in levels and levels[area["level"]] is None:
            levels[area["level"]] = area
    nearest = _decode(row["address"])
    return {
        "lon": lon,
        "lat": lat,
        "admin": levels,
        "grid": _decode(row["grid"]),
        "nearest_address": nearest,
    }


def _decode(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def nearby_sql(
    layer: Layer,
    props: list[Property],
    lon: float,
    lat: float,
    radius_m: float,
    limit: int,
    category: str | None,
) -> tuple[str, list[Any]]:
    """Nearest features within ``radius_m`` metres of (lon, lat), exact and index-assisted.

    The KNN operator (``geom <-> point``, planar degrees) picks ``limit`` candidates whose
    largest true distance bounds the search radius; the final set is every feature within
    that bound (index box ``&&`` + ``ST_DWithin`` on geography), sorted by true distance, so a
    feature that is nearer in metres but farther in degrees is never missed.
    """
    params = Params()
    pt = point_sql(params, lon, lat)
    r = params.add(float(radius_m), "float8")
    n = params.add(int(limit), "int8")
    cat = ""
    if category is not None:
        cat = f" AND t.{ident('category')} = {params.add(category, 'text')}"
    table = ident(layer.table)
    feat = feature_json(layer, props, extra={"distance_m": "round(t.distance_m::numeric, 2)"})
    sql = f"""
WITH p AS (SELECT {pt} AS g, {r} AS r),
knn AS (SELECT t.geom FROM {table} t, p WHERE TRUE{cat} ORDER BY t.geom <-> p.g LIMIT {n}),
bound AS (
  -- + 1 cm: ST_DWithin must not drop the KNN candidate that set the bound (rounding).
  SELECT least(p.r,
               coalesce(max(ST_Distance(knn.geom::geography, p.g::geography)) + 0.01, p.r)) AS r
  FROM p LEFT JOIN knn ON TRUE GROUP BY p.r),
box AS (
  SELECT ST_Expand(p.g, b.r / ({M_PER_DEG_LOWER} * greatest(cos(radians(ST_Y(p.g))), 0.01)),
                   b.r / {M_PER_DEG_LOWER}) AS env, b.r
  FROM p, bound b)
SELECT {feat}::text FROM (
  SELECT t.*, ST_Distance(t.geom::geography, p.g::geography) AS distance_m
  FROM {table} t, p, box
  WHERE t.geom && box.env AND ST_DWithin(t.geom::geography, p.g::geography, box.r){cat}
) t ORDER BY t.distance_m, t.id LIMIT {n}
"""  # noqa: S608 (catalog identifiers, bound values)
    return sql, params.values


def within_sql(
    layer: Layer, props: list[Property], wkb: bytes, predicate: str, limit: int
) -> tuple[str, list[Any]]:
    """Features of ``layer`` intersecting / within a geometry (EPSG:4326 WKB), and their count."""
    params = Params()
    g = f"ST_GeomFromWKB({params.add(wkb, 'bytea')}, 4326)"
    fn = {"intersects": "ST_Intersects", "within": "ST_Within"}[predicate]
    n = params.add(int(limit), "int8")
    table = ident(layer.table)
    sql = f"""
WITH q AS (SELECT {g} AS g),
m AS (SELECT t.* FROM {table} t, q WHERE t.geom && q.g AND {fn}(t.geom, q.g))
SELECT (SELECT count(*) FROM m) AS matched,
       (SELECT coalesce(json_agg(f ORDER BY id), '[]'::json)::text FROM
          (SELECT t.id, {feature_json(layer, props)} AS f FROM m t ORDER BY t.id LIMIT {n}) s
       ) AS features
"""  # noqa: S608 (catalog identifiers, bound values)
    return sql, params.values
