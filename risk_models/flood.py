"""Flood models: river inundation from HAND and a stage (or a Manning rating curve), urban
waterlogging by SCS-CN runoff filling terrain depressions, and depth → warning level.

Depths and stages in metres, rain and runoff in mm, discharges in m³/s, areas in m².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from risk_models.errors import ModelInputError

#: Water depths (m) at which warning levels 1..4 (blue, yellow, orange, red) start.
#: 0.15 m: kerb height / pedestrians at risk; 0.3 m: cars stall; 0.5 m: ground floors flooded,
#: walking dangerous; 1.0 m: life-threatening (thresholds of common Chinese urban waterlogging
#: warning practice; configurable per city).
DEFAULT_DEPTH_THRESHOLDS_M: tuple[float, float, float, float] = (0.15, 0.3, 0.5, 1.0)


def channel_geometry(
    depth_m: np.ndarray, width_m: np.ndarray | float, side_slope: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Flow area A (m²) and hydraulic radius R (m) of a trapezoidal channel.

    ``width_m`` is the bed width, ``side_slope`` the horizontal:vertical bank slope z
    (0 = rectangular).
    """
    h = np.asarray(depth_m, dtype="float64")
    width_m = np.asarray(width_m, dtype="float64")
    area = (width_m + side_slope * h) * h
    wetted = width_m + 2.0 * h * np.sqrt(1.0 + side_slope**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.where(wetted > 0, area / wetted, 0.0)
    return area, radius


def manning_discharge_m3s(
    depth_m: np.ndarray | float,
    *,
    width_m: np.ndarray | float,
    bed_slope: float,
    manning_n: float = 0.035,
    side_slope: float = 0.0,
) -> np.ndarray:
    """Discharge Q = (1/n)·A·R^(2/3)·S^(1/2) (m³/s) at a flow depth (Manning 1891).

    ``manning_n`` 0.035 s/m^(1/3) is a natural clean channel with some stones/weeds
    (Chow 1959, Table 5-6); ``bed_slope`` in m/m; ``width_m`` scalar or per channel.
    """
    if np.any(np.asarray(width_m) <= 0) or bed_slope <= 0 or manning_n <= 0 or side_slope < 0:
        raise ModelInputError("width, slope and n must be > 0 and side slope ≥ 0")
    area, radius = channel_geometry(np.asarray(depth_m, dtype="float64"), width_m, side_slope)
    return np.asarray(area * radius ** (2.0 / 3.0) * np.sqrt(bed_slope) / manning_n)


def stage_from_discharge_m(
    discharge_m3s: np.ndarray | float,
    *,
    width_m: np.ndarray | float,
    bed_slope: float,
    manning_n: float = 0.035,
    side_slope: float = 0.0,
    bankfull_depth_m: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Invert the Manning rating curve: flow depth (m) for a discharge, by vectorised bisection.

    Returns the stage above the bank (depth − ``bankfull_depth_m``, floored at 0), i.e. the
    water height to compare with HAND, when ``bankfull_depth_m`` is given; else the depth.
    ``width_m`` and ``bankfull_depth_m`` may be scalars or arrays shaped like the discharge.
    """
    q = np.asarray(discharge_m3s, dtype="float64")
    width_m = np.broadcast_to(np.asarray(width_m, dtype="float64"), q.shape)
    if np.any(q < 0):
        raise ModelInputError("discharge must be ≥ 0")
    lo = np.zeros_like(q)
    hi = np.ones_like(q)

    def rating(h: np.ndarray) -> np.ndarray:
        return manning_discharge_m3s(
            h, width_m=width_m, bed_slope=bed_slope, manning_n=manning_n, side_slope=side_slope
        )

    for _ in range(60):  # grow the bracket until Q(hi) ≥ q
        small = rating(hi) < q
        if not small.any():
            break
        hi = np.where(small, hi * 2.0, hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = rating(mid) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    depth = 0.5 * (lo + hi)
    return np.asarray(np.maximum(depth - np.asarray(bankfull_depth_m, dtype="float64"), 0.0))


def river_flood_depth_m(hand_m: np.ndarray, stage_m: np.ndarray | float) -> np.ndarray:
    """Inundation depth (m) = stage − HAND where positive (HAND "bathtub" along drainage).

    ``stage_m`` is the water height above the drainage cells (scalar or per cell, e.g. the
    stage of the stream reach each cell drains to). NaN where HAND is NaN.
    """
    hand = np.asarray(hand_m, dtype="float64")
    depth = np.maximum(np.asarray(stage_m, dtype="float64") - hand, 0.0)
    return np.asarray(np.where(np.isfinite(hand), depth, np.nan), dtype="float32")


def scs_runoff_mm(
    rain_mm: np.ndarray | float, curve_number: np.ndarray | float, ia_ratio: float = 0.2
) -> np.ndarray:
    """SCS curve-number direct runoff (mm) (USDA NRCS 1986, TR-55).

    ``Q = (P − Ia)² / (P − Ia + S)`` for P > Ia, else 0; ``S = 25400/CN − 254`` mm,
    ``Ia = ia_ratio·S`` (0.2 classic; 0.05 is often better for urban catchments).
    CN in (0, 100]; 98 for roofs and pavement.
    """
    p = np.asarray(rain_mm, dtype="float64")
    cn = np.asarray(curve_number, dtype="float64")
    if np.any(cn <= 0) or np.any(cn > 100):
        raise ModelInputError("curve number must be in (0, 100]")
    s = 25400.0 / cn - 254.0
    ia = ia_ratio * s
    excess = np.maximum(p - ia, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(excess > 0, excess**2 / (excess + s), 0.0)
    return np.asarray(q)


def waterlogging_depth_m(
    sink_depth_m: np.ndarray,
    filled_m: np.ndarray,
    uparea_km2: np.ndarray,
    runoff_mm: np.ndarray | float,
    pixel_area_m2: float,
    iterations: int = 40,
    max_depression_depth_m: float | None = None,
    max_catchment_km2: float | None = None,
) -> np.ndarray:
    """Ponding depth (m) when runoff fills terrain depressions (fill-and-spill, one level each).

    Each connected depression (sink depth > 0, 8-connected) receives the runoff of its
    contributing area, taken as the largest upstream area among its cells (on the filled DEM
    every upstream cell passes through the depression) times the mean runoff there. Its water
    level L is found by bisection between its floor and its spill height so that
    ``Σ max(L − z, 0)·pixel_area = min(inflow volume, capacity)``. A depression that can hold
    its inflow is partly filled; one that cannot is full (depth = sink depth) and spills on.

    Args:
        sink_depth_m: filled − original DEM (m).
        filled_m: filled DEM (m); the ground is ``filled − sink``.
        uparea_km2: upstream area on the filled DEM (km²).
        runoff_mm: runoff depth (mm), scalar or per pixel (e.g. :func:`scs_runoff_mm`).
        pixel_area_m2: area of one pixel.
    """
    sink = np.nan_to_num(np.asarray(sink_depth_m, dtype="float64"))
    labels, n = depression_labels(sink)
    if n and max_depression_depth_m is not None:
        deepest = np.asarray(ndimage.maximum(sink, labels, np.arange(1, n + 1)))
        keep = np.r_[False, deepest <= max_depression_depth_m]
        labels = np.where(keep[labels], labels, 0)
        labels, n = ndimage.label(labels > 0, structure=np.ones((3, 3)))
    out = np.zeros(sink.shape, dtype="float32")
    out[~np.isfinite(np.asarray(filled_m))] = np.nan
    if n == 0:
        return out
    runoff = np.broadcast_to(np.asarray(runoff_mm, dtype="float64"), sink.shape)
    mask = labels > 0
    lab = labels[mask]
    ground = (np.asarray(filled_m, dtype="float64") - sink)[mask]
    spill = np.asarray(filled_m, dtype="float64")[mask]
    upa = np.nan_to_num(np.asarray(uparea_km2, dtype="float64"))[mask]
    idx = np.arange(1, n + 1)
    catchment_km2 = np.asarray(ndimage.maximum(upa, lab, idx))
    if max_catchment_km2 is not None:
        catchment_km2 = np.minimum(catchment_km2, max_catchment_km2)
    catchment_m2 = catchment_km2 * 1e6
    mean_runoff_m = np.asarray(ndimage.mean(runoff[mask], lab, idx)) / 1000.0
    inflow_m3 = catchment_m2 * mean_runoff_m
    capacity_m3 = np.bincount(lab, weights=spill - ground, minlength=n + 1)[1:] * pixel_area_m2
    target = np.minimum(inflow_m3, capacity_m3)
    lo = np.asarray(ndimage.minimum(ground, lab, idx), dtype="float64")
    hi = np.asarray(ndimage.maximum(spill, lab, idx), dtype="float64")
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        level = mid[lab - 1]
        vol = (
            np.bincount(
                lab, weights=np.maximum(np.minimum(level, spill) - ground, 0.0), minlength=n + 1
            )[1:]
            * pixel_area_m2
        )
        under = vol < target
        lo = np.where(under, mid, lo)
        hi = np.where(under, hi, mid)
    level = (0.5 * (lo + hi))[lab - 1]
    full = (target >= capacity_m3)[lab - 1]
    depth = np.where(full, spill - ground, np.maximum(np.minimum(level, spill) - ground, 0.0))
    out[mask] = depth.astype("float32")
    return out


def depression_labels(sink_depth_m: np.ndarray) -> tuple[np.ndarray, int]:
    """The terrain's depressions: 8-connected components of sink depth (m) > 1 µm (NaN is
    none), labelled 1..n (0 elsewhere), and their count."""
    deep = np.asarray(sink_depth_m, dtype="float64") > 1e-6  # NaN compares false
    labels, n = ndimage.label(deep, structure=np.ones((3, 3)))
    return labels, int(n)


def depth_level(
    depth_m: np.ndarray, thresholds_m: Sequence[float] = DEFAULT_DEPTH_THRESHOLDS_M
) -> np.ndarray:
    """Warning level 0..4 (none, blue, yellow, orange, red) from water depth (m)."""
    t = np.asarray(thresholds_m, dtype="float64")
    if t.size != 4 or np.any(np.diff(t) <= 0):
        raise ModelInputError("depth thresholds must be 4 ascending values in metres")
    d = np.nan_to_num(np.asarray(depth_m, dtype="float64"), nan=0.0)
    return np.asarray(np.searchsorted(t, d, side="right"), dtype="int8")
