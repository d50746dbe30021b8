"""Priority-flood depression filling (Barnes, Lehman & Mulla 2014, *Computers & Geosciences*
62), exact: a cell's filled height is the lowest possible maximum height along a path to the
DEM's edge (the raster border or no data), taken from the float32 heights themselves, so a
filled lake is exactly flat at its spill height.

One kernel serves the whole raster (:func:`fill`, used by :mod:`risk_models.terrain`) and a
tile of it (:func:`labelled_flood`, used by :mod:`risk_models.terrain_tiles`, which also
needs each cell's watershed label and the spill heights between labels). Compiled with
numba (already required by pyflwdir).
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit, types
from numba.typed import Dict

from risk_models.flats import _DC, _DR


@njit(cache=True)
def _flood(z, seed, dr, dc, with_labels):  # pragma: no cover - compiled
    """Labelled priority-flood of one tile from its seeds (perimeter and no-data edge).

    Returns the local fill, each cell's label (1.. in seed pop order, 0 no data), the label
    count and the lowest spill height between each pair of touching labels.
    """
    rows, cols = z.shape
    fill = z.copy()
    label = np.zeros((rows, cols), np.int32)
    closed = seed.copy()
    heap = [(np.float32(0.0), np.int64(0)) for _ in range(0)]
    for r in range(rows):
        for c in range(cols):
            if seed[r, c]:
                heap.append((z[r, c], np.int64(r * cols + c)))
    heapq.heapify(heap)
    nlab = 0
    pairs = Dict.empty(key_type=types.int64, value_type=types.float32)
    while len(heap) > 0:
        _v, i = heapq.heappop(heap)
        r = i // cols
        c = i % cols
        li = label[r, c]
        if li == 0:
            nlab += 1
            li = nlab
            label[r, c] = li
        fi = fill[r, c]
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                continue
            zn = z[rr, cc]
            if np.isnan(zn):
                continue
            if closed[rr, cc]:
                if not with_labels:
                    continue
                ln = label[rr, cc]
                if ln != 0 and ln != li:
                    w = max(fi, fill[rr, cc])
                    key = (np.int64(min(li, ln)) << 32) + np.int64(max(li, ln))
                    if w < pairs.get(key, np.float32(np.inf)):
                        pairs[key] = w
            else:
                fill[rr, cc] = max(zn, fi)
                label[rr, cc] = li
                closed[rr, cc] = True
                heapq.heappush(heap, (fill[rr, cc], np.int64(rr * cols + cc)))
    n = len(pairs)
    la = np.empty(n, np.int64)
    lb = np.empty(n, np.int64)
    lw = np.empty(n, np.float32)
    j = 0
    for key, w in pairs.items():
        la[j] = key >> 32
        lb[j] = key & 0xFFFFFFFF
        lw[j] = w
        j += 1
    return fill, label, nlab, la, lb, lw


def edge_cells(valid: np.ndarray) -> np.ndarray:
    """Valid cells on the raster border or next to no data (the outlets of the flood)."""
    pad = np.pad(valid, 1, constant_values=False)
    rows, cols = valid.shape
    inner = np.ones(valid.shape, bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            inner &= pad[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    return valid & ~inner


def fill(elev_m: np.ndarray) -> np.ndarray:
    """Depression-filled heights of a whole raster (float32, NaN no data)."""
    z = np.ascontiguousarray(elev_m, dtype="float32")
    filled, *_ = _flood(z, edge_cells(np.isfinite(z)), _DR, _DC, False)
    return np.asarray(filled)


def labelled_flood(
    z: np.ndarray, seeds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """Flood a tile from ``seeds`` (its perimeter and its no-data edge), one label per seed.

    Returns the local fill, each cell's label (1.., 0 no data), the label count and, for each
    pair of touching labels ``(a, b)``, the lowest spill height between them.
    """
    return _flood(np.ascontiguousarray(z, dtype="float32"), seeds, _DR, _DC, True)
