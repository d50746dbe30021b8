"""One test grid and the vector tile that holds it (cache and fast-path tests)."""

from __future__ import annotations

import mapbox_vector_tile
import psycopg

#: z14 tile holding the test grid (113.40 E, 22.50 N).
TILE = "14/13352/7140"
GRID_WKT = (
    "MULTIPOLYGON(((113.399 22.499, 113.401 22.499, 113.401 22.501, "
    "113.399 22.501, 113.399 22.499)))"
)


def insert_grid(url: str, name: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO grids (code, name, worker_phone, geom) "
            "VALUES ('G1', %s, '13800000000', ST_GeomFromText(%s, 4326))",
            (name, GRID_WKT),
        )


def rename_grid(url: str, name: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE grids SET name = %s WHERE code = 'G1'", (name,))


def grid_names(content: bytes) -> list[str]:
    return [
        f["properties"]["name"] for f in mapbox_vector_tile.decode(content)["grids"]["features"]
    ]
