"""risk_models.rainfall: antecedent rain, rolling totals, CMA signals, I–D, IDW, scenarios."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from risk_models import rainfall
from risk_models.errors import ModelInputError, ScenarioError
from risk_models.validate import cma_cases

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"


def test_effective_antecedent_rainfall():
    daily = [0, 0, 0, 0, 0, 0, 0, 0, 10.0, 20.0]  # most recent last
    assert rainfall.effective_antecedent_mm(daily) == pytest.approx(0.8 * 20 + 0.64 * 10)
    assert rainfall.effective_antecedent_mm(daily, k=0.5) == pytest.approx(10 + 2.5)
    two = np.array([daily, [10.0] * 10])
    re = rainfall.effective_antecedent_mm(two)
    assert re[1] == pytest.approx(10 * sum(0.8**i for i in range(1, 11)))
    # only the last `days` count
    assert rainfall.effective_antecedent_mm([100.0] + daily, days=10) == pytest.approx(22.4)
    with pytest.raises(ModelInputError):
        rainfall.effective_antecedent_mm(daily, k=1.5)


def test_rolling_totals_match_a_loop():
    rng = np.random.default_rng(1)
    hourly = rng.gamma(0.5, 6.0, size=(3, 48))
    totals = rainfall.rolling_totals_mm(hourly)
    assert set(totals) == {1, 3, 6, 12, 24}
    for w, arr in totals.items():
        assert arr.shape == hourly.shape
        for t in (0, 2, 5, 30, 47):
            assert arr[1, t] == pytest.approx(hourly[1, max(0, t - w + 1) : t + 1].sum())
    maxes = rainfall.max_rolling_totals_mm(hourly[0])
    assert maxes[24] == pytest.approx(max(hourly[0, i : i + 24].sum() for i in range(25)))
    with pytest.raises(ModelInputError):
        rainfall.rolling_totals_mm([1.0, -2.0])


def test_cma_signals_replay_exactly():
    series, expected = cma_cases()
    assert rainfall.cma_signal(series).tolist() == expected.tolist()
    one = np.zeros(24)
    one[5:8] = [30.0, 40.0, 35.0]  # 105 mm in 3 h
    per_hour = rainfall.cma_signal_series(one)
    assert per_hour[5] == 0  # 30 mm so far
    assert per_hour[6] == 3  # 70 mm in 2 h: orange
    assert per_hour[7] == 4  # 105 mm in 3 h: red
    assert per_hour[16] == 1  # 6 h window empty, 105 mm still within the last 12 h: blue
    assert per_hour[23] == 0  # the burst has left the 12 h window
    assert rainfall.CMA_SIGNAL_NAMES[int(rainfall.cma_signal(one))] == "red"


def test_id_threshold_classes():
    thr = rainfall.IDThreshold()
    # Caine (1980): 1 h → 14.82 mm/h; 24 h → 14.82·24^−0.39 mm/h
    assert float(thr.intensity_mm_h(1)) == pytest.approx(14.82)
    assert float(thr.intensity_mm_h(24)) == pytest.approx(14.82 * 24**-0.39)
    dry = np.full(24, 0.5)
    wet = np.zeros(24)
    wet[:3] = 14.82 * 3**-0.39 * 2.5  # 2.5× the 3 h threshold intensity
    huge = np.full(24, 40.0)
    assert rainfall.id_class(np.stack([dry, wet, huge])).tolist() == [0, 2, 3]
    custom = rainfall.IDThreshold(a_mm_h=60.0, multiples=(1.0, 1.5, 2.0))
    assert int(rainfall.id_class(wet, custom)) == 0


def test_idw():
    gauges = np.array([[0.0, 0.0], [1000.0, 0.0]])
    values = np.array([10.0, 30.0])
    targets = np.array([[0.0, 0.0], [500.0, 0.0], [250.0, 0.0]])
    out = rainfall.idw(gauges, values, targets)
    assert out[0] == pytest.approx(10.0)
    assert out[1] == pytest.approx(20.0)
    # weights 1/250² and 1/750²: (10·9 + 30·1)/10
    assert out[2] == pytest.approx(12.0)
    series = rainfall.idw(gauges, np.array([[1.0, 2.0], [3.0, 4.0]]), targets)
    assert series.shape == (3, 2)
    near = rainfall.idw(gauges, values, targets, max_neighbours=1)
    assert near[2] == pytest.approx(10.0)
    # many gauges: the targets are processed in several chunks, same answer as one matrix
    rng = np.random.default_rng(5)
    g = rng.uniform(0, 10_000, (2500, 2))
    vals = rng.uniform(0, 50, 2500)
    tg = rng.uniform(0, 10_000, (4000, 2))
    d = np.hypot(tg[:, None, 0] - g[None, :, 0], tg[:, None, 1] - g[None, :, 1])
    w = 1 / d**2
    assert np.allclose(rainfall.idw(g, vals, tg), (w @ vals) / w.sum(axis=1))


def test_scenario_files_load_and_behave_as_described():
    scenarios = rainfall.load_scenarios(SCENARIOS)
    assert {"cloudburst_100mm_3h", "light_rain", "typhoon_300mm_24h"} <= set(scenarios)
    cloud = scenarios["cloudburst_100mm_3h"]
    assert cloud.start.tzinfo is not None
    assert rainfall.max_rolling_totals_mm(cloud.hourly_rain_mm())[3] == pytest.approx(118.0)
    assert int(rainfall.cma_signal(cloud.hourly_rain_mm())) == 4
    assert int(rainfall.cma_signal(scenarios["light_rain"].hourly_rain_mm())) == 0
    assert int(rainfall.id_class(scenarios["light_rain"].hourly_rain_mm())) == 0
    typhoon = scenarios["typhoon_300mm_24h"]
    assert typhoon.hourly_rain_mm().sum() == pytest.approx(300.0, abs=1.0)
    assert int(rainfall.id_class(typhoon.hourly_rain_mm())) >= 2
    assert rainfall.effective_antecedent_mm(typhoon.antecedent_daily_mm) > 0

    # gradient to the west (270°): the west edge gets factor_max, the east edge factor_min
    x = np.array([0.0, 500.0, 1000.0])
    y = np.zeros(3)
    f = cloud.factors(x, y)
    assert f[0] == pytest.approx(cloud.factor_max)
    assert f[-1] == pytest.approx(cloud.factor_min)
    assert cloud.factors(x, y, rescale=True).mean() == pytest.approx(1.0)
    rain = cloud.rain_at_mm(x, y)
    assert rain.shape == (3, cloud.hourly_rain_mm().size)
    assert rain[0].sum() > rain[2].sum()


def test_scenario_errors(tmp_path):
    good = json.loads((SCENARIOS / "light_rain.json").read_text(encoding="utf-8"))
    bad = dict(good, antecedent_daily_mm=[1, 2])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ScenarioError, match="antecedent"):
        rainfall.load_scenario(tmp_path / "bad.json")
    (tmp_path / "neg.json").write_text(json.dumps(dict(good, rain_mm=[1, -1])))
    with pytest.raises(ScenarioError, match="rain_mm"):
        rainfall.load_scenario(tmp_path / "neg.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ScenarioError, match="cannot read"):
        rainfall.load_scenario(tmp_path / "broken.json")
    half = dict(good, step_minutes=30, rain_mm=[1, 2, 3])
    (tmp_path / "half.json").write_text(json.dumps(half))
    assert rainfall.load_scenario(tmp_path / "half.json").hourly_rain_mm().tolist() == [3, 3]
    assert math.isclose(float(rainfall.load_scenario(tmp_path / "half.json").rain_mm.sum()), 6)
