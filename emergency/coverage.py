"""Camera coverage of key sites (重点场所): which key venues at least one online camera sees.

A camera sees the sector of radius ``range_m`` (metres) centred on ``heading_deg``
(degrees clockwise from north) and ``fov_deg`` wide, computed on the spheroid by the SQL
function ``onemap_view_sector`` (migration 0002; a full disc for fov ≥ 360° or no heading) and
stored in ``cameras.view_sector``.
Buildings are not treated as obstacles.  Communities aim at ≥ 90 % of key sites seen.
"""

from __future__ import annotations

from typing import Any

import asyncpg

#: Communities aim at this share of key sites seen by an online camera.
TARGET_SHARE = 0.9

COVERAGE_SQL = """
WITH ks AS (
    SELECT v.code, v.name, v.category, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat,
           coalesce(v.grid_code,
                    (SELECT g.code FROM grids g WHERE ST_Covers(g.geom, v.geom)
                     ORDER BY g.code LIMIT 1)) AS grid_code,
           EXISTS (
               SELECT 1 FROM cameras c
               WHERE c.status = 'online'
                   AND ST_Intersects(c.view_sector, v.geom)
           ) AS covered
    FROM venues v
    WHERE v.key_site
)
SELECT ks.code, ks.name, ks.category, ks.lon, ks.lat, ks.grid_code, ks.covered,
       g.name AS grid_name, g.community_code, a.name AS community_name
FROM ks
LEFT JOIN grids g ON g.code = ks.grid_code
LEFT JOIN admin_areas a ON a.code = g.community_code
WHERE $1::text IS NULL OR g.community_code = $1
ORDER BY ks.code
"""


def _share(covered: int, total: int) -> float | None:
    return round(covered / total, 4) if total else None


async def camera_coverage(
    conn: asyncpg.Connection, community: str | None = None, target: float = TARGET_SHARE
) -> dict[str, Any]:
    """Share of key sites seen by at least one online camera, overall, per community and
    per grid, and the key sites no online camera sees.

    Args:
        conn: asyncpg connection.
        community: only key sites of this community (code).
        target: the share a community aims at (0–1).

    Returns:
        ``{"target", "key_sites", "covered", "share", "meets_target", "communities",
        "grids", "uncovered"}``; ``share`` is null when there is no key site.
    """
    rows = await conn.fetch(COVERAGE_SQL, community)
    comm: dict[str | None, dict[str, Any]] = {}
    grids: dict[str | None, dict[str, Any]] = {}
    uncovered = []
    for r in rows:
        c = comm.setdefault(
            r["community_code"],
            {
                "code": r["community_code"],
                "name": r["community_name"],
                "key_sites": 0,
                "covered": 0,
            },
        )
        g = grids.setdefault(
            r["grid_code"],
            {
                "code": r["grid_code"],
                "name": r["grid_name"],
                "community_code": r["community_code"],
                "key_sites": 0,
                "covered": 0,
            },
        )
        for d in (c, g):
            d["key_sites"] += 1
            d["covered"] += int(r["covered"])
        if not r["covered"]:
            uncovered.append(
                {
                    "code": r["code"],
                    "name": r["name"],
                    "category": r["category"],
                    "grid_code": r["grid_code"],
                    "community_code": r["community_code"],
                    "lon": r["lon"],
                    "lat": r["lat"],
                }
            )
    for d in (*comm.values(), *grids.values()):
        d["share"] = _share(d["covered"], d["key_sites"])
        d["meets_target"] = d["share"] is not None and d["share"] >= target
    total = len(rows)
    covered = sum(int(r["covered"]) for r in rows)
    share = _share(covered, total)
    return {
        "target": target,
        "key_sites": total,
        "covered": covered,
        "share": share,
        "meets_target": share is not None and share >= target,
        "communities": sorted(comm.values(), key=lambda d: (d["code"] is None, d["code"] or "")),
        "grids": sorted(grids.values(), key=lambda d: (d["code"] is None, d["code"] or "")),
        "uncovered": uncovered,
    }
