"""Windowed terrain: the chain of :func:`risk_models.terrain.terrain_arrays` over tiles of a DEM
on disk, with memory bounded by the tile, not the DEM. The results equal the in-memory ones.

Local derivatives (slope, curvature, relief) need only a halo around each tile. Hydrology is
global: water crosses tile edges. Each global step splits into a pass over the tiles, a solve
on a small graph of the tiles' perimeters, and a second pass over the tiles:

* **Depression filling** — parallel priority-flood (Barnes 2016, *Computers & Geosciences* 96).
  Each tile is flooded from its perimeter and its no-data edge; every perimeter cell starts its
  own watershed label. The lowest spill height between touching labels (inside a tile and
  across tile edges) forms a graph whose minimax distances from the outside (the DEM's edge)
  give each label's water level; a cell's filled height is ``max(local fill, level of its
  label)``, which is exactly the global priority-flood.
* **Flow directions** — steepest descent is local. On flats the directions depend on the whole
  flat (:mod:`risk_models.flats`): a tile whose flats reach the edge of its window is redone
  with a wider window, until no flat of the tile is cut (the flat is then seen whole).
* **Flow accumulation** — after Barnes (2017, *Environmental Modelling & Software* 92): each
  tile accumulates its own cells; the flow leaving a tile over an edge continues at the cell
  it enters and leaves that tile again at one edge cell (or ends in a pit), so the edges form a
  forest whose totals are summed in topological order; the second pass adds each tile's inflow.
* **HAND and the drain's upstream area** — the drain found downstream of a cell is carried up
  the flow paths; paths that leave a tile take the value found downstream of the edge they
  cross (the same forest, solved downstream first).
* **Distance to stream** — a Euclidean distance in a halo window, widened for any cell whose
  nearest stream in the window is farther than the window's edge.

Every tile task reads its inputs from GeoTIFFs and writes its outputs as per-tile GeoTIFFs; a
VRT mosaics them for the next step's halo reads, and the final layers are COGs copied from the
VRTs. Tasks run through a ``map``-like function (in-process by default; ``Client.map`` on Dask),
so one process holds one window at a time.
"""

from __future__ import annotations

import heapq
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from numba import njit
from rasterio.crs import CRS
from rasterio.windows import Window

from risk_models import terrain
from risk_models.errors import DemError
from risk_models.fill import labelled_flood
from risk_models.flats import _CODE, _DC, _DR

log = logging.getLogger(__name__)

#: Default tile side (pixels) and halo (pixels) of the windowed chain.
TILE_PX = 2048
HALO_PX = 64
#: Widest window (pixels a side) a tile is widened to for a flat or a far stream: about 2.5 GB
#: for the flat directions of a 4096² window.
MAX_WINDOW_PX = 4096
#: Layers written, in the order of :func:`risk_models.terrain.terrain_arrays`.
LAYERS = (
    "elev_m", "filled_m", "sink_depth_m", "flowdir_d8", "uparea_km2", "streams", "slope_deg",
    "relief_m", "curv_profile_per_m", "curv_plan_per_m", "curv_total_per_m", "hand_m", "twi",
    "dist_stream_m", "drain_uparea_km2",
)  # fmt: skip

MapFn = Callable[[Callable[..., Any], Iterable[Any]], Iterable[Any]]
Progress = Callable[[str, int, int], None]

# D8 code → (row, col) offset; codes 0 (pit) and 247 (no data) map to "no neighbour"
_OFF_R = np.zeros(256, np.int64)
_OFF_C = np.zeros(256, np.int64)
_IS_DIR = np.zeros(256, np.bool_)
for _k in range(8):
    _OFF_R[_CODE[_k]] = _DR[_k]
    _OFF_C[_CODE[_k]] = _DC[_k]
    _IS_DIR[_CODE[_k]] = True


# --- the grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A projected raster grid split into tiles."""

    height: int
    width: int
    transform: Affine
    crs_wkt: str
    tile_px: int
    max_window_px: int = MAX_WINDOW_PX

    @property
    def res_m(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(row0, row1, col0, col1) of each tile, row-major."""
        t = self.tile_px
        return [
            (r, min(r + t, self.height), c, min(c + t, self.width))
            for r in range(0, self.height, t)
            for c in range(0, self.width, t)
        ]


@dataclass(frozen=True)
class Source:
    """Where a tile task reads the DEM: a path, band and the extra no-data value."""

    path: str
    nodata: float | None = None
    band: int = 1


Tile = tuple[int, int, int, int]


def read_window(
    path: str, grid: Grid, tile: Tile, halo: int, *, nodata: float | None = None,
    band: int = 1, dtype: str = "float32",
) -> tuple[np.ndarray, tuple[slice, slice], tuple[bool, bool, bool, bool]]:  # fmt: skip
    """The tile plus up to ``halo`` pixels each side, clipped to the raster (a window that ends
    at the raster's edge sees what the whole raster sees there); no-data is NaN.

    Returns:
        ``(array, core, open)``: the window, the slices of the tile in it, and whether each
        side (top, bottom, left, right) is cut inside the raster.
    """
    r0, r1, c0, c1 = tile
    wr0, wr1 = max(r0 - halo, 0), min(r1 + halo, grid.height)
    wc0, wc1 = max(c0 - halo, 0), min(c1 + halo, grid.width)
    with rasterio.open(path) as src:
        data = src.read(band, window=Window(wc0, wr0, wc1 - wc0, wr1 - wr0), out_dtype=dtype)
        file_nodata = src.nodata
    if dtype != "uint8":
        if file_nodata is not None:
            data[data == np.float32(file_nodata)] = np.nan
        if nodata is not None:
            data[data == np.float32(nodata)] = np.nan
    core = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
    return data, core, (wr0 > 0, wr1 < grid.height, wc0 > 0, wc1 < grid.width)


def read_tile(path: str, grid: Grid, tile: Tile, **kw: Any) -> np.ndarray:
    """The tile alone."""
    return read_window(path, grid, tile, 0, **kw)[0]


# --- per-tile output files -----------------------------------------------------------------


def _tile_path(work: Path, layer: str, ti: int) -> Path:
    return work / layer / f"{ti}.tif"


def _write_tile(work: Path, layer: str, ti: int, grid: Grid, tile: tuple, arr: np.ndarray) -> None:
    r0, _r1, c0, _c1 = tile
    path = _tile_path(work, layer, ti)
    path.parent.mkdir(parents=True, exist_ok=True)
    nodata: float = 247 if layer == "flowdir_d8" else 255 if arr.dtype == np.uint8 else math.nan
    profile = {
        "driver": "GTiff", "height": arr.shape[0], "width": arr.shape[1], "count": 1,
        "dtype": arr.dtype.name, "crs": CRS.from_wkt(grid.crs_wkt),
        "transform": grid.transform @ Affine.translation(c0, r0), "nodata": nodata,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)


def _write_vrt(work: Path, layer: str, grid: Grid, dtype: str) -> Path:
    """A VRT mosaic of a layer's tile files (the next step's halo reads, the COG's source)."""
    gdal_type = {"float32": "Float32", "uint8": "Byte"}[dtype]
    nodata = "247" if layer == "flowdir_d8" else "255" if dtype == "uint8" else "nan"
    t = grid.transform
    sources = []
    for ti, (r0, r1, c0, c1) in enumerate(grid.tiles()):
        w, h = c1 - c0, r1 - r0
        sources.append(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{layer}/{ti}.tif</SourceFilename>'
            f"<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
            f'<DstRect xOff="{c0}" yOff="{r0}" xSize="{w}" ySize="{h}"/></SimpleSource>'
        )
    xml = (
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
        f"<SRS>{escape(grid.crs_wkt)}</SRS>"
        f"<GeoTransform>{t.c!r},{t.a!r},{t.b!r},{t.f!r},{t.d!r},{t.e!r}</GeoTransform>"
        f'<VRTRasterBand dataType="{gdal_type}" band="1"><NoDataValue>{nodata}</NoDataValue>'
        + "".join(sources)
        + "</VRTRasterBand></VRTDataset>"
    )
    path = work / f"{layer}.vrt"
    path.write_text(xml)
    return path


# --- compiled kernels ----------------------------------------------------------------------


@njit(cache=True)
def _minimax_from(n_nodes, indptr, nbr, weight):  # pragma: no cover - compiled
    """Minimax distance of every node from node 0 (the outside) over an undirected graph."""
    level = np.full(n_nodes, np.inf)
    level[0] = -np.inf
    done = np.zeros(n_nodes, np.bool_)
    heap = [(-np.inf, np.int64(0))]
    while len(heap) > 0:
        v, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        for e in range(indptr[u], indptr[u + 1]):
            x = nbr[e]
            cand = max(v, weight[e])
            if cand < level[x]:
                level[x] = cand
                heapq.heappush(heap, (cand, x))
    return level


@njit(cache=True)
def _route(d8, weight, off_r, off_c, is_dir):  # pragma: no cover - compiled
    """Flow of one tile: downstream index per cell (local flat index, -1 pit / no data, or
    ``-2 - k`` for the k-th edge leaving the tile, row-major), a topological order (upstream
    first), the weighted accumulation and the (row, col) offsets of each leaving edge's target.
    """
    rows, cols = d8.shape
    n = rows * cols
    down = np.full(n, -1, np.int64)
    indeg = np.zeros(n, np.int64)
    n_exit = 0
    for i in range(n):
        code = d8.flat[i]
        if code == 247 or not is_dir[code]:
            continue
        r = i // cols + off_r[code]
        c = i % cols + off_c[code]
        if 0 <= r < rows and 0 <= c < cols:
            j = r * cols + c
            if d8.flat[j] != 247:
                down[i] = j
                indeg[j] += 1
        else:
            down[i] = -2 - n_exit
            n_exit += 1
    exit_dr = np.empty(n_exit, np.int64)
    exit_dc = np.empty(n_exit, np.int64)
    exit_src = np.empty(n_exit, np.int64)
    for i in range(n):
        if down[i] <= -2:
            k = -2 - down[i]
            code = d8.flat[i]
            exit_src[k] = i
            exit_dr[k] = i // cols + off_r[code]
            exit_dc[k] = i % cols + off_c[code]
    order = np.empty(n, np.int64)
    head = 0
    tail = 0
    for i in range(n):
        if d8.flat[i] != 247 and indeg[i] == 0:
            order[tail] = i
            tail += 1
    acc = weight.copy()
    while head < tail:
        i = order[head]
        head += 1
        j = down[i]
        if j >= 0:
            acc[j] += acc[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                order[tail] = j
                tail += 1
    return down, order[:tail], acc, exit_src, exit_dr, exit_dc


@njit(cache=True)
def _exit_of(down, order):  # pragma: no cover - compiled
    """The leaving edge each cell's path reaches within the tile (-1: it ends in a pit)."""
    ex = np.full(down.size, -1, np.int64)
    for j in range(order.size - 1, -1, -1):
        i = order[j]
        d = down[i]
        if d >= 0:
            ex[i] = ex[d]
        elif d <= -2:
            ex[i] = -2 - d
    return ex


@njit(cache=True)
def _carry(down, order, is_stream, filled, upa, exit_h, exit_u):  # pragma: no cover
    """Drain height (stream or pit reached) and drain upstream area (stream reached) of each
    cell, carried up the paths; a path leaving the tile takes its edge's values."""
    n = down.size
    h = np.full(n, np.nan)
    u = np.full(n, np.nan)
    ex = np.full(n, -1, np.int64)  # the leaving edge whose values a cell took (-1: none)
    for j in range(order.size - 1, -1, -1):
        i = order[j]
        if is_stream[i]:
            h[i] = filled[i]
            u[i] = upa[i]
            continue
        d = down[i]
        if d >= 0:
            h[i] = h[d]
            u[i] = u[d]
            ex[i] = ex[d]
        elif d == -1:
            h[i] = filled[i]
        else:
            h[i] = exit_h[-2 - d]
            u[i] = exit_u[-2 - d]
            ex[i] = -2 - d
    return h, u, ex


@njit(cache=True)
def _edge_order(nxt):  # pragma: no cover - compiled
    """Topological order (upstream first) of a forest given each edge's next edge (-1 none)."""
    n = nxt.size
    indeg = np.zeros(n, np.int64)
    for k in range(n):
        if nxt[k] >= 0:
            indeg[nxt[k]] += 1
    order = np.empty(n, np.int64)
    head = 0
    tail = 0
    for k in range(n):
        if indeg[k] == 0:
            order[tail] = k
            tail += 1
    while head < tail:
        k = order[head]
        head += 1
        j = nxt[k]
        if j >= 0:
            indeg[j] -= 1
            if indeg[j] == 0:
                order[tail] = j
                tail += 1
    return order[:tail]


@njit(cache=True)
def _sum_along(order, nxt, base):  # pragma: no cover - compiled
    total = base.copy()
    for k in order:
        if nxt[k] >= 0:
            total[nxt[k]] += total[k]
    return total


@njit(cache=True)
def _resolve_down(order, nxt, h_dst, u_dst, resolved):  # pragma: no cover - compiled
    h = h_dst.copy()
    u = u_dst.copy()
    for j in range(order.size - 1, -1, -1):
        k = order[j]
        if not resolved[k]:
            h[k] = h[nxt[k]]
            u[k] = u[nxt[k]]
    return h, u


@njit(cache=True)
def _cut_flat_reaches_core(z, cr0, cr1, cc0, cc1, o_top, o_bottom, o_left, o_right, dr, dc):
    """Whether a flat (equal-height cells without a lower neighbour) that touches a side of the
    window cut inside the raster reaches the core rows/cols: its directions would be wrong."""
    rows, cols = z.shape
    kind = np.zeros((rows, cols), np.int8)
    for r in range(rows):
        for c in range(cols):
            v = z[r, c]
            if np.isnan(v):
                continue
            kind[r, c] = 2
            for k in range(8):
                rr = r + dr[k]
                cc = c + dc[k]
                if 0 <= rr < rows and 0 <= cc < cols and z[rr, cc] < v:
                    kind[r, c] = 1
                    break
    seen = np.zeros((rows, cols), np.bool_)
    queue = np.empty(rows * cols, np.int64)
    tail = 0
    for r in range(rows):
        for c in range(cols):
            edge = (
                (r == 0 and o_top) or (r == rows - 1 and o_bottom)
                or (c == 0 and o_left) or (c == cols - 1 and o_right)
            )  # fmt: skip
            if edge and kind[r, c] == 2:
                seen[r, c] = True
                queue[tail] = r * cols + c
                tail += 1
    head = 0
    while head < tail:
        i = queue[head]
        head += 1
        r = i // cols
        c = i % cols
        if cr0 <= r < cr1 and cc0 <= c < cc1:
            return True
        for k in range(8):
            rr = r + dr[k]
            cc = c + dc[k]
            if 0 <= rr < rows and 0 <= cc < cols and not seen[rr, cc]:
                if kind[rr, cc] == 2 and z[rr, cc] == z[r, c]:
                    seen[rr, cc] = True
                    queue[tail] = rr * cols + cc
                    tail += 1
    return False


# --- tile tasks ----------------------------------------------------------------------------

_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _perimeter(shape: tuple[int, int]) -> np.ndarray:
    perim = np.zeros(shape, bool)
    perim[0, :] = perim[-1, :] = perim[:, 0] = perim[:, -1] = True
    return perim


def _fill_pass1(src: Source, grid: Grid, ti: int, work: str) -> dict[str, Any]:
    tile = grid.tiles()[ti]
    r0, r1, c0, c1 = tile
    win, core, opened = read_window(src.path, grid, tile, 1, nodata=src.nodata, band=src.band)
    # a one-pixel ring all round, NaN beyond the raster
    pad = tuple((int(not o1), int(not o2)) for o1, o2 in (opened[:2], opened[2:]))
    zh = np.pad(win, pad, constant_values=np.nan)
    z = np.ascontiguousarray(zh[1:-1, 1:-1])
    rows, cols = z.shape
    valid = np.isfinite(z)
    nb_missing = np.zeros(z.shape, bool)
    for dr, dc in _NEIGHBOURS:
        nb_missing |= ~np.isfinite(zh[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols])
    edge = valid & nb_missing  # the DEM's own edge: outlets of the priority flood
    perim = _perimeter(z.shape) & valid
    fill, label, nlab, la, lb, lw = labelled_flood(z, edge | perim)
    np.save(Path(work) / f"fill_{ti}.npy", fill)
    np.save(Path(work) / f"label_{ti}.npy", label)
    # links across the tile's edge: a perimeter cell and its neighbour in the next tile
    pr, pc = np.nonzero(perim)
    cross_a, cross_b, cross_w = [], [], []
    for dr, dc in _NEIGHBOURS:
        rr, cc = pr + dr, pc + dc
        out = (rr < 0) | (rr >= rows) | (cc < 0) | (cc >= cols)
        zn = zh[rr[out] + 1, cc[out] + 1]
        ok = np.isfinite(zn)
        sr, sc = pr[out][ok], pc[out][ok]
        cross_a.append((sr + r0) * grid.width + sc + c0)
        cross_b.append((rr[out][ok] + r0) * grid.width + cc[out][ok] + c0)
        cross_w.append(np.maximum(z[sr, sc], zn[ok]))
    er, ec = np.nonzero(edge)
    return {
        "n_labels": np.int64(nlab),
        "la": la, "lb": lb, "lw": lw,
        "perim_g": (pr + r0) * grid.width + pc + c0,
        "perim_label": label[pr, pc].astype("int64"),
        "cross_a": np.concatenate(cross_a), "cross_b": np.concatenate(cross_b),
        "cross_w": np.concatenate(cross_w),
        "outlet_label": label[er, ec].astype("int64"), "outlet_z": z[er, ec],
    }  # fmt: skip


def _fill_pass2(src: Source, grid: Grid, ti: int, work: str, levels: np.ndarray) -> None:
    tile = grid.tiles()[ti]
    w = Path(work)
    fill = np.load(w / f"fill_{ti}.npy")
    label = np.load(w / f"label_{ti}.npy")
    lv = np.r_[np.nan, levels].astype("float64")
    filled = np.maximum(fill.astype("float64"), lv[label]).astype("float32")
    filled[label == 0] = np.nan
    z = read_tile(src.path, grid, tile, nodata=src.nodata, band=src.band)
    _write_tile(w, "elev_m", ti, grid, tile, z)
    _write_tile(w, "filled_m", ti, grid, tile, filled)
    _write_tile(w, "sink_depth_m", ti, grid, tile, terrain.sink_depth_m(filled, z))


def _widening(grid: Grid, halo: int) -> Iterator[int]:
    """Halo widths to try: ``halo``, then ×4 until the window is ``grid.max_window_px`` wide
    or holds the whole raster."""
    whole = max(grid.height, grid.width)
    cap = max(halo, (grid.max_window_px - grid.tile_px) // 2)
    h = max(halo, 1)
    while True:
        yield h
        if h >= whole or h >= cap:
            return
        h = min(h * 4, whole, cap)


def _directions(work: Path, grid: Grid, tile: Tile, halo: int) -> np.ndarray:
    """Steepest-descent D8 of the tile, with a window wide enough for each of its flats.

    A flat that still crosses the widest window (a lake or an unmasked sea tens of km
    across) is routed within that window; a warning says so.
    """
    for h in _widening(grid, halo):
        fw, (rs, cs), opened = read_window(str(work / "filled_m.vrt"), grid, tile, h)
        fw64 = np.ascontiguousarray(fw, "float64")
        cut = _cut_flat_reaches_core(fw64, rs.start, rs.stop, cs.start, cs.stop, *opened, _DR, _DC)
        if not cut:
            break
        log.debug("tile %s: a flat crosses a %d-px halo, widening", tile, h)
    if cut:
        log.warning(
            "tile %s: a flat wider than a %d-px halo crosses its edge (a lake, or a sea stored "
            "as land?); its flow directions are routed within that window",
            tile,
            h,
        )
    d8 = terrain.steepest_d8(fw, grid.res_m)
    return np.ascontiguousarray(d8[rs, cs])


def _local_pass(
    grid: Grid, ti: int, work: str, halo: int, relief_window_px: int
) -> dict[str, np.ndarray]:
    tile = grid.tiles()[ti]
    w = Path(work)
    res = grid.res_m
    eh, core, _opened = read_window(str(w / "elev_m.vrt"), grid, tile, halo)
    _write_tile(w, "slope_deg", ti, grid, tile, terrain.slope_deg(eh, res)[core])
    _write_tile(w, "relief_m", ti, grid, tile, terrain.relief_m(eh, relief_window_px)[core])
    for name, arr in zip(
        ("curv_profile_per_m", "curv_plan_per_m", "curv_total_per_m"),
        terrain.curvature_per_m(eh, res),
        strict=True,
    ):
        _write_tile(w, name, ti, grid, tile, np.ascontiguousarray(arr[core]))
    del eh
    d8 = _directions(w, grid, tile, halo)
    _write_tile(w, "flowdir_d8", ti, grid, tile, d8)
    r0, _r1, c0, _c1 = tile
    rows, cols = d8.shape
    down, order, acc, exit_src, exit_dr, exit_dc = _route(
        d8, np.ones(d8.size), _OFF_R, _OFF_C, _IS_DIR
    )
    ex = _exit_of(down, order)
    pr, pc = np.nonzero(_perimeter(d8.shape) & (d8 != 247))
    return {
        "exit_dst": (exit_dr + r0) * grid.width + exit_dc + c0,
        "exit_base": acc[exit_src],
        "perim_g": (pr + r0) * grid.width + pc + c0,
        "perim_exit": ex[pr * cols + pc],
    }


def _accumulate_pass(
    grid: Grid, ti: int, work: str, inflow_g: np.ndarray, inflow: np.ndarray, stream_area_km2: float
) -> dict[str, np.ndarray]:
    tile = grid.tiles()[ti]
    r0, _r1, c0, _c1 = tile
    w = Path(work)
    d8 = read_tile(str(w / "flowdir_d8.vrt"), grid, tile, dtype="uint8")
    rows, cols = d8.shape
    weight = np.ones(d8.size)
    np.add.at(weight, (inflow_g // grid.width - r0) * cols + (inflow_g % grid.width - c0), inflow)
    down, order, acc, _src, _dr, _dc = _route(d8, weight, _OFF_R, _OFF_C, _IS_DIR)
    pixel_m2 = abs(grid.transform.a * grid.transform.e)
    upa = (acc * pixel_m2 / 1e6).astype("float32").reshape(d8.shape)
    upa[d8 == 247] = np.nan
    _write_tile(w, "uparea_km2", ti, grid, tile, upa)
    filled = read_tile(str(w / "filled_m.vrt"), grid, tile).astype("float64").ravel()
    streams = terrain.stream_mask(upa, stream_area_km2).ravel()
    unknown = np.full(int((down <= -2).sum()), np.nan)
    h, u, ex = _carry(down, order, streams, filled, upa.ravel().astype("float64"), unknown, unknown)
    pr, pc = np.nonzero(_perimeter(d8.shape) & (d8 != 247))
    i = pr * cols + pc
    sr, sc = np.nonzero(streams.reshape(d8.shape))
    return {
        "perim_g": (pr + r0) * grid.width + pc + c0, "h": h[i], "u": u[i], "ex": ex[i],
        "streams_g": (sr + r0) * grid.width + sc + c0,
    }  # fmt: skip


def _drain_pass(
    grid: Grid, ti: int, work: str, exit_h: np.ndarray, exit_u: np.ndarray,
    stream_area_km2: float, halo: int,
) -> None:  # fmt: skip
    tile = grid.tiles()[ti]
    w = Path(work)
    d8 = read_tile(str(w / "flowdir_d8.vrt"), grid, tile, dtype="uint8")
    upa = read_tile(str(w / "uparea_km2.vrt"), grid, tile)
    filled = read_tile(str(w / "filled_m.vrt"), grid, tile).astype("float64")
    slope = read_tile(str(w / "slope_deg.vrt"), grid, tile)
    down, order, _acc, _s, _r, _c = _route(d8, np.ones(d8.size), _OFF_R, _OFF_C, _IS_DIR)
    streams = terrain.stream_mask(upa, stream_area_km2)
    h, u, _ex = _carry(
        down, order, streams.ravel(), filled.ravel(), upa.ravel().astype("float64"), exit_h, exit_u
    )
    nodata = d8 == 247
    hand = (filled - h.reshape(d8.shape)).astype("float32")
    hand[nodata | np.isnan(hand)] = np.nan
    _write_tile(w, "hand_m", ti, grid, tile, hand)
    drain = u.reshape(d8.shape).astype("float32")
    drain[nodata] = np.nan
    _write_tile(w, "drain_uparea_km2", ti, grid, tile, drain)
    st = streams.astype("uint8")
    st[nodata] = 255
    _write_tile(w, "streams", ti, grid, tile, st)
    tw = terrain.twi(upa, slope, grid.res_m)
    tw[nodata] = np.nan
    _write_tile(w, "twi", ti, grid, tile, tw)
    dist = _stream_distance(w, grid, tile, halo, stream_area_km2, ~nodata)
    _write_tile(w, "dist_stream_m", ti, grid, tile, dist)


def _stream_distance(
    work: Path, grid: Grid, tile: Tile, halo: int, stream_area_km2: float, valid: np.ndarray
) -> np.ndarray:
    """Distance to the nearest stream pixel, exact: a cell whose nearest stream in the window is
    farther than the window's cut edge is redone with a wider window, and beyond the widest
    one measured to every stream pixel of the DEM (a k-d tree of their centres)."""
    rx, ry = grid.res_m
    r0, r1, c0, c1 = tile
    dist = np.full((r1 - r0, c1 - c0), np.nan, dtype="float32")
    if not valid.any():
        return dist
    todo = valid.copy()
    for h in _widening(grid, halo):
        uh, (rs, cs), (o_top, o_bottom, o_left, o_right) = read_window(
            str(work / "uparea_km2.vrt"), grid, tile, h
        )
        streams = terrain.stream_mask(uh, stream_area_km2)
        if not streams.any():
            continue
        d = terrain.distance_to_stream_m(streams, grid.res_m)[rs, cs]
        # a stream beyond a cut side lies at least this far from each cell
        ri = np.arange(rs.start, rs.stop)[:, None]
        ci = np.arange(cs.start, cs.stop)[None, :]
        rows, cols = uh.shape
        reach = np.full(d.shape, np.inf)
        if o_top:
            reach = np.minimum(reach, (ri + 1) * ry)
        if o_bottom:
            reach = np.minimum(reach, (rows - ri) * ry)
        if o_left:
            reach = np.minimum(reach, (ci + 1) * rx)
        if o_right:
            reach = np.minimum(reach, (cols - ci) * rx)
        sure = todo & (d <= reach)
        dist[sure] = d[sure]
        todo &= ~sure
        if not todo.any():
            return dist
    stream_idx = np.load(work / "stream_pixels.npy")
    if stream_idx.size == 0:
        return dist  # no stream anywhere: NaN, as the whole-raster path gives
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([stream_idx // grid.width * ry, stream_idx % grid.width * rx]))
    tr, tc = np.nonzero(todo)
    near, _ = tree.query(np.column_stack([(tr + r0) * ry, (tc + c0) * rx]))
    dist[tr, tc] = near
    return dist


def _write_cog(work: Path, layer: str, grid: Grid) -> None:
    """One layer's COG, copied from the VRT of its tiles (GDAL streams it block by block)."""
    dtype = "uint8" if layer in ("flowdir_d8", "streams") else "float32"
    vrt = _write_vrt(work, layer, grid, dtype)
    # GDAL's block cache defaults to 5 % of the machine's memory; a streaming copy needs little
    with rasterio.Env(GDAL_CACHEMAX=256 * 2**20):
        rasterio.shutil.copy(vrt, work / f"{layer}.cog.tif", driver="COG", compress="DEFLATE")


# --- global solves -------------------------------------------------------------------------


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` among sorted-unique ``keys`` (every query must be present)."""
    pos = np.searchsorted(keys, query)
    if query.size and (
        pos.max(initial=0) >= keys.size or (keys[np.minimum(pos, keys.size - 1)] != query).any()
    ):
        raise AssertionError("a tile edge cell is missing from the perimeter table")
    return values[pos]


def _fill_levels(parts: list[dict[str, Any]]) -> list[np.ndarray]:
    """Water level of every tile's labels (minimax from the outside over the label graph)."""
    offsets = np.cumsum([0] + [int(p["n_labels"]) for p in parts])  # node 0 is the outside
    perim_g = np.concatenate([p["perim_g"] for p in parts])
    perim_node = np.concatenate(
        [p["perim_label"] + off for p, off in zip(parts, offsets, strict=False)]
    )
    order = np.argsort(perim_g)
    perim_g, perim_node = perim_g[order], perim_node[order]
    a = [p["la"] + off for p, off in zip(parts, offsets, strict=False)]
    b = [p["lb"] + off for p, off in zip(parts, offsets, strict=False)]
    w = [p["lw"].astype("float64") for p in parts]
    for p, off in zip(parts, offsets, strict=False):
        a.append(_lookup(perim_g, perim_node, p["cross_a"]))
        b.append(_lookup(perim_g, perim_node, p["cross_b"]))
        w.append(p["cross_w"].astype("float64"))
        a.append(p["outlet_label"] + off)
        b.append(np.zeros(p["outlet_label"].size, "int64"))
        w.append(p["outlet_z"].astype("float64"))
    src = np.concatenate(a + b)
    dst = np.concatenate(b + a)
    wt = np.concatenate(w + w)
    n_nodes = int(offsets[-1]) + 1
    order = np.argsort(src, kind="stable")
    indptr = np.searchsorted(src[order], np.arange(n_nodes + 1))
    level = _minimax_from(n_nodes, indptr.astype("int64"), dst[order], wt[order])
    return [level[offsets[i] + 1 : offsets[i + 1] + 1] for i in range(len(parts))]


@dataclass
class _Forest:
    """The edges leaving tiles, global: target cell, next edge (-1: ends in a pit), order."""

    dst: np.ndarray
    nxt: np.ndarray
    order: np.ndarray
    offsets: np.ndarray
    perim_g: np.ndarray
    perim_exit: np.ndarray


def _forest(parts: list[dict[str, np.ndarray]]) -> _Forest:
    offsets = np.cumsum([0] + [p["exit_dst"].size for p in parts])
    dst = np.concatenate([p["exit_dst"] for p in parts])
    perim_g = np.concatenate([p["perim_g"] for p in parts])
    perim_exit = np.concatenate(
        [
            np.where(p["perim_exit"] >= 0, p["perim_exit"] + off, -1)
            for p, off in zip(parts, offsets, strict=False)
        ]
    )
    order = np.argsort(perim_g)
    perim_g, perim_exit = perim_g[order], perim_exit[order]
    nxt = _lookup(perim_g, perim_exit, dst)
    return _Forest(dst, nxt, _edge_order(nxt), offsets, perim_g, perim_exit)


# --- the driver ----------------------------------------------------------------------------


def _in_process(fn: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
    return (fn(*args) for args in items)


def dem_grid(path: str | Path, tile_px: int = TILE_PX, max_window_px: int = MAX_WINDOW_PX) -> Grid:
    """The grid of a projected DEM file.

    Raises:
        DemError: unreadable, no CRS, or geographic (see :func:`warp_to_utm`).
    """
    with _open_dem(path) as src:
        if src.crs.is_geographic:
            raise DemError(f"{path}: a geographic DEM must be reprojected first (warp_to_utm)")
        return Grid(
            src.height, src.width, src.transform, src.crs.to_wkt(), int(tile_px), max_window_px
        )


def _open_dem(path: str | Path) -> Any:
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DemError(f"{path}: cannot be read as a raster ({exc})") from exc
    if src.crs is None:
        src.close()
        raise DemError(f"{path}: the DEM has no CRS; assign one (e.g. gdal_edit -a_srs)")
    return src


def is_geographic(path: str | Path) -> bool:
    with _open_dem(path) as src:
        return bool(src.crs.is_geographic)


def warp_to_utm(
    path: str | Path, out: str | Path, *, nodata: float | None = None, band: int = 1,
    block_px: int = TILE_PX,
) -> Path:  # fmt: skip
    """Reproject a geographic DEM (bilinear) to the UTM grid :func:`terrain.read_dem` uses,
    block by block through a GDAL warped VRT: memory bounded by the block, not the DEM.

    The file's no-data and ``nodata`` are first set to NaN in a float32 copy (block by block),
    so both stay out of the interpolation, as in the whole-raster path.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    out = Path(out)
    masked = out.with_name(out.stem + "_masked.tif")
    tiled = {"tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER"}
    with _open_dem(path) as src:
        profile = {
            "driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
            "dtype": "float32", "crs": src.crs, "transform": src.transform, "nodata": math.nan,
            **tiled,
        }  # fmt: skip
        with rasterio.open(masked, "w", **profile) as dst:
            for win in _blocks(src.height, src.width, block_px):
                z = src.read(band, window=win, out_dtype="float32")
                for value in (src.nodata, nodata):
                    if value is not None:
                        z[z == np.float32(value)] = np.nan
                dst.write(z, 1, window=win)
    with rasterio.open(masked) as src:
        dst_crs, transform, width, height = terrain.utm_grid(
            src.transform, src.crs, src.width, src.height
        )
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
            "crs": dst_crs, "transform": transform, "nodata": math.nan, **tiled,
        }  # fmt: skip
        with (
            WarpedVRT(
                src, crs=dst_crs, transform=transform, width=width, height=height,
                resampling=Resampling.bilinear, src_nodata=math.nan, nodata=math.nan,
                dtype="float32",
            ) as vrt,
            rasterio.open(out, "w", **profile) as dst,
        ):  # fmt: skip
            for win in _blocks(height, width, block_px):
                dst.write(vrt.read(1, window=win), 1, window=win)
    masked.unlink()
    return out


def _blocks(height: int, width: int, block: int) -> Iterator[Window]:
    for r0 in range(0, height, block):
        for c0 in range(0, width, block):
            yield Window(c0, r0, min(block, width - c0), min(block, height - r0))


def check_dem(src: Source, grid: Grid) -> None:
    """Plausible heights (tile by tile) and the untagged-zero check on a decimated read."""
    lo, hi, any_valid = math.inf, -math.inf, False
    for tile in grid.tiles():
        z = read_tile(src.path, grid, tile, nodata=src.nodata, band=src.band)
        if np.isfinite(z).any():
            any_valid = True
            lo, hi = min(lo, float(np.nanmin(z))), max(hi, float(np.nanmax(z)))
    if not any_valid:
        raise DemError(f"{src.path}: every pixel is no-data")
    terrain.check_elevations(np.array([lo, hi], "float32"), src.path)
    if src.nodata is None:
        step = max(1, math.ceil(math.sqrt(grid.height * grid.width / 4e6)))
        with rasterio.open(src.path) as ds:
            small = ds.read(
                src.band, out_shape=(max(grid.height // step, 1), max(grid.width // step, 1)),
                out_dtype="float32", resampling=rasterio.enums.Resampling.nearest,
            )  # fmt: skip
            if ds.nodata is not None:
                small[small == np.float32(ds.nodata)] = np.nan
        terrain.warn_if_zero_nodata(small, src.path)


def derive_terrain_tiled(
    dem_path: str | Path,
    out_dir: str | Path,
    *,
    stream_area_km2: float = 1.0,
    relief_window_m: float = 300.0,
    nodata: float | None = None,
    tile_px: int = TILE_PX,
    halo_px: int = HALO_PX,
    max_window_px: int = MAX_WINDOW_PX,
    map_fn: MapFn | None = None,
    progress: Progress | None = None,
    work_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Every terrain layer of a projected DEM GeoTIFF, tile by tile, as COGs in ``out_dir``.

    The same layers and values as :func:`risk_models.terrain.derive_terrain` (plus
    ``drain_uparea_km2``), with memory bounded by ``tile_px`` (+ ``halo_px``) instead of the DEM.

    Args:
        tile_px, halo_px: tile side and the halo read around it (pixels).
        max_window_px: the widest window a tile is widened to, for a flat crossing its edge or
            a stream farther than its halo; beyond it a flat is routed within the window
            (with a warning) and distances come from a k-d tree of all stream pixels.
        map_fn: ``map``-like function running the tile tasks (in-process by default;
            :func:`risk_models.dask_runner.client_map` on a cluster whose workers see
            ``work_dir``).
        progress: ``progress(step, done, total)`` after each tile task.
        work_dir: where per-tile files go (a temporary directory under ``out_dir`` by default;
            removed at the end).

    Raises:
        DemError: no CRS, geographic, all no-data or implausible heights.
    """
    if stream_area_km2 <= 0:
        raise terrain.RasterError("stream_area_km2 must be > 0")
    geographic = is_geographic(dem_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    own_work = work_dir is None
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(".tiles", dir=out))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if geographic:
            dem_path = warp_to_utm(dem_path, work / "dem_utm.tif", nodata=nodata, block_px=tile_px)
            nodata = None
        grid = dem_grid(dem_path, tile_px, max_window_px)
        src = Source(str(dem_path), nodata)
        check_dem(src, grid)
        return _derive(
            grid, src, out, work, stream_area_km2, relief_window_m, halo_px, map_fn, progress
        )
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


def _derive(
    grid: Grid, src: Source, out: Path, work: Path, stream_area_km2: float,
    relief_window_m: float, halo_px: int, map_fn: MapFn | None, progress: Progress | None,
) -> dict[str, Path]:  # fmt: skip
    relief_px = max(3, int(round(relief_window_m / grid.res_m[0])) | 1)
    halo = max(int(halo_px), relief_px // 2 + 1, 2)
    run = map_fn or _in_process
    tiles = range(len(grid.tiles()))
    wk = str(work)

    def solved(name: str) -> None:
        """Marks the end of a serial solve in the caller (for timings)."""
        if progress:
            progress(f"{name} solve", 1, 1)

    def stage(name: str, fn: Callable[..., Any], items: Sequence[Any]) -> list[Any]:
        results = []
        for i, r in enumerate(run(fn, items), start=1):
            results.append(r)
            if progress:
                progress(name, i, len(items))
        return results

    parts = stage("fill", _fill_pass1, [(src, grid, ti, wk) for ti in tiles])
    levels = _fill_levels(parts)
    del parts
    solved("fill")
    stage("fill levels", _fill_pass2, [(src, grid, ti, wk, levels[ti]) for ti in tiles])
    for ti in tiles:
        for kind in ("fill", "label"):
            (work / f"{kind}_{ti}.npy").unlink()
    for layer in ("elev_m", "filled_m", "sink_depth_m"):
        _write_vrt(work, layer, grid, "float32")
    parts = stage("directions", _local_pass, [(grid, ti, wk, halo, relief_px) for ti in tiles])
    for layer in (
        "slope_deg",
        "relief_m",
        "curv_profile_per_m",
        "curv_plan_per_m",
        "curv_total_per_m",
    ):
        _write_vrt(work, layer, grid, "float32")
    _write_vrt(work, "flowdir_d8", grid, "uint8")
    forest = _forest(parts)
    base = np.concatenate([p["exit_base"] for p in parts])
    del parts
    total = _sum_along(forest.order, forest.nxt, base)
    solved("accumulation")
    tiles_across = -(-grid.width // grid.tile_px)
    dst_tile = (forest.dst // grid.width // grid.tile_px) * tiles_across + (
        forest.dst % grid.width // grid.tile_px
    )
    by_tile = np.argsort(dst_tile, kind="stable")
    cuts = np.searchsorted(dst_tile[by_tile], np.arange(len(tiles) + 1))
    inflows = [by_tile[cuts[ti] : cuts[ti + 1]] for ti in tiles]
    parts = stage(
        "accumulation",
        _accumulate_pass,
        [(grid, ti, wk, forest.dst[k], total[k], stream_area_km2) for ti, k in enumerate(inflows)],
    )
    _write_vrt(work, "uparea_km2", grid, "float32")
    np.save(work / "stream_pixels.npy", np.concatenate([p["streams_g"] for p in parts]))
    pg = np.concatenate([p["perim_g"] for p in parts])
    ph = np.concatenate([p["h"] for p in parts])
    pu = np.concatenate([p["u"] for p in parts])
    pex = np.concatenate([p["ex"] for p in parts])
    del parts
    order = np.argsort(pg)
    pg, ph, pu, pex = pg[order], ph[order], pu[order], pex[order]
    pos = np.searchsorted(pg, forest.dst)
    resolved = pex[pos] < 0
    exit_h, exit_u = _resolve_down(forest.order, forest.nxt, ph[pos], pu[pos], resolved)
    solved("drainage")
    edges = [slice(forest.offsets[ti], forest.offsets[ti + 1]) for ti in tiles]
    stage(
        "drainage",
        _drain_pass,
        [(grid, ti, wk, exit_h[e], exit_u[e], stream_area_km2, halo) for ti, e in enumerate(edges)],
    )
    stage("write", _write_cog, [(work, layer, grid) for layer in LAYERS])
    # only a finished run replaces the layers of an earlier one
    for layer in LAYERS:
        shutil.move(work / f"{layer}.cog.tif", out / f"{layer}.tif")
    return {layer: out / f"{layer}.tif" for layer in LAYERS}
