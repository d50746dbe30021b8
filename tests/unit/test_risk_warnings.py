"""Warnings that can be trusted: absolute susceptibility classes with a slope floor, calibrated
rain classes, flood levels from depths, DEM no-data, and the verification of a run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from typer.testing import CliRunner

from geo_service.cli import app
from risk_models import calibration, pipeline, terrain
from risk_models.errors import ModelInputError
from risk_models.params import PipelineParams
from risk_models.verify import plot_curve, verify
from tests.support.risk_synth import X0, Y0, steep_sites, write_dem

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"
runner = CliRunner()


def _write(path: Path, elev: np.ndarray, nodata: float | None = -9999.0) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", width=elev.shape[1], height=elev.shape[0], count=1,
        dtype="float32", crs="EPSG:32649", transform=Affine(30, 0, X0, 0, -30, Y0),
        nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(elev.astype("float32"), 1)
    return path


def _lonlat(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    x, y = X0 + 30 * (cols + 0.5), Y0 - 30 * (rows + 0.5)
    lon, lat = Transformer.from_crs(32649, 4326, always_xy=True).transform(x, y)
    return np.column_stack([lon, lat])


@pytest.fixture(scope="module")
def hills(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    dem = write_dem(tmp_path_factory.mktemp("warn") / "dem.tif")
    return dem, pipeline.build_static(dem, res=9, sites_lonlat=steep_sites(dem))


def test_flat_plain_under_the_typhoon_gets_no_landslide_level(tmp_path) -> None:
    rng = np.random.default_rng(3)
    n = 160
    # a coastal plain: 2–6 m with a gentle tilt and metre-scale bumps (slopes ≪ 5°)
    yy, xx = np.mgrid[0:n, 0:n].astype("float64")
    elev = 2.0 + 0.01 * yy + rng.normal(0, 0.3, (n, n))
    dem = _write(tmp_path / "plain.tif", elev)
    sites = _lonlat(rng.integers(0, n, 30), rng.integers(0, n, 30))
    static = pipeline.build_static(dem, res=9, sites_lonlat=sites)
    assert static["below_slope_floor"].all()
    rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static)
    out = pipeline.nowcast(static, rain, "landslide")
    assert (out["rain_class"] == 3).all()  # the rain alone would warrant a warning
    assert out["level"].max() == 0
    ex = out["explanation"].iloc[0]
    assert ex["below_slope_floor"] is True and "slope floor" in ex["rule"]


@pytest.mark.parametrize("model", ["landslide", "flood", "rainstorm"])
def test_light_rain_gives_no_level_anywhere(hills, model) -> None:
    _, static = hills
    rain = pipeline.scenario_source(SCENARIOS / "light_rain.json", static)
    out = pipeline.nowcast(static, rain, model)
    assert out["level"].max() == 0
    assert out["rain_class"].max() == 0


def test_typhoon_warns_only_high_susceptibility_and_explains_why(hills) -> None:
    _, static = hills
    rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static)
    out = pipeline.nowcast(static, rain, "landslide")
    cls = out["susceptibility_class"].to_numpy()
    lvl = out["level"].to_numpy()
    assert (out["rain_class"] == 3).all()
    assert lvl[cls <= 1].max() <= 1  # low and moderate: at most blue
    assert lvl[cls == 0].max() == 0
    assert (lvl[cls >= 2] >= 2).all()
    i = int(np.argmax(lvl))
    ex = out["explanation"].iloc[i]
    assert ex["density_ratio"] == pytest.approx(static["density_ratio"].iloc[i], abs=1e-3)
    assert 0 <= ex["p_event"] <= 1 and "density ratio" in ex["rule"]
    assert ex["rain_probabilities"]["p_ge_50"] >= 0.25 and "rain class 3" in ex["rule"]


def test_a_cells_class_does_not_depend_on_the_rest_of_the_map(hills) -> None:
    _, static = hills
    rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static)
    full = pipeline.nowcast(static, rain, "landslide", explain=False)
    part = static[static["score"] > static["score"].median()]
    part_rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", part)
    half = pipeline.nowcast(part, part_rain, "landslide", explain=False).set_index("h3")
    assert (
        half["susceptibility_class"] == full.set_index("h3").loc[half.index, "susceptibility_class"]
    ).all()


def test_flood_depths_need_low_ground_or_ponding(hills) -> None:
    _, static = hills
    rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static)
    out = pipeline.nowcast(static, rain, "flood")
    high = static["hand_cell_m"].to_numpy() > 5.0
    logging = np.array(
        [
            next(
                f["contribution"] for f in e["top_factors"] if f["factor"] == "waterlogging_depth_m"
            )
            for e in out["explanation"]
        ]
    )
    flagged = out["level"].to_numpy() > 0
    assert flagged.any()
    assert (logging[high & flagged] >= 0.15).all()  # well above the drainage: only ponding
    depth = out["score"].to_numpy()
    assert (flood_levels := out["level"].to_numpy())[depth < 0.15].max() == 0
    assert (flood_levels[depth >= 1.0] == 4).all()


def test_deep_pits_are_dem_artefacts_not_ponds() -> None:
    from risk_models import flood

    filled = np.full((9, 9), 10.0, dtype="float32")
    sink = np.zeros((9, 9), dtype="float32")
    sink[1:3, 1:3] = 1.0  # a shallow low spot
    sink[5:8, 5:8] = 8.0  # an 8 m closed pit: noise of the DEM
    upa = np.full((9, 9), 1e-4, dtype="float32")
    kw = {"runoff_mm": 500.0, "pixel_area_m2": 900.0}
    keep = flood.waterlogging_depth_m(sink, filled, upa, **kw)
    drop = flood.waterlogging_depth_m(sink, filled, upa, max_depression_depth_m=3.0, **kw)
    assert keep[6, 6] > 0 and drop[6, 6] == 0
    assert drop[1, 1] == pytest.approx(keep[1, 1]) and drop[1, 1] > 0
    # a low spot on a valley floor is not filled by the whole basin's runoff
    upa_big = upa.copy()
    upa_big[1, 1] = 50.0
    basin = flood.waterlogging_depth_m(sink, filled, upa_big, 2.0, 900.0)
    local = flood.waterlogging_depth_m(sink, filled, upa_big, 2.0, 900.0, max_catchment_km2=1e-4)
    assert basin[1, 1] == pytest.approx(1.0) and local[1, 1] < 0.01


def test_sea_stored_as_zero_is_flagged(tmp_path) -> None:
    elev = np.zeros((80, 80))
    elev[:, 40:] = np.linspace(1, 300, 40)[None, :]
    dem = _write(tmp_path / "coast.tif", elev, nodata=None)
    with pytest.warns(terrain.ZeroNodataWarning, match="--nodata 0"):
        terrain.read_dem(dem)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = terrain.read_dem(dem, nodata=0)
    assert np.isnan(d.elev_m[:, :40]).all()
    assert np.isnan(pipeline.load_dem(dem, nodata=0).elev_m).sum() == 80 * 40
    land = np.broadcast_to(np.linspace(1, 300, 80)[None, :], (80, 80)).copy()
    land[:10, :10] = 0.0  # a small patch at datum is not a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terrain.read_dem(_write(tmp_path / "land.tif", land, nodata=None))
    result = runner.invoke(app, ["risk", "terrain", str(dem), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0 and "--nodata 0" in " ".join(result.output.split())


def test_verify_counts_hits_and_areas_by_hand() -> None:
    lat, lon = 22.3, 114.1
    centre = h3.latlng_to_cell(lat, lon, 9)
    ring = [c for c in h3.grid_disk(centre, 1) if c != centre]
    cells = [centre, *ring]  # 7 cells
    levels = [4, 3, 2, 2, 1, 0, 0]
    df = pd.DataFrame({"h3": [h3.str_to_int(c) for c in cells], "level": levels})
    pts = [h3.cell_to_latlng(c) for c in (centre, centre, ring[0], ring[4])]
    events = np.array([[p[1], p[0]] for p in pts] + [[0.0, 0.0]])  # one event off the map
    out = verify(df, events)
    assert out["n_events"] == 5 and out["n_events_in_area"] == 4 and out["n_cells"] == 7
    by = {r["name"]: r for r in out["levels"]}
    assert by["red"]["hits"] == 2 and by["red"]["pod"] == 0.5
    assert by["orange"]["hits"] == 3 and by["orange"]["area_share"] == pytest.approx(2 / 7)
    assert by["yellow"]["hits"] == 3 and by["blue"]["hits"] == 3
    # yellow: 4 cells warned, 2 of them with an event
    assert by["yellow"]["false_alarm_area_share"] == pytest.approx(2 / 7)
    assert [p["level"] for p in out["curve"]] == [5, 4, 3, 2, 1]
    json.dumps(out)
    # a wider area of land counts cells missing from the run as level 0
    extra = h3.str_to_int(h3.grid_ring(centre, 2)[0])
    wider = verify(df, events, land_cells=[*df["h3"], extra])
    assert wider["n_cells"] == 8 and {r["name"]: r for r in wider["levels"]}["red"][
        "area_share"
    ] == pytest.approx(1 / 8)
    with pytest.raises(ModelInputError):
        verify(df.rename(columns={"level": "lvl"}), events)


def test_plot_curve_writes_a_png(tmp_path) -> None:
    df = pd.DataFrame({"h3": [h3.str_to_int(h3.latlng_to_cell(22.3, 114.1, 9))], "level": [2]})
    path = plot_curve(verify(df, np.array([[114.1, 22.3]])), tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rain_model_fit_recovers_a_known_relation() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    r24 = rng.gamma(0.5, 30.0, n)
    re = rng.gamma(0.8, 40.0, n)
    mu = np.exp(-4.0 + 1.3 * np.log1p(r24) + 0.6 * re / 100)
    days = pd.DataFrame(
        {"n": rng.poisson(mu), "r24_mm": r24, "re_mm": re},
        index=pd.date_range("1980-01-01", periods=n, freq="D"),
    )
    model = calibration.fit_rain_model(days, ((1, 0.5), (3, 0.5), (10, 0.5)), form="r24_re")
    assert model.form == "r24_re" and "form" in model.as_params()
    for c in model.curves:
        assert c.coef_ln_r24 > 0 and c.coef_re_per_100mm > 0
    grid = np.linspace(0, 600, 61)
    cls = model.rain_class(grid, 50.0)
    assert cls[0] == 0 and cls[-1] == 3 and (np.diff(cls) >= 0).all()
    for k in (1, 2, 3):
        t = model.r24_threshold_mm(k, 50.0)
        assert model.rain_class(t + 1e-3, 50.0) >= k > model.rain_class(max(t - 1.0, 0), 50.0)
    again = calibration.RainModel.from_params(model.as_params())
    assert (again.rain_class(grid, 80.0) == model.rain_class(grid, 80.0)).all()
    with pytest.raises(ModelInputError):
        PipelineParams.from_dict({"rain_model": {"classes": [{"k": 1}]}})
    skill = calibration.day_skill(model, days, k=3, cls=2)
    assert 0 < skill["pod"] <= 1


def test_hko_and_incident_readers_handle_bad_rows(tmp_path) -> None:
    hko = tmp_path / "hko.csv"
    hko.write_text(
        "\ufeff日總雨量(毫米) - 天文台\nDaily Total Rainfall (mm)\n"
        "年/Year,月/Month,日/Day,數值/Value,數據完整性/data Completeness\n"
        "1990,1,1,0.0,C\n1990,1,2,Trace,C\n1990,1,3,***,\n1990,2,30,5.0,C\n1990,1,4,12.5,C\n"
        "1990,1,5,0.0,C\n"
        "*** 沒有數據/unavailable,,,,\n",
        encoding="utf-8",
    )
    s = calibration.read_hko_daily(hko)
    assert s.to_dict() == {
        pd.Timestamp("1990-01-01"): 0.0,
        pd.Timestamp("1990-01-02"): 0.0,
        pd.Timestamp("1990-01-04"): 12.5,
        pd.Timestamp("1990-01-05"): 0.0,
    }
    re = calibration.antecedent_re_mm(s)
    assert re[pd.Timestamp("1990-01-05")] == pytest.approx(0.8 * 12.5)
    inc = tmp_path / "inc.csv"
    pd.DataFrame(
        {
            "CALLDATE": ["02/01/1990", "05/01/1990", "bad"],
            "FAILDATE": ["01/01/1990", "-", "-"],
            "FEATTYPE": ["Natural Hillside", "Soil Cut", "Soil Cut"],
            "EASTING": [830000, 831000, 832000],
            "NORTHING": [820000, 821000, 822000],
            "lon": [114.1, 114.11, 114.12],
            "lat": [22.3, 22.31, 22.32],
        }
    ).to_csv(inc, index=False)
    got = calibration.read_hk_incidents(inc)
    assert got["date"].tolist() == [pd.Timestamp("1990-01-01"), pd.Timestamp("1990-01-05")]
    assert got["natural"].tolist() == [True, False]


def test_cli_hindcast_and_calibrate(hills, tmp_path) -> None:
    dem, static = hills
    sites = steep_sites(dem, n_sites=60, seed=5)
    x, y = Transformer.from_crs(4326, 32649, always_xy=True).transform(sites[:, 0], sites[:, 1])
    dates = ["01/06/2001"] * 40 + ["20/08/2005"] * 20
    pd.DataFrame({"E": x, "N": y, "FAILDATE": dates, "CALLDATE": dates}).to_csv(
        tmp_path / "inc.csv", index=False
    )
    pd.DataFrame(
        {"lon": [static["lon"].mean()], "lat": [static["lat"].mean()], "rain_mm": [300.0]}
    ).to_csv(tmp_path / "g.csv", index=False)
    result = runner.invoke(
        app,
        [
            "risk", "hindcast", "--dem", str(dem), "--inventory", str(tmp_path / "inc.csv"),
            "--rain", str(tmp_path / "g.csv"), "--events", str(tmp_path / "inc.csv"),
            "--x-col", "E", "--y-col", "N", "--crs", "EPSG:32649", "--from", "2005-08-20",
            "--to", "2005-08-21", "--antecedent-mm", "4,0,12,25,8,30,45,20,60,85",
            "--out", str(tmp_path / "h"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "h" / "verification.json").read_text())
    assert got["n_events"] == 20  # only the storm's events, the rest were the inventory
    assert (tmp_path / "h" / "curve.png").exists()
    assert "yellow" in result.output and "hit rate" in result.output


def _synthetic_two_day_record(n_days: int = 9000, seed: int = 1) -> tuple[pd.Series, pd.Series]:
    """Daily rain and incident counts where landslides follow the previous day's rain as much
    as the day's own (a storm that ends before the failures are reported)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("1980-01-01", periods=n_days, freq="D")
    rain = pd.Series(rng.gamma(0.4, 25.0, n_days), index=idx)
    prev = rain.shift(1, fill_value=0.0).to_numpy()
    mu = np.exp(-5.0 + 0.9 * np.log1p(rain.to_numpy()) + 0.9 * np.log1p(prev))
    return rain, pd.Series(rng.poisson(mu), index=idx)


def test_two_day_table_lines_up_the_day_before_and_its_antecedent() -> None:
    idx = pd.date_range("2000-01-01", periods=14, freq="D")
    rain = pd.Series([0.0] * 10 + [10.0, 20.0, 40.0, 0.0], index=idx)
    counts = pd.Series({idx[12]: 3})
    t = calibration.rain_table(rain, counts, "2000-01-01", "2000-01-14")
    day = t.loc[idx[12]]
    assert day["n"] == 3 and day["r24_mm"] == 40.0 and day["r_prev_mm"] == 20.0
    assert day["re_mm"] == pytest.approx(0.8 * 20 + 0.64 * 10)  # the ten days before the day
    assert day["re2_mm"] == pytest.approx(0.8 * 10)  # the ten days before the day before
    r48 = np.expm1(calibration.form_matrix(t.loc[[idx[12]]], "r48_re2")[0, 0])
    assert r48 == pytest.approx(60.0)
    with pytest.raises(ModelInputError):
        calibration.form_matrix(t, "r72")


def test_compare_rain_forms_picks_the_two_day_form_when_the_record_says_so() -> None:
    rain, counts = _synthetic_two_day_record()
    days = calibration.rain_table(rain, counts, "1980-01-01", str(rain.index[-1].date()))
    late = rain.index[-200]
    got = calibration.compare_rain_forms(
        days, fit_to_year=2000, inner_fit_to_year=1992, ks=(1, 3, 5), alarm_k=3,
        days_of_interest=[str(late.date())], rules=((1, 0.25), (3, 0.25), (5, 0.25)),
    )  # fmt: skip
    forms = got["forms"]
    assert set(forms) == set(calibration.RAIN_FORMS)
    # the 24 h form cannot see the day before: every two-day form beats it out of sample
    base = forms["r24_re"]
    for name in ("r48_re2", "r24_r48_re2", "r24_prev_re2"):
        assert forms[name]["inner_log_loss_sum"] < base["inner_log_loss_sum"], name
        assert forms[name]["test_log_loss_sum"] < base["test_log_loss_sum"], name
    assert got["chosen_on_inner_split"] != "r24_re"
    # the chosen form's inner gain over the one-day form is more than block-bootstrap noise
    gain = forms[got["chosen_on_inner_split"]]["inner_gain_vs_r24_re_x1000"]
    assert gain["mean"] > 0 and 0 < gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    assert forms["r24_re"]["inner_gain_vs_r24_re_x1000"]["mean"] == 0
    assert got["periods"]["inner_val"] == ["1993-01-01", "2000-12-31"]
    row = forms[got["chosen_on_inner_split"]]
    p_day = row["p_ge_3_on_days"][str(late.date())]
    assert 0 <= p_day <= 1 and row["test_skill_to_catch_them"]["p"] == pytest.approx(p_day)
    assert row["rain_class_on_days"][str(late.date())] in (0, 1, 2, 3)
    with pytest.raises(ModelInputError):
        calibration.compare_rain_forms(days, fit_to_year=2030, inner_fit_to_year=2029)


def test_cli_calibrate_rain_compares_the_two_day_forms(tmp_path) -> None:
    rng = np.random.default_rng(3)
    idx = pd.date_range("1984-01-01", "2007-12-31", freq="D")
    rain = rng.gamma(0.3, 60.0, idx.size)
    prev = np.r_[0.0, rain[:-1]]
    n = rng.poisson(np.exp(-6.5 + 1.2 * np.log1p(rain) + 1.2 * np.log1p(prev)))
    hko = tmp_path / "hko.csv"
    lines = ["Daily Total Rainfall (mm)", "HKO", "Year,Month,Day,Value,Completeness"]
    lines += [f"{d.year},{d.month},{d.day},{v:.1f},C" for d, v in zip(idx, rain, strict=True)]
    hko.write_text("\n".join(lines) + "\n", encoding="utf-8")
    when = np.repeat(idx, n)
    pd.DataFrame(
        {
            "CALLDATE": when.strftime("%d/%m/%Y"),
            "FAILDATE": "-",
            "FEATTYPE": "Soil Cut",
            "EASTING": 830000,
            "NORTHING": 820000,
            "lon": 114.1,
            "lat": 22.3,
        }
    ).to_csv(tmp_path / "inc.csv", index=False)
    result = runner.invoke(
        app,
        [
            "risk", "calibrate-rain", "--incidents", str(tmp_path / "inc.csv"), "--rain", str(hko),
            "--fit-to", "2001", "--compare-forms", "--day", "2005-06-01",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert "rain_model" in got and got["skill_test_ge10"]["event_days"] > 0
    forms = got["rain_forms"]["forms"]
    assert got["rain_forms"]["chosen_on_inner_split"] != "r24_re"
    assert forms["r24_prev_re2"]["test_log_loss_sum"] < forms["r24_re"]["test_log_loss_sum"]
    assert set(forms["r24_re"]["rain_class_on_days"]) == {"2005-06-01"}


def test_two_day_rain_model_sees_the_day_before() -> None:
    rng = np.random.default_rng(2)
    n = 8000
    r24, prev, re2 = rng.gamma(0.5, 30.0, n), rng.gamma(0.5, 30.0, n), rng.gamma(0.8, 40.0, n)
    mu = np.exp(-4.0 + 1.2 * np.log1p(r24) + 1.5 * prev / 100 + 0.5 * re2 / 100)
    days = pd.DataFrame(
        {"n": rng.poisson(mu), "r24_mm": r24, "r_prev_mm": prev, "re2_mm": re2, "re_mm": 0.0},
        index=pd.date_range("1980-01-01", periods=n, freq="D"),
    )
    model = calibration.fit_rain_model(days, ((1, 0.5), (3, 0.5), (10, 0.5)))
    assert model.form == "r24_prev_re2"
    for c in model.curves:
        assert c.coef_prev_per_100mm > 0.5 and c.coef_ln_r24 > 0
    # a wet day before lowers the 24 h rain a class needs; the threshold is where it starts
    for k in (1, 2, 3):
        dry, wet = model.r24_threshold_mm(k, 50.0, 0.0), model.r24_threshold_mm(k, 50.0, 150.0)
        assert wet < dry
        assert (
            model.rain_class(wet + 1e-3, 50.0, 150.0)
            >= k
            > model.rain_class(max(wet - 1.0, 0), 50.0, 150.0)
        )
    again = calibration.RainModel.from_params(model.as_params())
    grid = np.linspace(0, 400, 41)
    assert (again.rain_class(grid, 30.0, 80.0) == model.rain_class(grid, 30.0, 80.0)).all()
    # the ten antecedent days give R_prev (the last) and Re2 (the nine before it)
    ante = np.array([0, 0, 0, 0, 0, 0, 0, 0, 10.0, 40.0])
    re_in, prev_in = model.inputs(ante)
    assert float(prev_in) == 40.0 and float(re_in) == pytest.approx(0.8 * 10.0)
    one_day = calibration.RainModel(model.curves, form="r24_re")
    re1, prev1 = one_day.inputs(ante)
    assert float(prev1) == 0.0 and float(re1) == pytest.approx(0.8 * 40 + 0.64 * 10)
    with pytest.raises(ModelInputError):
        calibration.RainModel.from_params({**model.as_params(), "form": "r72"})
    bad = model.as_params()
    bad["classes"][0]["coef_prev_per_100mm"] = -1.0
    with pytest.raises(ModelInputError):
        calibration.RainModel.from_params(bad)


def test_day_before_of_a_long_window_is_the_24_h_before_its_wettest_day() -> None:
    from risk_models.rainfall import day_before_wettest_24h_mm

    hourly = np.zeros((3, 48))
    hourly[0, :24], hourly[0, 24:] = 1.0, 5.0  # wettest: the second day, the first before it
    hourly[1, :24], hourly[1, 24:] = 10.0, 1.0  # wettest: the first day, the antecedent day
    hourly[2, 12:36] = 4.0  # wettest 24 h straddles the days: 12 h of window, 12 h before
    got = day_before_wettest_24h_mm(hourly, np.array([48.0, 30.0, 24.0]))
    assert got.tolist() == pytest.approx([24.0, 30.0, 12.0])
    assert day_before_wettest_24h_mm(np.ones((2, 24)), 7.0).tolist() == [7.0, 7.0]
    # against a direct reading of the definition, on random windows of 25–72 h
    rng = np.random.default_rng(4)
    for hours in (25, 30, 48, 72):
        series = rng.gamma(0.4, 6.0, (50, hours))
        last = rng.gamma(1.0, 20.0, 50)
        want = []
        for row, day in zip(series, last, strict=True):
            ext = np.r_[np.full(24, day / 24), row]
            ends = range(48, 24 + hours + 1)
            end = max(ends, key=lambda e: (ext[e - 24 : e].sum(), -e))
            want.append(ext[end - 48 : end - 24].sum())
        got = day_before_wettest_24h_mm(series, last, chunk=16)
        assert got == pytest.approx(np.array(want)), hours


def test_a_two_day_gauge_window_and_a_day_with_its_day_before_get_the_same_rain_class(
    hills,
) -> None:
    _, static = hills
    lon, lat = np.array([static["lon"].mean()]), np.array([static["lat"].mean()])
    dry = np.zeros(9)
    # 48 h of readings: 90 mm on the first day, 120 mm on the second
    two_days = np.r_[np.full(24, 90 / 24), np.full(24, 120 / 24)][None, :]
    src48 = pipeline.gauge_source(lon, lat, two_days, antecedent_daily_mm=np.r_[dry, 0.0])
    # the second day alone, the first given as the last antecedent day
    one_day = np.full((1, 24), 120 / 24)
    src24 = pipeline.gauge_source(lon, lat, one_day, antecedent_daily_mm=np.r_[dry, 90.0])
    a = pipeline.nowcast(static, pipeline.rain_for(src48, static), "landslide")
    b = pipeline.nowcast(static, pipeline.rain_for(src24, static), "landslide")
    ex_a, ex_b = a["explanation"].iloc[0], b["explanation"].iloc[0]
    assert ex_a["rain"]["rain_mm_day_before"] == pytest.approx(90.0)
    assert ex_b["rain"]["rain_mm_day_before"] == pytest.approx(90.0)
    assert ex_a["rain_probabilities"] == pytest.approx(ex_b["rain_probabilities"])
    assert (a["rain_class"].to_numpy() == b["rain_class"].to_numpy()).all()
    # without the day before, the same 120 mm is a lower chance of a landslide day
    src_dry = pipeline.gauge_source(lon, lat, one_day, antecedent_daily_mm=np.r_[dry, 0.0])
    c = pipeline.nowcast(static, pipeline.rain_for(src_dry, static), "landslide")
    p_wet = ex_b["rain_probabilities"]["p_ge_10"]
    assert c["explanation"].iloc[0]["rain_probabilities"]["p_ge_10"] < p_wet


def test_hits_in_top_share_counts_the_best_cells_and_puts_flat_ones_last() -> None:
    from risk_models.validate import hits_in_top_share

    cells = [h3.latlng_to_cell(22.3 + 0.01 * i, 114.1, 9) for i in range(10)]
    static = pd.DataFrame(
        {
            "score": np.arange(10, dtype="float64"),  # cell 9 best
            "below_slope_floor": [False] * 9 + [True],  # … but flat: last
        },
        index=pd.Index([h3.str_to_int(c) for c in cells], dtype="int64"),
    )
    static.attrs["res"] = 9
    at = [h3.cell_to_latlng(c) for c in cells]
    events = np.array([[at[i][1], at[i][0]] for i in (8, 7, 9, 0)])  # lon, lat
    # the best 20 % are cells 8 and 7: two of the four events
    assert hits_in_top_share(static, events, 0.2) == pytest.approx(0.5)
    assert hits_in_top_share(static, events, 1.0) == pytest.approx(1.0)
    assert np.isnan(hits_in_top_share(static, np.array([[0.0, 0.0]]), 0.2))
