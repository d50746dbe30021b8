"""The static per-cell table from terrain layers on disk, band by band: memory bounded by a
band of raster rows, not the DEM. The table equals :func:`risk_models.static.build_static`'s.

:func:`build_static_tiled` reads the COGs of :func:`risk_models.terrain_tiles.derive_terrain_tiled`
in bands of whole rows. Every H3 cell has a **home band**: the one holding its first (lowest)
pixel row. A band task reads its rows plus a margin above and below taller than any cell, assigns
the pixels to cells (:func:`risk_models.h3raster.window_cells`, on the same windows of
``params.window_rows`` rows as the in-memory builder, so each pixel gets the same cell), and
keeps only its home cells: they are whole inside the window, so their statistics
(:func:`risk_models.static.cell_table`: means, maxima, nearest-rank quantiles, each over the
cell's pixels in row-major order) are those of the whole raster bit for bit. The bands' cells
are disjoint; concatenated and sorted they are the in-memory table's rows.

The per-pixel inputs that are not local are made exact in the window:

* **waterlogging depth** — a depression (:func:`risk_models.flood.depression_labels`) is filled
  as a whole; a window in which a depression touching a side cut inside the raster reaches a
  home pixel is widened (×4, up to the whole raster) until it does not, so every depression
  reaching a home pixel is seen whole. A cut depression already deeper than
  ``pond_max_depth_m`` in the window is dry in the whole raster too and needs no widening; only
  the depressions holding home pixels are filled;
* **site density** (Gaussian kernel, truncated at 4σ) — computed over the window plus a halo
  of the kernel's radius, which is exact; the same for each held-out fold's density, with the
  same seeded fold split as in memory (:func:`risk_models.static.site_folds`);
* **distance to roads** — a Euclidean distance over the window plus a halo, widened for any
  home pixel whose nearest road pixel is farther than a cut side (as the terrain's distance to
  stream). Roads are burnt into the window's own grid: GDAL sees the lines' pixel coordinates
  shifted by whole rows, computed with different rounding, so a line passing within rounding
  error of a pixel edge could touch a pixel in one and not the other (not seen in the tests).

Memory: one band window at a time per process (its layers read one at a time), plus the
windows widened for depressions or roads farther than the halo (a shallow reservoir or a
road-less area spanning many bands widens the bands that touch it, up to the whole raster's
rows in the worst case). Band tasks run through a
``map``-like function (built-in ``map`` semantics; ``Client.map`` on Dask, whose workers must
see the layer files and ``work_dir``).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h3.api.numpy_int as h3np
import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from risk_models.errors import EmptyAreaError, ModelInputError
from risk_models.flood import depression_labels
from risk_models.h3agg import latlng_to_cells
from risk_models.h3raster import cell_index, row_windows, window_cells
from risk_models.landslide import distance_to_lines_m
from risk_models.params import PipelineParams
from risk_models.static import (
    TERRAIN_FACTORS,
    cell_table,
    density_bandwidth_px,
    density_grid,
    fit_susceptibility,
    fold_cells,
    grid_site_pixels,
    project_lines,
    site_folds,
    waterlogging_grid,
)
from risk_models.terrain_tiles import Grid, MapFn, dem_grid, is_geographic, read_window

log = logging.getLogger(__name__)

#: Terrain layers the table reads (COGs of :func:`derive_terrain_tiled`).
NEEDED_LAYERS = (
    *TERRAIN_FACTORS, "hand_m", "uparea_km2", "drain_uparea_km2", "sink_depth_m", "filled_m",
)  # fmt: skip
#: Default core pixels of a band (its rows are a whole number of ``window_rows`` windows).
BAND_PX = 4_000_000
#: First halo (rows) of the depression and road windows before widening.
HALO_ROWS = 64


@dataclass(frozen=True)
class _Job:
    """What every band task needs (small: paths, the grid, the sites' pixels)."""

    grid: Grid
    layers: dict[str, str]
    res: int
    params: PipelineParams
    margin_rows: int
    site_r: np.ndarray
    site_c: np.ndarray
    site_fold: np.ndarray | None
    fold_has_rest: tuple[bool, ...]
    roads_path: str | None


@dataclass
class _BandPart:
    """A band's home cells: their table rows, per-fold values, and whether roads were seen."""

    table: pd.DataFrame
    folds: list[tuple[np.ndarray | None, np.ndarray]]
    has_roads: bool | None


def cell_rows_bound(grid: Grid, res: int) -> int:
    """An upper bound on the pixel rows any H3 cell of ``res`` spans on the grid: twice the
    tallest of the cells (and their neighbours) sampled on a 5 × 5 lattice over the raster,
    plus 2 (cell sizes vary by well under 2× across a province)."""
    rows, cols = np.meshgrid(
        np.linspace(0.5, grid.height - 0.5, 5), np.linspace(0.5, grid.width - 0.5, 5)
    )
    centres: Any = (cols.ravel(), rows.ravel())
    x, y = grid.transform @ centres
    crs = CRS.from_wkt(grid.crs_wkt)
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    seeds = latlng_to_cells(np.asarray(lat), np.asarray(lon), res).view("uint64").tolist()
    cells = {c for s in seeds for c in h3np.grid_disk(s, 1).tolist()}
    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    tallest = 0.0
    for cell in cells:
        ring = np.asarray(h3np.cell_to_boundary(cell), dtype="float64")
        bx, by = to_xy.transform(ring[:, 1], ring[:, 0])
        _c, r = ~grid.transform @ (np.asarray(bx), np.asarray(by))
        tallest = max(tallest, float(np.ptp(r)))
    return int(math.ceil(2.0 * tallest)) + 2


def _halos(grid: Grid, halo: int) -> Iterator[int]:
    """Row halos to try around a band window: ``halo``, then ×4 until it spans the raster
    (windows are whole rows, so only the height matters)."""
    h = max(halo, 1)
    while True:
        yield h
        if h >= grid.height:
            return
        h = min(h * 4, grid.height)


def _save_lines(path: Path, lines: Sequence[Any]) -> None:
    import shapely

    wkb = shapely.to_wkb(np.asarray(lines, dtype=object))
    sizes = np.fromiter((len(b) for b in wkb), dtype="int64", count=len(wkb))
    np.savez(path, data=np.frombuffer(b"".join(wkb), dtype="uint8"), sizes=sizes)


def _load_lines(path: str) -> list[Any]:
    import shapely

    with np.load(path) as z:
        data, sizes = z["data"].tobytes(), z["sizes"]
    ends = np.cumsum(sizes)
    return list(shapely.from_wkb([data[e - s : e] for s, e in zip(sizes, ends, strict=True)]))


def _read_rows(path: str, grid: Grid, r0: int, r1: int) -> np.ndarray:
    return read_window(path, grid, (r0, r1, 0, grid.width), 0)[0]


def _band_cells(
    job: _Job, b0: int, b1: int
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None:
    """The rows (r0, r1) holding the band's home cells, those cells (sorted), each home
    pixel's index into them and its flat position in rows r0:r1 (row-major); None without
    home cells. Cells are assigned in a window reaching a margin above and below the band."""
    g, wr = job.grid, job.params.window_rows
    margin = job.margin_rows
    while True:
        m = -(-margin // wr) * wr  # whole windows, so pixels get build_static's cells
        w0, w1 = max(b0 - m, 0), min(b1 + m, g.height)
        mask = np.isfinite(_read_rows(job.layers["elev_m"], g, w0, w1))
        parts = [
            window_cells(g.transform, g.crs_wkt, (g.height, g.width), job.res, (a, b),
                         mask[a - w0 : b - w0])
            for a, b in row_windows(g.height, wr) if a >= w0 and b <= w1
        ]  # fmt: skip
        cells2d = np.concatenate(parts, axis=0).ravel()
        del mask, parts
        pos = np.flatnonzero(cells2d)
        if pos.size == 0:
            return None
        cells, idx = cell_index(cells2d[pos])
        del cells2d
        row = pos // g.width + w0
        first = np.full(cells.size, g.height, dtype="int64")
        last = np.full(cells.size, -1, dtype="int64")
        np.minimum.at(first, idx, row)
        np.maximum.at(last, idx, row)
        if int((last - first).max()) + 1 < margin:
            break
        margin *= 2  # a cell taller than the bound: its pixels may lie beyond the window
    home = (first >= b0) & (first < b1)
    if not home.any():
        return None
    keep = home[idx]
    remap = np.cumsum(home) - 1
    # home pixels lie in rows b0 .. the last home row: the other layers are read there only
    pos = pos[keep] - (b0 - w0) * g.width
    return b0, b0 + int(pos[-1]) // g.width + 1, cells[home], remap[idx[keep]], pos


def _deepest(sink: np.ndarray, labels: np.ndarray, which: np.ndarray) -> np.ndarray:
    """The largest sink depth (m) of each depression in ``which`` (sorted labels)."""
    on = np.isin(labels, which)
    out = np.full(which.size, -np.inf)
    np.maximum.at(out, np.searchsorted(which, labels[on]), np.nan_to_num(sink[on]))
    return out


def _wl_depths(job: _Job, w0: int, w1: int, pos: np.ndarray) -> Callable[[float], np.ndarray]:
    """Ponding depth at the home pixels per runoff, from a window holding every depression
    that reaches them whole."""
    g = job.grid
    paths = job.layers
    for h in _halos(g, HALO_ROWS):
        sink, (rs, _cs), opened = read_window(paths["sink_depth_m"], g, (w0, w1, 0, g.width), h)
        p = pos + rs.start * g.width
        labels, _n = depression_labels(sink)
        cut = np.zeros(0, dtype=labels.dtype)
        if opened[0]:
            cut = np.r_[cut, labels[0]]
        if opened[1]:
            cut = np.r_[cut, labels[-1]]
        cut = np.unique(cut[cut > 0])
        cap = job.params.pond_max_depth_m
        if cut.size and cap is not None:
            # deeper than the cap already in the window: the whole depression is too, and is
            # left dry both here and in the whole raster, wherever else it goes
            cut = cut[~(_deepest(sink, labels, cut) > cap)]
        if not (cut.size and np.isin(labels.ravel()[p], cut).any()):
            break
        log.debug("rows %d-%d: a depression crosses a %d-row halo, widening", w0, w1, h)
    # only the depressions holding home pixels: each depression fills on its own, so the others
    # (of the halo, often much larger than the band) would only cost time
    home = np.unique(labels.ravel()[p])
    sink[~np.isin(labels, home[home > 0])] = 0.0
    del labels
    area = g.res_m[0] * g.res_m[1]
    window: list[np.ndarray] = []  # read at the first call, after the other layers

    def depth(runoff: float) -> np.ndarray:
        if not window:
            window.extend(
                read_window(paths[name], g, (w0, w1, 0, g.width), h)[0]
                for name in ("filled_m", "uparea_km2")
            )
        filled, upa = window
        return waterlogging_grid(sink, filled, upa, runoff, area, job.params).ravel()[p]

    return depth


def _road_distance(job: _Job, w0: int, w1: int, pos: np.ndarray) -> np.ndarray | None:
    """Distance (m) to the nearest road pixel at the home pixels; None if no road touches
    the raster."""
    assert job.roads_path is not None
    g = job.grid
    lines = _load_lines(job.roads_path)
    ry = g.res_m[1]
    for h in _halos(g, HALO_ROWS):
        r0, r1 = max(w0 - h, 0), min(w1 + h, g.height)
        dist = distance_to_lines_m(
            lines, g.transform @ Affine.translation(0, r0), (r1 - r0, g.width)
        )
        whole = r0 == 0 and r1 == g.height
        if not np.isfinite(dist).any():
            if whole:
                return None
            continue
        p = pos + (w0 - r0) * g.width
        d = dist.ravel()[p]
        if whole:
            return d
        ri = p // g.width
        reach = np.full(p.size, np.inf)
        if r0 > 0:
            reach = np.minimum(reach, (ri + 1) * ry)
        if r1 < g.height:
            reach = np.minimum(reach, (r1 - r0 - ri) * ry)
        # a road beyond a cut side is at least ``reach`` away; the margin covers float32
        if (d.astype("float64") < reach * (1 - 1e-6)).all():
            return d
        log.debug("rows %d-%d: a road may lie beyond a %d-row halo, widening", w0, w1, h)
    raise AssertionError("unreachable: the last window holds the whole raster")


def _band_task(job: _Job, rows: tuple[int, int]) -> _BandPart:
    """The table rows of the cells whose home is the band ``rows`` (see the module docs)."""
    g, params = job.grid, job.params
    found = _band_cells(job, *rows)
    if found is None:
        return _BandPart(pd.DataFrame(), [], None)
    w0, w1, cells, idx, pos = found
    n = cells.size
    area = g.res_m[0] * g.res_m[1]
    # sites → home pixels (pos is sorted: a binary search finds each site's pixel)
    site_pos = (job.site_r - w0) * g.width + job.site_c
    loc = np.minimum(np.searchsorted(pos, site_pos), pos.size - 1)
    on_home = (job.site_r >= w0) & (job.site_r < w1) & (pos[loc] == site_pos)

    def site_events(which: np.ndarray) -> np.ndarray:
        ev = np.zeros(pos.size)
        np.add.at(ev, loc[which & on_home], 1.0)
        return ev

    extra: dict[str, np.ndarray] = {}
    has_roads = None
    if job.roads_path is not None:
        d = _road_distance(job, w0, w1, pos)
        has_roads = d is not None
        if d is not None:
            extra["dist_road_m"] = d
    with_density = job.site_r.size > 0
    bw_px = density_bandwidth_px(params, g.res_m)
    radius = int(4.0 * bw_px + 0.5) + 1  # gaussian_filter's truncate=4 kernel, plus one

    def density(which: np.ndarray) -> np.ndarray:
        d0, d1 = max(w0 - radius, 0), min(w1 + radius, g.height)
        near = which & (job.site_r >= d0) & (job.site_r < d1)
        grid_d = density_grid(
            (d1 - d0, g.width), g.res_m, params, job.site_r[near] - d0, job.site_c[near]
        )
        return grid_d[w0 - d0 : w1 - d0].ravel()[pos]

    all_sites = np.ones(job.site_r.size, dtype=bool)
    if with_density:
        extra["site_density_per_km2"] = density(all_sites)

    def values(name: str) -> np.ndarray:
        if name in extra:
            return extra[name]
        return _read_rows(job.layers[name], g, w0, w1).ravel()[pos]

    table = cell_table(
        cells, idx, values, site_events(all_sites), _wl_depths(job, w0, w1, pos), area,
        params, list(extra),
    )  # fmt: skip
    folds = []
    if job.site_fold is not None:
        for j, has_rest in enumerate(job.fold_has_rest):
            held = job.site_fold == j
            dens = density(~held) if with_density and has_rest else None
            folds.append(fold_cells(idx, n, site_events(held), dens))
    return _BandPart(table, folds, has_roads)


def _in_process(fn: Callable[..., Any], items: Any) -> list[Any]:
    return [fn(*a) for a in items]


def build_static_tiled(
    dem_path: str | Path,
    terrain_layers: dict[str, Path],
    *,
    res: int,
    params: PipelineParams | None = None,
    sites_lonlat: np.ndarray | None = None,
    roads_lonlat: Sequence[Any] | None = None,
    map_windows: MapFn | None = None,
    band_rows: int | None = None,
    work_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The static per-cell table of :func:`risk_models.static.build_static`, from the terrain
    layers of a DEM on disk, band by band.

    Args:
        dem_path: the DEM the layers were derived from (its grid and CRS; a geographic
            DEM's layers are on the UTM grid it was warped to).
        terrain_layers: ``{layer: COG path}`` from
            :func:`risk_models.terrain_tiles.derive_terrain_tiled` of ``dem_path`` with the
            same ``nodata``, ``stream_area_km2`` and ``relief_window_m`` as ``params``.
        res: H3 resolution.
        params: pipeline parameters (``bbox`` is refused: derive the terrain of the crop).
        sites_lonlat: ``(n, 2)`` known hazard sites (lon, lat degrees).
        roads_lonlat: road lines (shapely, lon/lat degrees).
        map_windows: ``map``-like function running the band tasks (in-process by default;
            :func:`risk_models.dask_runner.client_map` on Dask).
        band_rows: core rows per band (rounded up to whole ``params.window_rows``); default
            about :data:`BAND_PX` pixels.
        work_dir: where the projected roads are stored for the band tasks (a temporary
            directory by default, removed at the end).

    Raises:
        ModelInputError: a layer missing or on another grid, or ``params.bbox`` set.
        EmptyAreaError: no DEM pixel falls in any H3 cell.
    """
    params = params or PipelineParams()
    if params.bbox is not None:
        raise ModelInputError("bbox is not supported here: derive the terrain of the cropped DEM")
    # a projected DEM's own grid and CRS, as build_static reads them (the same lon/lat → grid
    # transformation); a geographic one's is the UTM grid its terrain was warped to
    grid_path = terrain_layers.get("elev_m", dem_path) if is_geographic(dem_path) else dem_path
    grid = dem_grid(grid_path)
    with rasterio.open(grid_path) as src:
        crs = src.crs
    layers = {}
    for name in NEEDED_LAYERS:
        if name not in terrain_layers:
            raise ModelInputError(f"terrain layer {name!r} is missing")
        with rasterio.open(terrain_layers[name]) as ds:
            if ds.shape != (grid.height, grid.width) or ds.transform != grid.transform:
                raise ModelInputError(f"terrain layer {name!r} is not on the DEM's grid")
        layers[name] = str(terrain_layers[name])
    r, c = grid_site_pixels(grid.transform, crs, (grid.height, grid.width), sites_lonlat)
    fold = site_folds(r.size, params)
    k = 0 if fold is None else int(fold.max()) + 1
    wr = params.window_rows
    step = band_rows or max(BAND_PX // max(grid.width, 1), 1)
    step = -(-int(step) // wr) * wr
    own_work = work_dir is None and bool(roads_lonlat)
    work = Path(work_dir) if work_dir is not None else None
    try:
        roads_path = None
        if roads_lonlat:
            lines = project_lines(roads_lonlat, crs)
            if lines:
                work = work or Path(tempfile.mkdtemp(".static"))
                work.mkdir(parents=True, exist_ok=True)
                roads_path = str(work / "roads.npz")
                _save_lines(Path(roads_path), lines)
        job = _Job(
            grid, layers, res, params, cell_rows_bound(grid, res), r, c, fold,
            tuple(bool((fold != j).any()) for j in range(k)) if fold is not None else (),
            roads_path,
        )  # fmt: skip
        bands = [(b, min(b + step, grid.height)) for b in range(0, grid.height, step)]
        parts = list((map_windows or _in_process)(_band_task, [(job, b) for b in bands]))
    finally:
        if own_work and work is not None:
            shutil.rmtree(work, ignore_errors=True)
    parts = [p for p in parts if len(p.table)]
    if not parts:
        raise EmptyAreaError("no DEM pixel falls in any H3 cell")
    if roads_path is not None and {p.has_roads for p in parts} != {parts[0].has_roads}:
        raise AssertionError("bands disagree on whether a road touches the raster")
    df = pd.concat([p.table for p in parts])
    order = np.argsort(df.index.to_numpy(), kind="stable")
    df = df.iloc[order]
    folds = []
    for j in range(k):
        ev = np.concatenate([p.folds[j][1] for p in parts])[order]
        dens_parts = [p.folds[j][0] for p in parts]
        dens = None
        if all(d is not None for d in dens_parts):
            dens = np.concatenate([d for d in dens_parts if d is not None])[order]
        folds.append((dens, ev))
    df.attrs["res"] = res
    df.attrs["crs"] = crs.to_string()
    df.attrs["main_drain_km2"] = float(np.nanmax(df["drain_uparea_km2"].to_numpy()))
    return fit_susceptibility(df, params, folds)


__all__ = ["NEEDED_LAYERS", "build_static_tiled", "cell_rows_bound"]
