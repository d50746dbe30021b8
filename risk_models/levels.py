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

    def explain(self, i: int, top: int = 3) -> dict[str, Any]:
        """JSON-ready explanation of unit ``i`` (see :func:`landslide.explain`)."""
        return landslide.explain(
            i,
            levels=self.level,
            susceptibility_class=self.susceptibility_class,
            rain_class=self.rain_class,
            contributions=self.contributions,
            factor_values=self.factor_values,
            rain_metrics=self.rain_metrics,
            fs=self.factor_of_safety,
            top=top,
        )


def assess_landslide(
    factors: Mapping[str, Any],
    model: SusceptibilityModel,
    hourly_rain_mm: np.ndarray,
    *,
    antecedent_daily_mm: np.ndarray | Sequence[float] | None = None,
    threshold: rainfall.IDThreshold | None = None,
    area_shares: Sequence[float] = landslide.DEFAULT_AREA_SHARES,
    cuts: np.ndarray | None = None,
    matrix: Sequence[Sequence[int]] = landslide.DEFAULT_LEVEL_MATRIX,
    slope_key: str = "slope_deg",
    fs_params: Mapping[str, float] | None = None,
) -> LandslideAssessment:
    """Landslide warning level per unit for one rainfall event.

    Args:
        factors: factor arrays (n_units) as the model was fitted on; ``slope_key`` (degrees)
            also drives the infinite-slope factor of safety.
        model: a fitted :class:`landslide.FrequencyRatioModel`, ``LogisticModel`` or
            ``EnsembleModel``.
        hourly_rain_mm: ``(n_hours,)`` for uniform rain or ``(n_units, n_hours)``, mm per hour.
        antecedent_daily_mm: 10 daily totals (mm, most recent last), or one row per unit; the
            effective antecedent rain (K = 0.8) is reported and scales the FS saturation.
        threshold: I–D threshold for the rain class (default Caine 1980).
        area_shares / cuts: susceptibility classes from area quantiles of this run, or fixed
            cuts (e.g. computed once on the whole district).
        matrix: 4×4 level matrix (susceptibility × rain class).
        fs_params: keyword overrides for :func:`landslide.factor_of_safety`.
    """
    arrays = {k: np.asarray(v, dtype="float64").ravel() for k, v in factors.items()}
    n = next(iter(arrays.values())).size
    rain = np.asarray(hourly_rain_mm, dtype="float64")
    if rain.ndim == 1:
        rain = np.broadcast_to(rain, (n, rain.size))
    if rain.shape[0] != n:
        raise ModelInputError(f"{rain.shape[0]} rain series for {n} units")
    score = np.asarray(model.score(arrays))
    cut = landslide.area_cuts(score, area_shares) if cuts is None else np.asarray(cuts)
    s_class = landslide.classify(score, cut)
    r_class = rainfall.id_class(rain, threshold)
    level = landslide.warning_level(s_class, r_class, matrix)
    maxes = rainfall.max_rolling_totals_mm(rain)
    metrics = {f"rain_mm_{w}h": v for w, v in maxes.items()}
    metrics["rain_mm_event"] = rain.sum(axis=-1)
    metrics["cma_signal"] = rainfall.cma_signal(rain).astype("float64")
    saturation: np.ndarray | float = 1.0
    if antecedent_daily_mm is not None:
        re = np.broadcast_to(rainfall.effective_antecedent_mm(antecedent_daily_mm), (n,))
        metrics["antecedent_re_mm"] = np.asarray(re, dtype="float64")
        # wetness proxy: event + antecedent rain against 200 mm (a saturated residual soil in
        # South China); a crude stand-in until a soil-moisture model is wired in
        saturation = np.clip((metrics["rain_mm_event"] + re) / 200.0, 0.0, 1.0)
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
    )
