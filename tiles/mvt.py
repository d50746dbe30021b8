"""Mapbox Vector Tiles from PostGIS: one ``ST_AsMVT`` per layer over an ``ST_AsMVTGeom`` CTE.

A tile of several layers is one SQL statement whose per-layer ``ST_AsMVT`` results are
concatenated (``||``): an MVT is a protobuf message whose ``layers`` field is repeated,
so concatenated single-layer tiles are a valid multi-layer tile.

Zoom awareness, all from the catalog:

* below a layer's ``min_zoom`` (or above its ``max_zoom``) the layer is absent;
* below :data:`~tiles.tms.FULL_DETAIL_ZOOM` lines and polygons are simplified with a
  tolerance of one screen pixel (``ST_Simplify``; features that collapse are dropped) and
  points are thinned to one per :data:`THIN_PX`-pixel grid cell, keeping the feature with
  the smallest ``code`` and its ``point_count``;
* from zoom 14 every feature is in full detail;
* a tile over :data:`MAX_TILE_BYTES` is rendered again with coarser thinning and
  simplification (a safety net: it never triggers on the demo city at zoom ≥ 14).

Identifiers come only from the catalog (quoted); every value is a bound parameter.
SQL is written with asyncpg placeholders (``$1``) and converted for psycopg by
:func:`layers.sql.to_psycopg`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from layers.catalog import Catalog, Layer, PropertyType, role_allows
from layers.errors import UnknownLayer
from layers.schema import TILE_GEOM
from layers.sql import ident
from tiles.errors import InvalidTileRequest
from tiles.tms import FULL_DETAIL_ZOOM, Tile

#: MVT extent (units across a tile) and buffer (units beyond each edge), as PostGIS defaults.
EXTENT = 4096
BUFFER = 64
#: Point-thinning grid below zoom 14, in screen pixels of a 256-pixel tile.
THIN_PX = 8
#: No tile is served larger than this (bytes).
MAX_TILE_BYTES = 500 * 1024
#: Pseudo-layer of risk cells (not a catalog table; see :mod:`tiles.risk`).
RISK_LAYER = "risk"
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

_R = 6378137.0
_MERC_MAX = math.pi * _R

TILEJSON_TYPES: dict[PropertyType, str] = {
    "string": "String",
    "integer": "Number",
    "number": "Number",
    "boolean": "Boolean",
    "datetime": "String",
}


@dataclass(frozen=True)
class LayerSet:
    """The layers of one tile request: catalog layers and whether risk cells are wanted."""

    layers: tuple[Layer, ...]
    risk: bool = False

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(lyr.id for lyr in self.layers) + ((RISK_LAYER,) if self.risk else ())

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(lyr.table for lyr in self.layers)


def parse_layers(spec: str, catalog: Catalog, role: str) -> LayerSet:
    """``"a,b,risk"`` → the layers, checked against the catalog and the caller's role.

    Unknown (or unreadable) ids raise :class:`~layers.errors.UnknownLayer`; duplicates
    are dropped, order is kept.
    """
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not ids:
        raise InvalidTileRequest("no layer given; use e.g. /tiles/grids,roads/…")
    layers: list[Layer] = []
    risk = False
    for layer_id in dict.fromkeys(ids):
        if layer_id == RISK_LAYER:
            risk = True
            continue
        layer = catalog[layer_id]  # UnknownLayer
        if not role_allows(role, layer.read_role):
            raise UnknownLayer(layer_id, tuple(catalog))
        layers.append(layer)
    return LayerSet(tuple(layers), risk)


def layer_visible_at(layer: Layer, z: int) -> bool:
    return layer.min_zoom <= z <= layer.max_zoom


def _lonlat(x: float, y: float) -> tuple[float, float]:
    y = max(-_MERC_MAX, min(_MERC_MAX, y))
    return math.degrees(x / _R), math.degrees(math.atan(math.sinh(y / _R)))


def _filter_box(tile: Tile) -> tuple[float, float, float, float]:
    """The tile plus its MVT buffer, in EPSG:4326 degrees (for the ``geom`` GiST index)."""
    xmin, ymin, xmax, ymax = tile.bounds_3857
    m = tile.width_m * BUFFER / EXTENT
    west, south = _lonlat(max(-_MERC_MAX, xmin - m), ymin - m)
    east, north = _lonlat(min(_MERC_MAX, xmax + m), ymax + m)
    return west, south, east, north


def _layer_sql(layer: Layer, role: str, thin: bool, simplify: bool) -> str:
    """One layer's ``ST_AsMVT`` sub-select, reading the shared ``prm`` CTE (see
    :func:`vector_query`)."""
    names = [ident(p.name) for p in layer.visible_properties(role)]
    cols = ", ".join(names)
    s_cols = ", ".join("s." + n for n in names)
    table = ident(layer.table)
    code = ident("code")
    if layer.geometry_type == "Point" and thin:
        # One point per grid cell of prm.cell metres; the grid is global, so neighbouring
        # tiles keep the same representative.
        inner = (
            f"SELECT DISTINCT ON (cx, cy) g, {cols}, "  # noqa: S608
            f"count(*) OVER (PARTITION BY cx, cy) AS point_count FROM ("
            f"SELECT g, {cols}, floor(ST_X(g) / prm.cell) AS cx, floor(ST_Y(g) / prm.cell) AS cy "
            f"FROM (SELECT t.{TILE_GEOM} AS g, {cols} FROM public.{table} AS t, prm "
            f"WHERE t.geom && prm.box) AS t0, prm) AS c ORDER BY cx, cy, {code}"
        )
        s_cols += ", s.point_count"
    else:
        geom = f"t.{TILE_GEOM}"  # the generated EPSG:3857 copy of geom
        if simplify and layer.geometry_type != "Point":
            # Tolerance of one screen pixel; lines and polygons that collapse are dropped.
            geom = f"ST_Simplify({geom}, prm.tol, false)"
        inner = f"SELECT {geom} AS g, {cols} FROM public.{table} AS t, prm WHERE t.geom && prm.box"  # noqa: S608
    # No "WHERE geom IS NOT NULL": ST_AsMVT already skips rows whose ST_AsMVTGeom is NULL
    # (clipped away), and such a filter is pushed down by the planner so that every
    # ST_AsMVTGeom and ST_Transform runs twice (a third of the tile's time).
    return (
        f"coalesce((SELECT ST_AsMVT(q, '{layer.id}', {EXTENT}, 'geom') FROM ("  # noqa: S608
        f"SELECT ST_AsMVTGeom(s.g, prm.env, {EXTENT}, {BUFFER}, true) AS geom, {s_cols} "
        f"FROM ({inner}) AS s, prm) AS q), ''::bytea)"
    )


#: Parameters shared by every layer of a tile: $1–$4 tile envelope (EPSG:3857 m),
#: $5–$8 filter box = tile + MVT buffer (EPSG:4326 degrees, for the ``geom`` GiST index),
#: $9 simplification tolerance (m), $10 thinning cell (m).
PARAMS_CTE = (
    "WITH prm AS (SELECT "
    "ST_MakeEnvelope($1::float8, $2::float8, $3::float8, $4::float8, 3857) AS env, "
    "ST_MakeEnvelope($5::float8, $6::float8, $7::float8, $8::float8, 4326) AS box, "
    "$9::float8 AS tol, $10::float8 AS cell) "
)


def vector_query(
    layers: Sequence[Layer], tile: Tile, role: str, coarsen: int = 0
) -> tuple[str, list[object]] | None:
    """The SQL and parameters of the catalog layers of ``tile`` (``None``: none at this zoom).

    Args:
        layers: catalog layers, in the order they appear in the tile.
        tile: the checked tile address.
        role: the caller's role; sensitive properties it may not see are left out.
        coarsen: 0 for the normal rendering; each step doubles the thinning cell and the
            simplification tolerance and applies them at every zoom (size cap fallback).
    """
    z = tile.z
    shown = [lyr for lyr in layers if layer_visible_at(lyr, z)]
    if not shown:
        return None
    reduce = z < FULL_DETAIL_ZOOM or coarsen > 0
    factor = 2 ** max(0, coarsen - (0 if z < FULL_DETAIL_ZOOM else 1))
    tolerance_m = tile.pixel_m * factor
    cell_m = tile.pixel_m * THIN_PX * factor
    parts = [_layer_sql(lyr, role, thin=reduce, simplify=reduce) for lyr in shown]
    query = PARAMS_CTE + "SELECT " + " || ".join(parts)
    params: list[object] = [*tile.bounds_3857, *_filter_box(tile), tolerance_m, cell_m]
    return query, params


def vector_layer_fields(layer: Layer, role: str) -> dict[str, str]:
    """TileJSON ``fields`` of a layer as ``role`` sees it (sensitive ones left out)."""
    fields = {p.name: TILEJSON_TYPES[p.type] for p in layer.visible_properties(role)}
    if layer.geometry_type == "Point":
        fields["point_count"] = "Number"
    return fields
