"""The static half of the risk pipeline: DEM → terrain → per-H3-cell factors → susceptibility.

:func:`build_static` returns one row per H3 cell (index ``h3``, int64) with

* ``lon``, ``lat`` (cell centre, degrees EPSG:4326), ``n_pixels``, ``events`` (known hazard
  sites in the cell);
* factor means: ``slope_deg``, ``relief_m``, ``curv_total_per_m``, ``twi``, ``dist_stream_m``,
  ``elev_m`` and, when given, ``dist_road_m`` and ``site_density_per_km2``;
* ``score`` (susceptibility, 0..1 for the ensemble), ``density_ratio`` (the calibrated
  landslide density of cells with that score ÷ the training area's base rate, fitted on
  held-out inventory events, :func:`fit_susceptibility`), ``p_event`` (calibrated probability
  that the cell holds at least one inventory-sized period's event), ``below_slope_floor``
  (mean slope under ``slope_floor_deg``: no landslide level), ``susceptibility_class`` (0..3
  from fixed ratio cuts, so a cell's class does not depend on what else is in the DEM) and
  ``iv_<factor>`` (each factor's information value, the explanation);
* flood: ``hand_cell_m`` (HAND exceeded by all but ``flood_cell_share`` of the cell's
  pixels: the cell's level is the depth reached on that share of it), ``uparea_max_km2``,
  ``drain_uparea_km2`` (largest river the cell's pixels drain to) and
  ``wl_depth_m_<R>mm``: the depth (m) exceeded on ``flood_cell_share`` of the cell when a
  runoff of R mm fills
  the terrain's depressions (:func:`risk_models.flood.waterlogging_depth_m`), for the runoff
  ladder :data:`~risk_models.params.RUNOFF_LADDER_MM`.

The table is all the nowcast needs, so it is computed once per (DEM, res, parameters) and
cached. Pixel → cell assignment runs in bands of rows (:mod:`risk_models.h3raster`) through a
``map_windows`` function: the built-in ``map`` in-process, ``Client.map`` on Dask.

This builder holds the whole DEM's layers in memory; for a DEM too large for that,
:func:`risk_models.static_tiles.build_static_tiled` builds the same table band by band from
the COGs of the windowed terrain, with the per-cell statistics of :func:`cell_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from pyproj import Transformer
from rasterio.windows import from_bounds

from risk_models import flood, terrain
from risk_models.errors import EmptyAreaError, ModelInputError
from risk_models.h3agg import cell_centres
from risk_models.h3raster import cell_index, row_windows, window_cells
from risk_models.landslide import (
    EnsembleModel,
    FrequencyRatioModel,
    area_cuts,
    budget_high_cut,
    calibrate_density_ratio,
    classify,
    distance_to_lines_m,
    ratio_class,
    site_density_per_km2,
)
from risk_models.params import RUNOFF_LADDER_MM, PipelineParams

#: Bumped whenever the static table's content changes (invalidates caches).
STATIC_VERSION = 4
#: Terrain factors of the landslide model (means per cell).
TERRAIN_FACTORS = ("slope_deg", "relief_m", "curv_total_per_m", "twi", "dist_stream_m", "elev_m")

MapFn = Callable[[Callable[..., np.ndarray], Iterable[Any]], Iterable[np.ndarray]]


def load_dem(
    path: str | Path, bbox: Sequence[float] | None = None, nodata: float | None = None
) -> terrain.Dem:
    """Read a DEM (any CRS, see :func:`terrain.read_dem`), cropped to ``bbox`` (W, S, E, N
    degrees EPSG:4326) when given; ``nodata`` is an extra no-data value (e.g. 0 for a DEM
    that stores the sea as 0 without saying so).

    Raises:
        DemError: no CRS, all no-data, implausible heights.
        EmptyAreaError: the bbox misses the DEM or holds only no-data.
    """
    dem = terrain.read_dem(path, nodata=nodata)
    if bbox is None:
        return dem
    w, s, e, n = (float(v) for v in bbox)
    lon = np.array([w, e, e, w, (w + e) / 2, (w + e) / 2, w, e])
    lat = np.array([s, s, n, n, s, n, (s + n) / 2, (s + n) / 2])
    x, y = Transformer.from_crs(4326, dem.crs, always_xy=True).transform(lon, lat)
    win = from_bounds(min(x), min(y), max(x), max(y), dem.transform)
    r0 = max(int(np.floor(win.row_off)), 0)
    c0 = max(int(np.floor(win.col_off)), 0)
    r1 = min(int(np.ceil(win.row_off + win.height)), dem.shape[0])
    c1 = min(int(np.ceil(win.col_off + win.width)), dem.shape[1])
    if r1 - r0 < 3 or c1 - c0 < 3:
        raise EmptyAreaError(f"bbox {list(bbox)} does not overlap the DEM")
    elev = np.ascontiguousarray(dem.elev_m[r0:r1, c0:c1])
    if not np.isfinite(elev).any():
        raise EmptyAreaError(f"bbox {list(bbox)} holds only DEM no-data")
    return terrain.Dem(elev, dem.transform @ Affine.translation(c0, r0), dem.crs)


def _rowcol(
    transform: Affine, crs: Any, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(
        np.asarray(lon, "float64"), np.asarray(lat, "float64")
    )
    col, row = ~transform @ (np.asarray(x), np.asarray(y))
    return np.floor(row).astype("int64"), np.floor(col).astype("int64")


def pixel_layers(
    dem: terrain.Dem,
    params: PipelineParams,
    sites_lonlat: np.ndarray | None = None,
    roads_lonlat: Sequence[Any] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-pixel factor rasters and the per-pixel count of known hazard sites.

    Args:
        dem: projected DEM (metres).
        params: pipeline parameters (stream threshold, relief window, density kernel).
        sites_lonlat: ``(n, 2)`` hazard-site lon/lat (degrees) or None.
        roads_lonlat: shapely lines in lon/lat (degrees) or None.
    """
    arr = terrain.terrain_arrays(
        dem, stream_area_km2=params.stream_area_km2, relief_window_m=params.relief_window_m
    )
    layers = {name: arr[name] for name in TERRAIN_FACTORS}
    for name in ("hand_m", "uparea_km2", "sink_depth_m", "filled_m"):
        layers[name] = arr[name]
    layers["drain_uparea_km2"] = drain_uparea_km2(dem, arr)
    events = np.zeros(dem.shape, dtype="float64")
    r, c = site_pixels(dem, sites_lonlat)
    if r.size:
        np.add.at(events, (r, c), 1.0)
        layers["site_density_per_km2"] = density_grid(dem.shape, dem.res_m, params, r, c)
    if roads_lonlat:
        lines = project_lines(roads_lonlat, dem.crs)
        dist = distance_to_lines_m(lines, dem.transform, dem.shape)
        if np.isfinite(dist).any():
            layers["dist_road_m"] = dist
    return layers, events


def site_pixels(dem: terrain.Dem, sites_lonlat: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the hazard sites (lon/lat degrees) that fall on the DEM's grid."""
    return grid_site_pixels(dem.transform, dem.crs, dem.shape, sites_lonlat)


def grid_site_pixels(
    transform: Affine, crs: Any, shape: tuple[int, int], sites_lonlat: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the hazard sites (lon/lat degrees) that fall on a grid (``transform``,
    ``crs``, ``shape``), in the sites' order."""
    if sites_lonlat is None or not len(sites_lonlat):
        return np.empty(0, "int64"), np.empty(0, "int64")
    pts = np.asarray(sites_lonlat, dtype="float64").reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise ModelInputError("hazard-site coordinates must be finite lon/lat degrees")
    r, c = _rowcol(transform, crs, pts[:, 0], pts[:, 1])
    ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return r[ok], c[ok]


def project_lines(lines_lonlat: Sequence[Any], crs: Any) -> list[Any]:
    """Shapely lines in lon/lat (degrees) projected to ``crs`` (empty and None dropped)."""
    import shapely

    tr = Transformer.from_crs(4326, crs, always_xy=True)
    return [
        shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        for g in lines_lonlat
        if g is not None and not g.is_empty
    ]


def density_bandwidth_px(params: PipelineParams, res_m: tuple[float, float]) -> float:
    """The site-density kernel's σ in pixels (of ``res_m`` = (x, y) metres)."""
    return params.density_bandwidth_m / res_m[0]


def density_grid(
    shape: tuple[int, int],
    res_m: tuple[float, float],
    params: PipelineParams,
    r: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    """Site density (sites per km², float32) on a grid of ``shape`` and pixel size ``res_m``
    (x, y metres) from the sites' (row, col) pixels."""
    bw_px = density_bandwidth_px(params, res_m)
    return site_density_per_km2(r, c, shape, res_m[0] * res_m[1], bw_px)


#: Held-out folds of the inventory: for each, the per-cell site density without the fold's
#: sites (NaN-free mean per cell, or None without the density factor) and the fold's events.
Folds = list[tuple[np.ndarray | None, np.ndarray]]


def inventory_folds(
    dem: terrain.Dem,
    cells2d: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    params: PipelineParams,
    with_density: bool,
    seed: int = 0,
) -> Folds:
    """Split the sites into ``calibration_folds`` random folds (seeded) and aggregate per cell
    the site density of the other folds and the events of each fold, in the cell order of
    :func:`aggregate`."""
    fold = site_folds(r.size, params, seed)
    if fold is None:
        return []
    valid = cells2d != 0
    _, idx = cell_index(cells2d[valid])
    n = int(idx.max()) + 1 if idx.size else 0
    out: Folds = []
    for j in range(int(fold.max()) + 1):
        held = fold == j
        ev = np.zeros(dem.shape)
        np.add.at(ev, (r[held], c[held]), 1.0)
        dens = None
        if with_density and (~held).any():
            dens = density_grid(dem.shape, dem.res_m, params, r[~held], c[~held])[valid]
        out.append(fold_cells(idx, n, ev[valid], dens))
    return out


def site_folds(n_sites: int, params: PipelineParams, seed: int = 0) -> np.ndarray | None:
    """The held-out fold (0..k−1) of each of ``n_sites`` sites (seeded permutation), or None
    when there are too few sites (or folds) for two."""
    k = min(params.calibration_folds, n_sites)
    if k < 2:
        return None
    return np.random.default_rng(seed).permutation(n_sites) % k


def fold_cells(
    idx: np.ndarray, n_cells: int, events: np.ndarray, density: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray]:
    """One fold's per-cell (mean site density without the fold or None, events of the fold)
    from per-pixel values (``idx``: each pixel's cell index)."""
    ev_cell = np.bincount(idx, weights=events, minlength=n_cells)
    if density is None:
        return None, ev_cell
    v = density.astype("float64")
    ok = np.isfinite(v)
    tot = np.bincount(idx[ok], weights=v[ok], minlength=n_cells)
    cnt = np.bincount(idx[ok], minlength=n_cells)
    return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan), ev_cell


def drain_uparea_km2(dem: terrain.Dem, arr: dict[str, np.ndarray]) -> np.ndarray:
    """Upstream area (km²) of the stream pixel each pixel drains to (stream values carried
    up the D8 paths with pyflwdir's ``fillnodata``; NaN for no data and where no stream is
    reached): the size of the river that floods it."""
    flw = terrain.flow_raster(arr["flowdir_d8"], dem.transform)
    streams = arr["streams"] == 1
    data = np.where(streams, arr["uparea_km2"], -1.0).astype("float32")
    filled = np.asarray(flw.fillnodata(data, nodata=-1.0, direction="up"), dtype="float32")
    filled[(filled < 0) | ~np.isfinite(dem.elev_m)] = np.nan
    return filled


def _cell_quantile(
    idx: np.ndarray, values: np.ndarray, q: float, n_cells: int, higher: bool = False
) -> np.ndarray:
    """Nearest-rank quantile ``q`` (0..1) of ``values`` per cell index (NaN where none)."""
    ok = np.isfinite(values)
    i, v = idx[ok], values[ok]
    order = np.lexsort((v, i))
    counts = np.bincount(i, minlength=n_cells)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.floor(q * np.maximum(counts - 1, 0) + (0.5 if higher else 0.0)).astype("int64")
    out = np.full(n_cells, np.nan)
    has = counts > 0
    out[has] = v[order][starts[has] + pos[has]]
    return out


def aggregate(
    cells2d: np.ndarray,
    layers: dict[str, np.ndarray],
    events: np.ndarray,
    pixel_area_m2: float,
    params: PipelineParams,
) -> pd.DataFrame:
    """Per-cell statistics of the pixel layers (see the module docstring for columns)."""
    valid = cells2d != 0
    if not valid.any():
        raise EmptyAreaError("no DEM pixel falls in any H3 cell")
    cells, idx = cell_index(cells2d[valid])

    def depth(runoff: float) -> np.ndarray:
        grid = waterlogging_grid(
            layers["sink_depth_m"], layers["filled_m"], layers["uparea_km2"], runoff,
            pixel_area_m2, params,
        )  # fmt: skip
        return grid[valid]

    extra = [k for k in ("dist_road_m", "site_density_per_km2") if k in layers]
    return cell_table(
        cells, idx, lambda name: layers[name][valid], events[valid], depth, pixel_area_m2,
        params, extra,
    )  # fmt: skip


def waterlogging_grid(
    sink_depth_m: np.ndarray,
    filled_m: np.ndarray,
    uparea_km2: np.ndarray,
    runoff_mm: float,
    pixel_area_m2: float,
    params: PipelineParams,
) -> np.ndarray:
    """Ponding depth (m) per pixel for a uniform runoff (mm) with the pipeline's depression
    and catchment caps (:func:`risk_models.flood.waterlogging_depth_m`)."""
    return flood.waterlogging_depth_m(
        sink_depth_m, filled_m, uparea_km2, runoff_mm, pixel_area_m2,
        max_depression_depth_m=params.pond_max_depth_m,
        max_catchment_km2=params.stream_area_km2,
    )  # fmt: skip


def cell_table(
    cells: np.ndarray,
    idx: np.ndarray,
    values: Callable[[str], np.ndarray],
    events: np.ndarray,
    wl_depth: Callable[[float], np.ndarray],
    pixel_area_m2: float,
    params: PipelineParams,
    extra_factors: Sequence[str] = (),
) -> pd.DataFrame:
    """The per-cell statistics from per-pixel values of the pixels that fall in cells.

    Args:
        cells: the cells, sorted (int64 H3); ``idx``: each pixel's index into them.
        values: a layer's values at those pixels (in ``idx`` order) by layer name.
        events: known hazard sites per pixel.
        wl_depth: the ponding depth (m, NaN = none) at those pixels for a runoff (mm > 0).
        pixel_area_m2: area of one pixel.
        extra_factors: optional factor layers present (``dist_road_m``,
            ``site_density_per_km2``), in that order.

    Each statistic depends only on the values of a cell's own pixels in row-major order, so
    the table of a set of whole cells is the same whether computed over all pixels or over
    any window holding them.
    """
    n = cells.size
    counts = np.bincount(idx, minlength=n).astype("float64")
    lon, lat = cell_centres(cells)
    cols: dict[str, np.ndarray] = {"lon": lon, "lat": lat, "n_pixels": counts}
    cols["area_km2"] = counts * pixel_area_m2 / 1e6
    cols["events"] = np.bincount(idx, weights=events, minlength=n)
    factor_names = [*TERRAIN_FACTORS, *extra_factors]
    for name in factor_names:
        v = values(name).astype("float64")
        ok = np.isfinite(v)
        s = np.bincount(idx[ok], weights=v[ok], minlength=n)
        c = np.bincount(idx[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[name] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    share = params.flood_cell_share
    cols["hand_cell_m"] = _cell_quantile(idx, values("hand_m").astype("float64"), share, n)
    upa = values("uparea_km2").astype("float64")
    upa_max = np.full(n, np.nan)
    ok = np.isfinite(upa)
    np.fmax.at(upa_max, idx[ok], upa[ok])
    cols["uparea_max_km2"] = upa_max
    drain = values("drain_uparea_km2").astype("float64")
    drain_max = np.full(n, np.nan)
    ok = np.isfinite(drain)
    np.fmax.at(drain_max, idx[ok], drain[ok])
    cols["drain_uparea_km2"] = drain_max
    for runoff in RUNOFF_LADDER_MM:
        if runoff == 0:
            depth = np.zeros(idx.size)
        else:
            depth = np.nan_to_num(wl_depth(runoff).astype("float64"))
        cols[f"wl_depth_m_{runoff:g}mm"] = _cell_quantile(idx, depth, 1 - share, n, higher=True)
    df = pd.DataFrame(cols, index=pd.Index(cells, name="h3"))
    return df


def fit_susceptibility(
    df: pd.DataFrame, params: PipelineParams, folds: Folds | None = None
) -> pd.DataFrame:
    """Add ``score``, ``density_ratio``, ``p_event``, ``below_slope_floor``,
    ``susceptibility_class`` and ``iv_<factor>`` columns (in place too).

    The model (frequency ratio + logistic ensemble, or FR alone) is fitted on all the known
    hazard sites. Its score is then calibrated into a density ratio by isotonic regression on
    held-out sites: for each of the ``folds`` a model is fitted without the fold's sites (and
    with the site density computed without them), and the held-out sites per cell are
    regressed on its scores. This measures how *new* events fall on the scores — the in-sample
    events would be memorised by the site-density factor and overstate the ratio. Without
    folds (fewer than 2 sites) the calibration is in-sample (``attrs["calibration"]`` says so).

    Classes come from the fixed ``ratio_cuts`` (default 0.5, 1, 3 × the base rate), or from
    area quantiles when ``area_shares`` is set explicitly (a relative zoning of this map).
    Cells whose mean slope is below ``slope_floor_deg`` are class low and flagged. When the
    classes high and very high cover more than ``high_land_share_max`` of the fitted area,
    the lowest-scoring of them are moderate instead, from a score cut stored in
    ``attrs["high_score_cut"]``: the land a rain class can warn at ≥ yellow stays in budget.

    Events are the known hazard sites per cell; without any, the columns are NaN/−1 and the
    landslide nowcast refuses to run (a flood run does not need them).
    """
    names = factor_columns(df)
    factors = {n: df[n].to_numpy("float64") for n in names}
    counts = df["events"].to_numpy("float64")
    events = counts > 0
    if not events.any() or events.all():
        df["score"] = np.nan
        df["density_ratio"] = np.nan
        df["p_event"] = np.nan
        df["below_slope_floor"] = False
        df["susceptibility_class"] = np.int8(-1)
        for n in names:
            df[f"iv_{n}"] = np.nan
        return df

    def make() -> Any:
        if params.method == "fr":
            return FrequencyRatioModel(params.n_bins, params.alpha)
        return EnsembleModel(params.n_bins, params.alpha)

    model = make().fit(factors, events)
    score = np.asarray(model.score(factors), dtype="float64")
    area_km2 = (
        df["area_km2"].to_numpy("float64")
        if "area_km2" in df
        else df["n_pixels"].to_numpy("float64")
    )
    base = float(counts.sum() / area_km2.sum())
    s_parts, e_parts, a_parts = [], [], []
    for dens, held in folds or []:
        rest = counts - held
        if held.sum() <= 0 or not (rest > 0).any() or (rest > 0).all():
            continue
        f_k = dict(factors)
        if dens is not None and "site_density_per_km2" in f_k:
            f_k["site_density_per_km2"] = dens
        m_k = make().fit(f_k, rest > 0)
        s_parts.append(np.asarray(m_k.score(f_k), dtype="float64"))
        e_parts.append(held)
        a_parts.append(area_km2)
    if s_parts:
        cal = calibrate_density_ratio(
            np.concatenate(s_parts), np.concatenate(e_parts), np.concatenate(a_parts), base
        )
        df.attrs["calibration"] = f"isotonic on {len(s_parts)} held-out folds"
    else:
        cal = calibrate_density_ratio(score, counts, area_km2, base)
        df.attrs["calibration"] = "isotonic in-sample (too few sites for held-out folds)"
    ratio = cal.ratio(score)
    floor = ~(df["slope_deg"].to_numpy("float64") >= params.slope_floor_deg)
    if params.area_shares is not None:
        cuts = area_cuts(score, params.area_shares)
        s_class = classify(score, cuts)
        df.attrs["cuts"] = [float(c) for c in cuts]
    else:
        s_class = ratio_class(ratio, params.ratio_cuts)
    s_class = np.where(floor, 0, s_class).astype("int8")
    if params.area_shares is None and params.high_land_share_max is not None:
        cut = budget_high_cut(score, s_class, area_km2, params.high_land_share_max)
        if cut is not None:
            s_class = np.where((s_class >= 2) & (score < cut), 1, s_class).astype("int8")
            df.attrs["high_score_cut"] = cut
    df["score"] = score
    df["density_ratio"] = ratio
    df["p_event"] = -np.expm1(-cal.expected_events(score, area_km2))
    df["below_slope_floor"] = floor
    df["susceptibility_class"] = s_class
    for n, c in model.contributions(factors).items():
        df[f"iv_{n}"] = c
    df.attrs["base_rate_per_km2"] = base
    df.attrs["ratio_knots"] = [cal.score_knots.tolist(), cal.ratio_knots.tolist()]
    return df


def factor_columns(df: pd.DataFrame) -> list[str]:
    """The landslide factor columns present in a static table."""
    extra = [k for k in ("dist_road_m", "site_density_per_km2") if k in df.columns]
    return [*TERRAIN_FACTORS, *extra]


def build_static(
    dem: str | Path | terrain.Dem,
    *,
    res: int,
    params: PipelineParams | None = None,
    sites_lonlat: np.ndarray | None = None,
    roads_lonlat: Sequence[Any] | None = None,
    map_windows: MapFn | None = None,
) -> pd.DataFrame:
    """The static per-cell table of a DEM at H3 resolution ``res``.

    Args:
        dem: DEM path (any CRS) or a :class:`terrain.Dem`.
        res: H3 resolution (7–10).
        params: pipeline parameters (``bbox`` crops the DEM).
        sites_lonlat: ``(n, 2)`` known hazard sites (lon, lat degrees) — the landslide events.
        roads_lonlat: road lines (shapely, lon/lat degrees) for the distance-to-road factor.
        map_windows: ``map``-like function running the pixel → cell bands (Dask's
            ``Client.map`` + gather in :mod:`risk_models.dask_runner`).
    """
    params = params or PipelineParams()
    if not isinstance(dem, terrain.Dem):
        dem = load_dem(dem, params.bbox, params.nodata)
    mask = np.isfinite(dem.elev_m)
    windows = row_windows(dem.shape[0], params.window_rows)
    tasks = [
        (dem.transform, dem.crs.to_wkt(), dem.shape, res, w, mask[w[0] : w[1]]) for w in windows
    ]
    run = map_windows or (lambda f, items: [f(*a) for a in items])
    parts = list(run(_window_task, tasks))
    layers, events = pixel_layers(dem, params, sites_lonlat, roads_lonlat)
    cells2d = np.concatenate(parts, axis=0)
    df = aggregate(cells2d, layers, events, dem.res_m[0] * dem.res_m[1], params)
    df.attrs["res"] = res
    df.attrs["crs"] = dem.crs.to_string()
    df.attrs["main_drain_km2"] = float(np.nanmax(df["drain_uparea_km2"].to_numpy()))
    r, c = site_pixels(dem, sites_lonlat)
    folds = inventory_folds(dem, cells2d, r, c, params, "site_density_per_km2" in layers)
    return fit_susceptibility(df, params, folds)


def _window_task(
    transform: Any, crs_wkt: str, shape: tuple[int, int], res: int, rows: tuple[int, int], m: Any
) -> np.ndarray:
    return window_cells(transform, crs_wkt, shape, res, rows, m)
