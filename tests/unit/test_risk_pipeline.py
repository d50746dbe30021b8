"""The pure pipeline: fast raster → H3, static table, nowcast levels, rain inputs, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from risk_models import pipeline, rainfall
from risk_models.errors import EmptyAreaError, ModelInputError, UnknownModel
from risk_models.h3agg import pixel_cells
from risk_models.h3raster import raster_cells
from risk_models.params import PipelineParams
from risk_models.rainsource import RainSource, gauge_source, idw_exact, max_totals_mm
from tests.support.risk_synth import steep_sites, write_dem

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"


@pytest.fixture(scope="module")
def dem(tmp_path_factory) -> Path:
    return write_dem(tmp_path_factory.mktemp("pipe") / "dem.tif")


@pytest.fixture(scope="module")
def static(dem: Path):
    return pipeline.build_static(dem, res=9, sites_lonlat=steep_sites(dem))


@pytest.mark.parametrize(
    ("crs", "transform", "res"),
    [
        ("EPSG:32649", Affine(30, 0, 740_000, 0, -30, 2_495_000), 9),
        ("EPSG:32649", Affine(30, 0, 740_000, 0, -30, 2_495_000), 10),
        ("EPSG:4326", Affine(0.0003, 0, 113.3, 0, -0.0003, 22.6), 8),
        ("EPSG:3857", Affine(25, 5, 12_600_000, 3, -25, 2_580_000), 9),  # rotated grid
    ],
)
def test_burned_cells_equal_h3_per_pixel(crs, transform, res) -> None:
    shape = (300, 280)
    mask = np.ones(shape, bool)
    mask[:40, :60] = False
    fast = raster_cells(transform, crs, shape, res, mask, window_rows=64)
    exact = pixel_cells(transform, crs, shape, res, mask)
    assert (fast[mask] == exact).all()
    assert (fast[~mask] == 0).all()


def test_static_table(dem: Path, static) -> None:
    assert static.index.is_monotonic_increasing and static.index.is_unique
    # classes are fixed cuts of the held-out calibrated density ratio (× the base rate)
    ratio, cls = static["density_ratio"], static["susceptibility_class"]
    steep = ~static["below_slope_floor"]
    lo, mid, hi = PipelineParams().ratio_cuts
    # high and very high keep to the land budget: below the stored score cut they are moderate
    kept = static["score"] >= static.attrs.get("high_score_cut", -np.inf)
    assert (cls[steep & (ratio >= hi) & kept] == 3).all() and (cls[steep & (ratio < lo)] == 0).all()
    assert (cls[steep & (ratio >= mid) & (ratio < hi) & kept] == 2).all()
    assert (cls[steep & (ratio >= mid) & ~kept] == 1).all()
    area = static["area_km2"]
    assert area[cls >= 2].sum() <= PipelineParams().high_land_share_max * area.sum() + 1e-9
    assert (cls[static["below_slope_floor"]] == 0).all()
    assert (static["below_slope_floor"] == (static["slope_deg"] < 5.0)).all()
    order = np.argsort(static["score"].to_numpy())
    assert (np.diff(ratio.to_numpy()[order]) >= -1e-12).all()  # monotone in the score
    assert static.loc[static["events"] > 0, "score"].mean() > static["score"].mean()
    assert 0 <= static["p_event"].min() and static["p_event"].max() < 1
    # area quantiles remain an explicit option
    by_area = pipeline.build_static(
        dem, res=9, sites_lonlat=steep_sites(dem),
        params=PipelineParams(area_shares=(0.4, 0.3, 0.2, 0.1), slope_floor_deg=0.0),
    )  # fmt: skip
    shares = np.bincount(by_area["susceptibility_class"], minlength=4) / len(by_area)
    assert np.allclose(shares, (0.4, 0.3, 0.2, 0.1), atol=0.02)
    assert (static["hand_cell_m"].dropna() >= 0).all()
    # more runoff never gives shallower ponding
    ladder = static.filter(like="wl_depth_m_").to_numpy()
    assert (np.diff(ladder, axis=1) >= -1e-9).all()


def test_the_land_budget_demotes_the_lowest_scoring_high_cells() -> None:
    from risk_models.landslide import budget_high_cut

    score = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.1, 0.05, 0.02, 0.01])
    s_class = np.array([3, 2, 2, 2, 2, 1, 0, 0, 0, 0])
    area = np.ones(10)
    assert budget_high_cut(score, s_class, area, 0.5) is None  # 5 of 10 fit a half
    # 30 %: the top three; the tie at 0.8 stays together
    assert budget_high_cut(score, s_class, area, 0.3) == 0.8
    assert budget_high_cut(score, s_class, area, 0.25) == 0.9  # the tie does not fit
    assert budget_high_cut(score, s_class, area, 0.05) == np.inf  # not even the top cell
    weighted = budget_high_cut(score, s_class, np.r_[1, 1, 1, 5, np.ones(6)], 0.5)
    assert weighted == 0.8  # the big 0.7 cell would pass the budget


def test_a_fit_over_budget_keeps_high_within_it(dem: Path, static) -> None:
    share = (
        static.loc[static["susceptibility_class"] >= 2, "area_km2"].sum() / static["area_km2"].sum()
    )
    tight = min(0.5 * share, 0.1)
    capped = pipeline.build_static(
        dem, res=9, sites_lonlat=steep_sites(dem), params=PipelineParams(high_land_share_max=tight)
    )
    cls = capped["susceptibility_class"]
    assert capped.loc[cls >= 2, "area_km2"].sum() <= tight * capped["area_km2"].sum()
    assert capped.loc[cls >= 2, "score"].min() >= capped.attrs["high_score_cut"]
    # only high cells moved, one class down; the ranking is the same
    moved = cls != static["susceptibility_class"]
    assert (
        moved.any()
        and (cls[moved] == 1).all()
        and (static["susceptibility_class"][moved] >= 2).all()
    )
    assert np.array_equal(capped["score"], static["score"])
    free = pipeline.build_static(
        dem, res=9, sites_lonlat=steep_sites(dem), params=PipelineParams(high_land_share_max=None)
    )
    assert "high_score_cut" not in free.attrs


def _scaled(src: RainSource, factor: float) -> RainSource:
    assert src.hyetograph_mm is not None
    src.hyetograph_mm = src.hyetograph_mm * factor
    return src


@pytest.mark.parametrize("model", ["landslide", "flood", "rainstorm"])
def test_more_rain_never_lowers_a_level(static, model) -> None:
    path = SCENARIOS / "typhoon_300mm_24h.json"
    low = pipeline.nowcast(static, _scaled(pipeline.scenario_source(path, static), 0.2), model)
    high = pipeline.nowcast(static, pipeline.scenario_source(path, static), model)
    assert (high["level"].to_numpy() >= low["level"].to_numpy()).all()
    assert high["level"].sum() > low["level"].sum()
    assert high["h3"].tolist() == static.index.tolist()


def test_landslide_explanation(static) -> None:
    out = pipeline.nowcast(
        static, pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static), "landslide"
    )
    i = int(np.argmax(out["level"]))
    ex = out["explanation"].iloc[i]
    assert ex["level"] == out["level"].iloc[i] and ex["level_name"] in (
        "blue",
        "yellow",
        "orange",
        "red",
    )
    assert ex["susceptibility_class"] == static["susceptibility_class"].iloc[i]
    names = [f["factor"] for f in ex["top_factors"]]
    assert len(names) == 3 and set(names) <= {
        c.removeprefix("iv_") for c in static.filter(like="iv_")
    }
    for f in ex["top_factors"]:
        assert f["contribution"] == pytest.approx(static[f"iv_{f['factor']}"].iloc[i], abs=1e-4)
    # Re = Σ 0.8^i R_i of the scenario's antecedent days
    sc = rainfall.load_scenario(SCENARIOS / "typhoon_300mm_24h.json")
    want = rainfall.effective_antecedent_mm(sc.antecedent_daily_mm)
    assert ex["rain"]["antecedent_re_mm"] == pytest.approx(want, abs=0.01)


def test_rainstorm_level_is_the_cma_signal_of_the_cell_series(static) -> None:
    rng = np.random.default_rng(4)
    lon, lat = static["lon"].to_numpy(), static["lat"].to_numpy()
    pick = rng.choice(len(static), 5, replace=False)
    series = rng.gamma(0.4, 25.0, size=(5, 24))
    src = pipeline.rain_for(gauge_source(lon[pick], lat[pick], series), static)
    out = pipeline.nowcast(static, src, "rainstorm")
    hourly = src.hourly(lon, lat)
    assert (out["level"].to_numpy() == rainfall.cma_signal(hourly)).all()
    # a cell on a gauge gets exactly that gauge's series
    assert np.allclose(hourly[pick], series)


def test_unknown_antecedent_classes_by_the_days_rain(static) -> None:
    """A gauge file of 24 h totals alone is classed by the R24-only curves (110 mm in a
    day is class 2), not read as a dry fortnight (which would need far more)."""
    lon, lat = static["lon"].to_numpy(), static["lat"].to_numpy()
    series = np.full((1, 24), 110.0 / 24)
    p = PipelineParams()
    blind = pipeline.rain_metrics(gauge_source(lon[:1], lat[:1], series), lon, lat, p)
    assert (blind["rain_class"] == 2).all() and not blind["antecedent_known"].any()
    dry = gauge_source(lon[:1], lat[:1], series, antecedent_daily_mm=np.zeros(10))
    known = pipeline.rain_metrics(dry, lon, lat, p)
    assert (known["rain_class"] == 0).all() and known["antecedent_known"].all()


def test_idw_matches_the_library() -> None:
    rng = np.random.default_rng(1)
    g, v, t = rng.uniform(0, 1e4, (12, 2)), rng.gamma(1, 5, (12, 24)), rng.uniform(0, 1e4, (50, 2))
    t[0] = g[3]
    assert np.allclose(idw_exact(g, v, t, neighbours=12), rainfall.idw(g, v, t))
    assert np.allclose(idw_exact(g, v, t, 5), rainfall.idw(g, v, t, max_neighbours=5))
    assert (idw_exact(g, v, t)[0] == v[3]).all()


def test_max_totals_match_the_library() -> None:
    rng = np.random.default_rng(2)
    for hours in (2, 5, 24, 30):
        series = rng.gamma(0.4, 10.0, (40, hours))
        fast = max_totals_mm(series)
        for w, v in rainfall.max_rolling_totals_mm(series).items():
            assert np.allclose(fast[w], v, rtol=0, atol=1e-9)


def test_bad_inputs(dem: Path, static) -> None:
    with pytest.raises(UnknownModel):
        pipeline.nowcast(
            static, pipeline.scenario_source(SCENARIOS / "light_rain.json", static), "quake"
        )
    with pytest.raises(ModelInputError, match="unknown parameter"):
        PipelineParams.from_dict({"bins": 3})
    with pytest.raises(ModelInputError, match="matrix"):
        PipelineParams.from_dict({"matrix": [[0, 1], [2, 3]]})
    with pytest.raises(ModelInputError, match="NaN"):
        gauge_source([113.4], [22.5], [[1.0, float("nan")]])
    with pytest.raises(ModelInputError, match="≥ 0"):
        gauge_source([113.4], [22.5], [[1.0, -2.0]])
    with pytest.raises(EmptyAreaError):
        pipeline.build_static(dem, res=9, params=PipelineParams(bbox=(10.0, 10.0, 10.1, 10.1)))
    with pytest.raises(EmptyAreaError):
        pipeline.nowcast(static.iloc[:0], RainSource("series", {}), "flood")
    no_sites = pipeline.build_static(dem, res=8)
    with pytest.raises(ModelInputError, match="hazard site"):
        pipeline.nowcast(
            no_sites, pipeline.scenario_source(SCENARIOS / "light_rain.json", no_sites), "landslide"
        )
    # a flood run needs no hazard sites
    assert len(
        pipeline.nowcast(
            no_sites, pipeline.scenario_source(SCENARIOS / "light_rain.json", no_sites), "flood"
        )
    ) == len(no_sites)
