"""Raster tiles from COGs: DEM relief, hillshade, slope, registered datasets, edges, errors."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.rasters import import_raster
from tests.support.pg import demo_database
from tiles.tms import tiles_in_bbox

DB_NAME = "tiles_raster_module"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def raster_db(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("raster-data")
    with demo_database(pg_admin_url, template_db, DB_NAME, data_dir, 0.2, 5) as url:
        # A small 'rainfall' raster (mm) in EPSG:4326 over the city centre, and a broken one.
        src = data_dir / "rain_src.tif"
        values = np.linspace(0, 200, 64 * 64, dtype="float32").reshape(64, 64)
        with rasterio.open(
            src,
            "w",
            driver="GTiff",
            width=64,
            height=64,
            count=1,
            dtype="float32",
            crs="EPSG:4326",
            transform=from_bounds(113.35, 22.45, 113.45, 22.55, 64, 64),
            nodata=-1,
        ) as dst:
            dst.write(values, 1)
        import_raster(url, src, "rainfall", data_dir)
        import_raster(url, src, "gone", data_dir)
        (data_dir / "rasters" / "gone.tif").unlink()
        yield url, data_dir


@pytest.fixture(scope="module")
async def rclient(raster_db) -> AsyncIterator[httpx.AsyncClient]:
    url, data_dir = raster_db
    app = create_app(Settings(database_url=url, env="test", log_level="WARNING", data_dir=data_dir))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def read_png(content: bytes) -> np.ndarray:
    """The PNG as an array (bands, 256, 256), decoded by GDAL's PNG driver."""
    assert content[:8] == PNG_SIGNATURE
    with (
        warnings.catch_warnings(category=NotGeoreferencedWarning, action="ignore"),
        MemoryFile(content) as mem,
        mem.open() as ds,
    ):
        assert ds.driver == "PNG"
        assert (ds.width, ds.height) == (256, 256)
        return ds.read()


def centre_tile(z: int) -> str:
    t = tiles_in_bbox((113.40, 22.50, 113.40001, 22.50001), z, z)[0]
    return f"{t[0]}/{t[1]}/{t[2]}"


@pytest.mark.parametrize("dataset", ["dem", "hillshade", "slope"])
async def test_dem_renderings_decode(rclient, dataset: str) -> None:
    r = await rclient.get(f"/raster/{dataset}/{centre_tile(13)}.png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "etag" in r.headers
    img = read_png(r.content)
    assert img.shape[0] == 4  # RGBA
    alpha = img[3]
    assert (alpha == 255).mean() > 0.9  # the tile is inside the DEM
    rgb = img[:3, alpha == 255].astype(int)
    assert rgb.std(axis=1).max() > 2  # not a flat colour
    if dataset == "hillshade":
        assert np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2])  # grey
    if dataset == "slope":
        assert (rgb[0] >= rgb[2]).all()  # yellow → red: red dominates blue everywhere
    if dataset == "dem":
        assert rgb[1].mean() > rgb[2].mean()  # terrain relief: greens/browns, no sea blue


async def test_registered_dataset_uses_its_colour_map(rclient) -> None:
    r = await rclient.get(f"/raster/rainfall/{centre_tile(12)}.png")
    img = read_png(r.content)
    inside = img[3] == 255
    assert inside.any()
    assert img[2, inside].mean() > img[0, inside].mean()  # blues


async def test_tile_outside_is_transparent(rclient) -> None:
    r = await rclient.get("/raster/dem/10/0/0.png")
    assert r.status_code == 200
    img = read_png(r.content)
    assert (img[-1] == 0).all()
    # Partly covered tile at the edge of the rainfall raster: transparent outside it.
    r = await rclient.get(f"/raster/rainfall/{centre_tile(10)}.png")
    alpha = read_png(r.content)[3]
    assert (alpha == 0).any() and (alpha == 255).any()


async def test_raster_tilejson(rclient) -> None:
    for name in ("dem", "hillshade", "slope", "rainfall"):
        doc = (await rclient.get(f"/raster/{name}/tilejson.json")).json()
        assert doc["tilejson"] == "3.0.0"
        assert doc["tiles"] == [f"http://testserver/raster/{name}/{{z}}/{{x}}/{{y}}.png"]
        west, south, east, north = doc["bounds"]
        assert west < 113.4 < east and south < 22.5 < north


async def test_raster_cache_and_304(rclient) -> None:
    path = f"/raster/hillshade/{centre_tile(14)}.png"
    r1 = await rclient.get(path)
    r2 = await rclient.get(path, headers={"If-None-Match": r1.headers["etag"]})
    assert r2.status_code == 304
    assert r1.headers["cache-control"].startswith("public")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/raster/nope/1/0/0.png", 404, "unknown_dataset"),
        ("/raster/nope/tilejson.json", 404, "unknown_dataset"),
        ("/raster/gone/12/3338/1785.png", 404, "dataset_unavailable"),
        ("/raster/dem/25/0/0.png", 404, "tile_out_of_range"),
        ("/raster/dem/2/4/0.png", 404, "tile_out_of_range"),
        ("/raster/dem/x/0/0.png", 422, "invalid_request"),
    ],
)
async def test_raster_bad_input(rclient, path: str, status: int, code: str) -> None:
    r = await rclient.get(path)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


async def test_rendering_runs_off_the_event_loop(rclient, monkeypatch) -> None:
    """Many tiles at once are rendered in worker threads, never on the event loop's thread."""
    import asyncio
    import threading

    from tiles.raster import RasterRenderer

    loop_thread = threading.get_ident()
    threads: list[int] = []
    render = RasterRenderer.render

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        threads.append(threading.get_ident())
        return render(self, *args, **kwargs)

    monkeypatch.setattr(RasterRenderer, "render", spy)
    paths = [f"/raster/slope/14/{13360 + i}/{7130 + j}.png" for i in range(4) for j in range(4)]
    results = await asyncio.gather(*(rclient.get(p) for p in paths))
    assert all(r.status_code == 200 for r in results)
    assert len(threads) == len(paths), "every tile was rendered (none from the cache)"
    assert loop_thread not in threads
