"""Hydrology of the synthetic DEM: flow routing, stream extraction, channel burning.

Flow directions (D8) and upstream area come from `pyflwdir` on the
depression-filled DEM, so every river follows the terrain downhill.  Stream
cells (upstream area above a threshold) are split into segments at
confluences and regrouped Hack-style into named rivers: at each confluence
the branch with the larger upstream area continues the river, the other
becomes a tributary ending on it.  River lines run from source to mouth.

All coordinates are metres in EPSG:32649; areas are km².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyflwdir
import shapely
from pyflwdir.dem import fill_depressions
from pyflwdir.streams import streams as _stream_segments

from layers.demo import names
from layers.demo.frame import Frame
from layers.demo.terrain import NODATA

#: Upstream area (km²) from which a cell is a stream.
STREAM_MIN_KM2 = 1.2
#: Rivers shorter than this (m) are dropped.
RIVER_MIN_LEN_M = 1500.0
#: Rivers whose mouth drains more than this (km²) are class "river", else "stream".
RIVER_CLASS_KM2 = 25.0


@dataclass
class Hydrology:
    """Flow routing results on the frame.

    Attributes:
        filled_m: depression-filled DEM (m).
        sink_depth_m: depth of closed depressions before filling (m, >= 0).
        upa_km2: upstream area per cell (km²).
        stream: boolean stream-cell mask.
        rivers: one entry per river: dict with ``name``, ``class``, ``coords``
            (source→mouth (n, 2) array in m), ``cells`` (flat cell indices,
            source→mouth) and ``mouth_upa_km2``.
    """

    filled_m: np.ndarray
    sink_depth_m: np.ndarray
    upa_km2: np.ndarray
    stream: np.ndarray
    rivers: list[dict]


def route(frame: Frame, dem_m: np.ndarray, rng: np.random.Generator) -> Hydrology:
    """Route flow on ``dem_m`` and extract named rivers.

    Args:
        frame: raster frame of the DEM.
        dem_m: elevation (m), float32, no nodata cells.
        rng: random generator (river names only).
    """
    filled, d8 = fill_depressions(dem_m.astype(np.float32), nodata=NODATA, outlets="edge")
    flw = pyflwdir.from_array(d8, ftype="d8", check_ftype=False, transform=frame.transform)
    upa = flw.upstream_area(unit="km2").astype(np.float32)
    stream = upa >= STREAM_MIN_KM2
    rivers = _group_rivers(flw, upa, stream, frame)
    _name_rivers(rivers, rng)
    return Hydrology(filled, np.maximum(filled - dem_m, 0.0), upa, stream, rivers)


def _group_rivers(flw, upa: np.ndarray, stream: np.ndarray, frame: Frame) -> list[dict]:
    """Regroup confluence-to-confluence segments into source-to-mouth rivers."""
    idxs_ds = flw.idxs_ds
    segs = [
        s
        for s in _stream_segments(idxs_ds, flw.idxs_seq, mask=stream.ravel())
        if s.size >= 2 and s[0] != s[-1]
    ]
    upa_flat = upa.ravel()
    us_main = flw.idxs_us_main
    first = {int(s[0]): i for i, s in enumerate(segs)}
    order = np.argsort(-upa_flat[[s[-1] for s in segs]], kind="stable")
    river_of = np.full(len(segs), -1, dtype=np.int64)
    n_rivers = 0
    for i in order:  # downstream segments first; a few hundred segments
        s = segs[i]
        end = int(s[-1])
        down = first.get(end, -1)
        if down >= 0 and us_main[end] == s[-2] and river_of[down] >= 0:
            river_of[i] = river_of[down]
        else:
            river_of[i] = n_rivers
            n_rivers += 1
    rivers: list[dict] = []
    for r in range(n_rivers):
        members = [segs[i] for i in np.flatnonzero(river_of == r)]
        members.sort(key=lambda s: upa_flat[s[-1]])  # source first
        cells = np.concatenate([members[0]] + [m[1:] for m in members[1:]])
        rows, cols = np.divmod(cells, frame.width)
        xy = np.column_stack(frame.cell_xy(rows, cols))
        length = float(np.hypot(*np.diff(xy, axis=0).T).sum())
        # A tributary's last cell is the confluence on the receiving river.
        own_last = cells[-2] if int(cells[-1]) in first else cells[-1]
        rivers.append(
            {
                "cells": cells,
                "coords": _smooth(xy),
                "length_m": length,
                "mouth_upa_km2": float(upa_flat[own_last]),
            }
        )
    rivers.sort(key=lambda r: -r["mouth_upa_km2"])
    keep = [r for i, r in enumerate(rivers) if i == 0 or r["length_m"] >= RIVER_MIN_LEN_M]
    return keep


def _smooth(xy: np.ndarray) -> np.ndarray:
    """Remove the D8 staircase: Douglas-Peucker (20 m) then Chaikin smoothing."""
    simple = shapely.get_coordinates(shapely.simplify(shapely.linestrings(xy), 20.0))
    return chaikin(simple, 3)


def chaikin(xy: np.ndarray, iterations: int) -> np.ndarray:
    """Chaikin corner-cutting of an open polyline, keeping both end points."""
    for _ in range(iterations):
        if len(xy) < 3:
            return xy
        a, b = xy[:-1], xy[1:]
        q = 0.75 * a + 0.25 * b
        r = 0.25 * a + 0.75 * b
        mid = np.stack([q, r], axis=1).reshape(-1, 2)
        xy = np.vstack([xy[:1], mid[1:-1], xy[-1:]])
    return xy


def _name_rivers(rivers: list[dict], rng: np.random.Generator) -> None:
    pool = names.river_names(rng, len(rivers))
    for river, name in zip(rivers, pool, strict=True):
        river["name"] = name
        river["class"] = "river" if river["mouth_upa_km2"] >= RIVER_CLASS_KM2 else "stream"


def burn_channels(dem_m: np.ndarray, hydro: Hydrology) -> np.ndarray:
    """Carve river channels into the DEM.

    Channel beds are the depression-filled DEM lowered by 1–4 m growing with
    upstream area (filled elevations never rise downstream and the depth
    never shrinks), so beds descend monotonically from source to mouth and
    the floodplain stands a few metres above the river.
    """
    depth = np.clip(1.0 + 1.1 * np.log10(hydro.upa_km2 / STREAM_MIN_KM2 + 1e-9), 1.0, 4.0)
    bed = (hydro.filled_m - depth).astype(np.float32)
    return np.where(hydro.stream, bed, dem_m).astype(np.float32)


def river_lines(hydro: Hydrology) -> np.ndarray:
    """River centre lines as an array of shapely MultiLineStrings (m, EPSG:32649)."""
    coords = [r["coords"] for r in hydro.rivers]
    idx = np.repeat(np.arange(len(coords)), [len(c) for c in coords])
    lines = np.asarray(shapely.linestrings(np.vstack(coords), indices=idx), dtype=object)
    return np.asarray(shapely.multilinestrings(lines, indices=np.arange(lines.size)), dtype=object)
