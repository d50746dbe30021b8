"""Drainage directions over flats (Barnes, Lehman & Mulla 2014, after Garbrecht & Martz 1997).

Depression filling leaves flat surfaces (filled pits, lakes and rivers in SRTM-type DEMs, and
every plateau of an integer-metre DEM). Steepest descent is undefined there. Barnes et al. build
an integer mask on each flat from two breadth-first searches — *towards* the flat's lower edge
and *away from* its higher edge — and route each flat cell to the neighbour with the lowest
``2·towards + away``. Water then leaves a flat through its outlet while keeping to the middle of
valley floors (a river surface drains along its centre line instead of along a bank).

The searches run in numba (already required by pyflwdir), O(cells).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# (row offset, col offset, pyflwdir D8 code): E, SE, S, SW, W, NW, N, NE
_DR = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
_DC = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)
_CODE = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)


@njit(cache=True)
def _flat_directions(z, dr, dc, code):  # pragma: no cover - compiled
    rows, cols = z.shape
    n = rows * cols
    # 0 = no data, 1 = has a strictly lower neighbour, 2 = flat
    kind = np.zeros(n, np.int8)
    for r in range(rows):
        for c in range(cols):
            v = z[r, c]
            if np.isnan(v):
                continue
            kind[r * cols + c] = 2
            for k in range(8):
                rr = r + dr[k]
                cc = c + dc[k]
                if 0 <= rr < rows and 0 <= cc < cols and z[rr, cc] < v:
                    kind[r * cols + c] = 1
                    break
    towards = np.full(n, -1, np.int64)
    away = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    # BFS towards lower terrain: seeds are flat cells next to an equal-height cell that drains
    # or next to the border / no-data
    head = 0
    tail = 0
    for i in range(n):
        if kind[i] != 2:
            continue
        r = i // cols
        c = i % cols
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            # the raster border and no-data are outlets too (as in the priority flood)
            outside = not (0 <= rr < rows and 0 <= cc < cols) or np.isnan(z[rr, cc])
            if outside or (kind[rr * cols + cc] == 1 and z[rr, cc] == z[r, c]):
                towards[i] = 1
                queue[tail] = i
                tail += 1
                break
    while head < tail:
        i = queue[head]
        head += 1
        r = i // cols
        c = i % cols
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if 0 <= rr < rows and 0 <= cc < cols:
                j = rr * cols + cc
                if kind[j] == 2 and towards[j] < 0 and z[rr, cc] == z[r, c]:
                    towards[j] = towards[i] + 1
                    queue[tail] = j
                    tail += 1
    # BFS away from higher terrain: seeds are drainable flat cells next to a higher cell
    head = 0
    tail = 0
    for i in range(n):
        if kind[i] != 2 or towards[i] < 0:
            continue
        r = i // cols
        c = i % cols
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if 0 <= rr < rows and 0 <= cc < cols and z[rr, cc] > z[r, c]:
                away[i] = 1
                queue[tail] = i
                tail += 1
                break
    while head < tail:
        i = queue[head]
        head += 1
        r = i // cols
        c = i % cols
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if 0 <= rr < rows and 0 <= cc < cols:
                j = rr * cols + cc
                if kind[j] == 2 and away[j] < 0 and towards[j] >= 0 and z[rr, cc] == z[r, c]:
                    away[j] = away[i] + 1
                    queue[tail] = j
                    tail += 1
    # label flats (same height, 8-connected, drainable) to invert `away` per flat
    label = np.full(n, -1, np.int64)
    top = np.zeros(n, np.int64)
    nlab = 0
    for s in range(n):
        if kind[s] != 2 or towards[s] < 0 or label[s] >= 0:
            continue
        label[s] = nlab
        head = 0
        tail = 1
        queue[0] = s
        best = 0
        while head < tail:
            i = queue[head]
            head += 1
            if away[i] > best:
                best = away[i]
            r = i // cols
            c = i % cols
            for k in range(8):
                rr = r + dr[k]
                cc = c + dc[k]
                if 0 <= rr < rows and 0 <= cc < cols:
                    j = rr * cols + cc
                    if kind[j] == 2 and label[j] < 0 and towards[j] >= 0 and z[rr, cc] == z[r, c]:
                        label[j] = nlab
                        queue[tail] = j
                        tail += 1
        top[nlab] = best
        nlab += 1
    mask = np.full(n, -1, np.int64)
    for i in range(n):
        if label[i] >= 0:
            a = top[label[i]] - away[i] if away[i] > 0 else 0
            mask[i] = 2 * towards[i] + a
    # route every drainable flat cell to its lowest-mask neighbour on the same flat or to an
    # equal-height draining cell (mask 0)
    out = np.zeros(n, np.uint8)
    for i in range(n):
        if mask[i] < 0:
            continue
        r = i // cols
        c = i % cols
        best_m = mask[i]
        best_k = -1
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if 0 <= rr < rows and 0 <= cc < cols and z[rr, cc] == z[r, c]:
                j = rr * cols + cc
                m = 0 if kind[j] == 1 else mask[j]
                if m >= 0 and m < best_m:
                    best_m = m
                    best_k = k
        if best_k >= 0:
            out[i] = code[best_k]
        else:
            out[i] = 255  # a border / no-data seed: the flat's outlet, a pit in D8 terms
    return out.reshape(rows, cols)


def flat_directions(filled_m: np.ndarray) -> np.ndarray:
    """D8 codes (pyflwdir convention) for cells on flats of a filled DEM, else 0.

    ``filled_m``: depression-filled heights (m), NaN no data. 255 marks flat cells that are
    the flat's outlet across the raster border or into no-data (pits in D8 terms, code 0).
    """
    z = np.ascontiguousarray(filled_m, dtype="float64")
    return np.asarray(_flat_directions(z, _DR, _DC, _CODE))
