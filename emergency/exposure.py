"""Who and what lies in an area: addresses, venues, grids (workers, population), residents
(vulnerable ones per tag, per grid and per responsible cadre), cameras that see into it,
nearest shelters; and the evacuation list of the vulnerable residents.

The area is a (Multi)Polygon in EPSG:4326 passed as WKB.  Points are tested against the
whole area (PostGIS prepares it once for the whole join); grid shares are summed over
``ST_Subdivide`` pieces so each intersection is cut from a small polygon.  Camera view sectors
are stored (``cameras.view_sector``) and indexed.  Distances are spheroidal metres
(geography).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from emergency.jsonb import loads
from layers.catalog import CATALOG, RESIDENT_TAGS, role_allows

#: Most items of each list kept in an exposure document (the CSV export has every address).
LIST_LIMIT = 1000
#: Shelters listed outside the area, nearest first.
NEAREST_SHELTERS = 5
#: Parallel workers the exposure queries may use (the pool's default is none).
PARALLEL_WORKERS = 2
#: Vertices per piece of the subdivided area.
SUBDIVIDE_VERTICES = 128

_AREA = f"""
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g),
parts AS (SELECT ST_Subdivide(g, {SUBDIVIDE_VERTICES}) AS g FROM area)
"""  # noqa: S608 (a constant)

ADDRESSES_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g),
hit AS MATERIALIZED (
    SELECT a.code, a.full_address, a.grid_code
    FROM area, addresses a WHERE ST_Intersects(a.geom, area.g)
)
SELECT (SELECT count(*) FROM hit) AS n,
       (SELECT coalesce(json_object_agg(grid_code, c), '{}')::text
          FROM (SELECT grid_code, count(*) AS c FROM hit
                WHERE grid_code IS NOT NULL GROUP BY 1) s) AS by_grid,
       (SELECT coalesce(json_agg(s), '[]')::text
          FROM (SELECT code, full_address, grid_code FROM hit ORDER BY code LIMIT $2) s) AS items
"""

VENUES_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g),
hit AS MATERIALIZED (
    SELECT v.code, v.name, v.category, coalesce(v.key_site, false) AS key_site,
           v.capacity, v.grid_code
    FROM area, venues v WHERE ST_Intersects(v.geom, area.g)
)
SELECT (SELECT count(*) FROM hit) AS n,
       (SELECT count(*) FROM hit WHERE key_site) AS n_key,
       (SELECT coalesce(json_object_agg(category, c), '{}')::text
          FROM (SELECT category, count(*) AS c FROM hit GROUP BY 1 ORDER BY 2 DESC) s) AS by_cat,
       (SELECT coalesce(json_agg(s), '[]')::text
          FROM (SELECT code, name, category, key_site, capacity, grid_code FROM hit
                ORDER BY key_site DESC, category, name, code LIMIT $2) s) AS items
"""

GRIDS_SQL = (
    _AREA  # noqa: S608 (constant SQL fragments, bound values)
    + """
SELECT g.code, g.name, g.community_code, g.worker_name, g.worker_phone, g.households,
       g.population,
       sum(ST_Area(ST_Intersection(g.geom, p.g))) / NULLIF(ST_Area(g.geom), 0) AS share
FROM parts p JOIN grids g ON ST_Intersects(g.geom, p.g)
GROUP BY g.id
ORDER BY g.code
"""
)

#: One pass over the residents inside: counts per (grid, cadre, tag string); the totals,
#: per-tag, per-grid and per-cadre figures are summed from these few groups in Python.
RESIDENTS_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g)
SELECT r.grid_code, r.cadre_code, min(r.cadre_name) AS cadre_name,
       min(r.cadre_phone) AS cadre_phone, r.tags, count(*) AS n
FROM area, residents r WHERE ST_Intersects(r.geom, area.g)
GROUP BY r.grid_code, r.cadre_code, r.tags
"""


def _people(rows: list[asyncpg.Record]) -> dict[str, Any]:
    """Totals, per tag, per grid (``[residents, vulnerable]``) and per cadre."""
    total = vulnerable = 0
    by_tag: dict[str, int] = {}
    by_grid: dict[str, list[int]] = {}
    cadres: dict[str, dict[str, Any]] = {}
    for r in rows:
        n, tagged = int(r["n"]), r["tags"] is not None
        total += n
        vulnerable += n if tagged else 0
        for t in (r["tags"] or "").split(","):
            if t:
                by_tag[t] = by_tag.get(t, 0) + n
        if r["grid_code"] is not None:
            g = by_grid.setdefault(r["grid_code"], [0, 0])
            g[0] += n
            g[1] += n if tagged else 0
        if r["cadre_code"] is not None:
            c = cadres.setdefault(
                r["cadre_code"],
                {
                    "code": r["cadre_code"],
                    "name": r["cadre_name"],
                    "phone": r["cadre_phone"],
                    "grid_code": r["grid_code"],
                    "residents": 0,
                    "vulnerable": 0,
                },
            )
            c["residents"] += n
            c["vulnerable"] += n if tagged else 0
    return {
        "n": total,
        "n_vulnerable": vulnerable,
        "by_tag": {t: by_tag[t] for t in RESIDENT_TAGS if t in by_tag},
        "by_grid": by_grid,
        "cadres": [cadres[k] for k in sorted(cadres)],
    }


CAMERAS_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g)
SELECT c.code, c.name, c.kind, c.grid_code
FROM area, cameras c
WHERE c.status = 'online' AND ST_Intersects(c.view_sector, area.g)
ORDER BY c.code
"""

SHELTERS_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g),
cand AS (
    SELECT s.code, s.name, s.capacity, s.contact, s.grid_code, s.geom
    FROM shelters s, area ORDER BY s.geom <-> area.g LIMIT $2
)
SELECT c.code, c.name, c.capacity, c.contact, c.grid_code,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       ST_Distance(c.geom::geography, area.g::geography) AS distance_m
FROM cand c, area
ORDER BY distance_m, c.code
"""


async def compute_exposure(
    conn: asyncpg.Connection, area_wkb: bytes, list_limit: int = LIST_LIMIT
) -> dict[str, Any]:
    """The exposure document of an area (unmasked; see :func:`mask_exposure`).

    Args:
        conn: asyncpg connection.
        area_wkb: the area, WKB of a (Multi)Polygon in EPSG:4326.
        list_limit: most addresses/venues listed (counts are always complete).

    Returns:
        ``{"summary", "addresses", "venues", "grids", "population", "cameras", "shelters"}``;
        population is Σ grid population × (area of grid ∩ area) / (area of grid), persons.
    """
    async with conn.transaction():
        # The service's connections run short queries without parallel workers; these scan
        # a whole area's addresses and residents (100k+ rows), where two workers pay.
        await conn.execute(f"SET LOCAL max_parallel_workers_per_gather = {PARALLEL_WORKERS}")
        a = await conn.fetchrow(ADDRESSES_SQL, area_wkb, list_limit)
        v = await conn.fetchrow(VENUES_SQL, area_wkb, list_limit)
        grid_rows = await conn.fetch(GRIDS_SQL, area_wkb)
        camera_rows = await conn.fetch(CAMERAS_SQL, area_wkb)
        shelter_rows = await conn.fetch(SHELTERS_SQL, area_wkb, NEAREST_SHELTERS * 10)
        people = _people(await conn.fetch(RESIDENTS_SQL, area_wkb))
    assert a is not None and v is not None
    people_by_grid: dict[str, list[int]] = people["by_grid"]

    by_grid: dict[str, int] = loads(a["by_grid"])
    grids = []
    population = 0.0
    for g in grid_rows:
        share = float(g["share"] or 0.0)
        n_addr = int(by_grid.get(g["code"], 0))
        if share <= 1e-9 and n_addr == 0:
            continue  # only touches the area
        exposed = float(g["population"]) * share if g["population"] is not None else None
        population += exposed or 0.0
        grids.append(
            {
                "code": g["code"],
                "name": g["name"],
                "community_code": g["community_code"],
                "worker_name": g["worker_name"],
                "worker_phone": g["worker_phone"],
                "households": g["households"],
                "population": g["population"],
                "share": round(share, 6),
                "exposed_population": round(exposed) if exposed is not None else None,
                "addresses": n_addr,
                "residents": people_by_grid.get(g["code"], [0, 0])[0],
                "vulnerable": people_by_grid.get(g["code"], [0, 0])[1],
            }
        )
    venue_items = loads(v["items"])
    shelters_inside: list[dict[str, Any]] = []
    shelters_near: list[dict[str, Any]] = []
    for s in shelter_rows:
        item = {
            "code": s["code"],
            "name": s["name"],
            "capacity": s["capacity"],
            "contact": s["contact"],
            "grid_code": s["grid_code"],
            "lon": s["lon"],
            "lat": s["lat"],
            "distance_m": round(float(s["distance_m"]), 1),
        }
        if s["distance_m"] <= 0.0:
            shelters_inside.append(item)
        elif len(shelters_near) < NEAREST_SHELTERS:
            shelters_near.append(item)
    cameras = [dict(r) for r in camera_rows]
    n_addr_total = int(a["n"])
    return {
        "summary": {
            "addresses": n_addr_total,
            "venues": int(v["n"]),
            "key_sites": int(v["n_key"]),
            "population": round(population),
            "grids": len(grids),
            "cameras_online": len(cameras),
            "shelters": len(shelters_near),
            "shelter_capacity": sum(s["capacity"] or 0 for s in shelters_near),
            "residents": int(people["n"]),
            "vulnerable": int(people["n_vulnerable"]),
        },
        "residents": {
            "count": int(people["n"]),
            "vulnerable": int(people["n_vulnerable"]),
            "by_tag": people["by_tag"],
            "cadres": people["cadres"],
        },
        "addresses": {
            "count": n_addr_total,
            "items": loads(a["items"]),
            "truncated": n_addr_total > list_limit,
        },
        "venues": {
            "count": int(v["n"]),
            "by_category": loads(v["by_cat"]),
            "key_sites": [x for x in venue_items if x["key_site"]],
            "items": venue_items,
            "truncated": int(v["n"]) > list_limit,
        },
        "grids": grids,
        "population": round(population),
        "cameras": {"online": len(cameras), "items": cameras},
        "shelters": {"nearest": shelters_near, "inside": shelters_inside},
    }


def mask_exposure(exposure: dict[str, Any], role: str) -> dict[str, Any]:
    """A copy of ``exposure`` without the fields ``role`` may not see (per the catalog:
    grid workers' names/phones, households and population per grid, shelter contacts).

    The total exposed population stays: it is an aggregate over many grids.
    """
    out = dict(exposure)
    grids_layer = CATALOG["grids"]
    if not role_allows(role, grids_layer.sensitive_role) and "grids" in out:
        hidden = {p.name for p in grids_layer.sensitive_properties} | {"exposed_population"}
        out["grids"] = [{k: v for k, v in g.items() if k not in hidden} for g in out["grids"]]
    shelters_layer = CATALOG["shelters"]
    if not role_allows(role, shelters_layer.sensitive_role) and "shelters" in out:
        hidden_s = {p.name for p in shelters_layer.sensitive_properties}
        out["shelters"] = {
            k: [{f: x for f, x in s.items() if f not in hidden_s} for s in lst]
            for k, lst in out["shelters"].items()
        }
    residents_layer = CATALOG["residents"]
    if not role_allows(role, residents_layer.sensitive_role) and "residents" in out:
        hidden_r = {"name", "phone"}  # a cadre's name and phone (residents are counts only)
        out["residents"] = {
            **out["residents"],
            "cadres": [
                {k: v for k, v in c.items() if k not in hidden_r}
                for c in out["residents"].get("cadres", [])
            ],
        }
    return out


ADDRESS_CSV_COLUMNS = ("code", "full_address", "community", "grid_code", "lon", "lat")

_ADDRESS_ROWS_SQL = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromWKB($1::bytea), 4326) AS g)
SELECT a.code, a.full_address, a.community, a.grid_code,
       ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
FROM area, addresses a WHERE ST_Intersects(a.geom, area.g)
ORDER BY a.code
"""


async def iter_addresses(
    conn: asyncpg.Connection, area_wkb: bytes, batch: int = 5000
) -> AsyncIterator[tuple[Any, ...]]:
    """Every address in the area as :data:`ADDRESS_CSV_COLUMNS` tuples, ordered by code
    (lon/lat in degrees, EPSG:4326).  Needs an open transaction (server-side cursor)."""
    async for r in conn.cursor(_ADDRESS_ROWS_SQL, area_wkb, prefetch=batch):
        yield tuple(r[c] for c in ADDRESS_CSV_COLUMNS)


EVACUATION_CSV_COLUMNS = (
    "resident_code",
    "name",
    "phone",
    "birth_year",
    "tags",
    "address_code",
    "full_address",
    "grid_code",
    "cadre_code",
    "cadre_name",
    "cadre_phone",
    "transfer_status",
    "shelter_code",
    "shelter_name",
    "shelter_capacity",
    "shelter_distance_m",
    "lon",
    "lat",
)

_EVACUATION_SQL = """
WITH area AS (SELECT geom AS g, id FROM warnings WHERE id = $1)
SELECT r.code AS resident_code, r.name, r.phone, r.birth_year, r.tags, r.address_code,
       a.full_address, r.grid_code, r.cadre_code, r.cadre_name, r.cadre_phone,
       coalesce(t.status, '待转移') AS transfer_status,
       s.code AS shelter_code, s.name AS shelter_name, s.capacity AS shelter_capacity,
       round(ST_Distance(s.geom::geography, r.geom::geography)::numeric, 1)
           AS shelter_distance_m,
       ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
FROM area
JOIN residents r ON ST_Intersects(r.geom, area.g) AND r.tags IS NOT NULL
LEFT JOIN addresses a ON a.code = r.address_code
LEFT JOIN resident_transfers t ON t.warning_id = area.id AND t.resident_code = r.code
LEFT JOIN LATERAL (
    SELECT sh.code, sh.name, sh.capacity, sh.geom FROM shelters sh
    ORDER BY sh.geom::geography <-> r.geom::geography LIMIT 1
) s ON true
ORDER BY r.grid_code, r.cadre_code, r.code
"""


async def iter_evacuation(
    conn: asyncpg.Connection, warning_id: int, batch: int = 2000
) -> AsyncIterator[tuple[Any, ...]]:
    """Every vulnerable resident inside a warning as :data:`EVACUATION_CSV_COLUMNS` tuples
    (by grid, cadre and code), with the nearest shelter by straight-line distance (m).
    Needs an open transaction (server-side cursor)."""
    async for r in conn.cursor(_EVACUATION_SQL, warning_id, prefetch=batch):
        yield tuple(r[c] for c in EVACUATION_CSV_COLUMNS)
