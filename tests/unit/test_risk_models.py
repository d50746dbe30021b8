"""risk_models.h3agg, landslide and flood on small synthetic inputs with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import Polygon, box

from risk_models import flood, h3agg, landslide
from risk_models.errors import ModelInputError, RasterError

# --- h3agg ----------------------------------------------------------------------------------


def test_latlng_to_cells_matches_scalar_h3():
    rng = np.random.default_rng(0)
    lat = rng.uniform(22.0, 23.0, 500)
    lon = rng.uniform(113.0, 114.0, 500)
    cells = h3agg.latlng_to_cells(lat, lon, 9)
    assert cells.dtype == np.int64
    assert (cells > 0).all()
    expected = [h3.str_to_int(h3.latlng_to_cell(a, b, 9)) for a, b in zip(lat, lon, strict=True)]
    assert cells.tolist() == expected
    with pytest.raises(RasterError):
        h3agg.latlng_to_cells(lat, lon, 16)


def test_raster_to_h3_stats_match_a_pandas_groupby():
    # 200 × 200 pixels of 30 m in UTM 50N (Hong Kong / Shenzhen)
    transform = Affine(30.0, 0, 200000.0, 0, -30.0, 2500000.0)
    rng = np.random.default_rng(3)
    slope = rng.uniform(0, 45, (200, 200)).astype("float32")
    slope[:10, :10] = np.nan
    df = h3agg.raster_to_h3(
        slope, transform, "EPSG:32650", 8,
        stats=("mean", "min", "max", "count", 90), above={"steep": 30.0}, prefix="slope_deg_",
    )  # fmt: skip
    assert df.index.dtype == np.int64
    assert df.index.name == "h3"
    assert int(df["slope_deg_count"].sum()) == int(np.isfinite(slope).sum())
    mask = np.isfinite(slope)
    cells = h3agg.pixel_cells(transform, "EPSG:32650", slope.shape, 8, mask)
    ref = pd.DataFrame({"h3": cells, "v": slope[mask]}).groupby("h3")["v"]
    pd.testing.assert_series_equal(
        df["slope_deg_mean"], ref.mean().astype("float64"), check_names=False, rtol=1e-6
    )
    assert np.allclose(df["slope_deg_p90"], ref.quantile(0.9))
    assert np.allclose(df["slope_deg_frac_steep"], ref.apply(lambda v: (v > 30).mean()))
    assert (df["slope_deg_min"] <= df["slope_deg_p90"]).all()
    # every cell is a real res-8 cell
    assert {h3.get_resolution(h3.int_to_str(int(c))) for c in df.index} == {8}


def test_polygon_to_cells_overlap_covers_centre_cells():
    poly = box(113.35, 22.50, 113.40, 22.54)
    overlap = h3agg.polygon_to_cells(poly, 9)
    centre = h3agg.polygon_to_cells(poly, 9, contain="center")
    assert overlap.dtype == np.int64
    assert set(centre) < set(overlap)
    # the overlap cover reaches beyond the polygon: its cells' centres span more than the box
    lon, lat = h3agg.cell_centres(overlap)
    assert lon.min() < 113.35 < 113.40 < lon.max()
    assert h3agg.polygon_to_cells(Polygon(), 9).size == 0
    with pytest.raises(RasterError):
        h3agg.polygon_to_cells(poly.exterior, 9)  # type: ignore[arg-type]


# --- landslide ------------------------------------------------------------------------------


def synthetic_factors(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    slope = rng.uniform(0, 50, n)
    noise = rng.normal(size=n)
    lith = rng.integers(0, 3, n).astype(float)
    logit = -6 + 0.12 * slope + 1.0 * (lith == 2)
    events = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    return {"slope_deg": slope, "noise": noise, "lithology": lith}, events


def test_frequency_ratio_learns_the_informative_factors():
    factors, events = synthetic_factors()
    model = landslide.FrequencyRatioModel(n_bins=5, categorical=["lithology"]).fit(factors, events)
    iv = model.tables["slope_deg"].iv
    assert iv[-1] > 0 > iv[0]  # steep bins more prone than gentle ones
    assert np.all(np.diff(iv) > 0)
    assert np.ptp(model.tables["noise"].iv) < np.ptp(iv) / 3
    lith = model.tables["lithology"]
    assert lith.edges.tolist() == [0.0, 1.0, 2.0]
    assert lith.iv[2] > lith.iv[0]
    # Laplace smoothing keeps an event-free bin finite
    no_events = np.zeros_like(events)
    no_events[0] = True
    smooth = landslide.FrequencyRatioModel(n_bins=5).fit(
        {"slope_deg": factors["slope_deg"]}, no_events
    )
    assert np.isfinite(smooth.tables["slope_deg"].iv).all()
    score = model.score(factors)
    from risk_models.validate import auc

    assert auc(score, events) > 0.75
    assert auc(landslide.LogisticModel().fit(factors, events).score(factors), events) > 0.75
    assert auc(landslide.EnsembleModel().fit(factors, events).score(factors), events) > 0.75
    with pytest.raises(ModelInputError):
        landslide.FrequencyRatioModel().fit(factors, np.zeros_like(events))


def test_area_classes_and_warning_matrix():
    score = np.arange(1000, dtype=float)
    cuts = landslide.area_cuts(score)
    classes = landslide.classify(score, cuts)
    assert np.bincount(classes).tolist() == [400, 300, 200, 100]
    weighted = landslide.area_cuts(
        score, (0.25, 0.25, 0.25, 0.25), area=np.r_[np.full(500, 3.0), np.ones(500)]
    )
    assert weighted[0] < 200  # the heavy low scores fill the first quarter of the area fast
    with pytest.raises(ModelInputError):
        landslide.area_cuts(score, (0.5, 0.5, 0.5, 0.5))

    s = np.array([0, 3, 3, 2, 1])
    r = np.array([3, 0, 3, 2, 1])
    # the lowest class never gets a level, moderate at most blue, red needs very high + class 3
    assert landslide.warning_level(s, r).tolist() == [0, 0, 4, 2, 0]
    every = landslide.warning_level(*np.meshgrid(np.arange(4), np.arange(4), indexing="ij"))
    assert every[0].max() == 0 and every[1].max() == 1 and every[:, 0].max() == 0
    assert every[2:, 3].min() >= 2 and (every == 4).sum() == 1
    strict = [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3]]
    assert landslide.warning_level(s, r, strict).tolist() == [0, 0, 3, 1, 0]
    with pytest.raises(ModelInputError):
        landslide.warning_level(s, r, [[0, 5]])


def test_factor_of_safety_by_hand():
    beta = 30.0
    b = math.radians(beta)
    dry = 5 / (19 * 2 * math.cos(b) ** 2 * math.tan(b)) + math.tan(math.radians(35)) / math.tan(b)
    wet = 5 / (19 * 2 * math.cos(b) ** 2 * math.tan(b)) + (1 - 9.81 / 19) * math.tan(
        math.radians(35)
    ) / math.tan(b)
    fs = landslide.factor_of_safety(np.array([beta, beta, 0.0]), saturation=np.array([0, 1, 1]))
    assert fs[0] == pytest.approx(dry, abs=1e-9)
    assert fs[1] == pytest.approx(wet, abs=1e-9)
    assert np.isinf(fs[2])
    # saturated steep slopes fail, gentle ones do not
    assert landslide.factor_of_safety(45.0) < 1 < landslide.factor_of_safety(20.0)


def test_explanation_names_level_rule_and_top_factors():
    contributions = {
        "slope_deg": np.array([0.9, -0.1]),
        "twi": np.array([0.2, 0.0]),
        "relief_m": np.array([0.5, 0.1]),
        "noise": np.array([-0.3, 0.0]),
    }
    exp = landslide.explain(
        0,
        levels=np.array([4, 0]),
        susceptibility_class=np.array([3, 0]),
        rain_class=np.array([3, 0]),
        contributions=contributions,
        factor_values={"slope_deg": np.array([38.0, 5.0])},
        rain_metrics={"rain_mm_3h": np.array([118.0, 2.0]), "cma_signal": np.array([4, 0])},
        fs=np.array([0.8, 3.0]),
    )
    assert exp["level_name"] == "red"
    assert exp["susceptibility_name"] == "very_high"
    assert "very_high" in exp["rule"] and "red" in exp["rule"]
    assert [f["factor"] for f in exp["top_factors"]] == ["slope_deg", "relief_m", "twi"]
    assert exp["top_factors"][0]["value"] == 38.0
    assert exp["rain"]["rain_mm_3h"] == 118.0
    assert exp["fs_below_1"] is True


def test_distance_to_lines():
    from shapely.geometry import LineString

    transform = Affine(10.0, 0, 0.0, 0, -10.0, 100.0)
    road = LineString([(0, 95), (100, 95)])  # along the centre of the first row
    dist = landslide.distance_to_lines_m([road], transform, (10, 10))
    assert np.allclose(dist[:, 4], np.arange(10) * 10.0)
    assert np.isnan(landslide.distance_to_lines_m([], transform, (10, 10))).all()


def test_site_density():
    dens = landslide.site_density_per_km2(
        np.array([10, 10]), np.array([10, 10]), (21, 21), 100.0 * 100.0, 2.0
    )
    # two sites on 0.01 km² pixels: the kernel integrates to 2 sites
    assert dens.sum() * 0.01 == pytest.approx(2.0, rel=1e-3)
    assert dens.argmax() == 10 * 21 + 10


# --- flood ----------------------------------------------------------------------------------


def test_manning_rating_curve_round_trip():
    q = flood.manning_discharge_m3s(2.0, width_m=20.0, bed_slope=0.001, manning_n=0.03)
    area, radius = 40.0, 40.0 / 24.0
    assert float(q) == pytest.approx(area * radius ** (2 / 3) * math.sqrt(0.001) / 0.03)
    depth = flood.stage_from_discharge_m(
        np.array([float(q), 0.0]), width_m=20.0, bed_slope=0.001, manning_n=0.03
    )
    assert depth[0] == pytest.approx(2.0, abs=1e-6)
    assert depth[1] == pytest.approx(0.0, abs=1e-9)
    trap = flood.stage_from_discharge_m(
        500.0, width_m=30.0, bed_slope=0.0005, side_slope=2.0, bankfull_depth_m=3.0
    )
    full = flood.stage_from_discharge_m(500.0, width_m=30.0, bed_slope=0.0005, side_slope=2.0)
    assert float(trap) == pytest.approx(float(full) - 3.0)
    with pytest.raises(ModelInputError):
        flood.manning_discharge_m3s(1.0, width_m=0, bed_slope=0.001)


def test_river_flood_depth_from_hand():
    hand = np.array([0.0, 1.0, 2.5, 4.0, np.nan])
    depth = flood.river_flood_depth_m(hand, 3.0)
    assert depth[:4].tolist() == [3.0, 2.0, 0.5, 0.0]
    assert np.isnan(depth[4])
    assert flood.depth_level(depth).tolist() == [4, 4, 3, 0, 0]


def test_scs_curve_number_runoff():
    # P = 100 mm, CN = 80: S = 63.5 mm, Ia = 12.7 mm, Q = 87.3² / 150.8 mm
    assert float(flood.scs_runoff_mm(100.0, 80.0)) == pytest.approx(87.3**2 / 150.8)
    assert float(flood.scs_runoff_mm(10.0, 80.0)) == 0.0  # below initial abstraction
    roofs = flood.scs_runoff_mm(np.array([50.0, 100.0]), 98.0)
    assert np.all(roofs < np.array([50.0, 100.0])) and roofs[1] > 90
    with pytest.raises(ModelInputError):
        flood.scs_runoff_mm(10.0, 0.0)


def test_waterlogging_fills_depressions_with_the_runoff_volume():
    # one 3×3 basin 1 m deep (9 m³ capacity on 1 m² pixels) with 20 m² draining into it
    filled = np.full((5, 5), 10.0, dtype="float32")
    sink = np.zeros((5, 5), dtype="float32")
    sink[1:4, 1:4] = 1.0
    upa = np.zeros((5, 5), dtype="float32")
    upa[2, 2] = 20e-6  # km²
    small = flood.waterlogging_depth_m(sink, filled, upa, runoff_mm=225.0, pixel_area_m2=1.0)
    # 20 m² × 0.225 m = 4.5 m³ spread over 9 m² → 0.5 m everywhere in the flat-bottomed basin
    assert np.allclose(small[1:4, 1:4], 0.5, atol=1e-4)
    assert small[0, 0] == 0
    big = flood.waterlogging_depth_m(sink, filled, upa, runoff_mm=1000.0, pixel_area_m2=1.0)
    assert np.allclose(big[1:4, 1:4], 1.0)  # full, spills
    sloped = sink.copy()
    sloped[2, 2] = 2.0  # a deeper centre pixel: water stands there first
    part = flood.waterlogging_depth_m(sloped, filled, upa, 25.0, 1.0)
    assert part[2, 2] == pytest.approx(0.5, abs=1e-4)  # 0.5 m³ in the 1 m² pit
    assert part[1, 1] == 0
    assert flood.depth_level(np.array([0.1, 0.2, 0.4, 0.7, 1.2])).tolist() == [0, 1, 2, 3, 4]


# --- end to end on H3 cells -----------------------------------------------------------------


@pytest.mark.realdata
def test_hong_kong_h3_cells_end_to_end(shared_data):
    from risk_models import levels, rainfall, terrain

    hk = shared_data / "hongkong"
    dem = terrain.read_dem(hk / "hk_landsd_dtm_70m_epsg2326.tif", nodata=0)
    arr = terrain.terrain_arrays(dem, stream_area_km2=0.5)
    land = np.isfinite(dem.elev_m)
    cells = h3agg.pixel_cells(dem.transform, dem.crs, dem.shape, 9, land)
    names = ("slope_deg", "relief_m", "twi", "dist_stream_m", "curv_total_per_m")
    table = pd.concat(
        [h3agg.aggregate(cells, arr[n][land], stats=("mean",), prefix=f"{n}_") for n in names],
        axis=1,
    )
    assert 10_000 < len(table) < 20_000  # ≈ 1,100 km² of land in ≈ 0.1 km² cells
    inc = pd.read_csv(hk / "landslide_incidents_1984_2007.csv")
    natural = inc[inc["FEATTYPE"].str.lower() == "natural hillside"]
    inc_cells = h3agg.latlng_to_cells(natural["lat"].to_numpy(), natural["lon"].to_numpy(), 9)
    counts = pd.Series(inc_cells).value_counts().reindex(table.index, fill_value=0)
    assert counts.sum() > 900  # nearly all natural-hillside incidents fall on land cells
    factors = {n: table[f"{n}_mean"].to_numpy() for n in names}
    model = landslide.FrequencyRatioModel(n_bins=10).fit(factors, counts.to_numpy())
    # natural-hillside failures avoid flat land (and, less so, rock-steep cells)
    slope_iv = model.tables["slope_deg"].iv
    assert slope_iv[0] < -1.5 and slope_iv[2:].min() > slope_iv[0] + 1.5

    scen = rainfall.load_scenarios(Path(__file__).resolve().parents[2] / "data" / "scenarios")
    area = np.full(len(table), 0.1)
    cal = landslide.calibrate_density_ratio(
        model.score(factors), counts.to_numpy(), area, counts.sum() / area.sum()
    )
    typhoon = scen["typhoon_300mm_24h"]
    storm = levels.assess_landslide(
        factors, model, typhoon.hourly_rain_mm(), calibration=cal,
        antecedent_daily_mm=typhoon.antecedent_daily_mm,
    )  # fmt: skip
    ratio = cal.ratio(storm.score)
    # classes are fixed ratio cuts of the calibrated density, not area shares
    lo, _, hi = landslide.DEFAULT_RATIO_CUTS
    assert (storm.susceptibility_class[(ratio >= hi) & ~storm.below_slope_floor] == 3).all()
    assert (storm.susceptibility_class[ratio < lo] == 0).all()
    assert (storm.rain_class == 3).all()  # 300 mm in 24 h after ten wet days
    assert storm.level[storm.susceptibility_class == 0].max() == 0
    assert storm.level[storm.below_slope_floor].max() == 0
    assert set(np.unique(storm.level)) == {0, 1, 3, 4}  # the last column of the matrix
    worst = int(np.argmax(np.where(storm.below_slope_floor, -np.inf, storm.score)))
    why = storm.explain(worst)
    assert why["level_name"] == "red" and "density ratio" in why["rule"]
    assert why["density_ratio"] == pytest.approx(ratio[worst], abs=1e-3)
    assert why["rain"]["rain_mm_24h"] == pytest.approx(300.0)
    assert len(why["top_factors"]) == 3 and why["top_factors"][0]["contribution"] > 0
    calm = levels.assess_landslide(
        factors, model, scen["light_rain"].hourly_rain_mm(), calibration=cal,
        antecedent_daily_mm=scen["light_rain"].antecedent_daily_mm,
    )  # fmt: skip
    assert calm.level.max() == 0
