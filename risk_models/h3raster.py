"""Fast pixel → H3 assignment by burning cell polygons into the raster grid.

:func:`risk_models.h3agg.pixel_cells` asks h3 for the cell of every pixel centre (≈ 1–2 M
pixels/s). Cells are much larger than pixels (a res-9 cell holds ≈ 115 pixels of 30 m), so
it is far cheaper to list the few cells that cover a raster window, project their hexagons
into the raster's pixel space once and scan-convert them (:func:`fill_convex_polygons`): a
pixel belongs to the hexagon containing its **centre**, which is h3's rule. H3 cell edges
are straight in the icosahedron face's gnomonic projection; over one cell (≤ 1.3 km at res 7)
a projected CRS bends them by far less than a millimetre, so the two agree except for a pixel
centre lying exactly on an edge. Pixels that no polygon took fall back to the exact h3 call.

Windows are bands of raster rows; the same bands are used in-process and on Dask workers, so
the results are identical either way.
"""

from __future__ import annotations

from typing import Any

import h3
import h3.api.numpy_int as h3np
import numpy as np
import pandas as pd
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box

from risk_models.h3agg import pixel_cells, polygon_to_cells


def row_windows(n_rows: int, window_rows: int) -> list[tuple[int, int]]:
    """``[(row0, row1), …]`` bands of at most ``window_rows`` rows covering ``n_rows``."""
    return [(r, min(r + window_rows, n_rows)) for r in range(0, n_rows, window_rows)]


def _footprint_lonlat(
    transform: Affine, crs: Any, n_rows: int, n_cols: int
) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a raster window, edges densified."""
    t = np.linspace(0.0, 1.0, 33)
    cols = np.r_[t * n_cols, np.full(t.size, n_cols), t[::-1] * n_cols, np.zeros(t.size)]
    rows = np.r_[np.zeros(t.size), t * n_rows, np.full(t.size, n_rows), t[::-1] * n_rows]
    x, y = transform @ (cols, rows)
    src = CRS.from_user_input(crs)
    lon, lat = Transformer.from_crs(src, 4326, always_xy=True).transform(x, y)
    return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))


def window_cells(
    transform: Affine,
    crs: Any,
    shape: tuple[int, int],
    res: int,
    rows: tuple[int, int],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """H3 cell (int64) of every pixel centre in raster rows ``rows[0]:rows[1]``; 0 outside
    ``mask`` (the mask of the whole raster, or of just this window).

    Args:
        transform, crs, shape: the whole raster's grid (any projected or geographic CRS).
        res: H3 resolution.
        rows: the band of rows ``(row0, row1)``.
        mask: pixels that need a cell (e.g. valid DEM pixels).
    """
    row0, row1 = rows
    n_rows, n_cols = row1 - row0, shape[1]
    wt = transform @ Affine.translation(0, row0)
    out = np.zeros((n_rows, n_cols), dtype="int64")
    if mask is not None:
        wmask = mask[row0:row1] if mask.shape[0] == shape[0] else mask
        if not wmask.any():
            return out
    else:
        wmask = np.ones((n_rows, n_cols), dtype=bool)
    west, south, east, north = _footprint_lonlat(wt, crs, n_rows, n_cols)
    # every cell holding a pixel centre overlaps the footprint's bbox; a small pad guards
    # against round-off in h3's overlap test (and any pixel still missed is done exactly)
    pad = (
        0.25
        * h3.average_hexagon_edge_length(res, unit="km")
        / 111.0
        / max(np.cos(np.radians(max(abs(south), abs(north)))), 0.05)
    )
    cells = polygon_to_cells(box(west - pad, south - pad, east + pad, north + pad), res)
    if cells.size == 0:  # pragma: no cover - a bbox always overlaps some cell
        return _exact(out, wt, crs, res, wmask)
    rings = [h3np.cell_to_boundary(c) for c in cells.view("uint64").tolist()]
    sizes = np.fromiter((len(r) for r in rings), dtype="int64", count=len(rings))
    latlng = np.array([p for r in rings for p in r], dtype="float64")
    x, y = Transformer.from_crs(4326, CRS.from_user_input(crs), always_xy=True).transform(
        latlng[:, 1], latlng[:, 0]
    )
    col, row = ~wt @ (np.asarray(x), np.asarray(y))
    burned = fill_convex_polygons(col, row, sizes, (n_rows, n_cols))
    hit = burned > 0
    out[hit] = cells[burned[hit] - 1]
    out[~wmask] = 0
    missing = wmask & ~hit
    if missing.any():
        _exact(out, wt, crs, res, missing)
    return out


def fill_convex_polygons(
    col: np.ndarray, row: np.ndarray, sizes: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Burn convex polygons into a grid by their pixel centres: value i + 1 for polygon i.

    ``col``/``row`` are the vertices of all polygons one after the other (``sizes`` each) in
    pixel coordinates (column, row; a pixel's centre is at +0.5). A centre belongs to a
    polygon when it lies in the half-open span ``left ≤ x < right`` of the polygon's row at the
    centre's height (edges half-open in y too), so neighbours sharing an edge never both take
    a centre. Vectorised scan conversion: one segment per polygon and pixel row.
    """
    n_rows, n_cols = shape
    out = np.zeros(n_rows * n_cols, dtype="int32")
    n = sizes.size
    if n == 0:
        return out.reshape(shape)
    k = int(sizes.max())
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    # (n, k) vertex tables, short rings padded with their last vertex (zero-length edges)
    j = np.minimum(np.arange(k)[None, :], (sizes - 1)[:, None])
    vx, vy = col[starts[:, None] + j], row[starts[:, None] + j]
    wx = np.concatenate([vx[:, 1:], vx[:, :1]], axis=1)  # edge ends (ring closed)
    wy = np.concatenate([vy[:, 1:], vy[:, :1]], axis=1)
    r0 = np.maximum(np.ceil(vy.min(axis=1) - 0.5), 0).astype("int64")
    r1 = np.minimum(np.floor(vy.max(axis=1) - 0.5), n_rows - 1).astype("int64")
    counts = np.maximum(r1 - r0 + 1, 0)
    poly = np.repeat(np.arange(n), counts)
    seg_row = np.repeat(r0, counts) + (
        np.arange(poly.size) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    yc = seg_row + 0.5
    left = np.full(poly.size, np.inf)
    right = np.full(poly.size, -np.inf)
    for e in range(k):
        y0, y1 = vy[poly, e], wy[poly, e]
        cross = ((y0 <= yc) & (yc < y1)) | ((y1 <= yc) & (yc < y0))
        with np.errstate(invalid="ignore", divide="ignore"):
            xi = vx[poly, e] + (yc - y0) * (wx[poly, e] - vx[poly, e]) / (y1 - y0)
        left = np.where(cross, np.minimum(left, xi), left)
        right = np.where(cross, np.maximum(right, xi), right)
    c0 = np.clip(np.ceil(left - 0.5), 0, n_cols).astype("int64")
    c1 = np.clip(np.ceil(right - 0.5), 0, n_cols).astype("int64")
    ok = np.isfinite(left) & (c1 > c0)
    poly, seg_row, c0, c1 = poly[ok], seg_row[ok], c0[ok], c1[ok]
    lengths = c1 - c0
    first = np.repeat(seg_row * n_cols + c0, lengths)
    offset = np.arange(first.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[first + offset] = np.repeat(poly + 1, lengths).astype("int32")
    return out.reshape(shape)


def _exact(out: np.ndarray, wt: Affine, crs: Any, res: int, where: np.ndarray) -> np.ndarray:
    out[where] = pixel_cells(wt, crs, out.shape, res, where)
    return out


def cell_index(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique cells sorted, index of each value into them)`` like ``np.unique(…,
    return_inverse=True)`` but by hashing (pandas ``factorize``): O(n) instead of a sort of
    every pixel, which matters at millions of pixels."""
    codes, uniques = pd.factorize(np.asarray(cells).ravel(), sort=False)
    uniq = np.asarray(uniques, dtype="int64")
    order = np.argsort(uniq, kind="stable")
    rank = np.empty(order.size, dtype="int64")
    rank[order] = np.arange(order.size)
    return uniq[order], rank[codes]


def raster_cells(
    transform: Affine,
    crs: Any,
    shape: tuple[int, int],
    res: int,
    mask: np.ndarray | None = None,
    window_rows: int = 512,
) -> np.ndarray:
    """H3 cell (int64, 0 outside ``mask``) of every pixel of a raster, band by band."""
    parts = [
        window_cells(transform, crs, shape, res, w, mask)
        for w in row_windows(shape[0], window_rows)
    ]
    if not parts:
        return np.zeros(shape, dtype="int64")
    return np.concatenate(parts, axis=0)
