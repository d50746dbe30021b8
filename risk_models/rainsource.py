"""Rain per H3 cell from a scenario file, gauge readings (IDW) or a rainfall raster, and the
rain metrics every model uses.

A rain source is prepared once on **all** cells of a run (a scenario's gradient is normalised
between the extreme cells) and then evaluated on any subset of them, so a run split into
chunks by parent cell gives exactly the same rain as one in-process call. Positions are
projected to the local UTM zone (metres) for distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer

from risk_models import rainfall
from risk_models.errors import ModelInputError
from risk_models.terrain import utm_crs_for

WINDOWS_H = rainfall.WINDOWS_H
_CHUNK = 100_000


def check_rain(hourly_mm: np.ndarray, what: str = "rain") -> np.ndarray:
    """``hourly_mm`` as float64 if every value is finite and ≥ 0 mm, else ModelInputError."""
    arr = np.asarray(hourly_mm, dtype="float64")
    if arr.size == 0:
        raise ModelInputError(f"{what}: no rain values")
    if not np.isfinite(arr).all():
        raise ModelInputError(f"{what}: rain values must be numbers (found NaN or infinity)")
    if (arr < 0).any():
        raise ModelInputError(f"{what}: rain values must be ≥ 0 mm (found {arr.min():g})")
    return arr


def project_m(lon: np.ndarray, lat: np.ndarray, ref: tuple[float, float]) -> np.ndarray:
    """``(n, 2)`` UTM metres of lon/lat points, in the zone of the reference point ``ref``."""
    tr = Transformer.from_crs(4326, utm_crs_for(*ref), always_xy=True)
    x, y = tr.transform(np.asarray(lon, "float64"), np.asarray(lat, "float64"))
    return np.column_stack([np.asarray(x), np.asarray(y)])


@dataclass
class RainSource:
    """Hourly rain (mm) per cell, evaluated on demand.

    ``kind`` is ``scenario``, ``gauges``, ``raster`` or ``series``; ``describe`` is JSON-ready
    provenance for the run record.
    """

    kind: str
    describe: dict[str, Any]
    antecedent_daily_mm: np.ndarray | None = None
    # scenario: per-cell factor × district hyetograph
    hyetograph_mm: np.ndarray | None = None
    direction_deg: float = 0.0
    factor_min: float = 1.0
    factor_max: float = 1.0
    gradient: bool = False
    ref: tuple[float, float] = (0.0, 0.0)
    proj_min: float = 0.0
    proj_span: float = 0.0
    factor_mean: float = 1.0
    # gauges: positions (UTM metres in the ``ref`` zone) and hourly series
    gauge_xy_m: np.ndarray | None = None
    gauge_mm: np.ndarray | None = None
    power: float = 2.0
    # raster
    path: str | None = None
    hours: int = 24
    extra: dict[str, Any] = field(default_factory=dict)

    def prepare(self, lon: np.ndarray, lat: np.ndarray) -> RainSource:
        """Fix what depends on the whole set of cells (the scenario gradient's range)."""
        if self.kind == "scenario" and self.gradient and len(lon):
            xy = project_m(lon, lat, self.ref)
            proj = self._proj(xy)
            self.proj_min = float(proj.min())
            self.proj_span = float(proj.max() - proj.min())
            self.factor_mean = float(self._factor(proj).mean())
        return self

    def _proj(self, xy: np.ndarray) -> np.ndarray:
        theta = math.radians(self.direction_deg)
        return np.asarray(xy[:, 0] * math.sin(theta) + xy[:, 1] * math.cos(theta))

    def _factor(self, proj: np.ndarray) -> np.ndarray:
        if self.proj_span > 0:
            t = np.clip((proj - self.proj_min) / self.proj_span, 0.0, 1.0)
        else:
            t = np.full(proj.shape, 0.5)
        return np.asarray(self.factor_min + (self.factor_max - self.factor_min) * t)

    def factors(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Scenario multiplier per cell (mean 1 over the prepared cells)."""
        if not self.gradient:
            return np.ones(len(lon))
        f = self._factor(self._proj(project_m(lon, lat, self.ref)))
        return np.asarray(f / self.factor_mean)

    def hourly(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """``(n_cells, n_hours)`` rain (mm per hour) at cell centres (degrees)."""
        if self.kind == "scenario":
            assert self.hyetograph_mm is not None
            return np.outer(self.factors(lon, lat), self.hyetograph_mm)
        if self.kind == "gauges":
            assert self.gauge_xy_m is not None and self.gauge_mm is not None
            return idw_exact(self.gauge_xy_m, self.gauge_mm, project_m(lon, lat, self.ref))
        if self.kind == "raster":
            return _sample_raster(str(self.path), lon, lat, self.hours)
        raise ModelInputError(f"unknown rain source {self.kind!r}")  # pragma: no cover


#: Gauges used for each cell's IDW (the nearest ones): enough for a smooth field, and the
#: cost stays linear in the number of cells whatever the size of the gauge network.
IDW_NEIGHBOURS = 8


def idw_exact(
    gauge_xy_m: np.ndarray,
    gauge_mm: np.ndarray,
    xy_m: np.ndarray,
    neighbours: int = IDW_NEIGHBOURS,
) -> np.ndarray:
    """Inverse-distance (power 2) interpolation from the ``neighbours`` nearest gauges.

    Each cell's value is summed gauge by gauge in a fixed order (nearest first), so it does
    not depend on which other cells are computed with it: chunked runs give identical
    results (a BLAS matrix product would not). A cell on a gauge takes its value.
    """
    from scipy.spatial import cKDTree

    n, hours = xy_m.shape[0], gauge_mm.shape[1]
    k = min(neighbours, gauge_xy_m.shape[0])
    out = np.empty((n, hours))
    dist_all, idx_all = cKDTree(gauge_xy_m).query(xy_m, k=k, workers=-1)
    dist_all = np.asarray(dist_all, dtype="float64").reshape(n, k)
    idx_all = np.asarray(idx_all, dtype="int64").reshape(n, k)
    # small chunks keep the working arrays in the CPU cache (memory traffic is the cost here)
    step = 8192
    tmp = np.empty((min(n, step), hours))
    for start in range(0, n, step):
        stop = min(start + step, n)
        dist, idx = dist_all[start:stop], idx_all[start:stop]
        with np.errstate(divide="ignore"):
            w = 1.0 / (dist * dist)
        on = dist[:, 0] == 0
        w[on] = 0.0
        w[on, 0] = 1.0
        w /= w.sum(axis=1, keepdims=True)
        acc = out[start:stop]
        acc[:] = 0.0
        part = tmp[: stop - start]
        for j in range(k):
            np.take(gauge_mm, idx[:, j], axis=0, out=part)
            part *= w[:, j, None]
            acc += part
    return out


def scenario_source(path: str | Path, ref: tuple[float, float]) -> RainSource:
    """A rain source from a scenario file (``data/scenarios`` format)."""
    sc = rainfall.load_scenario(path)
    return RainSource(
        kind="scenario",
        describe={"scenario": sc.id, "hours": int(sc.hourly_rain_mm().size)},
        antecedent_daily_mm=sc.antecedent_daily_mm,
        hyetograph_mm=check_rain(sc.hourly_rain_mm(), sc.id),
        direction_deg=sc.direction_deg,
        factor_min=sc.factor_min,
        factor_max=sc.factor_max,
        gradient=sc.spatial_kind == "gradient",
        ref=ref,
    )


def gauge_source(
    lon: np.ndarray,
    lat: np.ndarray,
    hourly_mm: np.ndarray,
    *,
    antecedent_daily_mm: np.ndarray | None = None,
    describe: dict[str, Any] | None = None,
) -> RainSource:
    """A rain source interpolating gauge series ``(n_gauges, n_hours)`` (mm/h) to cells.

    ``antecedent_daily_mm`` is the district's 10 daily totals before the window (most recent
    last), e.g. the mean of the gauges.
    """
    series = check_rain(np.atleast_2d(hourly_mm), "gauge readings")
    lon = np.asarray(lon, "float64")
    lat = np.asarray(lat, "float64")
    if lon.size == 0 or series.shape[0] != lon.size:
        raise ModelInputError("need ≥ 1 gauge with one series per gauge")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise ModelInputError("gauge positions must be finite lon/lat degrees")
    ref = (float(lon.mean()), float(lat.mean()))
    ante = None if antecedent_daily_mm is None else check_rain(antecedent_daily_mm, "antecedent")
    return RainSource(
        kind="gauges",
        describe=describe or {"gauges": int(lon.size), "hours": int(series.shape[1])},
        antecedent_daily_mm=ante,
        gauge_xy_m=project_m(lon, lat, ref),
        gauge_mm=series,
        ref=ref,
    )


def raster_source(path: str | Path, hours: int = 24) -> RainSource:
    """A rain source sampling a rainfall raster at cell centres.

    A raster with several bands holds one band per hour (mm); a single band is the event total
    (mm) spread evenly over ``hours``. Cells outside the raster or on no-data get no rain
    (counted in the run's inputs).
    """
    import rasterio

    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise ModelInputError(f"{path}: the rainfall raster has no CRS")
            bands = ds.count
    except rasterio.errors.RasterioIOError as exc:
        raise ModelInputError(f"{path}: cannot read the rainfall raster ({exc})") from None
    if hours < 1:
        raise ModelInputError("hours must be ≥ 1")
    return RainSource(
        kind="raster",
        describe={"raster": str(path), "bands": bands, "hours": bands if bands > 1 else hours},
        path=str(path),
        hours=hours,
    )


def _sample_raster(path: str, lon: np.ndarray, lat: np.ndarray, hours: int) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        x, y = Transformer.from_crs(4326, ds.crs, always_xy=True).transform(
            np.asarray(lon, "float64"), np.asarray(lat, "float64")
        )
        data = ds.read(out_dtype="float64", masked=True)
        rows, cols = rasterio.transform.rowcol(ds.transform, x, y)
        r = np.asarray(rows, dtype="int64")
        c = np.asarray(cols, dtype="int64")
        inside = (r >= 0) & (r < ds.height) & (c >= 0) & (c < ds.width)
        vals = np.zeros((len(r), ds.count))
        filled = data.filled(np.nan)
        vals[inside] = filled[:, r[inside], c[inside]].T
    bad = ~np.isfinite(vals)
    vals[bad] = 0.0  # no data / outside: no rain, reported by the caller
    check_rain(vals, f"rainfall raster {path}")
    if vals.shape[1] == 1:
        return np.repeat(vals / hours, hours, axis=1)
    return vals


def max_totals_mm(hourly_mm: np.ndarray) -> dict[int, np.ndarray]:
    """Largest trailing 1/3/6/12/24 h totals (mm) per cell, in chunks of cells.

    Rain is ≥ 0, so the cumulative sum never decreases and the windows that would start before
    the first hour never beat the first full window: the largest w-hour total is the largest
    ``csum[t] − csum[t − w]`` over full windows (the whole series when it is shorter than w),
    the same values as :func:`rainfall.max_rolling_totals_mm`.
    """
    n, hours = hourly_mm.shape
    out = {w: np.empty(n) for w in WINDOWS_H}
    step = 8192  # cache-sized chunks
    csum = np.zeros((min(n, step), hours + 1))
    for start in range(0, n, step):
        stop = min(start + step, n)
        c = csum[: stop - start]
        np.cumsum(hourly_mm[start:stop], axis=1, out=c[:, 1:])
        for w in WINDOWS_H:
            if w >= hours:
                out[w][start:stop] = c[:, hours]
            else:
                np.max(c[:, w:] - c[:, :-w], axis=1, out=out[w][start:stop])
    return out


def cma_from_totals(maxes: dict[int, np.ndarray]) -> np.ndarray:
    """CMA rainstorm signal 0..4 from the largest 3/6/12 h totals (same rules as
    :func:`rainfall.cma_signal`: the highest rule met at any hour)."""
    level = np.zeros(maxes[3].shape, dtype="int8")
    for sig, window_h, threshold_mm in rainfall.CMA_RAINSTORM_RULES:
        hit = (maxes[window_h] >= threshold_mm - 1e-6) & (level < sig)
        level[hit] = sig
    return level


def id_ratio_from_totals(
    maxes: dict[int, np.ndarray], threshold: rainfall.IDThreshold
) -> np.ndarray:
    """max over durations D of (mean intensity of the wettest D hours) / I_threshold(D)."""
    ratios = [maxes[d] / d / threshold.intensity_mm_h(d) for d in threshold.durations_h]
    return np.asarray(np.max(np.stack(ratios, axis=0), axis=0))
