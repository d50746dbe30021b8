"""Rainfall thresholds calibrated on real data: landslides per day against 24 h and antecedent rain.

The Hong Kong Landslip Warning (GEO) and China's geological-hazard meteorological warning
(地质灾害气象风险预警) both work from a rainfall–landslide relation fitted on the local record:
how many landslides a day of a given rain brings, and with what probability. Here the number
of landslide incidents reported on a day, N, is related to the
day's rain R24 (mm) and the effective antecedent rain of the ten days before,
Re = Σᵢ₌₁¹⁰ Kⁱ·Rᵢ (K = 0.8, mm), as one logistic curve per rain class:

    P(N ≥ k | R24, Re) = logistic(b0 + b1·ln(1 + R24) + b2·Re/100)

fitted by maximum likelihood. A rain class c ∈ {1, 2, 3} is reached when P(N ≥ kₓ) ≥ pₓ for
the class's rule (k, p), see :data:`DEFAULT_CLASS_RULES`. (A negative-binomial count model was
tried first: the storm-day clustering makes it so over-dispersed, α ≈ 2.4, that P(N ≥ 10)
never reaches 0.5 at any rain; direct logistic curves per k are calibrated where it matters.)

Data (read in place, ``../shared/data/hongkong``): CEDD landslide incidents 1984–2007 (date =
FAILDATE, else CALLDATE, dd/mm/yyyy) and the HKO daily rainfall at the Observatory HQ
(two header lines, ``***`` = no data, ``Trace`` < 0.05 mm).

```python
from risk_models import calibration
days = calibration.hongkong_days(data_dir)                 # one row per day: n, r24, re
fit = calibration.fit_rain_model(days[days.index.year <= 2001])
fit.rain_class(r24_mm, re_mm)                             # 0..3
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from risk_models.errors import ModelInputError

#: (k incidents, probability) per rain class 1, 2, 3: class c when P(N ≥ k) ≥ p.
#: 1 — a few (≥ 3) incidents in the territory are more likely than not;
#: 2 — a "landslide day" of ≥ 10 incidents is more likely than not (the scale at which the
#:     GEO Landslip Warning is raised);
#: 3 — a major landslide day of ≥ 50 incidents is more likely than not.
DEFAULT_CLASS_RULES: tuple[tuple[int, float], ...] = ((3, 0.25), (10, 0.25), (50, 0.25))
#: Daily decay coefficient of the effective antecedent rain (as in :mod:`risk_models.rainfall`).
ANTECEDENT_K = 0.8
ANTECEDENT_DAYS = 10

HK_INCIDENTS = "landslide_incidents_1984_2007.csv"
HKO_DAILY = "hko_daily_total_rainfall_1884_2022.csv"


#: Forms of the rain model: which antecedent inputs its curves take (see :class:`RainModel`).
#: ``r24`` sees the day's rain alone: the curves for a window whose antecedent rain is not known.
FORM_ONE_DAY = "r24_re"
FORM_TWO_DAY = "r24_prev_re2"
FORM_R24 = "r24"
MODEL_FORMS = (FORM_ONE_DAY, FORM_TWO_DAY, FORM_R24)


def antecedent_inputs(
    daily_mm: Any, form: str, k: float = ANTECEDENT_K
) -> tuple[np.ndarray, np.ndarray]:
    """``(re_mm, prev_mm)`` a rain model of ``form`` takes from the daily totals before the
    window (mm, most recent last, along the last axis; ten days).

    ``r24_re``: Re = Σᵢ₌₁¹⁰ Kⁱ·Rᵢ over the ten days, no day-before term. ``r24_prev_re2``:
    R_prev = the day before the window, Re2 = Σᵢ₌₁⁹ Kⁱ·R₍ᵢ₊₁₎ over the nine days before that.
    ``r24``: neither (zeros).
    """
    from risk_models.rainfall import effective_antecedent_mm

    arr = np.asarray(daily_mm, dtype="float64")
    if form == FORM_R24:
        zero = np.zeros(arr.shape[:-1])
        return zero, zero.copy()
    if form == FORM_ONE_DAY:
        re = effective_antecedent_mm(arr, k, ANTECEDENT_DAYS)
        return np.asarray(re), np.zeros(np.shape(re))
    if form == FORM_TWO_DAY:
        prev = arr[..., -1] if arr.shape[-1] else np.zeros(arr.shape[:-1])
        before = arr[..., :-1]
        re2 = (
            effective_antecedent_mm(before, k, ANTECEDENT_DAYS - 1)
            if before.shape[-1]
            else np.zeros(arr.shape[:-1])
        )
        return np.asarray(re2), np.asarray(prev)
    raise ModelInputError(f"unknown rain model form {form!r}; use one of {', '.join(MODEL_FORMS)}")


@dataclass(frozen=True)
class ClassCurve:
    """P(N ≥ k) = logistic(intercept + coef_ln_r24·ln(1 + R24) + coef_re_per_100mm·Re/100
    + coef_prev_per_100mm·R_prev/100) and the probability ``p`` at which its class starts."""

    k: int
    p: float
    intercept: float
    coef_ln_r24: float
    coef_re_per_100mm: float
    coef_prev_per_100mm: float = 0.0

    def prob(self, r24_mm: Any, re_mm: Any, prev_mm: Any = 0.0) -> np.ndarray:
        r = np.maximum(np.asarray(r24_mm, dtype="float64"), 0.0)
        e = np.maximum(np.asarray(re_mm, dtype="float64"), 0.0)
        q = np.maximum(np.asarray(prev_mm, dtype="float64"), 0.0)
        eta = (
            self.intercept
            + self.coef_ln_r24 * np.log1p(r)
            + self.coef_re_per_100mm * e / 100
            + self.coef_prev_per_100mm * q / 100
        )
        return np.asarray(special.expit(eta))

    def r24_threshold_mm(self, re_mm: float = 0.0, prev_mm: float = 0.0) -> float:
        """24 h rain (mm) at which P(N ≥ k) reaches ``p`` for a given Re and R_prev."""
        logit = math.log(self.p / (1.0 - self.p)) if self.p < 1 else math.inf
        rest = self.coef_re_per_100mm * re_mm / 100 + self.coef_prev_per_100mm * prev_mm / 100
        x = (logit - self.intercept - rest) / self.coef_ln_r24
        return max(math.expm1(x), 0.0) if x < 700 else math.inf


@dataclass(frozen=True)
class RainModel:
    """Rain classes 1..3 from three logistic curves P(N ≥ kₓ | rain) and probabilities pₓ.

    N is the number of landslide incidents reported in the territory on the day and R24 the
    day's rain (mm). ``form`` says what else the curves see: ``r24_prev_re2`` (the default
    since it was chosen out of sample, docs/warnings.md) the day before, R_prev, with its own
    coefficient and Re2 = Σ 0.8ⁱ·Rᵢ over the nine days before that; ``r24_re`` (the
    one-day form) only Re = Σ 0.8ⁱ·Rᵢ over the ten days before the day; ``r24`` R24 alone.

    ``no_antecedent`` holds the ``r24`` curves fitted on the same days: they give the class
    of a unit whose antecedent inputs are unknown (NaN). Reading an unknown antecedent as a
    dry fortnight would need 180 mm in a day for class 2 instead of the 93 mm R24 alone
    gives; on 2002–2007 it detects 4 of 16 landslide days instead of 11 (docs/warnings.md).
    Without these curves an unknown antecedent counts as 0 mm.
    """

    curves: tuple[ClassCurve, ClassCurve, ClassCurve]
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    form: str = FORM_ONE_DAY
    no_antecedent: tuple[ClassCurve, ClassCurve, ClassCurve] | None = None

    def inputs(self, antecedent_daily_mm: Any, k: float = ANTECEDENT_K) -> tuple[Any, Any]:
        """``(re_mm, prev_mm)`` of this model's form from the ten days before the window."""
        return antecedent_inputs(antecedent_daily_mm, self.form, k)

    def _probs(self, r24_mm: Any, re_mm: Any, prev_mm: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """(P(N ≥ k), p) per class: the form's curves where the antecedent inputs are known,
        the ``no_antecedent`` curves where either is NaN."""
        re = np.asarray(re_mm, dtype="float64")
        prev = np.asarray(prev_mm, dtype="float64")
        unknown = ~(np.isfinite(re) & np.isfinite(prev))
        re0, prev0 = np.nan_to_num(re, nan=0.0), np.nan_to_num(prev, nan=0.0)
        out = []
        for c, curve in enumerate(self.curves):
            prob = curve.prob(r24_mm, re0, prev0)
            p = np.asarray(curve.p)
            if self.no_antecedent is not None and unknown.any():
                alt = self.no_antecedent[c]
                prob = np.where(unknown, alt.prob(r24_mm, 0.0, 0.0), prob)
                p = np.where(unknown, alt.p, curve.p)
            out.append((np.asarray(prob), np.asarray(p)))
        return out

    def rain_class(self, r24_mm: Any, re_mm: Any, prev_mm: Any = 0.0) -> np.ndarray:
        """Rain class 0..3: the highest class whose curve reaches its probability (``re_mm``
        and ``prev_mm`` as :meth:`inputs` gives them; NaN where they are unknown)."""
        shape = np.broadcast(np.asarray(r24_mm), np.asarray(re_mm), np.asarray(prev_mm)).shape
        out = np.zeros(shape, dtype="int8")
        for c, (prob, p) in enumerate(self._probs(r24_mm, re_mm, prev_mm), start=1):
            out[np.broadcast_to(prob >= p - 1e-12, shape)] = c
        return out

    def probabilities(self, r24_mm: Any, re_mm: Any, prev_mm: Any = 0.0) -> dict[str, np.ndarray]:
        """``{"p_ge_<k>": P(N ≥ k)}`` of the three class curves."""
        probs = self._probs(r24_mm, re_mm, prev_mm)
        return {f"p_ge_{c.k}": pr for c, (pr, _) in zip(self.curves, probs, strict=True)}

    def without_antecedent(self) -> RainModel:
        """The ``r24`` model of the ``no_antecedent`` curves (ValueError without them)."""
        if self.form == FORM_R24:
            return self
        if self.no_antecedent is None:
            raise ModelInputError("this rain model has no curves for an unknown antecedent")
        return RainModel(self.no_antecedent, {**self.info, "form": FORM_R24}, FORM_R24)

    def day_inputs(self, days: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(r24, re, prev)`` of this model's form from a :func:`daily_table`."""
        r24 = days["r24_mm"].to_numpy("float64")
        if self.form == FORM_TWO_DAY:
            return r24, days["re2_mm"].to_numpy("float64"), days["r_prev_mm"].to_numpy("float64")
        if self.form == FORM_R24:
            return r24, np.zeros(len(days)), np.zeros(len(days))
        return r24, days["re_mm"].to_numpy("float64"), np.zeros(len(days))

    def r24_threshold_mm(self, cls: int, re_mm: float = 0.0, prev_mm: float = 0.0) -> float:
        """The 24 h rain (mm) at which class ``cls`` starts for a given Re and R_prev."""
        return self.curves[cls - 1].r24_threshold_mm(re_mm, prev_mm)

    def as_params(self) -> dict[str, Any]:
        """The ``rain_model`` entry of :class:`~risk_models.params.PipelineParams`."""
        out: dict[str, Any] = {
            "form": self.form,
            "classes": [_curve_params(c, self.form) for c in self.curves],
        }
        if self.no_antecedent is not None:
            out["classes_no_antecedent"] = [_curve_params(c, FORM_R24) for c in self.no_antecedent]
        return out

    @classmethod
    def from_params(cls, d: Any) -> RainModel:
        """Inverse of :meth:`as_params` (raises :class:`ModelInputError` on a bad entry); a
        model without ``form`` is the one-day form."""
        keys = {"classes", "form", "classes_no_antecedent"}
        if not isinstance(d, dict) or "classes" not in d or not set(d) <= keys:
            raise ModelInputError(
                'rain_model must be {"form": …, "classes": [3 class curves], '
                '"classes_no_antecedent": [3 R24-only curves, optional]}'
            )
        form = d.get("form", FORM_ONE_DAY)
        if form not in MODEL_FORMS:
            raise ModelInputError(f"rain_model form must be one of {', '.join(MODEL_FORMS)}")
        curves = _curves_from(d["classes"], form)
        alt = d.get("classes_no_antecedent")
        return cls(
            curves, form=form, no_antecedent=None if alt is None else _curves_from(alt, FORM_R24)
        )


def _curve_params(c: ClassCurve, form: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "k": c.k,
        "p": round(c.p, 4),
        "intercept": round(c.intercept, 4),
        "coef_ln_r24": round(c.coef_ln_r24, 4),
    }
    if form != FORM_R24:
        row["coef_re_per_100mm"] = round(c.coef_re_per_100mm, 4)
    if form == FORM_TWO_DAY:
        row["coef_prev_per_100mm"] = round(c.coef_prev_per_100mm, 4)
    return row


def _curves_from(rows: Any, form: str) -> tuple[ClassCurve, ClassCurve, ClassCurve]:
    """Three checked class curves of ``form`` from their JSON rows."""
    try:
        curves = tuple(
            ClassCurve(
                int(c["k"]),
                float(c["p"]),
                float(c["intercept"]),
                float(c["coef_ln_r24"]),
                float(c["coef_re_per_100mm"]) if form != FORM_R24 else 0.0,
                float(c["coef_prev_per_100mm"]) if form == FORM_TWO_DAY else 0.0,
            )
            for c in rows
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelInputError(f"rain_model: {exc}") from None
    if len(curves) != 3:
        raise ModelInputError("rain_model needs 3 class curves")
    for c in curves:
        vals = (c.intercept, c.coef_ln_r24, c.coef_re_per_100mm, c.coef_prev_per_100mm)
        if not all(math.isfinite(v) for v in vals) or c.coef_ln_r24 <= 0:
            raise ModelInputError("rain_model curves need finite coefficients, coef_ln_r24 > 0")
        if c.k < 1 or not 0 < c.p < 1 or c.coef_re_per_100mm < 0:
            raise ModelInputError("rain_model curves need k ≥ 1, 0 < p < 1, coef_re ≥ 0")
        if c.coef_prev_per_100mm < 0:
            raise ModelInputError("rain_model curves need coef_prev ≥ 0")
    return (curves[0], curves[1], curves[2])


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Maximum-likelihood logistic regression with every slope ≥ 0 (more rain never lowers
    the chance of landslides); ``(intercept, slopes)``. Unpenalised: where the unconstrained
    MLE has no negative slope, it is that MLE."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype="float64")
    t = np.asarray(y, dtype="float64")
    design = np.column_stack([np.ones(len(x)), x])

    def nll(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ beta
        # log(1 + e^eta) − t·eta, and its gradient
        loss = float(np.sum(np.logaddexp(0.0, eta) - t * eta))
        grad = design.T @ (special.expit(eta) - t)
        return loss, grad

    start = np.zeros(design.shape[1])
    rate = min(max(t.mean(), 1e-6), 1 - 1e-6)
    start[0] = math.log(rate / (1 - rate))
    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    res = minimize(nll, start, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 10_000, "ftol": 1e-14, "gtol": 1e-9})  # fmt: skip
    return float(res.x[0]), np.asarray(res.x[1:])


def fit_rain_model(
    days: pd.DataFrame,
    rules: Sequence[tuple[int, float]] = DEFAULT_CLASS_RULES,
    form: str = FORM_TWO_DAY,
) -> RainModel:
    """Maximum-likelihood logistic fit of P(N ≥ k) for each class rule (slopes ≥ 0).

    ``r24_prev_re2`` (default): on ln(1 + R24), R_prev/100 and Re2/100 — chosen over the
    one-day form and the R48 forms on an inner split of the Hong Kong record (fit
    1984–1995, log loss on 1996–2001; :func:`compare_rain_forms`). ``r24_re``: on
    ln(1 + R24) and Re/100. ``r24``: on ln(1 + R24) alone. The ``r24`` curves are also
    fitted on the same days as the model's ``no_antecedent`` curves (the classes of a unit
    whose antecedent rain is unknown).

    Args:
        days: :func:`daily_table` (columns ``n``, ``r24_mm``, ``re_mm``, ``r_prev_mm``,
            ``re2_mm``; the one-day form needs only the first three, ``r24`` the first two).
        rules: (k, p) of rain classes 1..3.
        form: ``r24_prev_re2``, ``r24_re`` or ``r24``.
    """
    if form not in MODEL_FORMS:
        raise ModelInputError(
            f"unknown rain model form {form!r}; use one of {', '.join(MODEL_FORMS)}"
        )
    cols = {
        FORM_ONE_DAY: ["n", "r24_mm", "re_mm"],
        FORM_TWO_DAY: ["n", "r24_mm", "r_prev_mm", "re2_mm"],
        FORM_R24: ["n", "r24_mm"],
    }[form]
    missing = [c for c in cols if c not in days.columns]
    if missing:
        raise ModelInputError(f"the day table has no column {', '.join(missing)}")
    d = days.dropna(subset=cols)
    if len(rules) != 3:
        raise ModelInputError("three class rules (k, p) are needed")
    x = form_matrix(d, form)
    x24 = form_matrix(d, FORM_R24)
    curves, alone = [], []
    for k, p in rules:
        y = d["n"].to_numpy() >= k
        if y.sum() < 3 or (~y).sum() < 3:
            raise ModelInputError(f"too few days with and without ≥ {k} incidents to fit")
        b0, b = fit_logistic(x, y)
        # form_matrix columns: one-day (r24, re); two-day (r24, prev, re2); r24 (r24)
        if form == FORM_ONE_DAY:
            coef_re, coef_prev = b[1], 0.0
        elif form == FORM_TWO_DAY:
            coef_re, coef_prev = b[2], b[1]
        else:
            coef_re, coef_prev = 0.0, 0.0
        curves.append(
            ClassCurve(int(k), float(p), b0, float(b[0]), float(coef_re), float(coef_prev))
        )
        a0, a = fit_logistic(x24, y)
        alone.append(ClassCurve(int(k), float(p), a0, float(a[0]), 0.0, 0.0))
    info = {
        "form": form,
        "n_days": len(d),
        "n_incidents": int(d["n"].sum()),
        "days_with_at_least_k": {str(k): int((d["n"] >= k).sum()) for k, _ in rules},
        "period": [str(d.index.min().date()), str(d.index.max().date())]
        if isinstance(d.index, pd.DatetimeIndex) and len(d)
        else None,
    }
    no_ante = None if form == FORM_R24 else (alone[0], alone[1], alone[2])
    return RainModel((curves[0], curves[1], curves[2]), info, form, no_ante)


def read_hko_daily(path: str | Path) -> pd.Series:
    """HKO daily rainfall (mm) indexed by date; ``Trace`` → 0, ``***`` and bad dates dropped."""
    raw = pd.read_csv(path, skiprows=3, header=None, names=["y", "m", "d", "v", "q"], dtype=str)
    y = pd.to_numeric(raw["y"], errors="coerce")
    m = pd.to_numeric(raw["m"], errors="coerce")
    dd = pd.to_numeric(raw["d"], errors="coerce")
    ok = y.notna() & m.notna() & dd.notna()
    raw = raw[ok]
    date = pd.to_datetime(
        {"year": y[ok].astype(int), "month": m[ok].astype(int), "day": dd[ok].astype(int)},
        errors="coerce",
    )
    val = raw["v"].str.strip().replace({"Trace": "0", "微量": "0"})
    mm = pd.to_numeric(val, errors="coerce")
    s = pd.Series(mm.to_numpy(), index=pd.DatetimeIndex(date), name="rain_mm")
    s = s[np.asarray(s.index.notna()) & s.notna().to_numpy()]
    return s[~s.index.duplicated()].sort_index()


def read_hk_incidents(path: str | Path) -> pd.DataFrame:
    """CEDD incidents with ``date`` (FAILDATE, else CALLDATE), ``natural`` (bool), EASTING,
    NORTHING (EPSG:2326), lon, lat; rows without a valid date are dropped."""
    inc = pd.read_csv(path)
    fail = pd.to_datetime(inc["FAILDATE"], format="%d/%m/%Y", errors="coerce")
    call = pd.to_datetime(inc["CALLDATE"], format="%d/%m/%Y", errors="coerce")
    out = pd.DataFrame(
        {
            "date": fail.fillna(call).dt.normalize(),
            "natural": inc["FEATTYPE"].astype(str).str.strip().str.lower().eq("natural hillside"),
            "feattype": inc["FEATTYPE"].astype(str),
            "easting": pd.to_numeric(inc["EASTING"], errors="coerce"),
            "northing": pd.to_numeric(inc["NORTHING"], errors="coerce"),
            "lon": pd.to_numeric(inc["lon"], errors="coerce"),
            "lat": pd.to_numeric(inc["lat"], errors="coerce"),
        }
    )
    return out[out["date"].notna()].reset_index(drop=True)


def antecedent_re_mm(rain: pd.Series, k: float = ANTECEDENT_K) -> pd.Series:
    """Re of each day from the ten days before it (missing days count as 0 mm)."""
    full = rain.asfreq("D").fillna(0.0)
    re = sum(k**i * full.shift(i, fill_value=0.0) for i in range(1, ANTECEDENT_DAYS + 1))
    return pd.Series(np.asarray(re, dtype="float64"), index=full.index).fillna(0.0)


def rain_table(rain: pd.Series, counts: pd.Series, start: str, end: str) -> pd.DataFrame:
    """One row per day of [start, end] with rain: ``n`` (incidents that day), ``r24_mm``,
    ``re_mm`` (Σ 0.8ⁱ·Rᵢ, ten days before the day), ``r_prev_mm`` (the day before) and
    ``re2_mm`` (Σ 0.8ⁱ·Rᵢ over the nine days before the day before) — the inputs
    :func:`antecedent_inputs` takes from ten antecedent days. Missing days count as 0 mm."""
    full = rain.asfreq("D").fillna(0.0)
    re = antecedent_re_mm(rain)
    re2 = sum(
        ANTECEDENT_K**i * full.shift(i + 1, fill_value=0.0) for i in range(1, ANTECEDENT_DAYS)
    )
    idx = pd.date_range(start, end, freq="D")
    out = pd.DataFrame(
        {
            "n": counts.reindex(idx, fill_value=0).to_numpy("float64"),
            "r24_mm": rain.reindex(idx).to_numpy("float64"),
            "re_mm": re.reindex(idx).to_numpy("float64"),
            "r_prev_mm": full.shift(1, fill_value=0.0).reindex(idx).to_numpy("float64"),
            "re2_mm": pd.Series(np.asarray(re2), index=full.index).reindex(idx).to_numpy("float64"),
        },
        index=idx,
    )
    out = out[out["r24_mm"].notna()]
    return out.fillna({"re_mm": 0.0, "r_prev_mm": 0.0, "re2_mm": 0.0})


def daily_table(
    incidents: pd.DataFrame,
    rain: pd.Series,
    start: str = "1984-01-01",
    end: str = "2007-12-31",
    natural_only: bool = False,
) -> pd.DataFrame:
    """:func:`rain_table` of the incidents (natural-hillside ones with ``natural_only``)."""
    inc = incidents[incidents["natural"]] if natural_only else incidents
    return rain_table(rain, inc["date"].value_counts(), start, end)


def hongkong_days(data_dir: str | Path, natural_only: bool = False) -> pd.DataFrame:
    """:func:`daily_table` of the Hong Kong incidents and the HKO HQ daily rain, 1984–2007."""
    hk = Path(data_dir) / "hongkong"
    return daily_table(
        read_hk_incidents(hk / HK_INCIDENTS),
        read_hko_daily(hk / HKO_DAILY),
        natural_only=natural_only,
    )


def day_skill(model: RainModel, days: pd.DataFrame, k: int = 10, cls: int = 2) -> dict[str, float]:
    """Skill of "rain class ≥ ``cls``" as an alarm for days with ≥ ``k`` incidents.

    Returns the number of such days, the share detected (POD), alarm days, false-alarm days
    (alarm, < k incidents) per year and the share of alarms that were false (FAR).
    """
    alarm = model.rain_class(*model.day_inputs(days)) >= cls
    event = days["n"].to_numpy() >= k
    years = len(days) / 365.25
    n_ev = int(event.sum())
    hits = int((alarm & event).sum())
    false = int((alarm & ~event).sum())
    return {
        "event_days": float(n_ev),
        "pod": hits / n_ev if n_ev else math.nan,
        "alarm_days": float(alarm.sum()),
        "false_alarm_days_per_year": false / years if years else math.nan,
        "far": false / max(int(alarm.sum()), 1),
        "years": years,
    }


def calibrate_hongkong(
    data_dir: str | Path, fit_to_year: int = 2001, natural_only: bool = False
) -> dict[str, Any]:
    """Fit on 1984..``fit_to_year``, test on the years after (to 2007): the JSON report of
    ``onemap risk calibrate-rain`` (coefficients, thresholds at several Re, skill)."""
    days = hongkong_days(data_dir, natural_only)
    year = pd.DatetimeIndex(days.index).year
    train = days[year <= fit_to_year]
    test = days[year > fit_to_year]
    model = fit_rain_model(train)
    return report(model, train, test)


def report(model: RainModel, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """JSON-ready fit, R24 thresholds per class at Re = 0/50/100/200 mm (Re2 for the two-day
    form, with a dry day before; and, for it, after a day of 50 / 100 mm), and day skill."""
    thr = {
        f"re_{re:g}mm": [round(model.r24_threshold_mm(c, re), 1) for c in (1, 2, 3)]
        for re in (0.0, 50.0, 100.0, 200.0)
    }
    out: dict[str, Any] = {
        "rain_model": model.as_params(),
        "fit": model.info,
        "r24_thresholds_mm_by_class": thr,
    }
    if model.form == FORM_TWO_DAY:
        out["r24_thresholds_mm_by_class_after_a_wet_day"] = {
            f"prev_{q:g}mm_re2_{re:g}mm": [
                round(model.r24_threshold_mm(c, re, q), 1) for c in (1, 2, 3)
            ]
            for q in (50.0, 100.0)
            for re in (0.0, 100.0)
        }
    out["skill_train_ge10"] = day_skill(model, train)
    out["skill_test_ge10"] = day_skill(model, test) if len(test) else None
    if model.no_antecedent is not None:
        alone = model.without_antecedent()
        out["r24_thresholds_mm_antecedent_unknown"] = [
            round(alone.r24_threshold_mm(c), 1) for c in (1, 2, 3)
        ]
        # the same days classed as if their antecedent were unknown, and as if it were dry
        out["skill_test_ge10_antecedent_unknown"] = day_skill(alone, test) if len(test) else None
        dry = test.assign(re_mm=0.0, re2_mm=0.0, r_prev_mm=0.0)
        out["skill_test_ge10_antecedent_read_as_dry"] = day_skill(model, dry) if len(test) else None
    return out


# --- two-day rain: the forms compared with the default ----------------------------------------

#: Rain variables of the forms :func:`compare_rain_forms` fits, with the default first. R24 is
#: the day's rain, R_prev the day before, R48 = R24 + R_prev (the two-day rain of China's
#: 1–3 day totals and the GEO's rolling windows), Re the effective antecedent rain of the ten
#: days before the day and Re2 that of the nine days before the two days (:func:`rain_table`).
RAIN_FORMS: dict[str, str] = {
    "r24_re": "ln(1 + R24), Re/100",
    "r24": "ln(1 + R24)",
    "r48_re2": "ln(1 + R48), Re2/100",
    "r24_r48_re2": "ln(1 + R24), ln(1 + R48), Re2/100",
    "r24_prev_re2": "ln(1 + R24), R_prev/100, Re2/100",
}


def form_matrix(days: pd.DataFrame, form: str) -> np.ndarray:
    """The regressors of one of :data:`RAIN_FORMS` for the rows of :func:`rain_table`."""
    r24 = np.log1p(days["r24_mm"].to_numpy("float64"))
    if form == FORM_R24:
        return r24[:, None]
    if form == "r24_re":
        return np.column_stack([r24, days["re_mm"].to_numpy("float64") / 100.0])
    if form not in RAIN_FORMS:
        raise ModelInputError(f"unknown rain form {form!r}; use one of {', '.join(RAIN_FORMS)}")
    prev = days["r_prev_mm"].to_numpy("float64")
    r48 = np.log1p(days["r24_mm"].to_numpy("float64") + prev)
    re2 = days["re2_mm"].to_numpy("float64") / 100.0
    if form == "r48_re2":
        return np.column_stack([r48, re2])
    if form == "r24_r48_re2":
        return np.column_stack([r24, r48, re2])
    return np.column_stack([r24, prev / 100.0, re2])


@dataclass(frozen=True)
class _Fitted:
    intercept: float
    slopes: np.ndarray

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = special.expit(self.intercept + np.asarray(x) @ self.slopes)
        return np.column_stack([1 - p, p])


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def compare_rain_forms(
    days: pd.DataFrame,
    *,
    fit_to_year: int = 2001,
    inner_fit_to_year: int = 1995,
    ks: Sequence[int] = (3, 10, 50),
    alarm_k: int = 10,
    alarm_p: float = DEFAULT_CLASS_RULES[1][1],
    days_of_interest: Sequence[str] = (),
    rules: Sequence[tuple[int, float]] = DEFAULT_CLASS_RULES,
    block_days: int = 30,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit each of :data:`RAIN_FORMS` by maximum likelihood and score it out of sample.

    A form is chosen on the **inner** split (fit up to ``inner_fit_to_year``, log loss on the
    years up to ``fit_to_year``); the test years after ``fit_to_year`` are reported, not used
    to choose. For each form: log loss ×1000 per k (inner and test), the test skill of the
    alarm P(N ≥ ``alarm_k``) ≥ ``alarm_p``, P(N ≥ ``alarm_k``) on ``days_of_interest``
    (ISO dates) and what lowering the alarm probability until those days are caught would
    cost on the test years (POD and false-alarm days a year), and the rain class (0..3, the
    class ``rules`` fitted up to ``fit_to_year``) those days get. ``inner_gain_vs_r24_re``
    is each form's inner log-loss gain per day over the one-day form (× 1000) with a 95 %
    interval from a bootstrap of ``block_days``-day blocks of the inner validation days.

    Args:
        days: :func:`rain_table`.
    """
    year = pd.DatetimeIndex(days.index).year
    parts = {
        "inner_fit": days[year <= inner_fit_to_year],
        "inner_val": days[(year > inner_fit_to_year) & (year <= fit_to_year)],
        "fit": days[year <= fit_to_year],
        "test": days[year > fit_to_year],
    }
    for name, part in parts.items():
        if len(part) == 0:
            raise ModelInputError(f"no day in the {name} period")
    wanted = days.loc[days.index.isin(pd.DatetimeIndex(list(days_of_interest)))]

    def fit(part: pd.DataFrame, form: str, k: int) -> Any:
        y = part["n"].to_numpy() >= k
        if y.sum() < 3 or (~y).sum() < 3:
            raise ModelInputError(f"too few days with and without ≥ {k} incidents to fit")
        return _Fitted(*fit_logistic(form_matrix(part, form), y))

    out: dict[str, Any] = {}
    test = parts["test"]
    event = test["n"].to_numpy() >= alarm_k
    years = len(test) / 365.25

    def skill(prob: np.ndarray, p: float) -> dict[str, float]:
        alarm = prob >= p
        return {
            "pod": float((alarm & event).sum() / max(int(event.sum()), 1)),
            "false_alarm_days_per_year": float((alarm & ~event).sum() / years),
        }

    per_day: dict[str, np.ndarray] = {}
    for form, text in RAIN_FORMS.items():
        row: dict[str, Any] = {"regressors": text, "inner_log_loss_x1000": {}}
        row["test_log_loss_x1000"] = {}
        per_day[form] = np.zeros(len(parts["inner_val"]))
        for k in ks:
            inner = fit(parts["inner_fit"], form, k)
            y_val = (parts["inner_val"]["n"].to_numpy() >= k).astype("float64")
            p_val = inner.predict_proba(form_matrix(parts["inner_val"], form))[:, 1]
            row["inner_log_loss_x1000"][str(k)] = round(1000 * _log_loss(p_val, y_val), 2)
            q = np.clip(p_val, 1e-12, 1 - 1e-12)
            per_day[form] -= y_val * np.log(q) + (1 - y_val) * np.log1p(-q)
            outer = fit(parts["fit"], form, k)
            y_test = (test["n"].to_numpy() >= k).astype("float64")
            p_test = outer.predict_proba(form_matrix(test, form))[:, 1]
            row["test_log_loss_x1000"][str(k)] = round(1000 * _log_loss(p_test, y_test), 2)
        row["inner_log_loss_sum"] = round(sum(row["inner_log_loss_x1000"].values()), 2)
        row["test_log_loss_sum"] = round(sum(row["test_log_loss_x1000"].values()), 2)
        alarm_model = fit(parts["fit"], form, alarm_k)
        prob = alarm_model.predict_proba(form_matrix(test, form))[:, 1]
        row[f"test_skill_p{alarm_p:g}"] = skill(prob, alarm_p)
        if len(wanted):
            p_days = alarm_model.predict_proba(form_matrix(wanted, form))[:, 1]
            row[f"p_ge_{alarm_k}_on_days"] = {
                str(d.date()): round(float(v), 4) for d, v in zip(wanted.index, p_days, strict=True)
            }
            lowest = float(p_days.min())
            row["test_skill_to_catch_them"] = {"p": round(lowest, 4), **skill(prob, lowest)}
            cls = np.zeros(len(wanted), dtype="int64")
            for c, (k, p) in enumerate(rules, start=1):
                m_k = fit(parts["fit"], form, k)
                cls[m_k.predict_proba(form_matrix(wanted, form))[:, 1] >= p - 1e-12] = c
            row["rain_class_on_days"] = {
                str(d.date()): int(v) for d, v in zip(wanted.index, cls, strict=True)
            }
        out[form] = row
    best = min(out, key=lambda f: out[f]["inner_log_loss_sum"])
    # is a form's inner gain over the first (one-day) form more than noise? 30-day blocks of
    # the validation days resampled (storm days cluster, so days are not independent)
    base = next(iter(RAIN_FORMS))
    rng = np.random.default_rng(seed)
    n_val = len(parts["inner_val"])
    blocks = np.arange(n_val) // block_days
    starts = np.searchsorted(blocks, np.arange(blocks.max() + 1))
    for form in RAIN_FORMS:
        diff = per_day[form] - per_day[base]
        draws = np.empty(n_boot)
        for i in range(n_boot):
            pick = rng.integers(0, starts.size, starts.size)
            take = np.concatenate(
                [np.arange(starts[b], min(starts[b] + block_days, n_val)) for b in pick]
            )
            draws[i] = diff[take].mean()
        lo, hi = np.percentile(draws, [2.5, 97.5])
        out[form][f"inner_gain_vs_{base}_x1000"] = {
            "mean": round(-1000 * float(diff.mean()), 2),
            "ci95": [round(-1000 * float(hi), 2), round(-1000 * float(lo), 2)],
        }
    return {
        "forms": out,
        "chosen_on_inner_split": best,
        "periods": {
            name: [str(p.index.min().date()), str(p.index.max().date())]
            for name, p in parts.items()
        },
    }
