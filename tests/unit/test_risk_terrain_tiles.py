"""risk_models.terrain_tiles: the windowed terrain chain equals the in-memory one, bit for bit."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio

from risk_models import terrain, terrain_tiles
from risk_models.errors import DemError
from risk_models.static import drain_uparea_km2
from tests.support.risk_synth import write_array_dem

UTM49 = "EPSG:32649"


def write_dem(path: Path, z: np.ndarray, res: float = 30.0, crs: str = UTM49) -> Path:
    return write_array_dem(path, z, res, crs, pixel_deg=0.0003)


def in_memory(path: Path, **kw) -> dict[str, np.ndarray]:
    nodata = kw.pop("nodata", None)
    dem = terrain.read_dem(path, nodata=nodata)
    ref = terrain.terrain_arrays(dem, **kw)
    ref["drain_uparea_km2"] = drain_uparea_km2(dem, ref)
    return ref


def differing(out: dict[str, Path], ref: dict[str, np.ndarray]) -> dict[str, int]:
    """Pixels that differ per layer (NaN equals NaN; everything else bit for bit)."""
    assert set(out) == set(ref)
    diff = {}
    for name, path in out.items():
        with rasterio.open(path) as ds:
            a = ds.read(1)
        b = ref[name]
        assert a.shape == b.shape and a.dtype == b.dtype, name
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        diff[name] = int((~same).sum())
    return diff


def rough_dem(seed: int, n: int = 240) -> np.ndarray:
    """Integer-metre hills (many flats and pits), a lake flat wider than a tile, a no-data hole."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n]
    z = 50 + 0.3 * x + 20 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 2, (n, n))
    z = np.round(z).astype("float32")
    z[90:130, 60:200] = 35.0
    z[180:186, 10:25] = np.nan
    return z


@pytest.mark.parametrize(
    ("seed", "tile", "halo"), [(0, 64, 4), (1, 50, 2), (2, 97, 8), (3, 240, 4)]
)
def test_tiles_equal_the_whole_raster_bit_for_bit(tmp_path, seed, tile, halo):
    path = write_dem(tmp_path / "dem.tif", rough_dem(seed))
    kw = {"stream_area_km2": 0.05, "relief_window_m": 150.0}
    out = terrain_tiles.derive_terrain_tiled(
        path, tmp_path / "out", tile_px=tile, halo_px=halo, **kw
    )
    diff = differing(out, in_memory(path, **kw))
    assert diff == dict.fromkeys(diff, 0)
    # the per-tile work files are gone, only the layers stay
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{n}.tif" for n in out)


def test_the_bench_hills_in_tiles_equal_the_whole_raster(tmp_path):
    # heights from about -200 to 600 m: depressions that cross 0 m, where a fill computed as
    # height + (spill - height) in float32 is off by a rounding step; both paths fill exactly
    from bench.bench_costs import write_dem as bench_dem

    path = bench_dem(tmp_path, 0.36)
    with rasterio.open(path) as ds:
        z = ds.read(1)
    assert z.min() < 0 < z.max()
    kw = {"stream_area_km2": 1.0, "relief_window_m": 300.0}
    out = terrain_tiles.derive_terrain_tiled(path, tmp_path / "out", tile_px=160, **kw)
    ref = in_memory(path, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    sink = ref["sink_depth_m"] > 0
    assert sink.sum() > 1000  # there are filled depressions to compare


def test_a_flat_wider_than_the_halo_widens_the_window(tmp_path, caplog):
    # a plateau-lake of 150×150 px draining through one notch: its directions depend on all of it
    z = np.full((200, 200), 60.0, dtype="float32")
    z[20:170, 20:170] = 30.0
    z[95, 170:] = np.linspace(29, 20, 30)
    path = write_dem(tmp_path / "lake.tif", z)
    kw = {"stream_area_km2": 0.5, "relief_window_m": 90.0}
    with caplog.at_level(logging.DEBUG, logger="risk_models.terrain_tiles"):
        out = terrain_tiles.derive_terrain_tiled(
            path, tmp_path / "out", tile_px=40, halo_px=2, **kw
        )
    assert "widening" in caplog.text
    ref = in_memory(path, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    # and the lake really drains to its notch
    with rasterio.open(out["uparea_km2"]) as ds:
        upa = ds.read(1)
    assert upa[95, 170] > 0.8 * 150 * 150 * 900 / 1e6


def test_streams_beyond_the_widest_window_give_the_same_distances(tmp_path):
    # smooth slopes down to one valley at the east edge: most cells lie hundreds of pixels
    # from the only stream, beyond a 64-px window, and are measured with the k-d tree
    y, x = np.mgrid[0:200, 0:240].astype("float64")
    z = (300 - 1.2 * x + 0.4 * np.abs(y - 100) + 0.01 * np.sin(y / 7.0) * x).astype("float32")
    path = write_dem(tmp_path / "far.tif", z)
    kw = {"stream_area_km2": 2.0, "relief_window_m": 90.0}
    out = terrain_tiles.derive_terrain_tiled(
        path, tmp_path / "out", tile_px=32, halo_px=2, max_window_px=64, **kw
    )
    ref = in_memory(path, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    assert np.nanmax(ref["dist_stream_m"]) > 64 * 30


def test_a_flat_beyond_the_widest_window_is_flagged(tmp_path, caplog):
    path = write_dem(tmp_path / "lake.tif", rough_dem(5))  # its lake flat spans 140 px
    kw = {"stream_area_km2": 0.05, "relief_window_m": 90.0}
    with caplog.at_level(logging.WARNING, logger="risk_models.terrain_tiles"):
        out = terrain_tiles.derive_terrain_tiled(
            path, tmp_path / "out", tile_px=32, halo_px=2, max_window_px=64, **kw
        )
    assert "a flat wider than" in caplog.text
    # routed within the window: the directions that differ are on wide flats, the lake first
    ref = in_memory(path, **kw)
    with rasterio.open(out["flowdir_d8"]) as ds:
        changed = ds.read(1) != ref["flowdir_d8"]
    flat = terrain.flat_directions(ref["filled_m"]) > 0
    assert changed[90:130, 60:200].sum() > 0.5 * changed.sum() > 0
    assert flat[changed].all()


def test_a_dem_without_streams_has_no_distance(tmp_path):
    z = (100 + np.arange(60)[None, :] * 0.5 + np.zeros((60, 1))).astype("float32")
    path = write_dem(tmp_path / "plane.tif", z)
    kw = {"stream_area_km2": 100.0, "relief_window_m": 90.0}
    out = terrain_tiles.derive_terrain_tiled(path, tmp_path / "out", tile_px=16, halo_px=2, **kw)
    ref = in_memory(path, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    with rasterio.open(out["dist_stream_m"]) as ds:
        assert np.isnan(ds.read(1)).all()


def test_a_geographic_dem_is_warped_in_blocks_like_the_whole_raster(tmp_path):
    # degrees, with the sea stored as 0: warped to UTM block by block, sea left out
    z = rough_dem(4, 200) + 60
    z[:30, :50] = 0
    path = write_dem(tmp_path / "geo.tif", z, crs="EPSG:4326")
    kw = {"stream_area_km2": 0.05, "relief_window_m": 300.0}
    out = terrain_tiles.derive_terrain_tiled(
        path, tmp_path / "out", nodata=0, tile_px=64, halo_px=4, **kw
    )
    ref = in_memory(path, nodata=0, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    with rasterio.open(out["elev_m"]) as ds:
        assert ds.crs.to_epsg() == 32649 and ds.shape != z.shape
    # the file's own no-data (-9999, the hole) and the sea's 0 both stay out of the warp
    with rasterio.open(path) as ds:
        assert ds.nodata == -9999 and (ds.read(1) == -9999).sum() > 0
    with rasterio.open(out["elev_m"]) as ds:
        elev = ds.read(1)
    assert np.nanmin(elev) > 50 and np.isnan(elev).sum() > 30 * 50


def test_bad_dems_are_refused(tmp_path):
    z = rough_dem(0, 40)
    with pytest.raises(DemError, match="no-data"):
        terrain_tiles.derive_terrain_tiled(
            write_dem(tmp_path / "none.tif", np.full((20, 20), np.nan, "float32")), tmp_path / "o"
        )
    with pytest.raises(DemError, match="plausible"):
        terrain_tiles.derive_terrain_tiled(
            write_dem(tmp_path / "tall.tif", z + 20000), tmp_path / "o"
        )
    with pytest.raises(DemError, match="cannot be read"):
        terrain_tiles.derive_terrain_tiled(tmp_path / "missing.tif", tmp_path / "o")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("rel", "nodata", "stream", "relief", "tile"),
    [
        ("hongkong/hk_landsd_dtm_70m_epsg2326.tif", 0, 0.5, 350.0, 256),
        ("guilin/guilin_oldcity_dem_12p5m_utm49n.tif", None, 1.0, 300.0, 300),
    ],
)
def test_real_dems_in_tiles_equal_the_whole_raster(
    shared_data, tmp_path, rel, nodata, stream, relief, tile
):
    path = shared_data / rel
    kw = {"stream_area_km2": stream, "relief_window_m": relief}
    out = terrain_tiles.derive_terrain_tiled(
        path, tmp_path / "out", nodata=nodata, tile_px=tile, halo_px=8, **kw
    )
    ref = in_memory(path, nodata=nodata, **kw)
    assert differing(out, ref) == dict.fromkeys(ref, 0)
    assert np.isfinite(ref["hand_m"]).sum() > 100_000
