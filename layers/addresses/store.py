"""The standard-address table as the geocoder sees it: lookups answered by PostgreSQL.

The geocoding cascade (:mod:`layers.addresses.index`) holds in memory only the *names* of
the table (estates and roads per community/street, the admin areas): what fuzzy matching
needs, which grows with the number of names, not of addresses. Everything else, the
address rows themselves, is looked up through the generated, indexed key columns of
``addresses`` (``number_key``, ``building_key``, ``room_key``, ``place_key``,
``is_house``; migration 0007), a batch of queries at a time: one statement per kind of
lookup and phase, whatever the batch's size.

A lookup is an :class:`Ask` (its kind and keys); :func:`answer` and :func:`answer_async`
run the same statements over psycopg and asyncpg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layers.schema import ADDRESS_FALLBACKS
from layers.sql import to_psycopg

#: Columns of a matched address in a geocoding answer.
ROW_SQL = """
SELECT id, code, full_address, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code
FROM addresses WHERE id = ANY($1::bigint[])
"""

#: kind → (SQL over array parameters, number of key parts). Each answers rows whose
#: leading columns are the key and whose last columns are the value.
LOOKUPS: dict[str, tuple[str, int]] = {
    # the exact address code → (id, room, building)
    "code": (
        "SELECT code, id, room, building FROM addresses WHERE code = ANY($1::text[])",
        1,
    ),
    # the exact full address → the first such row
    "full": (
        """SELECT DISTINCT ON (full_address) full_address, id, room, building
           FROM addresses WHERE full_address = ANY($1::text[]) ORDER BY full_address, id""",
        1,
    ),
    # (road, number) → the places (estate or road#number) of the houses there, by first id
    "number": (
        """SELECT a.road, a.number_key, a.place_key, min(a.id) AS first
           FROM unnest($1::text[], $2::text[]) AS k(road, num)
           JOIN addresses a ON a.road = k.road AND a.number_key = k.num
                           AND a.is_house AND a.number_key <> ''
           GROUP BY 1, 2, 3 ORDER BY first""",
        2,
    ),
    # (place, building, room) → (id, unit) of the first room
    "room": (
        """SELECT DISTINCT ON (a.place_key, a.building_key, a.room_key)
                  a.place_key, a.building_key, a.room_key, a.id, a.unit
           FROM unnest($1::text[], $2::text[], $3::text[]) AS k(place, building, room)
           JOIN addresses a ON a.place_key = k.place AND a.building_key = k.building
                           AND a.room_key = k.room AND a.room_key <> ''
           ORDER BY 1, 2, 3, a.id""",
        3,
    ),
    # (place, building) → id of the first house of that building
    "building": (
        """SELECT DISTINCT ON (a.place_key, a.building_key) a.place_key, a.building_key, a.id
           FROM unnest($1::text[], $2::text[]) AS k(place, building)
           JOIN addresses a ON a.place_key = k.place AND a.building_key = k.building
                           AND a.is_house AND a.building_key <> ''
           ORDER BY 1, 2, a.id""",
        2,
    ),
    # place → its first house, shortest building key first (the place itself before 1栋)
    "place": (
        """SELECT DISTINCT ON (place_key) place_key, id FROM addresses
           WHERE is_house AND place_key = ANY($1::text[])
           ORDER BY place_key, length(building_key), building_key COLLATE "C", id""",
        1,
    ),
}

#: The representative address of a road, community, street or district: the row nearest
#: the mean position of all rows with that name (the first by id among equals), found by a
#: nearest-neighbour scan of the geometry index from that mean (:data:`MEANS_SQL`).
REPRESENTATIVE_SQL = {
    level: f"""
        SELECT k.name, (
            SELECT a.id FROM addresses a WHERE a.{level} = k.name
            ORDER BY a.geom <-> ST_SetSRID(ST_MakePoint(k.mx, k.my), 4326), a.id LIMIT 1
        ) FROM unnest($1::text[], $2::float8[], $3::float8[]) AS k(name, mx, my)
    """  # noqa: S608 (level: one of the fixed column names)
    for level in ADDRESS_FALLBACKS
}

#: The mean position of the addresses of every road, community, street and district (one
#: scan of the table for all four levels).
MEANS_SQL = """
SELECT level, name, mx, my FROM (
    SELECT CASE WHEN grouping(road) = 0 THEN 'road'
                WHEN grouping(community) = 0 THEN 'community'
                WHEN grouping(street) = 0 THEN 'street' ELSE 'district' END AS level,
           coalesce(road, community, street, district) AS name,
           avg(ST_X(geom)) AS mx, avg(ST_Y(geom)) AS my
    FROM addresses GROUP BY GROUPING SETS ((road), (community), (street), (district))
) g WHERE name <> ''
"""

#: The names the in-memory vocabulary holds: each combination once, by first row.
NAMES_SQL = """
SELECT estate, road, street, community FROM addresses
GROUP BY 1, 2, 3, 4 ORDER BY min(id)
"""

#: Estate → road and number of its first house on a road.
ESTATE_ROADS_SQL = """
SELECT DISTINCT ON (estate) estate, road, number_key FROM addresses
WHERE is_house AND estate <> '' AND road <> '' ORDER BY estate, id
"""

#: The admin tuples of the addresses (province, city, district, street, community).
ADMIN_TUPLES_SQL = """
SELECT DISTINCT province, city, district, nullif(street, '') AS street,
       nullif(community, '') AS community
FROM addresses
"""

#: Communities with their street and district, even those without addresses.
ADMIN_AREAS_SQL = """
SELECT c.name AS community, s.name AS street, d.name AS district
FROM admin_areas c
LEFT JOIN admin_areas s ON s.code = c.parent_code
LEFT JOIN admin_areas d ON d.code = s.parent_code
WHERE c.level = 'community'
"""

#: Province and city of the first address that has them (the top of the admin areas).
TOP_SQL = """
SELECT province, city FROM addresses WHERE province <> '' ORDER BY id LIMIT 1
"""

VOCABULARY_SQL = {
    "top": TOP_SQL,
    "names": NAMES_SQL,
    "estate_roads": ESTATE_ROADS_SQL,
    "admin": ADMIN_TUPLES_SQL,
    "admin_areas": ADMIN_AREAS_SQL,
    "means": MEANS_SQL,
}


@dataclass(frozen=True, slots=True)
class Ask:
    """One batched lookup: ``kind`` (a key of :data:`LOOKUPS`, ``rep:<level>`` or
    ``row``) and its distinct keys (tuples of strings, or ids for ``row``)."""

    kind: str
    keys: tuple[Any, ...]


def statement(ask: Ask) -> tuple[str, list[Any]]:
    """The SQL (asyncpg placeholders) and array parameters of ``ask``."""
    if ask.kind == "row":
        return ROW_SQL, [list(ask.keys)]
    if ask.kind.startswith("rep:"):
        return REPRESENTATIVE_SQL[ask.kind[4:]], [[k[i] for k in ask.keys] for i in range(3)]
    sql, parts = LOOKUPS[ask.kind]
    return sql, [[k[i] for k in ask.keys] for i in range(parts)]


def _collect(ask: Ask, rows: Sequence[tuple[Any, ...]]) -> dict[Any, Any]:
    """The answer as a dict. ``row``: id → row; ``rep:*``: (name,) → id; ``number``:
    key → places in order; the others: key → value (one column) or value tuple."""
    if ask.kind == "row":
        return {r[0]: r for r in rows}
    if ask.kind.startswith("rep:"):
        return {(r[0],): r[1] for r in rows}
    n = LOOKUPS[ask.kind][1]
    out: dict[Any, Any] = {}
    for r in rows:
        key, rest = tuple(r[:n]), r[n:]
        if ask.kind == "number":
            out.setdefault(key, []).append(rest[0])
        else:
            out.setdefault(key, rest[0] if len(rest) == 1 else rest)
    return out


def answer(conn: Any, asks: Sequence[Ask]) -> list[dict[Any, Any]]:
    """Answer ``asks`` over a psycopg connection (tuple rows)."""
    out: list[dict[Any, Any]] = []
    for ask in asks:
        if not ask.keys:
            out.append({})
            continue
        sql, params = to_psycopg(*statement(ask))
        rows = conn.execute(sql, params).fetchall()
        out.append(_collect(ask, [tuple(r) for r in rows]))
    return out


async def answer_async(conn: Any, asks: Sequence[Ask]) -> list[dict[Any, Any]]:
    """Answer ``asks`` over an asyncpg connection."""
    out: list[dict[Any, Any]] = []
    for ask in asks:
        if not ask.keys:
            out.append({})
            continue
        sql, params = statement(ask)
        rows = await conn.fetch(sql, *params)
        out.append(_collect(ask, [tuple(r.values()) for r in rows]))
    return out


def fetch_vocabulary(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rows the in-memory vocabulary is built from, over psycopg."""
    out = {}
    for name, sql in VOCABULARY_SQL.items():
        rows = conn.execute(sql).fetchall()
        out[name] = [tuple(r) for r in rows]
    return out


async def fetch_vocabulary_async(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The same over asyncpg."""
    return {
        name: [tuple(r.values()) for r in await conn.fetch(sql)]
        for name, sql in VOCABULARY_SQL.items()
    }
