"""risk_models.static_tiles: the static table built band by band from the terrain COGs equals
the in-memory build_static table exactly (every column, every value, the fitted attributes)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import LineString

from risk_models import static_tiles
from risk_models.errors import ModelInputError
from risk_models.params import PipelineParams
from risk_models.static import build_static
from risk_models.terrain_tiles import derive_terrain_tiled
from tests.support.risk_synth import write_array_dem

UTM49 = "EPSG:32649"
ORIGIN = (500_000.0, 2_500_000.0)


def write_dem(path: Path, z: np.ndarray, res: float = 30.0, crs: str = UTM49) -> Path:
    return write_array_dem(path, z, res, crs)


def hills(seed: int, rows: int = 300, cols: int = 160) -> np.ndarray:
    """Integer-metre hills (flats and pits), a long closed trench across many bands, a lake
    flat, a no-data hole and a no-data strip along an edge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    z = 50 + 0.2 * y + 20 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 2, (rows, cols))
    z = np.round(z).astype("float32")
    z[30:270, 60:85] = 90.0  # a plateau holding a ditch 1 m deep and 220 px long
    z[40:260, 66:76] = 89.0
    z[150:175, 20:60] = 35.0
    z[200:206, 100:115] = np.nan
    z[:, :3] = np.nan
    return z


def lonlat(rows: np.ndarray, cols: np.ndarray, res: float = 30.0) -> np.ndarray:
    x = ORIGIN[0] + (np.asarray(cols) + 0.5) * res
    y = ORIGIN[1] - (np.asarray(rows) + 0.5) * res
    lon, lat = Transformer.from_crs(UTM49, 4326, always_xy=True).transform(x, y)
    return np.column_stack([lon, lat])


def assert_same_table(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert got.attrs == ref.attrs


PARAMS = PipelineParams(stream_area_km2=0.05, relief_window_m=150.0, window_rows=16)


@pytest.fixture(scope="module")
def hills_dem(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("hills")
    path = write_dem(folder / "dem.tif", hills(0))
    layers = derive_terrain_tiled(
        path, folder / "terrain", stream_area_km2=PARAMS.stream_area_km2,
        relief_window_m=PARAMS.relief_window_m, tile_px=64, halo_px=4,
    )  # fmt: skip
    return path, layers


def test_bands_with_sites_roads_and_cut_depressions_equal_the_whole_raster(
    hills_dem, monkeypatch, caplog
):
    path, layers = hills_dem
    rng = np.random.default_rng(3)
    sites = lonlat(rng.integers(0, 300, 80), rng.integers(0, 160, 80))
    # roads only in the top third: bands below find theirs by widening
    roads = [
        LineString(lonlat(np.array([5.3, 80.7]), np.array([2.2, 150.9]))),
        LineString(lonlat(np.array([60.4, 30.1, 95.6]), np.array([10.3, 80.8, 140.2]))),
    ]
    kw = {"res": 9, "params": PARAMS, "sites_lonlat": sites, "roads_lonlat": roads}
    ref = build_static(path, **kw)
    assert {"dist_road_m", "site_density_per_km2"} <= set(ref.columns)
    assert ref["wl_depth_m_20mm"].gt(0).any() and ref["events"].sum() > 50
    assert "isotonic on 5 held-out folds" == ref.attrs["calibration"]
    # a 2-row first halo: the trench and the roads cross the windows' cut sides
    monkeypatch.setattr(static_tiles, "HALO_ROWS", 2)
    with caplog.at_level(logging.DEBUG, logger="risk_models.static_tiles"):
        got = static_tiles.build_static_tiled(path, layers, band_rows=32, **kw)
    assert "a depression crosses" in caplog.text and "a road may lie beyond" in caplog.text
    assert_same_table(got, ref)


@pytest.mark.parametrize(("ditch_m", "widens"), [(1.0, True), (5.0, False)])
def test_a_depression_deeper_than_the_pond_cap_needs_no_wider_window(
    tmp_path, monkeypatch, caplog, ditch_m, widens
):
    # a smooth slope with one ditch across every band: ponds only if ≤ pond_max_depth_m (3 m)
    y, x = np.mgrid[0:200, 0:120]
    z = (100 + 0.5 * x + 0.05 * y).astype("float32")
    z[20:180, 36:56] = 200.0  # a dyke above the slope, the ditch along its crest
    z[30:170, 41:51] = 200.0 - ditch_m
    path = write_dem(tmp_path / "ditch.tif", z)
    layers = derive_terrain_tiled(
        path, tmp_path / "terrain", stream_area_km2=PARAMS.stream_area_km2,
        relief_window_m=PARAMS.relief_window_m, tile_px=64, halo_px=4,
    )  # fmt: skip
    ref = build_static(path, res=9, params=PARAMS)
    assert ref["wl_depth_m_640mm"].gt(0).any() == widens
    monkeypatch.setattr(static_tiles, "HALO_ROWS", 2)
    with caplog.at_level(logging.DEBUG, logger="risk_models.static_tiles"):
        got = static_tiles.build_static_tiled(path, layers, res=9, params=PARAMS, band_rows=32)
    assert ("a depression crosses" in caplog.text) == widens
    assert_same_table(got, ref)


@pytest.mark.parametrize("band_rows", [16, 48, 1000])
def test_any_band_height_gives_the_same_table(hills_dem, band_rows):
    path, layers = hills_dem
    rng = np.random.default_rng(5)
    sites = lonlat(rng.integers(0, 300, 30), rng.integers(0, 160, 30))
    p = PipelineParams(stream_area_km2=0.05, relief_window_m=150.0, window_rows=16,
                       calibration_folds=3, method="fr")  # fmt: skip
    ref = build_static(path, res=9, params=p, sites_lonlat=sites)
    got = static_tiles.build_static_tiled(
        path, layers, res=9, params=p, sites_lonlat=sites, band_rows=band_rows
    )
    assert_same_table(got, ref)


def test_without_sites_or_with_roads_off_the_raster(hills_dem):
    path, layers = hills_dem
    far = [LineString([(120.0, 30.0), (120.1, 30.1)])]
    ref = build_static(path, res=10, params=PARAMS, roads_lonlat=far)
    assert "dist_road_m" not in ref.columns and ref["score"].isna().all()
    got = static_tiles.build_static_tiled(
        path, layers, res=10, params=PARAMS, roads_lonlat=far, band_rows=64
    )
    assert_same_table(got, ref)


def test_a_map_function_runs_the_bands(hills_dem):
    path, layers = hills_dem
    calls = []

    def recording_map(fn, items):
        items = list(items)
        calls.append(len(items))
        return [fn(*a) for a in items]

    got = static_tiles.build_static_tiled(
        path, layers, res=9, params=PARAMS, map_windows=recording_map, band_rows=64
    )
    assert calls == [5]  # 300 rows in bands of 64
    assert_same_table(got, build_static(path, res=9, params=PARAMS))


def test_a_geographic_dem_gives_the_same_table(tmp_path):
    # degrees with the sea stored as 0: the terrain is on the UTM grid the DEM is warped to
    z = hills(2, 160, 160) + 60
    z[:30, :50] = 0
    path = write_dem(tmp_path / "geo.tif", z, crs="EPSG:4326")
    p = PipelineParams(nodata=0, stream_area_km2=0.05, relief_window_m=300.0, window_rows=16)
    layers = derive_terrain_tiled(
        path, tmp_path / "terrain", nodata=0, stream_area_km2=p.stream_area_km2,
        relief_window_m=p.relief_window_m, tile_px=64, halo_px=4,
    )  # fmt: skip
    rng = np.random.default_rng(8)
    sites = np.column_stack([rng.uniform(110, 110.16, 40), rng.uniform(24.84, 25, 40)])
    ref = build_static(path, res=9, params=p, sites_lonlat=sites)
    assert ref["events"].sum() > 20
    got = static_tiles.build_static_tiled(
        path, layers, res=9, params=p, sites_lonlat=sites, band_rows=32
    )
    assert_same_table(got, ref)


def test_the_margin_bounds_the_cells_and_inputs_are_checked(hills_dem, tmp_path):
    path, layers = hills_dem
    grid = static_tiles.dem_grid(path)
    # a res-9 cell is ≈ 0.4 km across: ≈ 14 rows of 30 m, the bound doubles it
    assert 28 <= static_tiles.cell_rows_bound(grid, 9) <= 40
    with pytest.raises(ModelInputError, match="missing"):
        static_tiles.build_static_tiled(
            path, {k: v for k, v in layers.items() if k != "hand_m"}, res=9
        )
    other = write_dem(tmp_path / "other.tif", hills(1, 100, 100))
    with pytest.raises(ModelInputError, match="grid"):
        static_tiles.build_static_tiled(other, layers, res=9)
    with pytest.raises(ModelInputError, match="bbox"):
        static_tiles.build_static_tiled(
            path, layers, res=9, params=PipelineParams(bbox=(114.0, 22.0, 115.0, 23.0))
        )


@pytest.mark.realdata
def test_hong_kong_res9_table_equals_the_whole_raster(shared_data, tmp_path):
    from risk_models.calibration import read_hk_incidents

    hk = shared_data / "hongkong"
    dem = hk / "hk_landsd_dtm_70m_epsg2326.tif"
    p = PipelineParams(nodata=0, stream_area_km2=0.5, relief_window_m=350.0, window_rows=128)
    layers = derive_terrain_tiled(
        dem, tmp_path / "terrain", nodata=0, stream_area_km2=p.stream_area_km2,
        relief_window_m=p.relief_window_m, tile_px=256, halo_px=8,
    )  # fmt: skip
    inc = read_hk_incidents(hk / "landslide_incidents_1984_2007.csv")
    sites = inc.loc[inc["lon"].notna() & inc["lat"].notna(), ["lon", "lat"]].to_numpy("float64")
    ref = build_static(dem, res=9, params=p, sites_lonlat=sites)
    assert len(ref) > 10_000 and ref["events"].sum() > 1_000
    got = static_tiles.build_static_tiled(dem, layers, res=9, params=p, sites_lonlat=sites,
                                          band_rows=128)  # fmt: skip
    assert_same_table(got, ref)
