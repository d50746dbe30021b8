"""H3 cells → dissolved (Multi)Polygons, in EPSG:4326 (lon/lat degrees)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import h3
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from emergency.levels import LEVEL_NAME


@dataclass(frozen=True)
class Area:
    """A dissolved set of cells: ``geom`` (MultiPolygon, EPSG:4326), cell count, km²."""

    geom: shapely.MultiPolygon
    cells: int
    area_km2: float

    @property
    def wkb(self) -> bytes:
        return shapely.to_wkb(self.geom)


def _multi(geom: BaseGeometry) -> shapely.MultiPolygon:
    if isinstance(geom, shapely.MultiPolygon):
        return geom
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon)]
    return shapely.MultiPolygon(polys)


def dissolve(cells: Iterable[int]) -> Area:
    """Dissolve H3 cells (BIGINT ids, any mix of resolutions) into one MultiPolygon.

    Cells of one resolution are merged exactly by H3 (shared edges removed); several
    resolutions are unioned with GEOS.

    >>> c = h3.str_to_int(h3.latlng_to_cell(22.5, 113.4, 9))
    >>> a = dissolve([c] + [h3.str_to_int(n) for n in h3.grid_ring(h3.int_to_str(c), 1)])
    >>> a.cells, len(a.geom.geoms), round(a.area_km2, 2)
    (7, 1, 0.73)
    """
    by_res: dict[int, list[str]] = defaultdict(list)
    for c in set(cells):
        s = h3.int_to_str(int(c))
        by_res[h3.get_resolution(s)].append(s)
    if not by_res:
        return Area(shapely.MultiPolygon(), 0, 0.0)
    parts = [shapely.geometry.shape(h3.cells_to_geo(strs)) for strs in by_res.values()]
    geom = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    n = sum(len(v) for v in by_res.values())
    km2 = sum(h3.cell_area(s, "km^2") for strs in by_res.values() for s in strs)
    return Area(_multi(geom), n, km2)


def dissolve_levels(cells: Iterable[tuple[int, int]]) -> dict[int, Area]:
    """``{level: Area}`` for ``(h3, level)`` pairs, each level's own cells dissolved."""
    by_level: dict[int, list[int]] = defaultdict(list)
    for c, level in cells:
        by_level[int(level)].append(int(c))
    return {lvl: dissolve(cs) for lvl, cs in sorted(by_level.items())}


def area_summary(whole: Area, per_level: dict[int, Area]) -> dict[str, object]:
    """JSON of a warned area: cells and km² in all and per level (highest level first)."""
    return {
        "cells": whole.cells,
        "area_km2": round(whole.area_km2, 4),
        "levels": [
            {"level": LEVEL_NAME[n], "cells": a.cells, "area_km2": round(a.area_km2, 4)}
            for n, a in sorted(per_level.items(), reverse=True)
        ],
    }
