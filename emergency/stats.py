"""KPIs for the big screen (``/stats/summary``) and per grid (``/stats/grids/{code}``)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from psycopg import sql

from emergency.coverage import camera_coverage
from emergency.errors import GridNotFound
from emergency.warnings import STATUS_SQL
from layers.catalog import CATALOG, WARNING_LEVELS, role_allows

#: "Today" for incident counts is the calendar day of the command centre (China, UTC+8).
LOCAL_TZ = "Asia/Shanghai"

EXPOSED_POPULATION_SQL = f"""
WITH a AS (
    SELECT ST_Union(w.geom) AS g FROM warnings w WHERE {STATUS_SQL} = 'active'
),
parts AS (SELECT ST_Subdivide(g, 128) AS g FROM a WHERE g IS NOT NULL),
s AS (
    SELECT g.id, sum(ST_Area(ST_Intersection(g.geom, p.g))) / NULLIF(ST_Area(g.geom), 0) AS share
    FROM parts p JOIN grids g ON ST_Intersects(g.geom, p.g)
    GROUP BY g.id
)
SELECT coalesce(sum(gr.population * s.share), 0) FROM s JOIN grids gr ON gr.id = s.id
"""  # noqa: S608 (constant SQL)

WARNINGS_BY_LEVEL_SQL = f"""
SELECT w.level, count(*) AS n FROM warnings w WHERE {STATUS_SQL} = 'active' GROUP BY w.level
"""  # noqa: S608 (constant SQL)


async def layer_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows per catalog layer (table names from the catalog, quoted)."""
    parts = [
        sql.SQL("SELECT {} AS layer, count(*) AS n FROM {}").format(
            sql.Literal(layer.id), sql.Identifier(layer.table)
        )
        for layer in CATALOG.values()
    ]
    query = sql.SQL(" UNION ALL ").join(parts).as_string(None)
    return {r["layer"]: int(r["n"]) for r in await conn.fetch(query)}


async def summary(conn: asyncpg.Connection) -> dict[str, Any]:
    """The big screen's KPIs (see the contract of ``GET /stats/summary``)."""
    by_level = {lvl: 0 for lvl in WARNING_LEVELS}
    for r in await conn.fetch(WARNINGS_BY_LEVEL_SQL):
        by_level[r["level"]] = int(r["n"])
    population = await conn.fetchval(EXPOSED_POPULATION_SQL)
    cams = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'online') AS online, "
        "count(*) FILTER (WHERE status IS DISTINCT FROM 'online') AS offline FROM cameras"
    )
    assert cams is not None
    total_cams = cams["online"] + cams["offline"]
    incidents = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status IS DISTINCT FROM 'closed') AS open, "
        "count(*) FILTER (WHERE reported_at >= (date_trunc('day', now() AT TIME ZONE $1) "
        "AT TIME ZONE $1)) AS today, "
        "count(*) FILTER (WHERE stage <> '结案' AND due_at <= now()) AS overdue, "
        "count(*) FILTER (WHERE stage = '结案') AS closed, "
        "count(*) FILTER (WHERE stage = '结案' AND closed_at <= due_at) AS on_time "
        "FROM incidents",
        LOCAL_TZ,
    )
    assert incidents is not None
    run = await conn.fetchrow(
        "SELECT id, model, status, created_at, finished_at, summary::text AS summary "
        "FROM risk_runs ORDER BY id DESC LIMIT 1"
    )
    coverage = await camera_coverage(conn)
    return {
        "layers": await layer_counts(conn),
        "warnings": {"active": sum(by_level.values()), "by_level": by_level},
        "exposed_population": round(float(population or 0)),
        "cameras": {
            "online": int(cams["online"]),
            "offline": int(cams["offline"]),
            "online_rate": round(cams["online"] / total_cams, 4) if total_cams else None,
        },
        "camera_coverage": coverage["share"],
        "incidents": {
            "open": int(incidents["open"]),
            "today": int(incidents["today"]),
            "overdue": int(incidents["overdue"]),
            "on_time_rate": round(int(incidents["on_time"]) / int(incidents["closed"]), 4)
            if incidents["closed"]
            else None,
        },
        "latest_run": None
        if run is None
        else {
            "id": run["id"],
            "model": run["model"],
            "status": run["status"],
            "created_at": run["created_at"].isoformat(),
            "finished_at": run["finished_at"].isoformat() if run["finished_at"] else None,
            "summary": json.loads(run["summary"]) if run["summary"] else {},
        },
    }


GRID_SQL = """
SELECT g.code, g.name, g.community_code, a.name AS community_name, g.worker_name,
       g.worker_phone, g.households, g.population,
       ST_Area(g.geom::geography) / 1e6 AS area_km2,
       (SELECT count(*) FROM addresses x WHERE x.grid_code = g.code) AS addresses,
       (SELECT count(*) FROM hazard_sites x WHERE x.grid_code = g.code) AS hazard_sites,
       (SELECT count(*) FROM shelters x WHERE x.grid_code = g.code) AS shelters,
       (SELECT count(*) FROM sensors x WHERE x.grid_code = g.code) AS sensors,
       (SELECT count(*) FILTER (WHERE status = 'online') FROM cameras x
         WHERE x.grid_code = g.code) AS cameras_online,
       (SELECT count(*) FILTER (WHERE status IS DISTINCT FROM 'online') FROM cameras x
         WHERE x.grid_code = g.code) AS cameras_offline,
       (SELECT count(*) FILTER (WHERE status IS DISTINCT FROM 'closed') FROM incidents x
         WHERE x.grid_code = g.code) AS incidents_open,
       (SELECT count(*) FROM incidents x WHERE x.grid_code = g.code) AS incidents_total
FROM grids g LEFT JOIN admin_areas a ON a.code = g.community_code
WHERE g.code = $1
"""

GRID_VENUES_SQL = """
SELECT category, count(*) AS n, count(*) FILTER (WHERE key_site) AS key_sites
FROM venues WHERE grid_code = $1 GROUP BY category ORDER BY category
"""

GRID_WARNINGS_SQL = f"""
SELECT w.code, w.level, w.hazard, w.valid_to
FROM warnings w JOIN grids g ON g.code = $1 AND ST_Intersects(w.geom, g.geom)
WHERE {STATUS_SQL} = 'active'
  AND ST_Area(ST_Intersection(w.geom, g.geom)) > 0
ORDER BY array_position(ARRAY['red', 'orange', 'yellow', 'blue'], w.level), w.code
"""  # noqa: S608 (constant SQL)


async def grid_stats(conn: asyncpg.Connection, code: str, role: str) -> dict[str, Any]:
    """One grid's figures; its worker, households and population only for roles the
    catalog allows."""
    g = await conn.fetchrow(GRID_SQL, code)
    if g is None:
        raise GridNotFound(f"no grid {code!r}")
    out: dict[str, Any] = dict(g)
    out["area_km2"] = round(float(out["area_km2"]), 4)
    if not role_allows(role, CATALOG["grids"].sensitive_role):
        for p in CATALOG["grids"].sensitive_properties:
            out.pop(p.name, None)
    venues = await conn.fetch(GRID_VENUES_SQL, code)
    out["venues"] = {
        "total": sum(int(v["n"]) for v in venues),
        "key_sites": sum(int(v["key_sites"]) for v in venues),
        "by_category": {v["category"]: int(v["n"]) for v in venues},
    }
    coverage = await camera_coverage(conn, community=g["community_code"])
    mine = next((x for x in coverage["grids"] if x["code"] == code), None)
    out["camera_coverage"] = mine["share"] if mine else None
    out["uncovered_key_sites"] = [u for u in coverage["uncovered"] if u["grid_code"] == code]
    out["active_warnings"] = [
        {
            "code": w["code"],
            "level": w["level"],
            "hazard": w["hazard"],
            "valid_to": w["valid_to"].isoformat() if w["valid_to"] else None,
        }
        for w in await conn.fetch(GRID_WARNINGS_SQL, code)
    ]
    return out
