"""OGC API – Tiles discovery as clients walk it: landing page and collection links, tileset
metadata, a local tile matrix set, and GDAL's OGCAPI driver reading the vector tiles."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.support.district import N_VENUES, seed

TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db_url: str) -> httpx.AsyncClient:
    seed(db_url)
    return client


def _path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_collection_links_to_its_vector_tilesets(seeded: httpx.AsyncClient) -> None:
    coll = (await seeded.get("/collections/venues")).json()
    link = next(lk for lk in coll["links"] if lk["rel"] == TILESETS_VECTOR)
    assert link["type"] == "application/json"
    tilesets = (await seeded.get(_path(link["href"]))).json()
    (summary,) = tilesets["tilesets"]
    assert summary["dataType"] == "vector"
    self_link = next(lk for lk in summary["links"] if lk["rel"] == "self")
    tileset = (await seeded.get(_path(self_link["href"]))).json()
    scheme = next(lk for lk in tileset["links"] if lk["rel"] == TILING_SCHEME)
    # The grid is served here: an offline client must not be sent to opengis.net.
    assert urlsplit(scheme["href"]).netloc == "testserver", scheme
    tms = await seeded.get(_path(scheme["href"]))
    assert tms.status_code == 200
    doc = tms.json()
    assert doc["id"] == "WebMercatorQuad" and len(doc["tileMatrices"]) == 25
    # Members of 2DTMS 1.0 too, for clients written against it (GDAL 3.6).
    assert doc["identifier"] == "WebMercatorQuad" and doc["type"] == "TileMatrixSetType"
    z1 = doc["tileMatrices"][1]
    assert z1["identifier"] == "1" and z1["topLeftCorner"] == z1["pointOfOrigin"]
    assert doc["boundingBox"]["lowerCorner"] == pytest.approx([-20037508.34, -20037508.34])
    item = next(lk for lk in tileset["links"] if lk["rel"] == "item")
    assert item["type"] == "application/vnd.mapbox-vector-tile"
    for needle in ("{tileMatrix}", "{tileRow}", "{tileCol}"):
        assert needle in item["href"]


async def test_landing_page_links_to_the_dataset_vector_tilesets(
    seeded: httpx.AsyncClient,
) -> None:
    import mapbox_vector_tile
    import morecantile

    landing = (await seeded.get("/")).json()
    link = next(lk for lk in landing["links"] if lk["rel"] == TILESETS_VECTOR)
    tilesets = (await seeded.get(_path(link["href"]))).json()
    (summary,) = tilesets["tilesets"]
    self_link = next(lk for lk in summary["links"] if lk["rel"] == "self")
    tileset = (await seeded.get(_path(self_link["href"]))).json()
    ids = {lyr["id"] for lyr in tileset["layers"]}
    assert {"venues", "grids", "admin_areas"} <= ids
    assert "worker_phone" not in str(tileset)  # fields hidden from anonymous callers
    item = next(lk for lk in tileset["links"] if lk["rel"] == "item")
    # The z14 tile holding the first seeded venue (108.26 E, 22.80 N).
    t = morecantile.tms.get("WebMercatorQuad").tile(108.2601, 22.8, 14)
    href = (
        item["href"]
        .replace("{tileMatrix}", "14")
        .replace("{tileCol}", str(t.x))
        .replace("{tileRow}", str(t.y))
    )
    r = await seeded.get(_path(href))
    assert r.status_code == 200, r.text
    tile = mapbox_vector_tile.decode(r.content)
    assert "venues" in tile and len(tile["venues"]["features"]) > 0


def test_gdal_ogcapi_driver_reads_the_vector_tiles(db_url: str, live_server_factory) -> None:
    """GDAL's OGCAPI driver (the GDAL 3.12 inside pyogrio: Debian's GDAL 3.6 is built without
    the driver's vector tiles) opens the collection with API=TILES and reads every venue.

    The extent is given in EPSG:3857: GDAL takes the collection's CRS84 extent as if it were
    in the tile matrix set's CRS for vector tiles."""
    import pyogrio
    from pyproj import Transformer

    seed(db_url)
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url})
    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = to_3857.transform(108.25, 22.79)
    x1, y1 = to_3857.transform(108.33, 22.81)
    url = f"OGCAPI:{server.base_url}/collections/venues"
    layers = [name for name, _ in pyogrio.list_layers(url)]
    assert "Zoom level 14" in layers
    df = pyogrio.read_dataframe(
        url,
        layer="Zoom level 16",
        API="TILES",
        MINX=str(x0),
        MINY=str(y0),
        MAXX=str(x1),
        MAXY=str(y1),
    )
    with psycopg.connect(db_url) as conn:
        codes = {r[0] for r in conn.execute("SELECT code FROM venues").fetchall()}
    assert len(codes) == N_VENUES
    # A feature on a tile edge is in both tiles: compare sets.
    assert set(df["code"]) == codes
    assert df.crs.to_epsg() == 3857
    assert {"name", "category", "capacity"} <= set(df.columns)
