"""Warning levels per unit (pixel or H3 cell): susceptibility × rainfall → 0..4, with reasons.

Glue between :mod:`risk_models.landslide` and :mod:`risk_models.rainfall`; a planner calls
:func:`assess_landslide` with factor arrays, a fitted model and the hourly rain of each unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from risk_models import landslide, rainfall
from risk_models.calibration import RainModel
from risk_models.errors import ModelInputError


class SusceptibilityModel(Protocol):
    def score(self, factors: Mapping[str, Any]) -> np.ndarray: ...

    def contributions(self, factors: Mapping[str, Any]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class LandslideAssessment:
    """Per-unit results of :func:`assess_landslide` (all arrays of length n_units)."""

    score: np.ndarray
    susceptibility_class: np.ndarray
    cuts: np.ndarray
    rain_class: np.ndarray
    cma_signal: np.ndarray
    level: np.ndarray
    factor_of_safety: np.ndarray
    contributions: dict[str, np.ndarray]
    factor_values: dict[str, np.ndarray]
    rain_metrics: dict[str, np.ndarray]
    density_ratio: np.ndarray
    below_slope_floor: np.ndarray
    rain_probabilities: dict[str, np.ndarray]
    rain_rules: tuple[tuple[int, float], ...]
    antecedent_known: bool = True

    def explain(self, i: int, top: int = 3) -> dict[str, Any]:
        """JSON-ready explanation of unit ``i`` (see :func:`landslide.explanations`)."""
        return landslide.explain(
            i,
            top=top,
            levels=self.level,
            susceptibility_class=self.susceptibility_class,
            rain_class=self.rain_class,
            contributions=self.contributions,
            factor_values=self.factor_values,
            rain_metrics=self.rain_metrics,
            fs=self.factor_of_safety,
            score=self.score,
            density_ratio=self.density_ratio,
            below_slope_floor=self.below_slope_floor,
            rain_probabilities=self.rain_probabilities,
            rain_rules=self.rain_rules,
            antecedent_known=self.antecedent_known,
        )


def assess_landslide(
    factors: Mapping[str, Any],
    model: SusceptibilityModel,
    hourly_rain_mm: np.ndarray,
    *,
    antecedent_daily_mm: np.ndarray | Sequence[float] | None = None,
    calibration: landslide.DensityCalibration | None = None,
    ratio_cuts: Sequence[float] = landslide.DEFAULT_RATIO_CUTS,
    cuts: np.ndarray | None = None,
    area_shares: Sequence[float] | None = None,
    rain_model: RainModel | None = None,
    matrix: Sequence[Sequence[int]] = landslide.DEFAULT_LEVEL_MATRIX,
    slope_key: str = "slope_deg",
    slope_floor_deg: float = 5.0,
    fs_params: Mapping[str, float] | None = None,
) -> LandslideAssessment:
    """Landslide warning level per unit for one rainfall event.

    Args:
        factors: factor arrays (n_units) as the model was fitted on; ``slope_key`` (degrees)
            drives the slope floor and the infinite-slope factor of safety.
        model: a fitted :class:`landslide.FrequencyRatioModel`, ``LogisticModel`` or
            ``EnsembleModel``.
        hourly_rain_mm: ``(n_hours,)`` for uniform rain or ``(n_units, n_hours)``, mm per hour.
        antecedent_daily_mm: 10 daily totals (mm, most recent last), or one row per unit; the
            effective antecedent rain Re (K = 0.8) enters the rain class and the FS saturation.
            None: unknown — the rain class comes from the rain model's R24-only curves.
        calibration / ratio_cuts: classes from the calibrated density ratio (absolute), or
        cuts: fixed score cuts, or area_shares: area quantiles of this call (relative); one
            of the three is needed.
        rain_model: calibrated rain classes (default :data:`params.DEFAULT_RAIN_MODEL`).
        matrix: 4×4 level matrix (susceptibility × rain class).
        slope_floor_deg: units flatter than this get level 0.
        fs_params: keyword overrides for :func:`landslide.factor_of_safety`.
    """
    from risk_models.params import DEFAULT_RAIN_MODEL

    arrays = {k: np.asarray(v, dtype="float64").ravel() for k, v in factors.items()}
    n = next(iter(arrays.values())).size
    rain = np.asarray(hourly_rain_mm, dtype="float64")
    if rain.ndim == 1:
        rain = np.broadcast_to(rain, (n, rain.size))
    if rain.shape[0] != n:
        raise ModelInputError(f"{rain.shape[0]} rain series for {n} units")
    score = np.asarray(model.score(arrays))
    ratio = np.full(n, np.nan)
    if cuts is not None:
        cut = np.asarray(cuts)
        s_class = landslide.classify(score, cut)
    elif area_shares is not None:
        cut = landslide.area_cuts(score, area_shares)
        s_class = landslide.classify(score, cut)
    elif calibration is not None:
        ratio = calibration.ratio(score)
        cut = np.asarray(ratio_cuts, dtype="float64")
        s_class = landslide.ratio_class(ratio, ratio_cuts)
    else:
        raise ModelInputError("give a density calibration, fixed cuts or area_shares")
    floor = ~(arrays[slope_key] >= slope_floor_deg) if slope_key in arrays else np.zeros(n, bool)
    s_class = np.where(floor, 0, s_class).astype("int8")
    maxes = rainfall.max_rolling_totals_mm(rain)
    metrics = {f"rain_mm_{w}h": v for w, v in maxes.items()}
    metrics["rain_mm_event"] = rain.sum(axis=-1)
    metrics["cma_signal"] = rainfall.cma_signal(rain).astype("float64")
    re = np.zeros(n)
    rm = rain_model or RainModel.from_params(DEFAULT_RAIN_MODEL)
    # unknown antecedent rain: NaN, so the rain model takes its R24-only curves instead of
    # reading the unknown as a dry fortnight
    re_in: Any = np.full(n, np.nan)
    last_day: Any = np.zeros(n)
    model_prev: Any = np.full(n, np.nan)
    if antecedent_daily_mm is not None:
        re = np.broadcast_to(rainfall.effective_antecedent_mm(antecedent_daily_mm), (n,))
        re_in, _ = rm.inputs(antecedent_daily_mm)
        days = np.asarray(antecedent_daily_mm, dtype="float64")
        last_day = days[..., -1] if days.size else np.zeros(n)
    re_in = np.broadcast_to(np.asarray(re_in, dtype="float64"), (n,))
    # the day before the window (the 24 h before its wettest 24 h when it is longer)
    prev = rainfall.day_before_wettest_24h_mm(rain, np.broadcast_to(last_day, (n,)))
    metrics["antecedent_re_mm"] = np.asarray(re, dtype="float64")
    metrics["rain_mm_day_before"] = np.asarray(prev, dtype="float64")
    if antecedent_daily_mm is not None:
        model_prev = prev
    r_class = rm.rain_class(metrics["rain_mm_24h"], re_in, model_prev)
    level = landslide.warning_level(s_class, r_class, matrix)
    level = np.where(floor, 0, level).astype("int8")
    # wetness proxy: event + antecedent rain against 200 mm (a saturated residual soil in
    # South China); a crude stand-in until a soil-moisture model is wired in
    saturation = np.clip((metrics["rain_mm_event"] + metrics["antecedent_re_mm"]) / 200.0, 0, 1)
    fs = (
        landslide.factor_of_safety(
            arrays[slope_key], saturation=saturation, **dict(fs_params or {})
        )
        if slope_key in arrays
        else np.full(n, np.inf)
    )
    return LandslideAssessment(
        score=score,
        susceptibility_class=s_class,
        cuts=cut,
        rain_class=r_class,
        cma_signal=metrics["cma_signal"].astype("int8"),
        level=level,
        factor_of_safety=fs,
        contributions=model.contributions(arrays),
        factor_values=arrays,
        rain_metrics=metrics,
        density_ratio=ratio,
        below_slope_floor=floor,
        rain_probabilities=rm.probabilities(metrics["rain_mm_24h"], re_in, model_prev),
        rain_rules=tuple((c.k, c.p) for c in rm.curves),
        antecedent_known=antecedent_daily_mm is not None or rm.no_antecedent is None,
    )
