"""Rainfall metrics: antecedent rain, rolling totals, CMA rainstorm signals, I–D thresholds, IDW,
and the scenario files of ``data/scenarios``.

Time runs along the **last** axis of every series (hourly steps, mm per hour), so a 2-D array
``(n_cells, n_hours)`` is processed in one vectorised call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from layers.catalog import LEVEL_NAMES
from risk_models.errors import ModelInputError, ScenarioError

#: Rolling windows (hours) reported for every hyetograph.
WINDOWS_H: tuple[int, ...] = (1, 3, 6, 12, 24)

#: CMA rainstorm warning signals (中国气象局《气象灾害预警信号及防御指南》, 暴雨预警信号):
#: (signal level, window hours, threshold mm). Blue: ≥ 50 mm in 12 h; yellow: ≥ 50 mm in 6 h;
#: orange: ≥ 50 mm in 3 h; red: ≥ 100 mm in 3 h. The official signals are issued on observed
#: *or expected* totals; here they are replayed on the given (observed or scenario) series.
CMA_RAINSTORM_RULES: tuple[tuple[int, int, float], ...] = (
    (4, 3, 100.0),
    (3, 3, 50.0),
    (2, 6, 50.0),
    (1, 12, 50.0),
)
CMA_SIGNAL_NAMES = LEVEL_NAMES
_TOL_MM = 1e-6


def effective_antecedent_mm(
    daily_mm: np.ndarray | Sequence[float], k: float = 0.8, days: int = 10
) -> np.ndarray:
    """Effective antecedent rainfall Re = Σᵢ Kⁱ·Rᵢ (mm), i = 1 the day before the event.

    Args:
        daily_mm: daily totals (mm), **most recent last** along the last axis (the scenario
            files' ``antecedent_daily_mm`` order); only the last ``days`` are used.
        k: daily decay coefficient (0.8 is the usual value for South China; 0 < k ≤ 1).
        days: number of antecedent days.
    """
    if not 0 < k <= 1:
        raise ModelInputError("decay coefficient k must be in (0, 1]")
    arr = np.asarray(daily_mm, dtype="float64")
    arr = arr[..., -days:]
    n = arr.shape[-1]
    # weights K^n … K^1 for oldest … most recent
    weights = k ** np.arange(n, 0, -1, dtype="float64")
    return np.asarray(np.sum(arr * weights, axis=-1))


def rolling_totals_mm(
    hourly_mm: np.ndarray | Sequence[float], windows_h: Sequence[int] = WINDOWS_H
) -> dict[int, np.ndarray]:
    """Trailing rolling totals (mm) ending at each hour; the first hours sum what exists.

    Returns ``{window_h: array}`` with the input's shape.
    """
    arr = np.asarray(hourly_mm, dtype="float64")
    if np.any(arr < 0):
        raise ModelInputError("rain amounts must be ≥ 0 mm")
    pad = [(0, 0)] * (arr.ndim - 1) + [(1, 0)]
    csum = np.cumsum(np.pad(arr, pad), axis=-1)
    n = arr.shape[-1]
    out = {}
    for w in windows_h:
        if w < 1:
            raise ModelInputError("windows must be ≥ 1 h")
        end = np.arange(1, n + 1)
        start = np.maximum(end - w, 0)
        out[int(w)] = np.take(csum, end, axis=-1) - np.take(csum, start, axis=-1)
    return out


def max_rolling_totals_mm(
    hourly_mm: np.ndarray | Sequence[float], windows_h: Sequence[int] = WINDOWS_H
) -> dict[int, np.ndarray]:
    """Largest trailing total (mm) over the series, per window (hours)."""
    return {w: v.max(axis=-1) for w, v in rolling_totals_mm(hourly_mm, windows_h).items()}


def cma_signal_series(hourly_mm: np.ndarray | Sequence[float]) -> np.ndarray:
    """CMA rainstorm signal (0 none, 1 blue, 2 yellow, 3 orange, 4 red) at each hour,
    from the trailing 3/6/12 h totals ending at that hour."""
    totals = rolling_totals_mm(hourly_mm, (3, 6, 12))
    level = np.zeros(totals[3].shape, dtype="int8")
    for sig, window_h, threshold_mm in CMA_RAINSTORM_RULES:
        # the tolerance absorbs float round-off of rolling sums (e.g. 12 × 50/12 mm)
        hit = (totals[window_h] >= threshold_mm - _TOL_MM) & (level < sig)
        level[hit] = sig
    return level


def cma_signal(hourly_mm: np.ndarray | Sequence[float]) -> np.ndarray:
    """Highest CMA rainstorm signal (0..4) reached anywhere in each series."""
    return np.asarray(cma_signal_series(hourly_mm).max(axis=-1))


@dataclass(frozen=True)
class IDThreshold:
    """Rainfall intensity–duration threshold I = a·D^(−b) (I in mm/h, D in h) and class cuts.

    Default: Caine (1980) global threshold I = 14.82·D^−0.39, a fallback when no regional
    curve is known. ``multiples`` are the ratios I/I_threshold at which rain classes 1, 2, 3
    start (class 0 below the threshold).
    """

    a_mm_h: float = 14.82
    b: float = 0.39
    multiples: tuple[float, float, float] = (1.0, 2.0, 3.0)
    durations_h: tuple[int, ...] = WINDOWS_H

    def intensity_mm_h(self, duration_h: float | np.ndarray) -> np.ndarray:
        return np.asarray(self.a_mm_h * np.asarray(duration_h, dtype="float64") ** (-self.b))


def id_ratio(hourly_mm: np.ndarray | Sequence[float], threshold: IDThreshold) -> np.ndarray:
    """max over durations D of (mean intensity over the wettest D hours) / I_threshold(D)."""
    maxes = max_rolling_totals_mm(hourly_mm, threshold.durations_h)
    ratios = [maxes[d] / d / threshold.intensity_mm_h(d) for d in threshold.durations_h]
    return np.asarray(np.max(np.stack(ratios, axis=0), axis=0))


def id_class(
    hourly_mm: np.ndarray | Sequence[float], threshold: IDThreshold | None = None
) -> np.ndarray:
    """Rainfall class 0..3 from the I–D ratio and the threshold's ``multiples``."""
    thr = threshold or IDThreshold()
    ratio = id_ratio(hourly_mm, thr)
    return np.asarray(np.searchsorted(np.asarray(thr.multiples), ratio, side="right"), dtype="int8")


def idw(
    gauge_xy_m: np.ndarray,
    gauge_values: np.ndarray,
    target_xy_m: np.ndarray,
    *,
    power: float = 2.0,
    max_neighbours: int | None = None,
) -> np.ndarray:
    """Inverse-distance-weighted interpolation of gauge values to target points.

    Args:
        gauge_xy_m: ``(n_gauges, 2)`` coordinates in a projected CRS (metres).
        gauge_values: ``(n_gauges,)`` or ``(n_gauges, n_steps)`` values (e.g. mm per hour).
        target_xy_m: ``(n_targets, 2)`` in the same CRS (e.g. H3 cell centres).
        power: distance exponent (2 = the usual Shepard weighting).
        max_neighbours: use only the k nearest gauges.

    Returns:
        ``(n_targets,)`` or ``(n_targets, n_steps)``; a target on a gauge gets its value.
    """
    g = np.asarray(gauge_xy_m, dtype="float64").reshape(-1, 2)
    t = np.asarray(target_xy_m, dtype="float64").reshape(-1, 2)
    v = np.asarray(gauge_values, dtype="float64")
    if g.shape[0] == 0 or v.shape[0] != g.shape[0]:
        raise ModelInputError("need ≥ 1 gauge and one value row per gauge")
    vals = v.reshape(v.shape[0], -1)
    out = np.empty((t.shape[0], vals.shape[1]), dtype="float64")
    # chunks of targets keep the (targets × gauges) distance matrix small
    step = max(1, 4_000_000 // g.shape[0])
    for start in range(0, t.shape[0], step):
        out[start : start + step] = _idw_chunk(
            g, vals, t[start : start + step], power, max_neighbours
        )
    return out.reshape((t.shape[0],) + v.shape[1:])


def _idw_chunk(
    g: np.ndarray, vals: np.ndarray, t: np.ndarray, power: float, max_neighbours: int | None
) -> np.ndarray:
    d = np.hypot(t[:, None, 0] - g[None, :, 0], t[:, None, 1] - g[None, :, 1])
    with np.errstate(divide="ignore"):
        w = 1.0 / d**power
    if max_neighbours is not None and max_neighbours < g.shape[0]:
        far = np.argsort(d, axis=1)[:, max_neighbours:]
        np.put_along_axis(w, far, 0.0, axis=1)
    exact = d == 0
    hit = exact.any(axis=1)
    w[hit] = exact[hit].astype("float64")
    w /= w.sum(axis=1, keepdims=True)
    return np.asarray(w @ vals)


# --- scenario files --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A rainfall scenario (format: ``data/scenarios/README.md``)."""

    id: str
    name_zh: str
    name_en: str
    description: str
    start: datetime
    step_minutes: int
    rain_mm: np.ndarray
    spatial_kind: str
    direction_deg: float
    factor_min: float
    factor_max: float
    antecedent_daily_mm: np.ndarray

    def hourly_rain_mm(self) -> np.ndarray:
        """District-average rain per hour (mm); sub-hourly steps are summed per hour."""
        if 60 % self.step_minutes == 0:
            per_h = 60 // self.step_minutes
            r = self.rain_mm
            pad = (-r.size) % per_h
            return np.pad(r, (0, pad)).reshape(-1, per_h).sum(axis=1)
        if self.step_minutes % 60 == 0:
            return np.repeat(self.rain_mm / (self.step_minutes // 60), self.step_minutes // 60)
        raise ScenarioError(f"{self.id}: step_minutes {self.step_minutes} is not hour-aligned")

    def factors(self, x_m: np.ndarray, y_m: np.ndarray, rescale: bool = False) -> np.ndarray:
        """Rain multiplier at points (projected x/y, metres; north up).

        ``t(p)`` is the position along ``direction_deg`` (clockwise from north) between the
        extreme points of the given set. With ``rescale`` the factors are divided by their
        mean (points assumed equal-area, e.g. H3 cells) so the district mean is ``rain_mm``.
        """
        x = np.asarray(x_m, dtype="float64")
        y = np.asarray(y_m, dtype="float64")
        if self.spatial_kind == "uniform":
            return np.ones_like(x)
        theta = math.radians(self.direction_deg)
        proj = x * math.sin(theta) + y * math.cos(theta)
        span = float(proj.max() - proj.min()) if proj.size else 0.0
        t = (proj - proj.min()) / span if span > 0 else np.full_like(proj, 0.5)
        f = self.factor_min + (self.factor_max - self.factor_min) * t
        return np.asarray(f / f.mean()) if rescale and f.size else np.asarray(f)

    def rain_at_mm(self, x_m: np.ndarray, y_m: np.ndarray, rescale: bool = False) -> np.ndarray:
        """Hourly rain (mm) at points: ``(n_points, n_hours)``."""
        return np.outer(self.factors(x_m, y_m, rescale), self.hourly_rain_mm())


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj or not isinstance(obj[key], kind):
        raise ScenarioError(f"{where}: '{key}' missing or not {kind}")
    return obj[key]


def load_scenario(path: str | Path) -> Scenario:
    """Read and check one scenario JSON file.

    Raises:
        ScenarioError: unreadable JSON or a field missing / of the wrong type / out of range.
    """
    path = Path(path)
    where = str(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{where}: cannot read scenario ({exc})") from exc
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: top level must be an object")
    num = (int, float)
    rain = np.asarray(_get(obj, "rain_mm", list, where), dtype="float64")
    ante = np.asarray(_get(obj, "antecedent_daily_mm", list, where), dtype="float64")
    spatial = _get(obj, "spatial", dict, where)
    kind = _get(spatial, "kind", str, where)
    if kind not in {"uniform", "gradient"}:
        raise ScenarioError(f"{where}: spatial.kind must be 'uniform' or 'gradient'")
    if rain.size == 0 or np.any(rain < 0) or not np.all(np.isfinite(rain)):
        raise ScenarioError(f"{where}: rain_mm must be a non-empty list of numbers ≥ 0")
    if ante.size != 10 or np.any(ante < 0):
        raise ScenarioError(f"{where}: antecedent_daily_mm must hold 10 numbers ≥ 0")
    step = _get(obj, "step_minutes", int, where)
    if step <= 0:
        raise ScenarioError(f"{where}: step_minutes must be > 0")
    try:
        start = datetime.fromisoformat(_get(obj, "start", str, where).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScenarioError(f"{where}: start is not ISO 8601") from exc
    grad = kind == "gradient"
    return Scenario(
        id=_get(obj, "id", str, where),
        name_zh=str(obj.get("name_zh", "")),
        name_en=str(obj.get("name_en", "")),
        description=str(obj.get("description", "")),
        start=start,
        step_minutes=step,
        rain_mm=rain,
        spatial_kind=kind,
        direction_deg=float(_get(spatial, "direction_deg", num, where)) if grad else 0.0,
        factor_min=float(_get(spatial, "factor_min", num, where)) if grad else 1.0,
        factor_max=float(_get(spatial, "factor_max", num, where)) if grad else 1.0,
        antecedent_daily_mm=ante,
    )


def load_scenarios(directory: str | Path) -> dict[str, Scenario]:
    """Every ``*.json`` scenario in a directory, by id."""
    out = {}
    for p in sorted(Path(directory).glob("*.json")):
        s = load_scenario(p)
        out[s.id] = s
    return out


def day_before_wettest_24h_mm(
    hourly_mm: np.ndarray, last_day_mm: np.ndarray | float = 0.0, chunk: int = 8192
) -> np.ndarray:
    """Rain (mm) of the 24 h before each series' wettest 24 h: the "day before" of the
    two-day rain model when a window is longer than a day.

    Hours before the window count at the last antecedent day's mean rate
    (``last_day_mm`` / 24 per hour); for a window of 24 h or less the wettest 24 h is the
    whole window and the result is ``last_day_mm`` itself.

    Args:
        hourly_mm: ``(n, hours)`` rain (mm per hour).
        last_day_mm: the day before the window (mm), scalar or ``(n,)``.
    """
    arr = np.atleast_2d(np.asarray(hourly_mm, dtype="float64"))
    n, hours = arr.shape
    last = np.broadcast_to(np.asarray(last_day_mm, dtype="float64"), (n,))
    if hours <= 24:
        return last.copy()
    out = np.empty(n)
    csum = np.zeros((min(n, chunk), hours + 1))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        c = csum[: stop - start]
        np.cumsum(arr[start:stop], axis=1, out=c[:, 1:])
        # the wettest 24 h ends at hour `end` (24 … hours); the day before it is the window's
        # hours [end − 48, end − 24) and, before the window's start, the last antecedent day
        end = 24 + np.argmax(c[:, 24:] - c[:, :-24], axis=1)
        rows = np.arange(stop - start)
        inside = c[rows, end - 24] - c[rows, np.maximum(end - 48, 0)]
        before_h = np.maximum(48 - end, 0)
        out[start:stop] = inside + last[start:stop] * before_h / 24.0
    return out
