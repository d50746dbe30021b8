"""Landslide susceptibility (frequency ratio / information value, optional logistic regression),
infinite-slope factor of safety, and the 4-level warning matrix with per-cell explanations.

Factors are 1-D arrays over the same units (pixels or H3 cells), keyed by name, e.g.
``slope_deg``, ``relief_m``, ``curv_total_per_m``, ``twi``, ``dist_stream_m``, ``dist_road_m``,
``lithology`` (integer codes, categorical) and ``site_density_per_km2``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from layers.catalog import LEVEL_NAMES
from risk_models.errors import ModelInputError

SUSCEPTIBILITY_NAMES = ("low", "moderate", "high", "very_high")

#: Warning level for (susceptibility class row 0..3) × (rainfall class column 0..3).
#: Rain classes come from the calibrated rain model (:mod:`risk_models.calibration`): 1 = a few
#: landslides in the territory, 2 = a landslide day (≥ 10), 3 = a major one (≥ 50), each at a
#: one-in-four chance. Low susceptibility (density below the base rate) never gets a level;
#: moderate at most blue; only high and very high reach yellow and above, red only where very
#: high susceptibility meets a major-landslide-day rain.
DEFAULT_LEVEL_MATRIX: tuple[tuple[int, ...], ...] = (
    (0, 0, 0, 0),
    (0, 0, 1, 1),
    (0, 1, 2, 3),
    (0, 1, 3, 4),
)

#: Density-ratio cuts (calibrated landslide density ÷ the training area's base rate) at which
#: the classes moderate, high and very high start: below half the base rate is low, 0.5–1×
#: moderate, 1–3× high (more prone than the average land cell: FR > 1, the usual reading of
#: a frequency ratio, e.g. Lee & Pradhan 2007), ≥ 3× very high. Landslide density is so
#: concentrated that ratio ≥ 1 is only 14–19 % of Hong Kong's land; the storm hindcasts in
#: docs/warnings.md compare these cuts with (1, 2, 4).
DEFAULT_RATIO_CUTS: tuple[float, float, float] = (0.5, 1.0, 3.0)

#: Share of the area in susceptibility classes low, moderate, high, very high, for the
#: explicit ``area_shares`` option (relative zoning of one map; not the warning default).
DEFAULT_AREA_SHARES: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1)


def _as_arrays(factors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {k: np.asarray(v).ravel() for k, v in factors.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1:
        raise ModelInputError(f"factor arrays differ in length: {sorted(sizes)}")
    return arrays


@dataclass
class FactorTable:
    """Bins of one factor and their frequency ratio (FR) and information value (IV = ln FR)."""

    name: str
    categorical: bool
    edges: np.ndarray  # inner quantile edges (continuous) or category codes (categorical)
    fr: np.ndarray
    iv: np.ndarray
    n_pixels: np.ndarray
    n_events: np.ndarray

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value (−1 for NaN or an unseen category)."""
        v = np.asarray(values, dtype="float64")
        if self.categorical:
            idx = np.searchsorted(self.edges, v)
            idx = np.clip(idx, 0, self.edges.size - 1)
            ok = np.isfinite(v) & (self.edges[idx] == v)
        else:
            idx = np.searchsorted(self.edges, v, side="right")
            ok = np.isfinite(v)
        return np.where(ok, idx, -1)

    def contribution(self, values: np.ndarray) -> np.ndarray:
        """IV of each value's bin (0 for no data)."""
        idx = self.bin_index(values)
        return np.where(idx >= 0, self.iv[np.maximum(idx, 0)], 0.0)


@dataclass
class FrequencyRatioModel:
    """Bivariate susceptibility: score = Σ information values ln(FR) of each factor's bin.

    FR of bin j (Lee & Pradhan 2007; IV after Yin & Yan 1988) with Laplace smoothing α:
    ``FR_j = ((e_j + α) / (E + α k)) / ((n_j + α) / (N + α k))`` where e = event units, n = all
    units, k = number of bins. Continuous factors are cut at quantiles of all units.
    """

    n_bins: int = 10
    alpha: float = 1.0
    categorical: Sequence[str] = ()
    tables: dict[str, FactorTable] = field(default_factory=dict)

    def fit(self, factors: Mapping[str, Any], events: Any) -> FrequencyRatioModel:
        """Fit from factor arrays over all units and a boolean/count array of events per unit."""
        arrays = _as_arrays(factors)
        ev = np.asarray(events, dtype="float64").ravel()
        if ev.size != next(iter(arrays.values())).size:
            raise ModelInputError("events and factors differ in length")
        if ev.sum() <= 0:
            raise ModelInputError("no event in the training set")
        self.tables = {}
        for name, v in arrays.items():
            v = v.astype("float64")
            ok = np.isfinite(v)
            cat = name in self.categorical
            if cat:
                edges = np.unique(v[ok])
            else:
                qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
                edges = np.unique(np.quantile(v[ok], qs)) if ok.any() else np.empty(0)
            k = edges.size if cat else edges.size + 1
            table = FactorTable(name, cat, edges, np.ones(k), np.zeros(k), np.zeros(k), np.zeros(k))
            idx = table.bin_index(v)
            good = idx >= 0
            n = np.bincount(idx[good], minlength=k).astype("float64")
            e = np.bincount(idx[good], weights=ev[good], minlength=k)
            a = self.alpha
            fr = ((e + a) / (e.sum() + a * k)) / ((n + a) / (n.sum() + a * k))
            table.fr, table.iv, table.n_pixels, table.n_events = fr, np.log(fr), n, e
            self.tables[name] = table
        return self

    def contributions(self, factors: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Per-factor IV contribution of every unit."""
        if not self.tables:
            raise ModelInputError("model is not fitted")
        arrays = _as_arrays(factors)
        missing = set(self.tables) - set(arrays)
        if missing:
            raise ModelInputError(f"factors missing: {sorted(missing)}")
        return {n: t.contribution(arrays[n]) for n, t in self.tables.items()}

    def score(self, factors: Mapping[str, Any]) -> np.ndarray:
        """Susceptibility index = Σ IV (dimensionless; > 0 more prone than average)."""
        return np.asarray(np.sum(np.stack(list(self.contributions(factors).values())), axis=0))


@dataclass
class LogisticModel:
    """Logistic regression on standardised factors (scikit-learn, BSD).

    With ``woe=True`` each factor is first replaced by its information value from a
    :class:`FrequencyRatioModel` (weights-of-evidence coding), which handles non-monotonic
    factors such as elevation; contributions are then coefficient × standardised value.
    """

    woe: bool = False
    n_bins: int = 10
    c: float = 1.0
    categorical: Sequence[str] = ()
    _fr: FrequencyRatioModel | None = None
    _model: Any = None
    _mean: np.ndarray | None = None
    _std: np.ndarray | None = None
    _names: list[str] = field(default_factory=list)

    def _matrix(self, factors: Mapping[str, Any]) -> np.ndarray:
        arrays = _as_arrays(factors)
        if self._fr is not None:
            arrays = self._fr.contributions(arrays)
        cols = [np.asarray(arrays[n], dtype="float64") for n in self._names]
        x = np.stack(cols, axis=1)
        return np.where(np.isfinite(x), x, np.nan)

    def fit(self, factors: Mapping[str, Any], events: Any) -> LogisticModel:
        from sklearn.linear_model import LogisticRegression

        arrays = _as_arrays(factors)
        y = np.asarray(events).ravel().astype(bool)
        if y.all() or not y.any():
            raise ModelInputError("logistic regression needs both event and non-event units")
        self._names = list(arrays)
        if self.woe:
            self._fr = FrequencyRatioModel(self.n_bins, categorical=self.categorical).fit(arrays, y)
        x = self._matrix(arrays)
        self._mean = np.nanmean(x, axis=0)
        self._std = np.nanstd(x, axis=0) + 1e-12
        z = np.nan_to_num((x - self._mean) / self._std)
        self._model = LogisticRegression(C=self.c, max_iter=1000).fit(z, y)
        return self

    def contributions(self, factors: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self._model is None or self._mean is None or self._std is None:
            raise ModelInputError("model is not fitted")
        z = np.nan_to_num((self._matrix(factors) - self._mean) / self._std)
        coef = self._model.coef_[0]
        return {n: z[:, i] * coef[i] for i, n in enumerate(self._names)}

    def score(self, factors: Mapping[str, Any]) -> np.ndarray:
        """Probability of an event (0..1)."""
        if self._model is None or self._mean is None or self._std is None:
            raise ModelInputError("model is not fitted")
        z = np.nan_to_num((self._matrix(factors) - self._mean) / self._std)
        return np.asarray(self._model.predict_proba(z)[:, 1])


@dataclass
class EnsembleModel:
    """Mean of the training-set percentiles of a frequency-ratio and a logistic score.

    The bivariate FR model captures non-monotonic factor effects, the logistic model the joint
    ones; averaging their (training-calibrated) percentile ranks is more robust than either
    alone under spatial cross-validation. Explanations use the FR information values.
    """

    n_bins: int = 5
    alpha: float = 1.0
    categorical: Sequence[str] = ()
    fr: FrequencyRatioModel | None = None
    lr: LogisticModel | None = None
    _ref: list[np.ndarray] = field(default_factory=list)

    def fit(self, factors: Mapping[str, Any], events: Any) -> EnsembleModel:
        cat = self.categorical
        self.fr = FrequencyRatioModel(self.n_bins, self.alpha, cat).fit(factors, events)
        self.lr = LogisticModel(categorical=cat).fit(factors, events)
        self._ref = [np.sort(m.score(factors)) for m in (self.fr, self.lr)]
        return self

    def contributions(self, factors: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self.fr is None:
            raise ModelInputError("model is not fitted")
        return self.fr.contributions(factors)

    def score(self, factors: Mapping[str, Any]) -> np.ndarray:
        """Susceptibility 0..1: mean percentile of the two member scores."""
        if self.fr is None or self.lr is None:
            raise ModelInputError("model is not fitted")
        fr_ref, lr_ref = self._ref
        fr_pct = np.searchsorted(fr_ref, self.fr.score(factors), side="right") / fr_ref.size
        lr_pct = np.searchsorted(lr_ref, self.lr.score(factors), side="right") / lr_ref.size
        return np.asarray(0.5 * (fr_pct + lr_pct))


def site_density_per_km2(
    rows: np.ndarray,
    cols: np.ndarray,
    shape: tuple[int, int],
    pixel_area_m2: float,
    bandwidth_px: float = 5.0,
) -> np.ndarray:
    """Gaussian kernel density (sites per km²) of known hazard sites at pixel (row, col)."""
    counts = np.zeros(shape, dtype="float64")
    r = np.asarray(rows, dtype="int64")
    c = np.asarray(cols, dtype="int64")
    ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    np.add.at(counts, (r[ok], c[ok]), 1.0)
    dens = ndimage.gaussian_filter(counts, bandwidth_px, mode="constant")
    return (dens / pixel_area_m2 * 1e6).astype("float32")


def distance_to_lines_m(
    geometries: Sequence[Any], transform: Any, shape: tuple[int, int]
) -> np.ndarray:
    """Distance (m) from each pixel centre to the nearest pixel touched by the geometries
    (e.g. roads or rivers as shapely lines in the raster's projected CRS). All-NaN if none."""
    from rasterio.features import rasterize

    geoms = [g for g in geometries if g is not None and not g.is_empty]
    if not geoms:
        return np.full(shape, np.nan, dtype="float32")
    hit = rasterize(geoms, out_shape=shape, transform=transform, all_touched=True) > 0
    if not hit.any():
        return np.full(shape, np.nan, dtype="float32")
    res = (abs(transform.e), abs(transform.a))
    return np.asarray(ndimage.distance_transform_edt(~hit, sampling=res), dtype="float32")


def area_cuts(
    score: np.ndarray,
    shares: Sequence[float] = DEFAULT_AREA_SHARES,
    area: np.ndarray | None = None,
) -> np.ndarray:
    """Score thresholds that split the (area-weighted) units into classes of given shares."""
    s = np.asarray(score, dtype="float64").ravel()
    sh = np.asarray(shares, dtype="float64")
    if sh.size != 4 or np.any(sh <= 0) or not np.isclose(sh.sum(), 1.0):
        raise ModelInputError("area shares must be 4 positive numbers summing to 1")
    w = np.ones_like(s) if area is None else np.asarray(area, dtype="float64").ravel()
    ok = np.isfinite(s)
    order = np.argsort(s[ok])
    cum = np.cumsum(w[ok][order])
    cum /= cum[-1]
    targets = np.cumsum(sh)[:-1]
    pos = np.minimum(np.searchsorted(cum, targets - 1e-12), order.size - 1)
    return np.asarray(s[ok][order][pos])


def classify(score: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Susceptibility class 0..3 (low … very high): class k where cuts[k−1] < score ≤ cuts[k]."""
    return np.asarray(np.searchsorted(np.asarray(cuts), np.asarray(score), side="left"), "int8")


def factor_of_safety(
    slope_deg: np.ndarray | float,
    *,
    cohesion_kpa: float = 5.0,
    friction_deg: float = 35.0,
    unit_weight_kn_m3: float = 19.0,
    depth_m: float = 2.0,
    saturation: np.ndarray | float = 1.0,
    water_unit_weight_kn_m3: float = 9.81,
) -> np.ndarray:
    """Infinite-slope factor of safety (Skempton & DeLory 1957; e.g. Pack et al. 1998).

    ``FS = c' / (γ z cos²β tanβ) + (1 − m γw/γ) tanφ' / tanβ``

    Defaults describe a 2 m residual soil on weathered granite/volcanics typical of South China
    and Hong Kong (c' = 5 kPa, φ' = 35°, γ = 19 kN/m³) with a fully saturated profile (m = 1,
    water table at the surface, the rainstorm case). ``saturation`` m ∈ [0, 1] can be an array
    (e.g. from antecedent rain). Flat cells (β = 0) get ``inf``.
    """
    beta = np.radians(np.asarray(slope_deg, dtype="float64"))
    tan_b = np.tan(beta)
    m = np.clip(np.asarray(saturation, dtype="float64"), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cohesive = cohesion_kpa / (unit_weight_kn_m3 * depth_m * np.cos(beta) ** 2 * tan_b)
        frictional = (
            (1 - m * water_unit_weight_kn_m3 / unit_weight_kn_m3)
            * np.tan(np.radians(friction_deg))
            / tan_b
        )
        fs = cohesive + frictional
    return np.asarray(np.where(tan_b > 0, fs, np.inf))


def warning_level(
    susceptibility_class: np.ndarray,
    rain_class: np.ndarray,
    matrix: Sequence[Sequence[int]] = DEFAULT_LEVEL_MATRIX,
) -> np.ndarray:
    """Warning level 0..4 (none, blue, yellow, orange, red) from the 4×4 matrix."""
    m = np.asarray(matrix, dtype="int8")
    if m.shape != (4, 4) or m.min() < 0 or m.max() > 4:
        raise ModelInputError("level matrix must be 4×4 with values 0..4")
    s = np.clip(np.asarray(susceptibility_class, dtype="int64"), 0, 3)
    r = np.clip(np.asarray(rain_class, dtype="int64"), 0, 3)
    s, r = np.broadcast_arrays(s, r)
    return np.asarray(m[s, r])


@dataclass(frozen=True)
class DensityCalibration:
    """Monotone map from a susceptibility score to the density ratio: landslides per unit area
    of cells with that score ÷ the training area's base rate (isotonic regression, fitted on
    held-out inventory events so that it measures how new events fall, not how the training
    events were memorised).

    ``score_knots``/``ratio_knots`` are the isotonic steps (linear in between, clipped outside);
    ``base_rate_per_km2`` the inventory events per km² of the training area.
    """

    score_knots: np.ndarray
    ratio_knots: np.ndarray
    base_rate_per_km2: float

    def ratio(self, score: np.ndarray) -> np.ndarray:
        """Density ratio (dimensionless, 1 = the base rate) of each score; NaN stays NaN."""
        s = np.asarray(score, dtype="float64")
        out = np.interp(s, self.score_knots, self.ratio_knots)
        return np.asarray(np.where(np.isfinite(s), out, np.nan))

    def expected_events(self, score: np.ndarray, area_km2: np.ndarray) -> np.ndarray:
        """Expected inventory events in a unit of ``area_km2`` over the inventory's period."""
        return np.asarray(self.ratio(score) * self.base_rate_per_km2 * np.asarray(area_km2))


def calibrate_density_ratio(
    score: np.ndarray, events: np.ndarray, area_km2: np.ndarray, base_rate_per_km2: float
) -> DensityCalibration:
    """Isotonic regression of event density (events / km²) on score, weighted by area, as a
    ratio to the held-out base rate (Σ events / Σ area of the same rows).

    Args:
        score: susceptibility scores of (possibly stacked out-of-fold) units.
        events: held-out events per unit.
        area_km2: area of each unit (km²).
        base_rate_per_km2: the whole inventory's events per km² (reported, for p_event).
    """
    from sklearn.isotonic import IsotonicRegression

    s = np.asarray(score, dtype="float64").ravel()
    e = np.asarray(events, dtype="float64").ravel()
    a = np.asarray(area_km2, dtype="float64").ravel()
    ok = np.isfinite(s) & np.isfinite(e) & (a > 0)
    if not ok.any() or e[ok].sum() <= 0:
        raise ModelInputError("no held-out event to calibrate the susceptibility on")
    iso = IsotonicRegression(y_min=0.0, increasing=True, out_of_bounds="clip")
    iso.fit(s[ok], e[ok] / a[ok], sample_weight=a[ok])
    held_rate = e[ok].sum() / a[ok].sum()
    return DensityCalibration(
        np.asarray(iso.X_thresholds_, dtype="float64"),
        np.asarray(iso.y_thresholds_, dtype="float64") / held_rate,
        float(base_rate_per_km2),
    )


def ratio_class(ratio: np.ndarray, cuts: Sequence[float] = DEFAULT_RATIO_CUTS) -> np.ndarray:
    """Susceptibility class 0..3 from the density ratio: class k when ratio ≥ cuts[k−1]."""
    c = np.asarray(cuts, dtype="float64")
    if c.size != 3 or np.any(np.diff(c) <= 0) or c[0] <= 0:
        raise ModelInputError("ratio cuts must be 3 ascending positive numbers")
    r = np.nan_to_num(np.asarray(ratio, dtype="float64"), nan=0.0)
    return np.asarray(np.searchsorted(c, r, side="right"), dtype="int8")


def budget_high_cut(
    score: np.ndarray, s_class: np.ndarray, area: np.ndarray, max_share: float
) -> float | None:
    """The score from which classes high and very high may start so that they cover at most
    ``max_share`` of the total ``area`` (None: the classes already fit the budget).

    Cells of a class ≥ high with a lower score are to be demoted to moderate; cells with equal
    scores stay together, so the share kept is at most the budget.
    """
    a = np.asarray(area, dtype="float64")
    high = np.asarray(s_class) >= 2
    total = float(a.sum())
    if total <= 0 or float(a[high].sum()) <= max_share * total:
        return None
    s = np.asarray(score, dtype="float64")[high]
    values, inverse = np.unique(-s, return_inverse=True)  # descending scores
    kept = np.cumsum(np.bincount(inverse, weights=a[high], minlength=values.size))
    n_ok = int(np.searchsorted(kept, max_share * total, side="right"))
    # the lowest score still kept; above every score when not even the top one fits
    return float(-values[n_ok - 1]) if n_ok else float(np.inf)


def _col(v: Any, n: int) -> np.ndarray:
    return (
        np.broadcast_to(np.asarray(v).ravel(), (n,)) if np.ndim(v) == 0 else np.asarray(v).ravel()
    )


def explanations(
    *,
    levels: np.ndarray,
    susceptibility_class: np.ndarray,
    rain_class: np.ndarray,
    contributions: Mapping[str, np.ndarray],
    factor_values: Mapping[str, np.ndarray] | None = None,
    rain_metrics: Mapping[str, np.ndarray] | None = None,
    fs: np.ndarray | None = None,
    score: np.ndarray | None = None,
    density_ratio: np.ndarray | None = None,
    p_event: np.ndarray | None = None,
    ratio_cuts: Sequence[float] = DEFAULT_RATIO_CUTS,
    below_slope_floor: np.ndarray | None = None,
    slope_floor_deg: float | None = None,
    rain_probabilities: Mapping[str, np.ndarray] | None = None,
    rain_rules: Sequence[tuple[int, float]] | None = None,
    antecedent_known: np.ndarray | bool | None = None,
    top: int = 3,
) -> list[dict[str, Any]]:
    """JSON-ready explanation of every unit: level, classes, the calibrated density ratio and
    probability, the rule that fired (susceptibility → class, rain → class, matrix → level, or
    the slope floor), the top factors with contributions, rain metrics and the FS.

    The basis of every warning's after-action review: each number the level came from is here.
    ``antecedent_known`` (per unit or one flag) False marks the rain class as taken from the
    R24-only curves of an unknown antecedent, in the rule and as ``rain_antecedent``.
    """
    lv = np.asarray(levels).ravel().astype("int64")
    n = lv.size
    sc = _col(susceptibility_class, n).astype("int64").tolist()
    rc = _col(rain_class, n).astype("int64").tolist()
    names = list(contributions)
    if names:
        contrib = np.column_stack([_col(contributions[k], n).astype("float64") for k in names])
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        rows = np.arange(n)[:, None]
        top_c = np.round(contrib[rows, order], 4).tolist()
        vals = factor_values or {}
        vmat = np.column_stack(
            [_col(vals[k], n).astype("float64") if k in vals else np.full(n, np.nan) for k in names]
        )
        top_v = np.round(vmat[rows, order], 4).tolist()
        top_i = order.tolist()
    else:
        top_c = top_v = top_i = [[] for _ in range(n)]

    def col_list(a: Any, digits: int) -> list[Any] | None:
        if a is None:
            return None
        x = np.round(_col(a, n).astype("float64"), digits)
        return [None if not np.isfinite(v) else v for v in x.tolist()]

    ratio = col_list(density_ratio, 3)
    p_ev = col_list(p_event, 4)
    sco = col_list(score, 4)
    floor = (
        _col(below_slope_floor, n).astype(bool).tolist() if below_slope_floor is not None else None
    )
    slope = col_list((factor_values or {}).get("slope_deg"), 1)
    fs_l = col_list(fs, 3) if fs is not None else None
    fs_raw = _col(fs, n).astype("float64") if fs is not None else None
    rain_keys = list(rain_metrics or {})
    rain_cols = [
        (
            k,
            _col(rain_metrics[k], n).astype("int64").tolist()
            if k == "cma_signal"
            else np.round(_col(rain_metrics[k], n).astype("float64"), 2).tolist(),
        )
        for k in rain_keys
        if rain_metrics is not None
    ]
    probs = {
        k: np.round(_col(v, n).astype("float64"), 4).tolist()
        for k, v in (rain_probabilities or {}).items()
    }
    cuts = [float(c) for c in ratio_cuts]
    known = None if antecedent_known is None else _col(antecedent_known, n).astype(bool).tolist()
    out: list[dict[str, Any]] = []
    for i in range(n):
        s, r, lvl = sc[i], rc[i], int(lv[i])
        s_name = SUSCEPTIBILITY_NAMES[max(s, 0)]
        if floor is not None and floor[i]:
            s_rule = (
                f"mean slope {slope[i] if slope else float('nan'):.1f}° < slope floor "
                f"{slope_floor_deg:g}° -> no landslide level"
            )
        elif ratio is not None and ratio[i] is not None:
            lo = [0.0, *cuts][max(s, 0)]
            hi = [*cuts, math.inf][max(s, 0)]
            s_rule = f"density ratio {ratio[i]:.2f}x base rate in [{lo:g}, {hi:g}) -> {s_name}"
        else:
            s_rule = f"susceptibility class {s_name}"
        if rain_rules is not None and probs:
            parts = [
                f"P(>={k} incidents)={probs[f'p_ge_{k}'][i]:.2f}"
                + (">=" if probs[f"p_ge_{k}"][i] >= p - 1e-12 else "<")
                + f"{p:g}"
                for k, p in rain_rules
                if f"p_ge_{k}" in probs
            ]
            r_rule = f"{'; '.join(parts)} -> rain class {r}"
        else:
            r_rule = f"rain class {r}"
        if known is not None and not known[i]:
            r_rule = f"antecedent rain unknown, R24-only curves: {r_rule}"
        ex: dict[str, Any] = {
            "model": "landslide",
            "level": lvl,
            "level_name": LEVEL_NAMES[lvl],
            "susceptibility_class": s,
            "susceptibility_name": s_name,
            "rain_class": r,
            "rule": f"{s_rule}; {r_rule}; matrix[{s_name}][rain_class={r}] -> {LEVEL_NAMES[lvl]}"
            if not (floor is not None and floor[i])
            else f"{s_rule}; {r_rule}",
            "top_factors": [
                {"factor": names[j], "contribution": c, "value": None if v != v else v}
                for j, c, v in zip(top_i[i], top_c[i], top_v[i], strict=True)
            ],
            "rain": {k: v[i] for k, v in rain_cols},
        }
        if sco is not None:
            ex["susceptibility_score"] = sco[i]
        if ratio is not None:
            ex["density_ratio"] = ratio[i]
        if p_ev is not None:
            ex["p_event"] = p_ev[i]
        if floor is not None:
            ex["below_slope_floor"] = floor[i]
        if probs:
            ex["rain_probabilities"] = {k: v[i] for k, v in probs.items()}
        if known is not None:
            ex["rain_antecedent"] = "known" if known[i] else "unknown"
        if fs_l is not None and fs_raw is not None:
            ex["factor_of_safety"] = fs_l[i]
            ex["fs_below_1"] = bool(fs_raw[i] < 1.0)
        out.append(ex)
    return out


def explain(i: int, top: int = 3, **arrays: Any) -> dict[str, Any]:
    """JSON-ready explanation of unit ``i`` (keyword arrays as for :func:`explanations`)."""
    sliced: dict[str, Any] = {}
    for key, value in arrays.items():
        if isinstance(value, Mapping):
            sliced[key] = {k: np.asarray(v).ravel()[i : i + 1] for k, v in value.items()}
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and value.size > 1:
            sliced[key] = value.ravel()[i : i + 1]
        else:
            sliced[key] = value
    return explanations(top=top, **sliced)[0]
