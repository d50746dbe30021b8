"""The ``risk`` tile layer: H3 cells of a risk run as hexagons, rolled up at low zoom.

``risk_cells`` stores H3 indexes as BIGINT (h3-pg is not available), and only the
informative cells of a run (the rest of its cell set is level none, see
:mod:`emergency.cellstore` and :data:`CELLS_SQL`), so:

* the parent of a cell at a coarser resolution is computed in SQL with bit operations on
  the index (H3 layout: resolution in bits 52–55, one 3-bit digit per resolution below;
  a parent has its resolution field set and the finer digits all ``7``);
* the hexagons the tile covers are listed in Python with ``h3.polygon_to_cells``;
* their boundaries are computed with ``h3.cell_to_boundary``, sent to PostGIS as a WKB
  array and encoded by ``ST_AsMVTGeom``/``ST_AsMVT`` like every other layer.

At low zoom the display resolution is the finest one whose hexagons are still at least
:data:`MIN_HEX_PX` screen pixels wide, so a district-wide tile stays small. A displayed
hexagon stands for the run's cells under it and says how much of it is warned:
``share_blue`` … ``share_red`` are the shares of those cells at or above each level, and
``level`` is the highest level reached by at least half of them (the median level), so the
coloured area of the map matches the area warned at each level instead of painting a whole
parent red for one red child. ``level_max`` keeps the highest level of any child (for the
popup: "some cells red").

Parents are computed as in :mod:`layers.h3cells`.
"""

from __future__ import annotations

from collections.abc import Sequence

import h3
import numpy as np
import shapely

from layers.h3cells import parent_bits
from tiles.mvt import BUFFER, EXTENT, RISK_LAYER
from tiles.tms import Tile

#: Hexagons are drawn at least this many screen pixels across.
MIN_HEX_PX = 6
#: Below this zoom a tile is too large to list its hexagons; every group of the run is read.
COVER_MIN_ZOOM = 5

#: A run's resolution: its cell set's, else (a run without a set) its stored cells'
#: (``risk_run_res`` reads only the run's partition).
_RUN_RES = "risk_run_res(r.id)"
#: Latest finished run, and its finest resolution.
LATEST_RUN_SQL = (
    f"SELECT r.id, r.status, {_RUN_RES} "  # noqa: S608 - constant SQL
    "FROM risk_runs AS r WHERE r.status = 'done' "
    "ORDER BY coalesce(r.finished_at, r.created_at) DESC, r.id DESC LIMIT 1"
)
RUN_SQL = f"SELECT r.id, r.status, {_RUN_RES} FROM risk_runs AS r WHERE r.id = $1"  # noqa: S608

#: Cells of run $1 grouped by their parent at the display resolution: $2 AND-mask,
#: $3 OR-bits (see :func:`parent_bits`), $4 display resolution, $5 covering parents or NULL.
#:
#: A run stores only its informative cells (:mod:`emergency.cellstore`); every other cell
#: of its cell set is level none. So the parents and their cell counts come from the set
#: (``risk_set_parents``, or the set's cells themselves at the run's resolution) and the
#: stored cells only add the counts at or above each level: a share is stored cells at or
#: above the level over *all* the parent's cells. The score is the highest of the stored
#: scores and, for landslide runs (whose score is the static susceptibility), of the set's.
#: A run without a set holds all its cells: its stored cells are the parents' only source.
CELLS_SQL = """
WITH run AS (
    SELECT r.cell_set_id AS set_id, r.model = 'landslide' AS static_score, s.res AS set_res,
           coalesce(s.res, risk_run_res(r.id)) AS run_res
    FROM risk_runs AS r LEFT JOIN risk_cell_sets AS s ON s.id = r.cell_set_id
    WHERE r.id = $1
), stored AS (
    SELECT (c.h3 & $2::bigint) | $3::bigint AS p, count(*) AS n,
           count(*) FILTER (WHERE level >= 1) AS n1, count(*) FILTER (WHERE level >= 2) AS n2,
           count(*) FILTER (WHERE level >= 3) AS n3, count(*) FILTER (WHERE level >= 4) AS n4,
           max(level) AS level_max, max(score) AS score
    FROM (
        SELECT h3, level, score FROM risk_cells
        WHERE run_id = $1 AND res >= $4 AND $5::bigint[] IS NULL
        UNION ALL
        -- the cells under each covering parent are one range of the primary key, read by
        -- an index scan per parent (OFFSET 0 keeps the planner from flattening it into a
        -- scan of the whole run)
        SELECT c.h3, c.level, c.score
        FROM (SELECT (u.p & $2::bigint) | (run.run_res::bigint << 52) AS base,
                     (1::bigint << (3 * (15 - run.run_res))) - 1 AS finer
              FROM run CROSS JOIN unnest($5::bigint[]) AS u(p)) AS k
        CROSS JOIN LATERAL (
            SELECT x.h3, x.level, x.score FROM risk_cells AS x
            WHERE x.run_id = $1 AND x.res >= $4
              AND x.h3 BETWEEN k.base | k.finer AND k.base | ($3::bigint & 4503599627370495)
            OFFSET 0
        ) AS c
    ) AS c
    GROUP BY 1
), base AS (
    -- each case its own branch (a NULL test inside an OR would stop the cover from being an
    -- index condition in the generic plan a cached prepared statement gets)
    SELECT sp.h3 AS p, sp.cells::bigint AS cells, sp.score_max AS static_max
    FROM run JOIN risk_set_parents AS sp ON sp.set_id = run.set_id AND sp.res = $4
    WHERE $5::bigint[] IS NULL
    UNION ALL
    SELECT sp.h3, sp.cells::bigint, sp.score_max
    FROM run JOIN risk_set_parents AS sp ON sp.set_id = run.set_id AND sp.res = $4
        AND sp.h3 = ANY($5::bigint[])
    UNION ALL
    SELECT sc.h3, 1::bigint, sc.score
    FROM run JOIN risk_set_cells AS sc ON sc.set_id = run.set_id
    WHERE run.set_res = $4 AND $5::bigint[] IS NULL
    UNION ALL
    SELECT sc.h3, 1::bigint, sc.score
    FROM run JOIN risk_set_cells AS sc ON sc.set_id = run.set_id AND sc.h3 = ANY($5::bigint[])
    WHERE run.set_res = $4
    UNION ALL
    -- a run without a set: its stored cells (already only those under the cover)
    SELECT st.p, st.n, NULL::real FROM stored AS st
    WHERE EXISTS (SELECT 1 FROM run WHERE run.set_id IS NULL)
)
SELECT b.p,
       CASE WHEN 2 * coalesce(s.n4, 0) >= b.cells THEN 4
            WHEN 2 * coalesce(s.n3, 0) >= b.cells THEN 3
            WHEN 2 * coalesce(s.n2, 0) >= b.cells THEN 2
            WHEN 2 * coalesce(s.n1, 0) >= b.cells THEN 1
            ELSE 0 END AS level,
       coalesce(s.level_max, 0) AS level_max,
       greatest(s.score, CASE WHEN run.static_score THEN b.static_max END) AS score,
       b.cells,
       coalesce(s.n1, 0)::real / b.cells AS share_blue,
       coalesce(s.n2, 0)::real / b.cells AS share_yellow,
       coalesce(s.n3, 0)::real / b.cells AS share_orange,
       coalesce(s.n4, 0)::real / b.cells AS share_red
FROM base AS b CROSS JOIN run LEFT JOIN stored AS s ON s.p = b.p
"""

#: Hexagons ($5 WKB EPSG:4326, $6 H3 text, $7 level, $8 score, $9 cells, $12 level_max,
#: $13–$16 shares at ≥ blue … red) as one MVT layer; $10 run id, $11 display resolution.
MVT_SQL = (
    f"SELECT coalesce((SELECT ST_AsMVT(q, '{RISK_LAYER}', {EXTENT}, 'geom') FROM ("  # noqa: S608
    f"SELECT ST_AsMVTGeom(ST_Transform(ST_GeomFromWKB(u.w, 4326), 3857), "
    f"ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8, 3857), "
    f"{EXTENT}, {BUFFER}, true) AS geom, u.h3, u.level, u.level_max, u.score, u.cells, "
    f"u.share_blue, u.share_yellow, u.share_orange, u.share_red, "
    f"$10::bigint AS run_id, $11::int AS res "
    f"FROM unnest($5::bytea[], $6::text[], $7::int[], $8::real[], $9::int[], $12::int[], "
    f"$13::real[], $14::real[], $15::real[], $16::real[]) "
    f"AS u(w, h3, level, score, cells, level_max, share_blue, share_yellow, share_orange, "
    f"share_red)) AS q), ''::bytea)"
)

FIELDS = {
    "h3": "String",
    "level": "Number",
    "level_max": "Number",
    "score": "Number",
    "cells": "Number",
    "share_blue": "Number",
    "share_yellow": "Number",
    "share_orange": "Number",
    "share_red": "Number",
    "run_id": "Number",
    "res": "Number",
}


def display_res(tile: Tile, run_res: int, min_px: float = MIN_HEX_PX) -> int:
    """The finest resolution ≤ ``run_res`` whose hexagons are ≥ ``min_px`` pixels wide."""
    need_m = min_px * tile.ground_pixel_m
    for res in range(run_res, -1, -1):
        if 2 * h3.average_hexagon_edge_length(res, unit="m") >= need_m:
            return res
    return 0


def covering_cells(tile: Tile, res: int) -> list[int] | None:
    """H3 cells (ints) at ``res`` whose hexagons may touch ``tile``; ``None`` at low zoom."""
    if tile.z < COVER_MIN_ZOOM:
        return None
    west, south, east, north = tile.bounds_4326
    # Pad by two edge lengths: polygon_to_cells keeps cells whose *centre* is inside.
    pad = 2 * h3.average_hexagon_edge_length(res, unit="m") / 111_000
    south, north = max(-89.0, south - pad), min(89.0, north + pad)
    west, east = max(-179.99, west - pad), min(179.99, east + pad)
    poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    return [h3.str_to_int(c) for c in h3.polygon_to_cells(poly, res)]


def hexagon_wkb(cells: Sequence[int]) -> list[bytes]:
    """WKB polygons (EPSG:4326, lon/lat) of H3 cells given as ints."""
    if not len(cells):
        return []
    rings = [h3.cell_to_boundary(h3.int_to_str(int(c))) for c in cells]
    polys = np.empty(len(rings), dtype=object)
    six = [i for i, r in enumerate(rings) if len(r) == 6]
    if six:
        coords = np.asarray([rings[i] for i in six], dtype="float64")[:, :, ::-1]
        polys[six] = shapely.polygons(coords)
    for i, r in enumerate(rings):  # pentagons, and hexagons cut by an icosahedron edge
        if len(r) != 6:
            polys[i] = shapely.Polygon([(lng, lat) for lat, lng in r])
    return [bytes(b) for b in shapely.to_wkb(polys)]


def cells_params(
    run_id: int, tile: Tile, run_res: int, coarsen: int = 0
) -> tuple[list[object], int]:
    """Parameters of :data:`CELLS_SQL` for ``tile``, and the display resolution.

    ``coarsen`` doubles the minimum hexagon width per step (the tile size cap's fallback).
    """
    res = display_res(tile, run_res, MIN_HEX_PX * 2**coarsen)
    and_mask, or_bits = parent_bits(res)
    return [run_id, and_mask, or_bits, res, covering_cells(tile, res)], res


def mvt_params(
    tile: Tile, rows: Sequence[Sequence[object]], run_id: int, res: int
) -> list[object] | None:
    """Parameters of :data:`MVT_SQL` from the rows of :data:`CELLS_SQL` (``None``: no cell)."""
    if not rows:
        return None
    cells = [int(r[0]) for r in rows]  # type: ignore[call-overload]
    return [
        *tile.bounds_3857,
        hexagon_wkb(cells),
        [h3.int_to_str(c) for c in cells],
        [int(r[1]) for r in rows],  # type: ignore[call-overload]
        [None if r[3] is None else float(r[3]) for r in rows],  # type: ignore[arg-type]
        [int(r[4]) for r in rows],  # type: ignore[call-overload]
        run_id,
        res,
        [int(r[2]) for r in rows],  # type: ignore[call-overload]
        *([round(float(r[5 + k]), 4) for r in rows] for k in range(4)),  # type: ignore[arg-type]
    ]
