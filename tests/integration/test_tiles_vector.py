"""Vector tiles on the demo city: MVT content, zoom rules, risk hexagons, size cap, errors."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import h3
import httpx
import mapbox_vector_tile
import psycopg
import pytest

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.catalog import CATALOG
from layers.h3cells import parent_int
from tests.support.pg import demo_database
from tiles.mvt import MAX_TILE_BYTES
from tiles.tms import tiles_in_bbox

DB_NAME = "tiles_vector_module"
#: A tile in the middle of the demo city (centre 113.4 E, 22.5 N).
CENTRE = (113.4, 22.5)


def tile_at(z: int, lon: float = CENTRE[0], lat: float = CENTRE[1]) -> tuple[int, int, int]:
    t = tiles_in_bbox((lon, lat, lon + 1e-9, lat + 1e-9), z, z)[0]
    return t


@pytest.fixture(scope="module")
def demo_url(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("tiles-demo")
    with demo_database(pg_admin_url, template_db, DB_NAME, data_dir, 1, 42) as url:
        _insert_risk_runs(url)
        yield url


#: The res-9 cell at the city centre gets level 4 in the latest run.
HOT_CELL = h3.latlng_to_cell(CENTRE[1], CENTRE[0], 9)


def _insert_risk_runs(url: str) -> None:
    """Three runs: an old done run (all level 1), the latest done run (levels 0–3 and one
    level-4 cell), and a newer *running* run that must not be the default."""
    poly = h3.LatLngPoly([(22.44, 113.33), (22.44, 113.47), (22.56, 113.47), (22.56, 113.33)])
    cells = sorted(h3.polygon_to_cells(poly, 9))
    rng = random.Random(3)
    with psycopg.connect(url) as conn:
        ids = []
        for status, age in (("done", "2 hours"), ("done", "1 hour"), ("running", "1 minute")):
            row = conn.execute(
                "INSERT INTO risk_runs (model, status, finished_at) "
                "VALUES ('synthetic', %s, now() - %s::interval) RETURNING id",
                (status, age),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        with conn.cursor().copy("COPY risk_cells (run_id, h3, res, level, score) FROM STDIN") as cp:
            for c in cells:
                cp.write_row((ids[0], h3.str_to_int(c), 9, 1, 0.25))
                level = 4 if c == HOT_CELL else rng.randint(0, 3)
                cp.write_row((ids[1], h3.str_to_int(c), 9, level, level / 4))
                cp.write_row((ids[2], h3.str_to_int(c), 9, 2, 0.5))


@pytest.fixture(scope="module")
async def demo_client(demo_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=demo_url, env="test", log_level="WARNING"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content)


async def test_tile_has_catalog_properties_without_sensitive_ones(demo_client) -> None:
    z, x, y = tile_at(14)
    r = await demo_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = decode(r.content)
    assert list(tile) == ["grids"]
    layer = tile["grids"]
    assert layer["extent"] == 4096
    assert layer["features"]
    visible = {p.name for p in CATALOG["grids"].properties if not p.sensitive}
    for f in layer["features"]:
        props = set(f["properties"])
        assert props <= visible
        assert {"code", "name"} <= props
        assert not props & {"worker_name", "worker_phone", "households", "population"}
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")


async def test_multi_layer_tile_and_zoom_rules(demo_client) -> None:
    ids = "admin_areas,roads,buildings,venues,addresses"
    z, x, y = tile_at(12)
    low = decode((await demo_client.get(f"/tiles/{ids}/{z}/{x}/{y}.mvt")).content)
    # min_zoom: admin_areas 0, roads 8 shown; buildings 14, venues 13, addresses 15 absent.
    assert {"admin_areas", "roads"} <= set(low)
    assert not {"buildings", "venues", "addresses"} & set(low)
    z, x, y = tile_at(13)
    mid = decode((await demo_client.get(f"/tiles/{ids}/{z}/{x}/{y}.mvt")).content)
    assert "venues" in mid and "buildings" not in mid
    # Below zoom 14 points are thinned to one per grid cell, with the count they stand for.
    counts = [f["properties"]["point_count"] for f in mid["venues"]["features"]]
    assert all(c >= 1 for c in counts) and sum(counts) > len(counts)
    z, x, y = tile_at(15)
    high = decode((await demo_client.get(f"/tiles/{ids}/{z}/{x}/{y}.mvt")).content)
    assert {"admin_areas", "roads", "buildings", "venues", "addresses"} <= set(high)
    # Full detail from zoom 14: no thinning (a tile over the size cap thins only its largest
    # layer: here the addresses, so venues keep every point).
    assert all("point_count" not in f["properties"] for f in high["venues"]["features"])
    z, x, y = tile_at(16)
    full = decode((await demo_client.get(f"/tiles/{ids}/{z}/{x}/{y}.mvt")).content)
    assert all("point_count" not in f["properties"] for f in full["addresses"]["features"])


async def test_simplification_below_z14_keeps_tiles_small(demo_client) -> None:
    """The same area at z13 (simplified, one tile) has fewer road vertices than at z14
    (full detail, four tiles)."""

    def vertices(geom: dict) -> int:
        def count(c: object) -> int:
            if isinstance(c, list) and c and isinstance(c[0], (int, float)):
                return 1
            return sum(count(v) for v in c) if isinstance(c, list) else 0

        return count(geom["coordinates"])

    z, x, y = tile_at(13)
    t13 = decode((await demo_client.get(f"/tiles/roads/{z}/{x}/{y}.mvt")).content)
    n13 = sum(vertices(f["geometry"]) for f in t13["roads"]["features"])
    n14 = 0
    for dx in (0, 1):
        for dy in (0, 1):
            r = await demo_client.get(f"/tiles/roads/14/{2 * x + dx}/{2 * y + dy}.mvt")
            if r.status_code == 200:
                n14 += sum(vertices(f["geometry"]) for f in decode(r.content)["roads"]["features"])
    assert 0 < n13 < n14


async def test_ogc_tiles_collection_and_tile(demo_client) -> None:
    r = await demo_client.get("/collections/roads/tiles")
    assert r.status_code == 200
    doc = r.json()
    ts = doc["tilesets"][0]
    assert ts["dataType"] == "vector"
    assert ts["tileMatrixSetURI"].endswith("WebMercatorQuad")
    item = next(lnk for lnk in ts["links"] if lnk["rel"] == "item")
    assert item["href"].startswith("http://testserver/collections/roads/tiles/WebMercatorQuad/")
    assert (await demo_client.get("/collections/roads/tiles/WebMercatorQuad")).status_code == 200
    z, x, y = tile_at(13)
    ogc = await demo_client.get(f"/collections/roads/tiles/WebMercatorQuad/{z}/{x}/{y}")
    xyz = await demo_client.get(f"/tiles/roads/{z}/{x}/{y}.mvt")
    assert ogc.status_code == 200 and ogc.content == xyz.content
    assert "roads" in decode(ogc.content)


async def test_tile_matrix_sets(demo_client) -> None:
    """``/tileMatrixSets`` lists WebMercatorQuad; its definition matches the tile bounds."""
    from tiles.tms import check_tile

    listed = (await demo_client.get("/tileMatrixSets")).json()["tileMatrixSets"]
    assert [t["id"] for t in listed] == ["WebMercatorQuad"]
    href = listed[0]["links"][0]["href"]
    assert href == "http://testserver/tileMatrixSets/WebMercatorQuad"
    doc = (await demo_client.get("/tileMatrixSets/WebMercatorQuad")).json()
    assert doc["id"] == "WebMercatorQuad" and doc["crs"].endswith("3857")
    z5 = next(m for m in doc["tileMatrices"] if m["id"] == "5")
    assert z5["matrixWidth"] == z5["matrixHeight"] == 32
    # The matrix origin and cell size give tile (5, 3, 7) the bounds the server uses.
    left, top = z5["pointOfOrigin"]
    size_m = z5["cellSize"] * z5["tileWidth"]
    b = check_tile(5, 3, 7).bounds_3857
    assert abs(b[0] - (left + 3 * size_m)) < 1e-6 and abs(b[3] - (top - 7 * size_m)) < 1e-6
    missing = await demo_client.get("/tileMatrixSets/WorldCRS84Quad")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_tile_matrix_set"
    conf = (await demo_client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conf


async def test_tilejson(demo_client) -> None:
    r = await demo_client.get("/tiles/grids,venues,risk/tilejson.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/grids,venues,risk/{z}/{x}/{y}.mvt"]
    layers = {v["id"]: v for v in doc["vector_layers"]}
    assert set(layers) == {"grids", "venues", "risk"}
    assert layers["grids"]["minzoom"] == CATALOG["grids"].min_zoom
    assert layers["venues"]["minzoom"] == 13
    assert layers["grids"]["fields"]["name"] == "String"
    assert "worker_phone" not in layers["grids"]["fields"]
    assert layers["venues"]["fields"]["capacity"] == "Number"
    assert layers["venues"]["fields"]["key_site"] == "Boolean"
    assert layers["risk"]["fields"]["level"] == "Number"
    west, south, east, north = doc["bounds"]
    assert 113.0 < west < CENTRE[0] < east < 113.8 and 22.2 < south < CENTRE[1] < north < 22.8
    assert doc["minzoom"] == 0 and doc["maxzoom"] >= 14


async def test_gdal_mvt_driver_opens_a_tile(demo_client, tmp_path: Path) -> None:
    z, x, y = tile_at(14)
    r = await demo_client.get(f"/tiles/grids,roads,buildings/{z}/{x}/{y}.mvt")
    path = tmp_path / "tile.mvt"
    path.write_bytes(r.content)
    out = await asyncio.to_thread(
        subprocess.run,
        [
            "ogrinfo",
            "-ro",
            "-al",
            "-so",
            "-oo",
            f"Z={z}",
            "-oo",
            f"X={x}",
            "-oo",
            f"Y={y}",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for name in ("grids", "roads", "buildings"):
        assert f"Layer name: {name}" in out.stdout
    assert "Feature Count: 0" not in out.stdout
    assert "worker_phone" not in out.stdout


async def test_risk_hexagons_latest_done_run_and_rollup(demo_client, demo_url: str) -> None:
    with psycopg.connect(demo_url) as conn:
        runs = [r[0] for r in conn.execute("SELECT id FROM risk_runs ORDER BY id")]
    old, latest, running = runs
    z, x, y = tile_at(15)
    r = await demo_client.get(f"/tiles/risk/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    feats = decode(r.content)["risk"]["features"]
    assert feats and all(f["properties"]["run_id"] == latest for f in feats)
    assert all(f["properties"]["res"] == 9 and f["properties"]["cells"] == 1 for f in feats)
    hot = [f for f in feats if f["properties"]["h3"] == HOT_CELL]
    assert hot and hot[0]["properties"]["level"] == 4
    assert hot[0]["geometry"]["type"] == "Polygon"
    assert len(hot[0]["geometry"]["coordinates"][0]) == 7  # a closed hexagon

    # An explicit run; the running run is reachable only by id.
    old_feats = decode((await demo_client.get(f"/tiles/risk/{z}/{x}/{y}.mvt?run={old}")).content)
    assert {f["properties"]["level"] for f in old_feats["risk"]["features"]} == {1}
    r = await demo_client.get(f"/tiles/risk/{z}/{x}/{y}.mvt?run={running}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"

    # District-wide tile: hexagons rolled up to a coarse parent. Each parent says how much
    # of it is warned (shares at or above each level) and is coloured by its median level,
    # not by its hottest child.
    z, x, y = tile_at(9)
    r = await demo_client.get(f"/tiles/risk/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and len(r.content) < 50_000
    feats = decode(r.content)["risk"]["features"]
    res = feats[0]["properties"]["res"]
    assert res < 9
    assert sum(f["properties"]["cells"] for f in feats) >= 1000
    parent = h3.int_to_str(parent_int(h3.str_to_int(HOT_CELL), res))
    assert parent == h3.cell_to_parent(HOT_CELL, res)
    with psycopg.connect(demo_url) as conn:
        rows = conn.execute(
            "SELECT h3, level FROM risk_cells WHERE run_id = %s", (latest,)
        ).fetchall()
    children: dict[str, list[int]] = {}
    for cell, level in rows:
        children.setdefault(h3.cell_to_parent(h3.int_to_str(cell), res), []).append(level)
    names = ("share_blue", "share_yellow", "share_orange", "share_red")
    for f in feats:
        props = f["properties"]
        levels = children[props["h3"]]
        assert props["cells"] == len(levels)
        assert props["level_max"] == max(levels)
        for k, name in enumerate(names, start=1):
            share = sum(lv >= k for lv in levels) / len(levels)
            assert props[name] == pytest.approx(share, abs=1e-4)  # 4 decimals in the tile
        median = max([k for k in range(1, 5) if 2 * sum(lv >= k for lv in levels) >= len(levels)]
                     or [0])  # fmt: skip
        assert props["level"] == median
    by_cell = {f["properties"]["h3"]: f["properties"] for f in feats}
    assert by_cell[parent]["level_max"] == 4 and by_cell[parent]["level"] < 4
    # levels 0–3 drawn uniformly: half the cells of a parent are ≥ 2, so none is painted red
    assert max(p["level"] for p in by_cell.values()) < 4

    # Risk and catalog layers in one tile.
    z, x, y = tile_at(14)
    both = decode((await demo_client.get(f"/tiles/grids,risk/{z}/{x}/{y}.mvt")).content)
    assert set(both) == {"grids", "risk"}


async def test_tile_size_cap_across_zooms(demo_client) -> None:
    """Every tile of every layer, and of all layers together, stays under 500 KB (z8–16)."""
    city = (113.28, 22.40, 113.52, 22.61)
    ids = ",".join([*CATALOG, "risk"])
    rng = random.Random(8)
    biggest = 0
    for z in range(8, 17):
        addresses = tiles_in_bbox(city, z, z)
        sample = addresses if len(addresses) <= 24 else rng.sample(addresses, 24)
        if z >= 13:  # always include the densest part (the centre)
            sample.append(tile_at(z))
        for _, x, y in sample:
            r = await demo_client.get(f"/tiles/{ids}/{z}/{x}/{y}.mvt")
            assert r.status_code in (200, 204), r.text
            assert len(r.content) <= MAX_TILE_BYTES, (z, x, y, len(r.content))
            biggest = max(biggest, len(r.content))
    assert biggest > 100_000  # the test would notice a cap that never had anything to do


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/tiles/grids/25/0/0.mvt", 404, "tile_out_of_range"),
        ("/tiles/grids/-1/0/0.mvt", 404, "tile_out_of_range"),
        ("/tiles/grids/3/8/0.mvt", 404, "tile_out_of_range"),
        ("/tiles/grids/3/0/-1.mvt", 404, "tile_out_of_range"),
        ("/tiles/grids/3/0/99999999999999999999999.mvt", 404, "tile_out_of_range"),
        ("/tiles/grids/a/0/0.mvt", 422, "invalid_request"),
        ("/tiles/grids/1.5/0/0.mvt", 422, "invalid_request"),
        ("/tiles/nope/3/0/0.mvt", 404, "unknown_layer"),
        ("/tiles/grids,nope/3/0/0.mvt", 404, "unknown_layer"),
        ("/tiles/,/3/0/0.mvt", 400, "invalid_tile_request"),
        ("/tiles/nope/tilejson.json", 404, "unknown_layer"),
        ("/tiles/risk/3/0/0.mvt?run=999999", 404, "unknown_run"),
        ("/tiles/risk/3/0/0.mvt?run=0", 422, "invalid_request"),
        ("/tiles/risk/3/0/0.mvt?run=99999999999999999999999", 422, "invalid_request"),
        ("/collections/nope/tiles", 404, "unknown_layer"),
        ("/collections/grids/tiles/WorldCRS84Quad/1/0/0", 404, "unknown_tile_matrix_set"),
        ("/collections/grids/tiles/WebMercatorQuad/30/0/0", 404, "tile_out_of_range"),
        ("/collections/grids/tiles/WebMercatorQuad/x/0/0", 422, "invalid_request"),
    ],
)
async def test_bad_input(demo_client, path: str, status: int, code: str) -> None:
    r = await demo_client.get(path)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


async def test_empty_tile_is_204(demo_client) -> None:
    r = await demo_client.get("/tiles/grids,roads,risk/14/0/0.mvt")
    assert r.status_code == 204
    assert r.content == b""
    assert "etag" in r.headers


async def test_operator_key_sees_sensitive_fields_privately(demo_client, demo_url: str) -> None:
    from layers.keys import create_key

    key, _ = create_key(demo_url, "tiles-operator", "operator")
    z, x, y = tile_at(14)
    r = await demo_client.get(
        f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200
    props = decode(r.content)["grids"]["features"][0]["properties"]
    assert "worker_phone" in props
    assert r.headers["cache-control"].startswith("private")
    anon = await demo_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert anon.headers["etag"] != r.headers["etag"]
    assert anon.headers["cache-control"].startswith("public")
    doc = (await demo_client.get("/tiles/grids/tilejson.json", headers={"X-API-Key": key})).json()
    assert doc["vector_layers"][0]["fields"]["worker_phone"] == "String"
