"""Rain classes when the antecedent rain is unknown: the R24-only curves, not a dry fortnight."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk_models import calibration, landslide, levels
from risk_models.errors import ModelInputError
from risk_models.params import DEFAULT_RAIN_MODEL, PipelineParams


def _days(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Synthetic record where wet antecedent days raise the incident count."""
    rng = np.random.default_rng(seed)
    r24 = rng.gamma(0.5, 30.0, n)
    prev = rng.gamma(0.5, 30.0, n)
    re2 = rng.gamma(0.8, 40.0, n)
    mu = np.exp(-4.0 + 1.2 * np.log1p(r24) + 0.8 * prev / 100 + 0.6 * re2 / 100)
    return pd.DataFrame(
        {"n": rng.poisson(mu), "r24_mm": r24, "r_prev_mm": prev, "re2_mm": re2, "re_mm": re2},
        index=pd.date_range("1980-01-01", periods=n, freq="D"),
    )


def test_default_model_uses_r24_curves_where_the_antecedent_is_unknown() -> None:
    model = PipelineParams().rain()
    assert model.no_antecedent is not None
    r24 = np.array([0.0, 50.0, 100.0, 140.0, 200.0])
    unknown = model.rain_class(r24, np.nan, np.nan)
    dry = model.rain_class(r24, 0.0, 0.0)
    # 100 mm in a day: class 2 with R24 alone (from 93 mm), class 0 after a known dry fortnight
    assert unknown.tolist() == [0, 1, 2, 2, 3]
    assert dry.tolist() == [0, 0, 0, 0, 2]
    alone = model.without_antecedent()
    assert alone.form == calibration.FORM_R24
    assert (alone.rain_class(r24, 0.0, 0.0) == unknown).all()
    assert alone.r24_threshold_mm(2) == pytest.approx(93.3, abs=0.5)
    # mixed units: only the NaN ones switch curves
    mixed = model.rain_class(np.full(2, 100.0), np.array([0.0, np.nan]), np.array([0.0, np.nan]))
    assert mixed.tolist() == [0, 2]
    probs = model.probabilities(np.full(2, 100.0), np.array([0.0, np.nan]), np.zeros(2))
    assert probs["p_ge_10"][1] > 0.25 > probs["p_ge_10"][0]


def test_fit_adds_r24_curves_fitted_on_the_same_days_and_round_trips() -> None:
    days = _days()
    model = calibration.fit_rain_model(days, ((1, 0.5), (3, 0.5), (10, 0.5)))
    assert model.no_antecedent is not None
    for c in model.no_antecedent:
        assert c.coef_ln_r24 > 0 and c.coef_re_per_100mm == 0 == c.coef_prev_per_100mm
    # without the antecedent, the R24 threshold sits between a dry and a wet fortnight's
    t_dry = model.r24_threshold_mm(2, 0.0, 0.0)
    t_wet = model.r24_threshold_mm(2, 150.0, 100.0)
    t_alone = model.without_antecedent().r24_threshold_mm(2)
    assert t_wet < t_alone < t_dry
    again = calibration.RainModel.from_params(model.as_params())
    grid = np.linspace(0, 400, 41)
    assert (again.rain_class(grid, np.nan, np.nan) == model.rain_class(grid, np.nan, np.nan)).all()
    assert (again.rain_class(grid, 80.0, 20.0) == model.rain_class(grid, 80.0, 20.0)).all()
    alone = calibration.fit_rain_model(days, ((1, 0.5), (3, 0.5), (10, 0.5)), form="r24")
    assert alone.no_antecedent is None
    assert calibration.RainModel.from_params(alone.as_params()).form == "r24"
    assert alone.curves[1].intercept == pytest.approx(model.no_antecedent[1].intercept, abs=1e-4)


def test_a_model_without_r24_curves_reads_an_unknown_antecedent_as_dry() -> None:
    old = {k: v for k, v in DEFAULT_RAIN_MODEL.items() if k != "classes_no_antecedent"}
    model = calibration.RainModel.from_params(old)
    assert model.no_antecedent is None
    r24 = np.array([100.0, 200.0])
    assert (model.rain_class(r24, np.nan, np.nan) == model.rain_class(r24, 0.0, 0.0)).all()
    with pytest.raises(ModelInputError):
        model.without_antecedent()
    bad = {**DEFAULT_RAIN_MODEL, "classes_no_antecedent": [{"k": 3, "p": 0.25}]}
    with pytest.raises(ModelInputError):
        PipelineParams.from_dict({"rain_model": bad})
    with pytest.raises(ModelInputError):
        PipelineParams.from_dict({"rain_model": {**DEFAULT_RAIN_MODEL, "extra": 1}})


def test_assess_landslide_without_antecedent_takes_the_r24_curves() -> None:
    rng = np.random.default_rng(1)
    n = 400
    factors = {"slope_deg": rng.uniform(10, 40, n), "relief_m": rng.uniform(20, 200, n)}
    events = factors["slope_deg"] + rng.normal(0, 5, n) > 32
    model = landslide.FrequencyRatioModel(n_bins=5).fit(factors, events)
    area = np.full(n, 0.1)
    cal = landslide.calibrate_density_ratio(
        model.score(factors), events.astype(float), area, events.sum() / area.sum()
    )
    hourly = np.full(24, 110.0 / 24)  # 110 mm in 24 h
    blind = levels.assess_landslide(factors, model, hourly, calibration=cal)
    dry = levels.assess_landslide(
        factors, model, hourly, calibration=cal, antecedent_daily_mm=np.zeros(10)
    )
    assert (blind.rain_class == 2).all() and (dry.rain_class == 0).all()
    assert dry.level.max() == 0
    # a high or very-high cell under class-2 rain is yellow or orange, and says why
    hot = blind.susceptibility_class >= 2
    assert hot.any() and (blind.level[hot] >= 2).all()
    why = blind.explain(int(np.argmax(np.where(hot, blind.score, -np.inf))))
    assert "rain class 2" in why["rule"] and why["rain_probabilities"]["p_ge_10"] >= 0.25
    assert "antecedent rain unknown, R24-only curves" in why["rule"]
    assert why["rain_antecedent"] == "unknown"
    assert dry.explain(0)["rain_antecedent"] == "known"
    assert "unknown" not in dry.explain(0)["rule"]
