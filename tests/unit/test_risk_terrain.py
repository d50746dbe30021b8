"""risk_models.terrain: hydrology and surface derivatives on synthetic and real DEMs."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from risk_models import terrain
from risk_models.errors import DemError
from risk_models.validate import v_valley

UTM49 = "EPSG:32649"


def write_tif(path: Path, data: np.ndarray, transform: Affine, crs: str | None, nodata=None):
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
        dtype="float32", crs=crs, transform=transform, nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data.astype("float32"), 1)
    return path


def test_v_valley_hand_is_exact_and_streams_follow_the_valley():
    elev, transform, expected = v_valley()
    filled, d8 = terrain.fill_depressions(elev, (10.0, 10.0))
    flw = terrain.flow_raster(d8, transform)
    upa = terrain.upstream_area_km2(flw)
    centre = elev.shape[1] // 2
    # the valley floor collects everything: upstream area grows down the centre column
    assert np.all(np.diff(upa[1:-1, centre]) > 0)
    streams = terrain.stream_mask(upa, 0.01)
    assert streams[-10:, centre].all()
    assert not streams[1:-1, : centre - 1].any()
    drain = np.zeros(elev.shape, bool)
    drain[:, centre] = True
    hand = terrain.hand_m(flw, drain, filled)
    assert np.nanmax(np.abs(hand[1:-1, 1:-1] - expected[1:-1, 1:-1])) < 1e-3
    # steepest descent across the valley (E or W), not the priority-flood diagonal
    assert set(np.unique(d8[1:-1, 1:centre])) == {1}
    assert set(np.unique(d8[1:-1, centre + 1 : -1])) == {16}


def test_a_filled_lake_is_exactly_flat_at_its_spill_height():
    # a bowl from -3.1 m up to a rim whose lowest notch is 5.3 m: every filled cell is 5.3
    y, x = np.mgrid[0:41, 0:41]
    elev = (np.hypot(y - 20, x - 20) * 0.9 - 3.1).astype("float32")
    elev[np.hypot(y - 20, x - 20) > 12] = 40.0
    elev[20, 30:] = np.float32(5.3)  # the notch out to the east edge
    filled, d8 = terrain.fill_depressions(elev)
    lake = filled > elev
    assert lake.sum() > 250
    assert (filled[lake] == np.float32(5.3)).all()
    # the flat lake drains through its notch: every lake cell reaches the edge, none is a pit
    upa = terrain.upstream_area_km2(terrain.flow_raster(d8, Affine(1, 0, 0, 0, -1, 0)))
    assert upa[20, 40] * 1e6 >= lake.sum()
    assert not (d8[lake] == 0).any()


def test_slope_relief_curvature_on_a_plane():
    rows, cols, res = 30, 40, 5.0
    y, x = np.mgrid[0:rows, 0:cols] * res
    plane = (50 + 0.3 * x + 0.4 * y).astype("float32")
    slope = terrain.slope_deg(plane, (res, res))
    assert np.allclose(slope, math.degrees(math.atan(0.5)), atol=1e-3)
    prof, plan, total = terrain.curvature_per_m(plane, (res, res))
    assert np.allclose(total[1:-1, 1:-1], 0, atol=1e-5)
    assert np.allclose(prof[1:-1, 1:-1], 0, atol=1e-5)
    relief = terrain.relief_m(plane, 3)
    # a 3×3 window spans 2 pixels each way: 0.3·10 + 0.4·10 m
    assert np.allclose(relief[1:-1, 1:-1], 7.0, atol=1e-4)


def test_curvature_sign_on_a_dome_and_a_bowl():
    y, x = np.mgrid[-10:11, -10:11] * 10.0
    dome = (100 - 0.01 * (x**2 + y**2)).astype("float32")
    _, _, total = terrain.curvature_per_m(dome, (10.0, 10.0))
    assert total[10, 10] == pytest.approx(0.04, rel=1e-3)  # −2(D+E), D = E = −0.02
    _, _, total_bowl = terrain.curvature_per_m(-dome, (10.0, 10.0))
    assert total_bowl[10, 10] < 0


def test_sink_depth_twi_and_distance():
    elev = np.full((7, 7), 10.0, dtype="float32")
    elev[3, 3] = 7.0  # a 3 m pit
    elev[0, :] = 9.0  # lower edge so the plateau drains north
    filled, _ = terrain.fill_depressions(elev)
    sink = terrain.sink_depth_m(filled, elev)
    assert sink[3, 3] == pytest.approx(3.0)
    assert sink.sum() == pytest.approx(3.0)

    upa = np.array([[1e-4]], dtype="float32")  # 100 m² upstream on a 10 m pixel
    twi = terrain.twi(upa, np.array([[45.0]], dtype="float32"), (10.0, 10.0))
    assert twi[0, 0] == pytest.approx(math.log(10.0 / 1.0), rel=1e-5)

    streams = np.zeros((5, 9), bool)
    streams[:, 0] = True
    dist = terrain.distance_to_stream_m(streams, (12.5, 12.5))
    assert np.allclose(dist[2], np.arange(9) * 12.5)
    assert np.isnan(terrain.distance_to_stream_m(np.zeros((3, 3), bool), (1.0, 1.0))).all()


def test_nodata_is_kept_out_of_every_output():
    elev, transform, _ = v_valley(rows=20, cols=21)
    elev[5:8, 3:6] = np.nan
    arrays = terrain.terrain_arrays(
        terrain.Dem(elev, transform, rasterio.crs.CRS.from_string(UTM49)), stream_area_km2=0.005
    )
    hole = np.isnan(elev)
    for name in ("filled_m", "hand_m", "slope_deg", "twi", "relief_m", "dist_stream_m"):
        assert np.isnan(arrays[name][hole]).all(), name
        assert np.isfinite(arrays[name][~hole]).all(), name
    assert (arrays["streams"][hole] == 255).all()
    assert (arrays["flowdir_d8"][hole] == 247).all()


def test_bad_dems_raise_dem_error(tmp_path):
    t = Affine(10, 0, 400000, 0, -10, 2800000)
    ok = np.full((8, 8), 100.0)
    with pytest.raises(DemError, match="no CRS"):
        terrain.read_dem(write_tif(tmp_path / "nocrs.tif", ok, t, None))
    with pytest.raises(DemError, match="no-data"):
        terrain.read_dem(
            write_tif(tmp_path / "empty.tif", np.full((8, 8), -9999.0), t, UTM49, nodata=-9999)
        )
    tall = ok.copy()
    tall[0, 0] = 12000
    with pytest.raises(DemError, match="plausible"):
        terrain.read_dem(write_tif(tmp_path / "tall.tif", tall, t, UTM49))
    deep = ok.copy()
    deep[0, 0] = -32768  # an undeclared no-data value
    with pytest.raises(DemError, match="nodata"):
        terrain.read_dem(write_tif(tmp_path / "deep.tif", deep, t, UTM49))
    assert terrain.read_dem(write_tif(tmp_path / "deep2.tif", deep, t, UTM49), nodata=-32768)
    with pytest.raises(DemError, match="cannot be read"):
        terrain.read_dem(tmp_path / "missing.tif")


def test_geographic_dem_is_reprojected_to_utm_and_cogs_are_written(tmp_path):
    # 0.001° grid near Guilin (110.3°E → UTM 49N)
    t = Affine(0.001, 0, 110.30, 0, -0.001, 25.30)
    y, x = np.mgrid[0:40, 0:50]
    dem = (150 + 2.0 * x + 1.0 * y).astype("float32")
    src = write_tif(tmp_path / "geo.tif", dem, t, "EPSG:4326")
    read = terrain.read_dem(src)
    assert read.crs.to_epsg() == 32649
    assert read.res_m[0] == pytest.approx(read.res_m[1])
    assert 90 < read.res_m[0] < 110
    out = terrain.derive_terrain(src, tmp_path / "out", stream_area_km2=0.05)
    assert {"hand_m", "slope_deg", "twi", "streams", "flowdir_d8", "uparea_km2"} <= set(out)
    with rasterio.open(out["slope_deg"]) as ds:
        assert ds.crs.to_epsg() == 32649
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.dtypes[0] == "float32"
        slope = ds.read(1)
    # 2 m per 0.001° of lon (~101 m) and 1 m per 0.001° of lat (~111 m) → ≈ 1.5°
    assert 1.0 < float(np.nanmedian(slope)) < 2.0


@pytest.mark.realdata
def test_derive_terrain_on_the_guilin_dem(shared_data, tmp_path):
    dem_path = shared_data / "guilin" / "guilin_oldcity_dem_12p5m_utm49n.tif"
    t0 = time.perf_counter()
    out = terrain.derive_terrain(dem_path, tmp_path, stream_area_km2=1.0)
    elapsed = time.perf_counter() - t0
    print(f"derive_terrain Guilin 1132×1132: {elapsed:.1f} s")
    with rasterio.open(out["hand_m"]) as ds:
        hand = ds.read(1)
        assert ds.crs.to_epsg() == 32649
        assert ds.shape == (1132, 1132)
    with rasterio.open(out["streams"]) as ds:
        streams = ds.read(1)
    assert np.nanmin(hand) >= 0
    assert (hand[streams == 1] == 0).all()
    # karst towers rise 100–300 m above the Li River plain
    assert 100 < np.nanmax(hand) < 400
    assert 0.005 < (streams == 1).mean() < 0.05


def test_flat_valley_floor_drains_along_its_centre():
    # a 9-cell-wide flat floor between walls, closed at the top, open at the bottom edge
    rows, cols = 40, 31
    c = np.arange(cols)
    wall = np.maximum(np.abs(c - 15) - 4, 0).astype("float32")
    elev = np.broadcast_to(10.0 + wall, (rows, cols)).copy()
    elev[0, :] = 20.0
    filled, d8 = terrain.fill_depressions(elev, (10.0, 10.0))
    flw = terrain.flow_raster(d8, Affine(10, 0, 0, 0, -10, 0))
    assert flw.isvalid  # no loops
    upa = terrain.upstream_area_km2(flw)
    # the whole floor leaves through the middle of the bottom row, not along a wall
    assert int(np.argmax(upa[-1])) == 15
    assert upa[-1, 15] > 0.5 * (rows - 1) * 9 * 100 / 1e6
    streams = terrain.stream_mask(upa, 0.01)
    assert streams[-5:, 15].all() and not streams[-5:, 11].any()
