"""A nowcast split into threads, and one explaining a few cells of a large table, give the
rows of the whole in-process nowcast."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.bench_risk import synthetic_static
from risk_models import pipeline
from risk_models.rainsource import gauge_source


def _table() -> tuple[pd.DataFrame, object]:
    static = synthetic_static(2 * pipeline.MIN_THREAD_CELLS + 1_000)
    static["density_ratio"] = np.exp(3 * (static["score"] - 0.5))
    static["p_event"] = static["score"] * 0.01
    static["below_slope_floor"] = static["slope_deg"] < 5.0
    rng = np.random.default_rng(3)
    lon, lat = static["lon"].to_numpy(), static["lat"].to_numpy()
    gauges = gauge_source(
        rng.uniform(lon.min(), lon.max(), 30),
        rng.uniform(lat.min(), lat.max(), 30),
        rng.gamma(0.8, 12, (30, 24)),
        antecedent_daily_mm=np.full(10, 20.0),
    )
    return static, pipeline.rain_for(gauges, static)


def test_threads_and_subsets_give_the_same_rows() -> None:
    static, rain = _table()
    whole = pipeline.nowcast(static, rain, "landslide", explain=False)
    split = pipeline.nowcast(static, rain, "landslide", explain=False, threads=2)
    pd.testing.assert_frame_equal(whole, split)
    assert (whole["level"] > 0).any() and (whole["level"] == 0).any()
    some = whole["h3"].to_numpy()[:: len(whole) // 50][:50]
    docs = pipeline.explain_cells(static, rain, "landslide", some)
    full = pipeline.nowcast(static, rain, "landslide").set_index("h3")["explanation"]
    assert docs == [full.loc[int(c)] for c in some]
