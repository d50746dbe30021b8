"""Validation of the risk models on real public data and on synthetic cases with known answers.

Data folder layout as in ``../shared/data/MANIFEST.md`` (read in place):

* Ecuador (spDataLarge, CC0): spatial 5-fold cross-validated AUC of the susceptibility model.
* Hong Kong (CEDD landslide incidents, LandsD DTM): fit on incidents called 1984–1999, AUC on
  2000–2007 natural-hillside incidents against random land pixels; the calibrated rain
  classes' landslide-day skill (fit ≤ 2001, test 2002–2007, HKO daily rain); and hindcasts of
  the worst storm days 1987–2007 through the pipeline (susceptibility fitted only on
  incidents before the storm, uniform rain at the HKO total, :func:`hongkong_storms`), and
  every 2002–2007 landslide day on tables fitted up to 2001 (:func:`hongkong_test_storms`),
  with the antecedent rain known and unknown; natural-hillside incidents are verified on the
  natural-hillside fit and on the all-types fit (:data:`KINDS`).
* Guilin (SRTM-derived DEM, OSM Li River © OpenStreetMap contributors, ODbL): median distance
  from the river centre line to the nearest derived stream cell.
* Synthetic: HAND on a V-shaped valley, the infinite-slope FS, CMA rainstorm signals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from scipy.stats import rankdata

from risk_models import rainfall, terrain
from risk_models.errors import ModelInputError
from risk_models.landslide import (
    EnsembleModel,
    FrequencyRatioModel,
    LogisticModel,
    factor_of_safety,
    site_density_per_km2,
)

ECUADOR_FACTORS = ("slope", "cplan", "cprof", "elev", "log10_carea")


@dataclass(frozen=True)
class Check:
    """One row of the validation table."""

    check: str
    value: float
    goal: str
    passed: bool


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the Mann–Whitney U statistic (ties count one half)."""
    s = np.asarray(scores, dtype="float64").ravel()
    y = np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ModelInputError("AUC needs both positive and negative samples")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spatial_folds(x_m: np.ndarray, y_m: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id 0..k−1 per point from k-means clusters of the coordinates (spatial CV)."""
    from sklearn.cluster import KMeans

    xy = np.column_stack([np.asarray(x_m, float), np.asarray(y_m, float)])
    return np.asarray(KMeans(k, n_init=10, random_state=seed).fit_predict(xy))


def spatial_cv_auc(
    factors: dict[str, np.ndarray],
    labels: np.ndarray,
    folds: np.ndarray,
    make_model: Callable[[], Any],
) -> tuple[float, float]:
    """(mean of per-fold AUCs, AUC of the pooled out-of-fold scores)."""
    out = np.zeros(labels.size)
    per_fold = []
    for k in np.unique(folds):
        test = folds == k
        model = make_model().fit({n: v[~test] for n, v in factors.items()}, labels[~test])
        out[test] = model.score({n: v[test] for n, v in factors.items()})
        per_fold.append(auc(out[test], labels[test]))
    return float(np.mean(per_fold)), auc(out, labels)


def ecuador(data_dir: Path, seed: int = 0) -> dict[str, float]:
    """Spatial 5-fold CV AUCs on the Ecuador landslide points (ensemble model and baselines)."""
    pts = pd.read_csv(data_dir / "ecuador_landslides" / "landslide_points.csv")
    y = pts["lslpts"].astype(str).str.upper().eq("TRUE").to_numpy()
    factors = {n: pts[n].to_numpy(dtype="float64") for n in ECUADOR_FACTORS}
    folds = spatial_folds(pts["x"].to_numpy(), pts["y"].to_numpy(), 5, seed)
    ens_mean, ens_pooled = spatial_cv_auc(factors, y, folds, lambda: EnsembleModel(n_bins=5))
    fr_mean, _ = spatial_cv_auc(factors, y, folds, lambda: FrequencyRatioModel(n_bins=5))
    lr_mean, _ = spatial_cv_auc(factors, y, folds, LogisticModel)
    return {
        "ensemble_auc_mean": ens_mean,
        "ensemble_auc_pooled": ens_pooled,
        "fr_auc_mean": fr_mean,
        "logistic_auc_mean": lr_mean,
    }


def _rowcol(transform: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    col, row = ~transform @ (np.asarray(x, float), np.asarray(y, float))
    return np.floor(row).astype("int64"), np.floor(col).astype("int64")


def hongkong(
    data_dir: Path,
    n_negative: int = 5000,
    seed: int = 0,
    density_bandwidth_px: float = 5.0,
    train_all_types: bool = False,
) -> dict[str, float]:
    """Temporal validation on Hong Kong: fit ≤ 1999, test 2000–2007 natural-hillside incidents.

    Susceptibility is a frequency-ratio model (10 quantile bins) over land pixels of the 70 m
    DTM (sea = 0 is no data) with slope, relief, total curvature, TWI, distance to streams,
    elevation and the kernel density of natural-hillside incidents called 1984–1999 (of all
    incident types — cut slopes, walls, fills too — with ``train_all_types``).
    """
    hk = data_dir / "hongkong"
    dem = terrain.read_dem(hk / "hk_landsd_dtm_70m_epsg2326.tif", nodata=0)
    arr = terrain.terrain_arrays(dem, stream_area_km2=0.5, relief_window_m=350.0)
    land = np.isfinite(dem.elev_m)
    inc = pd.read_csv(hk / "landslide_incidents_1984_2007.csv")
    year = pd.to_datetime(inc["CALLDATE"], format="%d/%m/%Y", errors="coerce").dt.year.to_numpy()
    natural = inc["FEATTYPE"].astype(str).str.lower().eq("natural hillside").to_numpy()
    r, c = _rowcol(dem.transform, inc["EASTING"].to_numpy(), inc["NORTHING"].to_numpy())
    ok = (r >= 0) & (r < land.shape[0]) & (c >= 0) & (c < land.shape[1])
    ok[ok] = land[r[ok], c[ok]]
    train = ok & (year <= 1999) & (True if train_all_types else natural)
    test = ok & natural & (year >= 2000) & (year <= 2007)

    events = np.zeros(land.shape)
    np.add.at(events, (r[train], c[train]), 1.0)
    pixel_area = dem.res_m[0] * dem.res_m[1]
    factors = {
        "slope_deg": arr["slope_deg"],
        "relief_m": arr["relief_m"],
        "curv_total_per_m": arr["curv_total_per_m"],
        "twi": arr["twi"],
        "dist_stream_m": arr["dist_stream_m"],
        "elev_m": dem.elev_m,
        "site_density_per_km2": site_density_per_km2(
            r[train], c[train], land.shape, pixel_area, density_bandwidth_px
        ),
    }
    on_land = {k: v[land] for k, v in factors.items()}
    terrain_only = {k: v for k, v in on_land.items() if k != "site_density_per_km2"}

    rng = np.random.default_rng(seed)
    land_r, land_c = np.nonzero(land)
    pick = rng.choice(land_r.size, size=min(n_negative, land_r.size), replace=False)
    neg_r, neg_c = land_r[pick], land_c[pick]
    labels = np.r_[np.ones(int(test.sum())), np.zeros(pick.size)]

    def test_auc(grid: np.ndarray) -> float:
        return auc(np.r_[grid[r[test], c[test]], grid[neg_r, neg_c]], labels)

    out = {
        "n_train": float(train.sum()),
        "n_test": float(test.sum()),
        "slope_auc": test_auc(arr["slope_deg"]),
    }
    for name, feats in (("fr_auc", on_land), ("fr_terrain_only_auc", terrain_only)):
        model = FrequencyRatioModel(n_bins=10).fit(feats, events[land])
        grid = np.full(land.shape, np.nan)
        grid[land] = model.score(feats)
        out[name] = test_auc(grid)
    return out


def guilin(
    data_dir: Path, stream_area_km2: float = 1.0, spacing_m: float = 25.0
) -> dict[str, float]:
    """Distance (m) from the OSM Li River centre line (densified every ``spacing_m``, inside the
    DEM less a 100 m border) to the nearest derived stream cell centre."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    gl = data_dir / "guilin"
    dem = terrain.read_dem(gl / "guilin_oldcity_dem_12p5m_utm49n.tif")
    filled, d8 = terrain.fill_depressions(dem.elev_m, dem.res_m)
    upa = terrain.upstream_area_km2(terrain.flow_raster(d8, dem.transform))
    streams = terrain.stream_mask(upa, stream_area_km2)
    dist = terrain.distance_to_stream_m(streams, dem.res_m)
    rows, cols = dem.shape
    west, north = dem.transform @ (0, 0)
    east, south = dem.transform @ (cols, rows)
    frame = box(min(west, east), min(south, north), max(west, east), max(south, north))
    rivers = gpd.read_file(gl / "guilin_lijiang_osm_rivers.geojson").to_crs(dem.crs)
    inside = rivers.geometry.intersection(frame.buffer(-100.0))
    inside = inside[~inside.is_empty]
    xy = shapely.get_coordinates(shapely.segmentize(inside.to_numpy(), spacing_m))
    r, c = _rowcol(dem.transform, xy[:, 0], xy[:, 1])
    d = dist[r, c]
    return {
        "median_m": float(np.median(d)),
        "p90_m": float(np.percentile(d, 90)),
        "river_length_m": float(inside.length.sum()),
    }


def v_valley(
    rows: int = 60,
    cols: int = 41,
    res_m: float = 10.0,
    side_slope: float = 0.2,
    along_slope: float = 0.01,
) -> tuple[np.ndarray, Affine, np.ndarray]:
    """A V-shaped valley draining south: ``z = 100 + side·|x − x_c| + along·(distance north)``.

    Returns ``(elev_m, transform, expected_hand_m)``; the centre column is the stream, and as
    the cross slope is steeper than the diagonal descent every cell drains straight across, so
    HAND = side·|x − x_c| exactly.
    """
    col = np.arange(cols)
    row = np.arange(rows)
    across = np.abs(col - cols // 2) * res_m
    north = (rows - 1 - row) * res_m
    elev = (100.0 + side_slope * across[None, :] + along_slope * north[:, None]).astype("float32")
    expected = np.broadcast_to(side_slope * across[None, :], elev.shape).astype("float64")
    transform = Affine(res_m, 0, 500000.0, 0, -res_m, 2800000.0)
    return elev, transform, expected


def synthetic() -> dict[str, float]:
    """Max errors of HAND and FS, and CMA signal mismatches, on synthetic inputs."""
    elev, transform, expected = v_valley()
    filled, d8 = terrain.fill_depressions(elev, (10.0, 10.0))
    flw = terrain.flow_raster(d8, transform)
    streams = np.zeros(elev.shape, bool)
    streams[:, elev.shape[1] // 2] = True
    hand = terrain.hand_m(flw, streams, filled)
    interior = (slice(1, -1), slice(1, -1))
    hand_err = float(np.nanmax(np.abs(hand[interior] - expected[interior])))

    slopes = np.array([10.0, 25.0, 30.0, 45.0, 60.0])
    c_kpa, phi, gamma, z, m, gw = 5.0, 35.0, 19.0, 2.0, 1.0, 9.81
    by_hand = [
        c_kpa / (gamma * z * math.cos(math.radians(b)) * math.sin(math.radians(b)))
        + (1 - m * gw / gamma) * math.tan(math.radians(phi)) / math.tan(math.radians(b))
        for b in slopes
    ]
    fs = factor_of_safety(
        slopes,
        cohesion_kpa=c_kpa,
        friction_deg=phi,
        unit_weight_kn_m3=gamma,
        depth_m=z,
        saturation=m,
        water_unit_weight_kn_m3=gw,
    )
    fs_err = float(np.max(np.abs(fs - np.array(by_hand))))

    series, expected_sig = cma_cases()
    got = rainfall.cma_signal(series)
    return {
        "hand_max_abs_err_m": hand_err,
        "fs_max_abs_err": fs_err,
        "cma_mismatches": float(np.sum(got != expected_sig)),
        "cma_cases": float(expected_sig.size),
    }


def cma_cases() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 24 h hyetographs (mm/h, exact binary fractions) at and around the CMA
    thresholds, with the expected signal 0..4."""

    def hyeto(amount_mm: float, hours: int, start: int = 4) -> np.ndarray:
        h = np.zeros(24)
        h[start : start + hours] = amount_mm / hours
        return h

    cases = [
        (hyeto(49.5, 12), 0),
        (hyeto(50.0, 8), 1),  # 37.5 mm in 6 h, 50 mm in 12 h
        (hyeto(50.0, 12), 1),
        (hyeto(50.0, 6), 2),
        (hyeto(60.0, 4), 2),  # 45 mm in 3 h, 60 mm in 4 h
        (hyeto(50.0, 3), 3),
        (hyeto(99.0, 3), 3),
        (hyeto(100.0, 4), 3),  # 75 mm in 3 h
        (hyeto(100.0, 2), 4),
        (hyeto(120.0, 3), 4),
        (np.zeros(24), 0),
    ]
    return np.stack([c[0] for c in cases]), np.array([c[1] for c in cases])


def validation_table(data_dir: str | Path) -> pd.DataFrame:
    """Run every check; rows ``check, value, goal, pass``."""
    data = Path(data_dir)
    rows: list[Check] = []
    ec = ecuador(data)
    rows += [
        Check(
            "ecuador_spatial_cv_auc_mean_of_folds",
            ec["ensemble_auc_mean"],
            ">= 0.80",
            ec["ensemble_auc_mean"] >= 0.80,
        ),
        Check(
            "ecuador_spatial_cv_auc_pooled",
            ec["ensemble_auc_pooled"],
            ">= 0.80",
            ec["ensemble_auc_pooled"] >= 0.80,
        ),
        Check("ecuador_logistic_baseline_auc_mean", ec["logistic_auc_mean"], "info (~0.78)", True),
    ]
    hk = hongkong(data)
    hk_all = hongkong(data, train_all_types=True)
    rows += [
        Check("hongkong_2000_2007_natural_auc", hk["fr_auc"], ">= 0.80", hk["fr_auc"] >= 0.80),
        Check("hongkong_terrain_only_auc", hk["fr_terrain_only_auc"], "info", True),
        Check("hongkong_auc_trained_on_all_types", hk_all["fr_auc"], "info", True),
        Check("hongkong_slope_only_auc", hk["slope_auc"], "info (~0.63)", True),
    ]
    skill = hongkong_day_skill(data)
    skill_blind = hongkong_day_skill(data, antecedent_known=False)
    rows += [
        Check("hongkong_landslide_day_pod_2002_2007", skill["pod"], "info (days ≥ 10)", True),
        Check(
            "hongkong_false_alarm_days_per_year_2002_2007",
            skill["false_alarm_days_per_year"],
            "info",
            True,
        ),
        Check(
            "hongkong_landslide_day_pod_2002_2007_antecedent_unknown",
            skill_blind["pod"],
            "info (R24-only curves)",
            True,
        ),
        Check(
            "hongkong_false_alarm_days_per_year_2002_2007_antecedent_unknown",
            skill_blind["false_alarm_days_per_year"],
            "info",
            True,
        ),
    ]
    storms = hongkong_storms(data)
    for r in storms.itertuples(index=False):
        for k in ("yellow", "orange", "red"):
            rows.append(
                Check(
                    f"hk_storm_{r.day}_{r.kind}_hits_ge_{k}",
                    getattr(r, f"hit_ge_{k}"),
                    "info",
                    True,
                )
            )
            rows.append(
                Check(
                    f"hk_storm_{r.day}_{r.kind}_land_ge_{k}",
                    getattr(r, f"area_ge_{k}"),
                    "info",
                    True,
                )
            )
    for kind, _, _ in KINDS:
        of_kind = storms[storms["kind"] == kind]
        wet = pooled_hits(of_kind[of_kind["rain_class"] >= 2])
        every = pooled_hits(of_kind)
        goal = kind != "natural"
        rows.append(
            Check(
                f"hk_storms_{kind}_pooled_hits_ge_yellow",
                wet["hit_ge_yellow"],
                ">= 0.70 (storms at rain class >= 2)" if goal else "info (goal 0.70 missed)",
                wet["hit_ge_yellow"] >= 0.70 or not goal,
            )
        )
        rows.append(
            Check(
                f"hk_storms_{kind}_max_land_ge_yellow",
                wet["max_area_ge_yellow"],
                "<= 0.20",
                wet["max_area_ge_yellow"] <= 0.20,
            )
        )
        rows.append(
            Check(
                f"hk_storms_{kind}_pooled_hits_in_top_20pct_by_score",
                wet["hit_top_20pct_by_score"],
                "info (ceiling at 20 % of land)",
                True,
            )
        )
        # every storm, the ones the daily rain misses included (1993-11-05)
        rows.append(
            Check(
                f"hk_storms_{kind}_every_storm_hits_ge_yellow",
                every["hit_ge_yellow"],
                "info (goal 0.70 missed)",
                True,
            )
        )
    # held-out period: everything fitted on 1984–2001, every 2002–2007 landslide day replayed
    both = hongkong_test_storms(data)
    test = both[both["antecedent"] == "known"]
    rows.append(
        Check("hk_test_storms_2002_2007_days", float(test["day"].nunique()), "info (≥ 10)", True)
    )
    # the same days with the antecedent rain unknown (a gauge file of 24 h totals alone)
    blind = both[both["antecedent"] == "unknown"]
    for kind, _, _ in KINDS:
        pooled = pooled_hits(blind[blind["kind"] == kind])
        for k in ("yellow", "orange", "red"):
            rows.append(
                Check(
                    f"hk_test_storms_{kind}_antecedent_unknown_pooled_hits_ge_{k}",
                    pooled[f"hit_ge_{k}"],
                    "info",
                    True,
                )
            )
        rows.append(
            Check(
                f"hk_test_storms_{kind}_antecedent_unknown_max_land_ge_yellow",
                pooled["max_area_ge_yellow"],
                "<= 0.20",
                pooled["max_area_ge_yellow"] <= 0.20,
            )
        )
    for kind, _, _ in KINDS:
        pooled = pooled_hits(test[test["kind"] == kind])
        of_kind = test[test["kind"] == kind]
        wet = pooled_hits(of_kind[of_kind["rain_class"] >= 2])
        rows.append(
            Check(
                f"hk_test_storms_{kind}_rain_class_ge_2_hits_ge_yellow",
                wet["hit_ge_yellow"],
                "info (days the rain put at class >= 2)",
                True,
            )
        )
        for k in ("yellow", "orange", "red"):
            rows.append(
                Check(
                    f"hk_test_storms_{kind}_pooled_hits_ge_{k}",
                    pooled[f"hit_ge_{k}"],
                    "info (goal 0.70 missed)" if k == "yellow" else "info",
                    True,
                )
            )
        rows.append(
            Check(
                f"hk_test_storms_{kind}_max_land_ge_yellow",
                pooled["max_area_ge_yellow"],
                "<= 0.20",
                pooled["max_area_ge_yellow"] <= 0.20,
            )
        )
        rows.append(
            Check(f"hk_test_storms_{kind}_max_land_ge_red", pooled["max_area_ge_red"], "info", True)
        )
        rows.append(
            Check(
                f"hk_test_storms_{kind}_pooled_hits_in_top_20pct_by_score",
                pooled["hit_top_20pct_by_score"],
                "info (ceiling at 20 % of land)",
                True,
            )
        )
    gl = guilin(data)
    rows.append(
        Check("guilin_li_river_median_dist_m", gl["median_m"], "<= 100", gl["median_m"] <= 100.0)
    )
    rows.append(Check("guilin_li_river_p90_dist_m", gl["p90_m"], "info", True))
    sy = synthetic()
    rows += [
        Check(
            "synthetic_hand_max_abs_err_m",
            sy["hand_max_abs_err_m"],
            "<= 1e-3",
            sy["hand_max_abs_err_m"] <= 1e-3,
        ),
        Check(
            "synthetic_fs_max_abs_err",
            sy["fs_max_abs_err"],
            "<= 1e-6",
            sy["fs_max_abs_err"] <= 1e-6,
        ),
        Check("synthetic_cma_mismatches", sy["cma_mismatches"], "== 0", sy["cma_mismatches"] == 0),
    ]
    return pd.DataFrame(
        [(r.check, r.value, r.goal, r.passed) for r in rows],
        columns=["check", "value", "goal", "pass"],
    )


# --- Hong Kong: rain thresholds and storm hindcasts --------------------------------------------


def hongkong_day_skill(
    data_dir: Path, fit_to_year: int = 2001, antecedent_known: bool = True
) -> dict[str, float]:
    """Landslide-day skill of the calibrated rain classes: fit ≤ ``fit_to_year``, test to 2007.

    A day with rain class ≥ 2 (P(≥ 10 incidents) ≥ p) is an alarm; a landslide day has ≥ 10
    incidents (all types). Returns POD and false-alarm days per year on the test years; with
    ``antecedent_known=False`` of the R24-only curves (the classes of an unknown antecedent).
    """
    from risk_models import calibration

    days = calibration.hongkong_days(data_dir)
    year = pd.DatetimeIndex(days.index).year
    model = calibration.fit_rain_model(days[year <= fit_to_year])
    if not antecedent_known:
        model = model.without_antecedent()
    return calibration.day_skill(model, days[year > fit_to_year])


def worst_storm_days(
    incidents: pd.DataFrame, n: int = 8, first: str = "1987-01-01", gap_days: int = 3
) -> list[pd.Timestamp]:
    """The ``n`` days with the most incidents (all types) from ``first`` on (so that at least
    three years of inventory precede each), at least ``gap_days`` apart (one day per storm)."""
    counts = incidents["date"].value_counts()
    counts = counts[counts.index >= pd.Timestamp(first)].sort_values(ascending=False, kind="stable")
    out: list[pd.Timestamp] = []
    for day in counts.index:
        if all(abs((day - d).days) >= gap_days for d in out):
            out.append(pd.Timestamp(day))
        if len(out) == n:
            break
    return out


def storm_rain(static: pd.DataFrame, rain: pd.Series, day: pd.Timestamp) -> Any:
    """The HKO HQ rain of ``day`` as a uniform 24 h gauge source on the cells of ``static``,
    with the ten days before it as the antecedent series (missing days count as 0 mm)."""
    from risk_models import pipeline
    from risk_models.rainsource import gauge_source

    r24 = float(rain.get(day, np.nan))
    full = rain.asfreq("D").fillna(0.0)
    ante = full[day - pd.Timedelta(days=10) : day - pd.Timedelta(days=1)].to_numpy("float64")
    lon, lat = static["lon"].to_numpy(), static["lat"].to_numpy()
    src = gauge_source(
        np.array([lon.mean()]),
        np.array([lat.mean()]),
        np.full((1, 24), r24 / 24.0),
        antecedent_daily_mm=ante,
    )
    return pipeline.rain_for(src, static)


def replay_day(
    static: pd.DataFrame,
    events: pd.DataFrame,
    rain: pd.Series,
    day: pd.Timestamp,
    params: Any = None,
    window_days: int = 2,
) -> dict[str, Any]:
    """Landslide nowcast of one day's HKO rain on a fitted static table, verified against the
    ``events`` (lon/lat, ``date``) of ``day`` .. ``day + window − 1``: the storm's row of the
    hindcast tables (hits and land share at ≥ blue … red)."""
    from risk_models import pipeline
    from risk_models.params import PipelineParams
    from risk_models.verify import verify

    p = params or PipelineParams()
    src = storm_rain(static, rain, day)
    cells = pipeline.nowcast(static, src, "landslide", p, explain=False)
    end = day + pd.Timedelta(days=window_days - 1)
    storm = events[(events["date"] >= day) & (events["date"] <= end)]
    result = verify(cells, storm[["lon", "lat"]].to_numpy("float64"))
    by = {r["name"]: r for r in result["levels"]}
    assert src.antecedent_daily_mm is not None
    names = ("blue", "yellow", "orange", "red")
    ceiling = hits_in_top_share(static, storm[["lon", "lat"]].to_numpy("float64"), TOP_SHARE)
    return {
        "day": str(day.date()),
        "r24_mm": float(rain.get(day, np.nan)),
        "re_mm": float(rainfall.effective_antecedent_mm(src.antecedent_daily_mm, p.antecedent_k)),
        "rain_class": int(cells["rain_class"].max()),
        "n_events": result["n_events_in_area"],
        **{f"hit_ge_{k}": by[k]["pod"] for k in names},
        **{f"area_ge_{k}": by[k]["area_share"] for k in names},
        "hit_top_20pct_by_score": ceiling,
        "verification": result,
    }


#: Share of the land for the ceiling check: the target's largest area at ≥ yellow.
TOP_SHARE = 0.20


def hits_in_top_share(static: pd.DataFrame, events_lonlat: np.ndarray, share: float) -> float:
    """Share of the events (lon/lat degrees) in the ``share`` of cells with the highest
    susceptibility score (cells under the slope floor last): the best any class cut of this
    score could do with that much land warned, whatever the rain."""
    from risk_models.h3agg import latlng_to_cells

    res = int(static.attrs.get("res", 9))
    pts = np.asarray(events_lonlat, dtype="float64").reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    cells = latlng_to_cells(pts[:, 1], pts[:, 0], res) if len(pts) else np.empty(0, "int64")
    cells = cells[pd.Index(static.index).get_indexer(cells) >= 0]
    if cells.size == 0:
        return math.nan
    score = static["score"].to_numpy("float64").copy()
    score[static["below_slope_floor"].to_numpy(bool) | ~np.isfinite(score)] = -np.inf
    order = np.argsort(-score, kind="stable")
    top = static.index.to_numpy("int64")[order[: int(round(share * len(static)))]]
    return float(np.isin(cells, top).mean())


#: Kinds of the storm replays: (name, fit on natural-hillside incidents only, verify against
#: natural-hillside incidents only). ``natural_fit_all`` verifies natural-hillside failures
#: on the susceptibility fitted on every incident type, as a run given the whole inventory.
KINDS: tuple[tuple[str, bool, bool], ...] = (
    ("natural", True, True),
    ("all", False, False),
    ("natural_fit_all", False, True),
)


def hindcast_storm(
    dem: Any,
    incidents: pd.DataFrame,
    rain: pd.Series,
    day: pd.Timestamp,
    *,
    natural_only: bool,
    res: int = 9,
    params: Any = None,
    window_days: int = 2,
    natural_events: bool | None = None,
) -> dict[str, Any]:
    """Replay one storm day: susceptibility fitted only on incidents dated before the day,
    uniform rain at the HKO total of the day with Re from the ten days before, the landslide
    nowcast, and its verification against the incidents of ``day`` .. ``day + window − 1``.

    Args:
        dem: the DEM as read (:func:`risk_models.terrain.read_dem`, sea as no-data).
        incidents: :func:`risk_models.calibration.read_hk_incidents`.
        rain: :func:`risk_models.calibration.read_hko_daily`.
        natural_only: fit on the natural-hillside incidents only.
        natural_events: verify against natural-hillside incidents only (default:
            ``natural_only``).
    """
    return hindcast_storm_kinds(
        dem, incidents, rain, day, natural_only=natural_only, res=res, params=params,
        window_days=window_days,
        event_kinds=(natural_only if natural_events is None else natural_events,),
    )[0]  # fmt: skip


def hindcast_storm_kinds(
    dem: Any,
    incidents: pd.DataFrame,
    rain: pd.Series,
    day: pd.Timestamp,
    *,
    natural_only: bool,
    event_kinds: tuple[bool, ...],
    res: int = 9,
    params: Any = None,
    window_days: int = 2,
) -> list[dict[str, Any]]:
    """:func:`hindcast_storm` of one fitted table verified against several event sets
    (``event_kinds``: natural-hillside incidents only or not), one row each."""
    from risk_models import pipeline
    from risk_models.params import PipelineParams

    p = params or PipelineParams()
    located = incidents[incidents["lon"].notna() & incidents["lat"].notna()]
    inc = located[located["natural"]] if natural_only else located
    before = inc[inc["date"] < day]
    sites = before[["lon", "lat"]].to_numpy("float64")
    static = pipeline.build_static(dem, res=res, params=p, sites_lonlat=sites)
    rows = []
    for natural_events in event_kinds:
        events = located[located["natural"]] if natural_events else located
        out = replay_day(static, events, rain, day, p, window_days)
        kind = next(k for k, f, e in KINDS if f == natural_only and e == natural_events)
        rows.append({"kind": kind, "n_train": len(before), **out})
    return rows


def pooled_hits(storms: pd.DataFrame) -> dict[str, float]:
    """Share of all the storms' events in cells at ≥ each level (storms weighted by their
    events; a storm without events counts for nothing) and the largest land share warned."""
    n = storms["n_events"].to_numpy("float64")
    total = float(n.sum())
    out: dict[str, float] = {"n_events": total, "n_storms": float(len(storms))}
    for k in ("blue", "yellow", "orange", "red"):
        hits = storms[f"hit_ge_{k}"].astype("float64").fillna(0.0).to_numpy() * n
        out[f"hit_ge_{k}"] = float(hits.sum() / total) if total else math.nan
        out[f"max_area_ge_{k}"] = float(storms[f"area_ge_{k}"].max()) if len(storms) else 0.0
    if "hit_top_20pct_by_score" in storms:
        top = storms["hit_top_20pct_by_score"].astype("float64").fillna(0.0).to_numpy() * n
        out["hit_top_20pct_by_score"] = float(top.sum() / total) if total else math.nan
    return out


def test_period_storm_days(
    incidents: pd.DataFrame, fit_to_year: int = 2001, min_incidents: int = 10, gap_days: int = 3
) -> list[pd.Timestamp]:
    """Every day after ``fit_to_year`` (to the end of the record) with ≥ ``min_incidents``
    incidents of all types — the landslide days of the day-skill check — at least
    ``gap_days`` apart, worst first: the held-out storms, chosen by a rule fixed in advance."""
    later = incidents[pd.DatetimeIndex(incidents["date"]).year > fit_to_year]
    counts = later["date"].value_counts()
    days = worst_storm_days(
        later, n=len(counts), first=f"{fit_to_year + 1}-01-01", gap_days=gap_days
    )
    return [d for d in days if counts[d] >= min_incidents]


def hongkong_test_storms(
    data_dir: Path, fit_to_year: int = 2001, min_incidents: int = 10, res: int = 9
) -> pd.DataFrame:
    """Storm hindcasts on a held-out period: the susceptibility is fitted once on the
    incidents dated up to ``fit_to_year`` (natural-hillside ones, or all types), the rain
    classes are the default ones (fitted on 1984–2001), and every later landslide day
    (:func:`test_period_storm_days`) is replayed with its HKO rain; one row per day, kind and
    ``antecedent``: ``known`` (the ten days before from the HKO series) or ``unknown`` (the
    rain model's R24-only curves, the classes a nowcast gets without an antecedent series)."""
    from risk_models import calibration, pipeline
    from risk_models.params import PipelineParams

    hk = data_dir / "hongkong"
    dem = terrain.read_dem(hk / "hk_landsd_dtm_70m_epsg2326.tif", nodata=0)
    inc = calibration.read_hk_incidents(hk / calibration.HK_INCIDENTS)
    inc = inc[inc["lon"].notna() & inc["lat"].notna()]
    rain = calibration.read_hko_daily(hk / calibration.HKO_DAILY)
    p = PipelineParams()
    unknown = PipelineParams.from_dict({"rain_model": p.rain().without_antecedent().as_params()})
    days = test_period_storm_days(inc, fit_to_year, min_incidents)
    rows = []
    tables: dict[bool, tuple[pd.DataFrame, int]] = {}
    for kind, fit_natural, natural_events in KINDS:
        if fit_natural not in tables:
            fit = inc[inc["natural"]] if fit_natural else inc
            train = fit[pd.DatetimeIndex(fit["date"]).year <= fit_to_year]
            sites = train[["lon", "lat"]].to_numpy("float64")
            tables[fit_natural] = (
                pipeline.build_static(dem, res=res, params=p, sites_lonlat=sites),
                len(train),
            )
        static, n_train = tables[fit_natural]
        events = inc[inc["natural"]] if natural_events else inc
        for ante, params in (("known", p), ("unknown", unknown)):
            for day in days:
                out = replay_day(static, events, rain, day, params)
                out.pop("verification")
                rows.append({"kind": kind, "antecedent": ante, "n_train": n_train, **out})
    return pd.DataFrame(rows)


def hongkong_storms(
    data_dir: Path, days: list[pd.Timestamp] | None = None, n: int = 8, res: int = 9
) -> pd.DataFrame:
    """:func:`hindcast_storm` of the worst storm days 1987–2007 (or ``days``), for
    natural-hillside incidents and for all incident types, and for natural-hillside
    incidents on the table fitted on all types (:data:`KINDS`); one row per storm and kind."""
    from risk_models import calibration

    hk = data_dir / "hongkong"
    dem = terrain.read_dem(hk / "hk_landsd_dtm_70m_epsg2326.tif", nodata=0)
    inc = calibration.read_hk_incidents(hk / calibration.HK_INCIDENTS)
    rain = calibration.read_hko_daily(hk / calibration.HKO_DAILY)
    rows = []
    for day in days or worst_storm_days(inc, n):
        for natural, event_kinds in ((True, (True,)), (False, (False, True))):
            for out in hindcast_storm_kinds(
                dem, inc, rain, pd.Timestamp(day), natural_only=natural, event_kinds=event_kinds,
                res=res,
            ):  # fmt: skip
                out.pop("verification")
                rows.append(out)
    return pd.DataFrame(rows)
