"""``onemap risk …`` on files: terrain, susceptibility, nowcast (scenario, gauges, raster),
and clear errors with a non-zero exit for bad DEMs and bad rain."""

from __future__ import annotations

import json
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
from tests.support.risk_synth import X0, Y0, steep_sites, write_dem

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"
runner = CliRunner()


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, ["risk", *map(str, args)])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("riskcli")
    dem = write_dem(d / "dem.tif")
    lonlat = steep_sites(dem)
    x, y = Transformer.from_crs(4326, 32649, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    pd.DataFrame({"E": x, "N": y, "kind": "landslide"}).to_csv(d / "sites.csv", index=False)
    code, out = invoke(
        "susceptibility", "--dem", dem, "--inventory", d / "sites.csv", "--x-col", "E",
        "--y-col", "N", "--crs", "EPSG:32649", "--res", 9, "--out", d / "static.csv",
    )  # fmt: skip
    assert code == 0, out
    return {"dir": d, "dem": dem, "static": d / "static.csv"}


def test_terrain_writes_cogs(files, tmp_path) -> None:
    code, out = invoke("terrain", files["dem"], "--out", tmp_path / "t")
    assert code == 0, out
    with rasterio.open(tmp_path / "t" / "slope_deg.tif") as ds:
        slope = ds.read(1)
        assert ds.crs.to_epsg() == 32649
    assert 0 < np.nanmax(slope) < 90
    assert (tmp_path / "t" / "hand_m.tif").exists() and (tmp_path / "t" / "twi.tif").exists()


def test_terrain_in_tiles_writes_the_same_layers(files, tmp_path) -> None:
    code, out = invoke("terrain", files["dem"], "--out", tmp_path / "whole")
    assert code == 0, out
    code, out = invoke("terrain", files["dem"], "--out", tmp_path / "tiles", "--tile-px", 64)
    assert code == 0, out
    for name in ("filled_m", "flowdir_d8", "uparea_km2", "hand_m", "dist_stream_m", "relief_m"):
        with rasterio.open(tmp_path / "whole" / f"{name}.tif") as a:
            with rasterio.open(tmp_path / "tiles" / f"{name}.tif") as b:
                assert np.array_equal(a.read(1), b.read(1), equal_nan=True), name
    # a DEM in degrees is warped to UTM block by block first, as the whole-raster path does
    geo = tmp_path / "geo.tif"
    with rasterio.open(
        geo, "w", driver="GTiff", height=80, width=80, count=1, dtype="float32",
        crs="EPSG:4326", transform=Affine(0.001, 0, 110, 0, -0.001, 25),
    ) as dst:  # fmt: skip
        dst.write(np.tile(np.linspace(100, 200, 80, dtype="float32"), (80, 1)), 1)
    for name, extra in (("g1", []), ("g2", ["--tile-px", 64])):
        code, out = invoke("terrain", geo, "--out", tmp_path / name, *extra)
        assert code == 0, out
    with rasterio.open(tmp_path / "g1" / "hand_m.tif") as a:
        with rasterio.open(tmp_path / "g2" / "hand_m.tif") as b:
            assert a.crs == b.crs and a.crs.to_epsg() == 32649
            assert np.array_equal(a.read(1), b.read(1), equal_nan=True)


def test_susceptibility_in_tiles_and_bands_is_the_same_table(files, tmp_path) -> None:
    d = files["dir"]
    args = ("--dem", files["dem"], "--inventory", d / "sites.csv", "--x-col", "E", "--y-col", "N",
            "--crs", "EPSG:32649", "--res", 9)  # fmt: skip
    code, out = invoke("susceptibility", *args, "--tile-px", 64, "--out", tmp_path / "t.csv")
    assert code == 0, out
    want = pd.read_csv(files["static"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), want)
    # or from the layers `risk terrain` wrote
    code, out = invoke("terrain", files["dem"], "--out", tmp_path / "layers", "--tile-px", 64)
    assert code == 0, out
    code, out = invoke(
        "susceptibility", *args, "--terrain", tmp_path / "layers", "--out", tmp_path / "l.csv"
    )
    assert code == 0, out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "l.csv"), want)


def test_susceptibility_table(files) -> None:
    df = pd.read_csv(files["static"])
    assert {"h3", "score", "class"} <= set(df.columns)
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == 9 for c in df["h3"])
    assert set(df["class"]) == {0, 1, 2, 3}
    # cells holding known sites score higher than the rest on average
    assert df.loc[df["events"] > 0, "score"].mean() > df.loc[df["events"] == 0, "score"].mean()


def test_nowcast_scenario_gauges_and_raster(files, tmp_path) -> None:
    out = tmp_path / "ls.csv"
    code, text = invoke(
        "nowcast", "--model", "landslide", "--susceptibility", files["static"],
        "--rain", SCENARIOS / "typhoon_300mm_24h.json", "--out", out,
    )  # fmt: skip
    assert code == 0, text
    cells = pd.read_csv(out)
    assert {"h3", "level"} <= set(cells.columns) and cells["level"].between(0, 4).all()
    ex = json.loads(cells["explanation"].iloc[0])
    assert ex["model"] == "landslide" and len(ex["top_factors"]) == 3

    static = pd.read_csv(files["static"])
    gauges = pd.DataFrame({"lon": static["lon"].iloc[[0, -1]], "lat": static["lat"].iloc[[0, -1]]})
    gauges["rain_mm"] = [180.0, 20.0]
    gauges.to_csv(tmp_path / "g.csv", index=False)
    code, text = invoke(
        "nowcast", "--model", "rainstorm", "--susceptibility", files["static"],
        "--rain", tmp_path / "g.csv", "--hours", 3, "--out", tmp_path / "g_out.csv",
    )  # fmt: skip
    assert code == 0, text
    storm = pd.read_csv(tmp_path / "g_out.csv").set_index("h3")
    first, last = static["h3"].iloc[0], static["h3"].iloc[-1]
    assert storm.loc[first, "level"] == 4  # 180 mm in 3 h at the gauge: red signal
    assert storm.loc[last, "level"] == 0  # 20 mm in 3 h: no signal

    rain_tif = tmp_path / "rain.tif"
    with rasterio.open(
        rain_tif, "w", driver="GTiff", width=30, height=30, count=24, dtype="float32",
        crs="EPSG:32649", transform=Affine(300, 0, X0 - 900, 0, -300, Y0 + 900),
    ) as dst:  # fmt: skip
        dst.write(np.full((24, 30, 30), 4.0, dtype="float32"))
    code, text = invoke(
        "nowcast", "--model", "flood", "--susceptibility", files["static"],
        "--rain", rain_tif, "--out", tmp_path / "f.csv",
    )  # fmt: skip
    assert code == 0, text
    flood = pd.read_csv(tmp_path / "f.csv")
    ex = json.loads(flood["explanation"].iloc[0])
    assert ex["model"] == "flood" and ex["rain"]["rain_mm_event"] == pytest.approx(96.0)


def _bad_dem(path: Path, data: np.ndarray, crs: str | None = "EPSG:32649") -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "float32",
        "transform": Affine(30, 0, X0, 0, -30, Y0),
        "nodata": -9999.0,
    }
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype("float32"), 1)
    return path


@pytest.mark.parametrize(
    ("data", "crs", "message"),
    [
        (np.full((40, 40), 50.0), None, "no CRS"),
        (np.full((40, 40), -9999.0), "EPSG:32649", "no-data"),
        (np.full((40, 40), 1e7), "EPSG:32649", "plausible"),
    ],
)
def test_bad_dems_fail_clearly(files, tmp_path, data, crs, message) -> None:
    dem = _bad_dem(tmp_path / "bad.tif", data, crs)
    code, out = invoke(
        "susceptibility", "--dem", dem, "--inventory", files["dir"] / "sites.csv",
        "--x-col", "E", "--y-col", "N", "--crs", "EPSG:32649", "--out", tmp_path / "s.csv",
    )  # fmt: skip
    assert code == 1
    assert message in " ".join(out.split())
    code, out = invoke("terrain", dem, "--out", tmp_path / "t")
    assert code == 1 and message in " ".join(out.split())


@pytest.mark.parametrize(("rain_mm", "message"), [(-3.0, "≥ 0"), (float("nan"), "NaN")])
def test_bad_rain_fails_clearly(files, tmp_path, rain_mm, message) -> None:
    static = pd.read_csv(files["static"])
    pd.DataFrame(
        {"lon": static["lon"].iloc[:2], "lat": static["lat"].iloc[:2], "rain_mm": [10.0, rain_mm]}
    ).to_csv(tmp_path / "g.csv", index=False)
    code, out = invoke(
        "nowcast", "--model", "flood", "--susceptibility", files["static"],
        "--rain", tmp_path / "g.csv", "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert code == 1 and message in out
    assert not (tmp_path / "o.csv").exists()


def test_unknown_model_fails_clearly(files, tmp_path) -> None:
    code, out = invoke(
        "nowcast", "--model", "tsunami", "--susceptibility", files["static"],
        "--rain", SCENARIOS / "light_rain.json", "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert code == 1 and "unknown model" in out


def test_validate_without_data_fails_clearly(tmp_path) -> None:
    code, out = invoke("validate", "--data", tmp_path / "nowhere")
    assert code == 1 and "no real-data folder" in out


def test_inventory_off_the_dem_fails_clearly(files, tmp_path) -> None:
    pd.DataFrame({"lon": [10.0, 10.1], "lat": [50.0, 50.1]}).to_csv(
        tmp_path / "far.csv", index=False
    )
    code, out = invoke(
        "susceptibility", "--dem", files["dem"], "--inventory", tmp_path / "far.csv",
        "--out", tmp_path / "s.csv",
    )  # fmt: skip
    assert code == 1 and "nothing to fit" in " ".join(out.split())
    assert not (tmp_path / "s.csv").exists()
