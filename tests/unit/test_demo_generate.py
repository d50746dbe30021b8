"""The synthetic demo-city generator (:mod:`layers.demo`): counts, topology, terrain, determinism.

Pure Python: no database.  One scale-1 city is generated per module (a few seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pandas.api.types import (
    is_bool_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_string_dtype,
)

from layers.catalog import CATALOG, VENUE_CATEGORIES
from layers.demo import DemoCity, generate_city

METRIC = "EPSG:32649"
SEED = 42
SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"
GEOM_TYPE = {
    "hazard_sites": "Point",
    "buildings": "Polygon",
    "rivers": "MultiLineString",
    "roads": "MultiLineString",
    "admin_areas": "MultiPolygon",
    "grids": "MultiPolygon",
}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> DemoCity:
    calls: list[tuple[str, float]] = []
    out = generate_city(
        tmp_path_factory.mktemp("demo"),
        scale=1.0,
        seed=SEED,
        progress=lambda s, f: calls.append((s, f)),
    )
    out.meta["_progress_calls"] = calls
    return out


@pytest.fixture(scope="module")
def metric(city: DemoCity) -> dict[str, gpd.GeoDataFrame]:
    return {k: city.layers[k].to_crs(METRIC) for k in ("admin_areas", "grids", "rivers")}


def _level(admin: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    return admin[admin["level"] == level]


# --- schema ------------------------------------------------------------------


def test_every_catalog_layer_but_warnings_with_catalog_columns_and_dtypes(city: DemoCity):
    assert set(city.layers) == set(CATALOG) - {"warnings"}
    for layer_id, gdf in city.layers.items():
        layer = CATALOG[layer_id]
        assert gdf.crs.to_epsg() == 4326, layer_id
        assert list(gdf.columns) == [*layer.property_names, "geometry"], layer_id
        want = GEOM_TYPE.get(layer_id, layer.geometry_type)
        assert set(gdf.geom_type) == {want}, layer_id
        assert gdf.is_valid.all(), layer_id
        assert gdf["code"].is_unique and gdf["code"].notna().all(), layer_id
        for p in layer.properties:
            col = gdf[p.name]
            if p.required:
                assert col.notna().all(), (layer_id, p.name)
            if p.enum:
                assert set(col.dropna()) <= set(p.enum), (layer_id, p.name)
            check = {
                "integer": is_integer_dtype,
                "number": is_float_dtype,
                "boolean": is_bool_dtype,
                "string": is_string_dtype,
                "datetime": lambda c: (
                    isinstance(c.dtype, pd.DatetimeTZDtype) and str(c.dt.tz) == "UTC"
                ),
            }[p.type]
            assert check(col), (layer_id, p.name, col.dtype)


def test_counts_at_scale_1(city: DemoCity):
    lyr = city.layers
    admin = lyr["admin_areas"]
    assert len(_level(admin, "district")) == 1
    assert len(_level(admin, "street")) >= 5
    assert len(_level(admin, "community")) >= 30
    assert len(lyr["grids"]) >= 300
    assert len(lyr["addresses"]) >= 20_000
    assert len(lyr["buildings"]) >= 10_000
    assert len(lyr["venues"]) >= 3_000
    assert set(lyr["venues"]["category"]) == set(VENUE_CATEGORIES)
    assert len(lyr["shelters"]) >= 30
    assert len(lyr["rescue_teams"]) >= 10
    assert len(lyr["cameras"]) >= 1_000
    assert len(lyr["hazard_sites"]) >= 50
    sensors = lyr["sensors"]
    assert (sensors["kind"] == "rain_gauge").sum() >= 30
    assert (sensors["kind"] == "water_level").sum() >= 3
    assert 100 <= len(lyr["incidents"]) <= 1000
    assert city.meta["counts"] == {k: len(v) for k, v in lyr.items()}
    assert city.meta["scale"] == 1.0 and city.meta["seed"] == SEED


def test_progress_reports_monotonic_fractions_up_to_one(city: DemoCity):
    calls = city.meta["_progress_calls"]
    fracs = [f for _, f in calls]
    assert len(calls) >= 5 and fracs == sorted(fracs)
    assert fracs[0] == 0.0 and fracs[-1] == 1.0


# --- admin units and grids ---------------------------------------------------


def test_admin_hierarchy_links_and_names(city: DemoCity, metric):
    admin = city.layers["admin_areas"]
    district, streets = _level(admin, "district"), _level(admin, "street")
    comms = _level(admin, "community")
    assert district["name"].iloc[0] == "石岐区" and district["parent_code"].isna().all()
    assert (streets["parent_code"] == district["code"].iloc[0]).all()
    assert streets["name"].str.contains("(?:街道|镇)$").all()
    assert comms["name"].str.contains("(?:社区|村)$").all()
    assert set(comms["parent_code"]) <= set(streets["code"])
    grids = city.layers["grids"]
    assert set(grids["community_code"]) == set(comms["code"])
    assert (grids["code"].str.split("-G").str[0] == grids["community_code"]).all()
    # Every community lies inside its street, every street inside the district (metres).
    m = metric["admin_areas"].set_index("code")
    parent = m.loc[m["parent_code"].dropna().index]
    outside = shapely.area(
        shapely.difference(
            parent.geometry.to_numpy(), m.loc[parent["parent_code"]].geometry.to_numpy()
        )
    )
    assert outside.max() < 1.0


def test_grids_tile_communities_exactly(metric):
    grids = metric["grids"]
    comms = _level(metric["admin_areas"], "community").set_index("code")
    g = grids.geometry.to_numpy()
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    a, b = a[a < b], b[a < b]
    assert len(a) > len(grids)  # neighbours touch
    overlap = shapely.area(shapely.intersection(g[a], g[b]))
    assert overlap.max() <= 1.0
    for code, members in grids.groupby("community_code"):
        union = shapely.union_all(members.geometry.to_numpy())
        comm = comms.geometry[code]
        assert abs(union.area - comm.area) <= 0.001 * comm.area, code
        assert shapely.symmetric_difference(union, comm).area <= 0.001 * comm.area, code
    assert abs(comms.area.sum() - grids.area.sum()) <= 0.001 * comms.area.sum()


def test_grid_workers_and_population(city: DemoCity):
    grids = city.layers["grids"]
    assert grids["worker_name"].str.len().between(2, 4).all()
    assert grids["worker_phone"].str.fullmatch(r"1[3-9]\d \d{4} \d{4}").all()
    assert (grids["households"] > 0).all()
    ratio = grids["population"] / grids["households"]
    assert ratio.between(2.0, 3.5).all()
    dense = grids["population"] / grids.to_crs(METRIC).area
    assert dense.max() > 20 * dense.median() or dense.quantile(0.9) > 5 * dense.quantile(0.1)


# --- addresses and buildings -------------------------------------------------


def test_every_address_lies_in_the_grid_it_names(city: DemoCity):
    addr = city.layers["addresses"]
    grids = city.layers["grids"].set_index("code")
    assert addr["grid_code"].notna().all()
    poly = grids.geometry.reindex(addr["grid_code"]).to_numpy()
    assert shapely.covers(poly, addr.geometry.to_numpy()).all()


def test_address_components_match_admin_units(city: DemoCity):
    addr = city.layers["addresses"]
    admin = city.layers["admin_areas"].set_index("code")
    comm_code = addr["grid_code"].str.split("-G").str[0]
    assert (admin["name"].reindex(comm_code).to_numpy() == addr["community"].to_numpy()).all()
    street_code = admin["parent_code"].reindex(comm_code)
    assert (admin["name"].reindex(street_code).to_numpy() == addr["street"].to_numpy()).all()
    assert (addr["province"] == "广东省").all() and (addr["district"] == "石岐区").all()
    assert addr["code"].str.fullmatch(r"\d{16,}").all()
    parts = [
        "province",
        "city",
        "district",
        "street",
        "community",
        "road",
        "house_number",
        "estate",
        "building",
        "unit",
        "room",
    ]
    joined = addr[parts].fillna("").astype(str).agg("".join, axis=1)
    assert (joined == addr["full_address"]).all()
    assert addr["house_number"].str.fullmatch(r"\d+号").all()
    rooms = addr[addr["room"].notna()]
    assert len(rooms) >= 0.2 * len(addr)  # room-level addresses inside buildings
    assert rooms["room"].str.fullmatch(r"\d+室").all()
    assert rooms["floor"].str.fullmatch(r"\d+层").all()
    assert rooms["unit"].dropna().str.fullmatch(r"\d+单元").all()
    assert (
        addr["estate"]
        .dropna()
        .str.contains(
            "(?:花园|华庭|苑|新村|豪庭|公馆|小区|家园|府|花城|大厦|广场|中心|大楼|商厦|期)$"
        )
        .all()
    )
    assert addr["room"].isna().sum() >= 5_000  # house-number-level addresses too


def test_buildings_have_addresses_and_do_not_overlap(city: DemoCity):
    bld = city.layers["buildings"]
    addr = city.layers["addresses"].set_index("code")
    assert bld["address_code"].notna().mean() > 0.99
    linked = addr.loc[bld["address_code"].dropna()]
    assert linked["room"].isna().all()  # a building's own address is its house-number address
    assert set(bld["use"]) == {"residential", "commercial", "public", "industrial"}
    assert bld["floors"].between(1, 40).all()
    m = bld.to_crs(METRIC).geometry.to_numpy()
    a, b = shapely.STRtree(m).query(m, predicate="intersects")
    assert (a == b).all()
    area = shapely.area(m)
    assert 50 < np.median(area) < 1500


def test_buildings_prefer_the_lowlands(city: DemoCity):
    with rasterio.open(city.dem_path) as dem:
        c = city.layers["buildings"].to_crs(METRIC).centroid
        elev = np.array([v[0] for v in dem.sample(zip(c.x, c.y, strict=True))])
        all_elev = dem.read(1, out_shape=(256, 256))
    assert np.median(elev) < 40.0
    assert np.median(elev) < np.median(all_elev)


# --- venues, shelters, cameras, hazards ---------------------------------------


def test_venues_key_sites_addresses_and_grids(city: DemoCity):
    v = city.layers["venues"]
    must = {
        "school",
        "kindergarten",
        "hospital",
        "elderly_care",
        "religious_site",
        "hazardous_chemicals",
        "market",
        "shelter",
    }
    assert v.loc[v["category"].isin(must), "key_site"].all()
    assert not v.loc[v["category"].isin(["shop", "restaurant"]), "key_site"].any()
    assert v["address_code"].dropna().isin(city.layers["addresses"]["code"]).all()
    assert v["name"].str.len().min() >= 2
    _assert_points_in_named_grids(city, "venues")
    shelters = city.layers["shelters"]
    assert (shelters["capacity"] > 0).all() and shelters["contact"].notna().all()
    mirrored = v[v["category"] == "shelter"]
    assert sorted(mirrored["name"]) == sorted(shelters["name"])


def _assert_points_in_named_grids(city: DemoCity, layer: str) -> None:
    pts = city.layers[layer]
    grids = city.layers["grids"].set_index("code")
    named = pts[pts["grid_code"].notna()]
    assert len(named) >= 0.95 * len(pts)
    poly = grids.geometry.reindex(named["grid_code"]).to_numpy()
    assert shapely.covers(poly, named.geometry.to_numpy()).all(), layer


@pytest.mark.parametrize(
    "layer", ["cameras", "hazard_sites", "sensors", "incidents", "shelters", "rescue_teams"]
)
def test_point_layers_name_their_containing_grid(city: DemoCity, layer: str):
    _assert_points_in_named_grids(city, layer)


def test_cameras(city: DemoCity):
    cam = city.layers["cameras"]
    assert cam["heading_deg"].between(0, 360, inclusive="left").all()
    ptz = cam["kind"] == "ptz"
    assert (cam.loc[ptz, "fov_deg"] == 360).all()
    assert cam.loc[~ptz, "fov_deg"].between(50, 120).all()
    assert cam["range_m"].between(30, 120).all()
    assert 0.03 < (cam["status"] == "offline").mean() < 0.15
    assert set(cam["kind"]) == {"gun", "dome", "ptz"}


def test_hazard_sites_sit_where_the_terrain_makes_them_plausible(city: DemoCity):
    hz = city.layers["hazard_sites"].to_crs(METRIC)
    with rasterio.open(city.dem_path) as src:
        dem = src.read(1)
        gy, gx = np.gradient(dem, 30.0)
        slope = np.degrees(np.arctan(np.hypot(gx, gy)))
        rows, cols = rasterio.transform.rowcol(src.transform, hz.geometry.x, hz.geometry.y)
    slope_at = slope[np.asarray(rows), np.asarray(cols)]
    elev_at = dem[np.asarray(rows), np.asarray(cols)]
    slides = hz["kind"].isin(["landslide", "collapse"]).to_numpy()
    assert slides.sum() >= 20 and np.median(slope_at[slides]) > 20.0
    wet = (hz["kind"] == "waterlogging").to_numpy()
    assert wet.sum() >= 10 and np.median(elev_at[wet]) < 15.0
    assert set(hz["level"]) <= {"small", "medium", "large", "huge"}
    assert (hz["threat_people"] > 0).all() and (hz["threat_property"] > 0).all()


# --- terrain and rivers --------------------------------------------------------


def test_dem_is_a_cloud_optimized_geotiff(city: DemoCity):
    assert city.dem_path.exists() and city.dem_path.parent.is_dir()
    with rasterio.open(city.dem_path) as src:
        assert src.crs.to_epsg() == 32649
        assert src.res == (30.0, 30.0)
        assert src.width >= 1000 and src.height >= 1000
        assert src.dtypes[0] == "float32" and src.nodata is not None
        assert src.profile.get("tiled") and src.block_shapes[0][0] < src.height
        assert src.overviews(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        dem = src.read(1)
    assert 400.0 <= float(dem.max()) <= 650.0  # hills
    assert np.mean(dem < 10.0) > 0.05  # a floodplain a few metres above datum


def test_rivers_run_downhill(city: DemoCity, metric):
    rivers = metric["rivers"]
    parts = shapely.get_parts(rivers.geometry.to_numpy())
    assert len(parts) == len(rivers)  # one source-to-mouth line per river
    start = shapely.get_point(parts, 0)
    end = shapely.get_point(parts, -1)
    with rasterio.open(city.dem_path) as src:
        z0 = np.array([v[0] for v in src.sample(shapely.get_coordinates(start))])
        z1 = np.array([v[0] for v in src.sample(shapely.get_coordinates(end))])
    assert (z0 > z1).all()  # channel beds descend from source to mouth
    assert rivers["name"].iloc[0] == "石岐河" and rivers["class"].iloc[0] == "river"
    assert set(rivers["class"]) <= {"river", "stream", "canal"}
    assert rivers.length.iloc[0] > rivers.length.median()


# --- sensors -------------------------------------------------------------------


def test_sensor_readings_cover_a_week_for_every_sensor(city: DemoCity):
    obs = city.sensor_readings
    sensors = city.layers["sensors"].set_index("code")
    assert list(obs.columns) == ["sensor_code", "observed_at", "value", "unit"]
    assert str(obs["observed_at"].dt.tz) == "UTC" and is_float_dtype(obs["value"])
    assert set(obs["sensor_code"]) == set(sensors.index)
    span = obs.groupby("sensor_code")["observed_at"].agg(["min", "max", "count"])
    assert (span["max"] - span["min"] >= pd.Timedelta(days=6, hours=23)).all()
    assert span["count"].nunique() == 1 and span["count"].iloc[0] >= 7 * 24
    assert obs["observed_at"].max() < pd.Timestamp("2026-06-07T00:00:01Z")
    assert (obs["unit"].to_numpy() == sensors["unit"].reindex(obs["sensor_code"]).to_numpy()).all()
    rain = obs[obs["unit"] == "mm"]
    assert (rain["value"] >= 0).all() and (rain["value"] == 0).mean() > 0.7
    assert rain.groupby("sensor_code")["value"].sum().max() > 5.0  # a couple of showers
    level = obs[obs["unit"] == "m"]
    swing = level.groupby("sensor_code")["value"].agg(lambda s: s.max() - s.min())
    assert (swing > 0.05).all()


# --- determinism ---------------------------------------------------------------


def _generate_small(path: Path) -> DemoCity:
    return generate_city(path, scale=0.1, seed=7)


def test_same_seed_same_city_and_idempotent_dem(tmp_path: Path):
    a = _generate_small(tmp_path / "a")
    b = _generate_small(tmp_path / "b")
    assert set(a.layers) == set(b.layers)
    for k in a.layers:
        pd.testing.assert_frame_equal(
            a.layers[k].drop(columns="geometry"), b.layers[k].drop(columns="geometry"), obj=k
        )
        assert (a.layers[k].geometry.to_wkb() == b.layers[k].geometry.to_wkb()).all(), k
    pd.testing.assert_frame_equal(a.sensor_readings, b.sensor_readings)
    with rasterio.open(a.dem_path) as da, rasterio.open(b.dem_path) as db:
        assert np.array_equal(da.read(1), db.read(1))
    assert a.meta == b.meta
    # Running again into the same directory overwrites the DEM cleanly.
    c = _generate_small(tmp_path / "a")
    assert c.dem_path == a.dem_path and sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "dem.tif"
    ]
    with rasterio.open(c.dem_path) as dc, rasterio.open(b.dem_path) as db:
        assert np.array_equal(dc.read(1), db.read(1))


def test_another_seed_gives_another_city(tmp_path: Path):
    a = _generate_small(tmp_path / "a")
    b = generate_city(tmp_path / "b", scale=0.1, seed=8)
    assert not a.layers["grids"].geometry.geom_equals(b.layers["grids"].geometry).all()


# --- scenarios -----------------------------------------------------------------


def _scenarios() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(SCENARIOS.glob("*.json"))}


def test_scenario_files_follow_the_format():
    sc = _scenarios()
    assert {"typhoon_300mm_24h", "cloudburst_100mm_3h", "light_rain"} <= set(sc)
    assert (SCENARIOS / "README.md").exists()
    for name, s in sc.items():
        assert s["id"] == name
        assert {
            "id",
            "name_zh",
            "name_en",
            "description",
            "start",
            "step_minutes",
            "rain_mm",
            "spatial",
            "antecedent_daily_mm",
        } <= set(s)
        assert pd.Timestamp(s["start"]).tzinfo is not None and s["start"].endswith("Z")
        assert s["step_minutes"] == 60
        assert all(r >= 0 for r in s["rain_mm"]) and len(s["antecedent_daily_mm"]) == 10
        sp = s["spatial"]
        assert sp["kind"] in ("uniform", "gradient")
        assert 0 < sp["factor_min"] <= sp["factor_max"]
        assert 0 <= sp["direction_deg"] < 360


def test_scenario_rain_amounts():
    sc = _scenarios()
    typhoon = sc["typhoon_300mm_24h"]["rain_mm"]
    assert len(typhoon) == 24 and abs(sum(typhoon) - 300) < 1
    burst = sc["cloudburst_100mm_3h"]["rain_mm"]
    assert max(sum(burst[i : i + 3]) for i in range(len(burst) - 2)) >= 100  # CMA red
    light = sc["light_rain"]["rain_mm"]
    assert max(light) < 2.5 and sum(light) < 25
    assert sc["light_rain"]["spatial"]["kind"] == "uniform"


def test_nearest_index_is_one_per_point_even_on_ties() -> None:
    import numpy as np
    import shapely

    from layers.demo.city import nearest_index

    roads = np.array([shapely.LineString([(0, 0), (10, 0)]), shapely.LineString([(0, 2), (10, 2)])])
    points = shapely.points([(5, 1), (5, 1.5), (5, -3)])  # the first is as near to both
    got = nearest_index(roads, points)
    assert got.shape == (3,) and got[1] == 1 and got[2] == 0 and got[0] in (0, 1)
