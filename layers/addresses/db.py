"""Read the standard-address table for the in-memory index (asyncpg or psycopg)."""

from __future__ import annotations

from typing import Any

from layers.addresses.gazetteer import Gazetteer
from layers.addresses.index import AddressIndex

ROWS_SQL = """
SELECT code, full_address, province, city, district, street, community, road,
       house_number, estate, building, unit, floor, room, grid_code,
       ST_X(geom) AS lon, ST_Y(geom) AS lat
FROM addresses ORDER BY id
"""

ADMIN_SQL = """
SELECT c.name AS community, s.name AS street, d.name AS district
FROM admin_areas c
LEFT JOIN admin_areas s ON s.code = c.parent_code
LEFT JOIN admin_areas d ON d.code = s.parent_code
WHERE c.level = 'community'
"""


async def fetch_rows(conn: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Address rows and community→street→district names over an asyncpg connection."""
    rows = [dict(r) for r in await conn.fetch(ROWS_SQL)]
    admin = [dict(r) for r in await conn.fetch(ADMIN_SQL)]
    return rows, admin


def fetch_rows_sync(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same rows through psycopg (for the CLI)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(ROWS_SQL).fetchall()
        admin = conn.execute(ADMIN_SQL).fetchall()
    return list(rows), list(admin)


def build_index(
    rows: list[dict[str, Any]], admin: list[dict[str, Any]], gazetteer: Gazetteer | None = None
) -> AddressIndex:
    """The index of ``rows`` with the admin areas (even those without addresses) added."""
    index = AddressIndex(rows, gazetteer)
    top = next(((r["province"], r["city"]) for r in rows if r.get("province")), (None, None))
    index.gazetteer.add_local(
        [(top[0], top[1], a["district"], a["street"], a["community"]) for a in admin]
    )
    return index
