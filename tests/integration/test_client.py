"""The Python client (``geo_service.client.OneMap``) against a live server on a demo city."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely

from geo_service.client import (
    AuthError,
    BadRequestError,
    NotFoundError,
    OneMap,
    OneMapError,
    ServerError,
)
from layers.keys import create_key
from tests.support.html import external_references
from tests.support.pg import free_port
from tests.support.servers import demo_server


@pytest.fixture(scope="module")
def demo(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(database URL, server base URL) of a small demo city served by ``onemap serve``."""
    data_dir = tmp_path_factory.mktemp("client-data")
    with demo_server(pg_admin_url, template_db, "client_module", data_dir, 0.2, 11) as (
        url,
        server,
    ):
        yield url, server.base_url


@pytest.fixture(scope="module")
def db(demo: tuple[str, str]) -> str:
    return demo[0]


@pytest.fixture
def om(demo: tuple[str, str]) -> Iterator[OneMap]:
    with OneMap(demo[1], progress=False) as client:
        yield client


def rows(db: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- read
def test_read_whole_layer_matches_the_table(om: OneMap, db: str) -> None:
    gdf = om.read("buildings")
    expected = rows(
        db, "SELECT code, address_code, floors, use, ST_AsText(geom) FROM buildings ORDER BY id"
    )
    assert len(expected) > 1000
    assert isinstance(gdf, gpd.GeoDataFrame) and gdf.crs.to_epsg() == 4326
    assert list(gdf.columns) == ["code", "address_code", "floors", "use", "geometry"]
    assert str(gdf["floors"].dtype) == "Int64"
    assert list(gdf["code"]) == [r[0] for r in expected]
    assert list(gdf["floors"]) == [r[2] for r in expected]
    assert list(gdf["use"]) == [r[3] for r in expected]
    want = shapely.from_wkt([r[4] for r in expected])
    # Coordinates travel with 7 decimals (≈ 1 cm).
    assert shapely.equals_exact(gdf.geometry.to_numpy(), want, tolerance=1e-7).all()


def test_small_concurrent_pages_give_the_same_frame(om: OneMap) -> None:
    whole = om.read("venues")
    paged = om.read("venues", page_size=97)
    assert len(whole) > 5 * 97
    pd.testing.assert_frame_equal(pd.DataFrame(paged), pd.DataFrame(whole))
    head = om.read("venues", limit=250, page_size=97)
    assert list(head["code"]) == list(whole["code"][:250])


def test_read_dtypes_follow_the_catalog(om: OneMap, db: str) -> None:
    venues = om.read("venues")
    assert str(venues["key_site"].dtype) == "boolean"
    assert str(venues["capacity"].dtype) == "Int64"
    n_key = rows(db, "SELECT count(*) FROM venues WHERE key_site")[0][0]
    assert int(venues["key_site"].sum()) == n_key > 0

    incidents = om.read("incidents")
    dtype = incidents["reported_at"].dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"
    expected = rows(db, "SELECT code, reported_at FROM incidents ORDER BY id")
    got = dict(zip(incidents["code"], incidents["reported_at"], strict=True))
    for code, at in expected:
        assert abs((got[code] - pd.Timestamp(at)).total_seconds()) < 1e-3

    points = om.read("addresses", limit=10)
    assert set(points.geom_type) == {"Point"}


def test_read_filters(om: OneMap, db: str) -> None:
    (x0, y0, x1, y1) = rows(
        db,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) e FROM venues) s",
    )[0]
    bbox = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    got = om.read(
        "venues",
        bbox=bbox,
        filter="capacity >= 100",
        where={"key_site": True},
        properties=["code", "capacity"],
    )
    expected = rows(
        db,
        "SELECT code FROM venues WHERE capacity >= 100 AND key_site AND "
        "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY id",
        *bbox,
    )
    assert list(got.columns) == ["code", "capacity", "geometry"]
    assert list(got["code"]) == [r[0] for r in expected] != []
    # CQL2 JSON and a geometry as bbox give the same answer.
    again = om.read(
        "venues",
        bbox=shapely.box(*bbox),
        filter={
            "op": "and",
            "args": [
                {"op": ">=", "args": [{"property": "capacity"}, 100]},
                {"op": "=", "args": [{"property": "key_site"}, True]},
            ],
        },
    )
    assert list(again["code"]) == list(got["code"])


def test_empty_result_keeps_the_columns(om: OneMap) -> None:
    none = om.read("venues", filter="capacity < 0")
    assert len(none) == 0 and "capacity" in none.columns and none.crs.to_epsg() == 4326


# --------------------------------------------------------------------------- errors
def test_server_errors_become_exceptions(om: OneMap, demo: tuple[str, str]) -> None:
    with pytest.raises(NotFoundError) as nf:
        om.read("no_such_layer")
    assert nf.value.status == 404 and nf.value.code == "unknown_layer"
    assert "no_such_layer" in nf.value.detail

    with pytest.raises(BadRequestError) as bad:
        om.read("venues", filter="capacity >>> 3")
    assert bad.value.status == 400 and bad.value.code and bad.value.detail

    with pytest.raises(BadRequestError) as bad_prop:
        om.read("venues", where={"no_such_property": 1})
    assert "no_such_property" in bad_prop.value.detail

    with pytest.raises(AuthError) as auth, OneMap(demo[1], api_key="om_bad_key") as stranger:
        stranger.collections()
    assert auth.value.status == 401 and isinstance(auth.value, OneMapError)

    with pytest.raises(ServerError) as down, OneMap(f"http://127.0.0.1:{free_port()}") as gone:
        gone.collections()
    assert down.value.status == 0 and down.value.code == "unreachable"


def test_api_key_unmasks_sensitive_fields(om: OneMap, demo: tuple[str, str], db: str) -> None:
    anonymous = om.read("grids", limit=5)
    assert "worker_phone" not in anonymous.columns
    key, _ = create_key(db, "规划", "operator")
    with OneMap(demo[1], api_key=key, progress=False) as operator:
        grids = operator.read("grids", limit=5)
    assert "worker_phone" in grids.columns
    assert str(grids["population"].dtype) == "Int64"


# --------------------------------------------------------------------------- layers, geo
def test_collections(om: OneMap, db: str) -> None:
    cols = om.collections()
    assert {"buildings", "venues", "grids"} <= set(cols["id"])
    bbox = cols.set_index("id").loc["venues", "bbox"]
    ext = rows(
        db,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) e FROM venues) s",
    )[0]
    assert bbox == pytest.approx(ext, abs=1e-6)


def test_locate_nearby_within(om: OneMap, db: str) -> None:
    sql = "SELECT ST_X(geom), ST_Y(geom) FROM addresses ORDER BY md5(code) LIMIT 1"
    lon, lat = rows(db, sql)[0]
    grid_sql = (
        "SELECT code FROM grids WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
    )
    assert om.locate(lon, lat)["grid"]["code"] == rows(db, grid_sql, lon, lat)[0][0]
    nearest = om.reverse(lon, lat)
    assert nearest["distance_m"] < 1.0  # the address itself
    assert om.feature("addresses", nearest["address"]["code"])["geometry"]["coordinates"] == (
        pytest.approx([lon, lat], abs=1e-7)
    )

    near = om.nearby("venues", lon, lat, radius_m=800, limit=1000)
    n_within = rows(
        db,
        "SELECT count(*) FROM venues WHERE ST_DWithin(geom::geography, "
        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 800)",
        lon,
        lat,
    )[0][0]
    assert len(near) == n_within > 0
    assert near["distance_m"].is_monotonic_increasing and near["distance_m"].max() <= 800
    assert str(near["capacity"].dtype) == "Int64" and near.crs.to_epsg() == 4326

    area = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(3857).buffer(600)
    found = om.within(gpd.GeoDataFrame(geometry=area), ["venues", "cameras"])
    for layer in ("venues", "cameras"):
        n = rows(
            db,
            f"SELECT count(*) FROM {layer} WHERE ST_Intersects(geom, ST_GeomFromText(%s, 4326))",
            area.to_crs(4326).iloc[0].wkt,
        )[0][0]
        assert found[layer].attrs["number_matched"] == n
        assert len(found[layer]) == n


def test_geocode_string_series_frame(om: OneMap, db: str, monkeypatch) -> None:
    import geo_service.client.api as api

    sample = rows(db, "SELECT code, full_address FROM addresses ORDER BY md5(code) LIMIT 25")
    one = om.geocode(sample[0][1])
    assert one["code"] == sample[0][0] and one["match_level"] != "none"

    monkeypatch.setattr(api, "MAX_GEOCODE_BATCH", 7)  # several batches through the real API
    texts = pd.Series([a for _, a in sample] + ["", "完全不存在的地方"], index=range(100, 127))
    got = om.geocode(texts)
    assert list(got.index) == list(texts.index)
    assert list(got["geo_code"][:25]) == [c for c, _ in sample]
    assert got.geometry[:25].notna().all() and got.crs.to_epsg() == 4326
    assert got["geo_match_level"].iloc[-2] == "none" and got.geometry.iloc[-2] is None

    frame = pd.DataFrame({"addr": [a for _, a in sample[:5]], "n": range(5)})
    joined = om.geocode(frame, column="addr")
    assert isinstance(joined, gpd.GeoDataFrame)
    assert list(joined["n"]) == list(range(5))
    assert list(joined["geo_code"]) == [c for c, _ in sample[:5]]
    with pytest.raises(ValueError):
        om.geocode(frame)


# --------------------------------------------------------------------------- maps
def test_map_uses_only_this_server(om: OneMap) -> None:
    grids = om.read("grids", limit=40)
    grids["level"] = [("blue", "yellow", "orange", "red")[i % 4] for i in range(len(grids))]
    m = om.map(grids, om.read("shelters"), om.read("rivers", limit=5))
    html = m.get_root().render()
    assert external_references(html, om.base_url) == []
    assert f"{om.base_url}/vendor/leaflet/dist/leaflet.js" in html
    assert f"{om.base_url}/vendor/leaflet/dist/leaflet.css" in html
    assert f"{om.base_url}/raster/hillshade/{{z}}/{{x}}/{{y}}.png" in html
    # … and the server has them: Leaflet from its npm-installed copy, a hillshade tile.
    for asset in ("leaflet.js", "leaflet.css"):
        assert om.request("GET", f"/vendor/leaflet/dist/{asset}").content
    assert om.request("GET", "/raster/hillshade/10/834/446.png").content.startswith(b"\x89PNG")
    for colour in ("#1f6fe5", "#f2c500", "#ff7f0e", "#e0201b"):  # each warning level drawn
        assert colour in html
    # The notebook view (an iframe) holds the same references, and folium's class-wide
    # defaults are untouched for other maps.
    assert external_references(m._repr_html_(), om.base_url) == []
    import folium

    assert any("leaflet" in name for name, _ in folium.Map.default_js)


def test_external_reference_check_catches_cdn() -> None:
    # A remote host on the reserved .invalid domain (RFC 2606): never fetched, only detected.
    remote = "https" + "://cdn.example.invalid/npm/leaflet.js"
    html = f'<script src="{remote}"></script><a href="/x">'
    assert external_references(html, "http://127.0.0.1:8000") == [remote]


# --------------------------------------------------------------------------- big layers
def test_read_past_an_estimated_count(db_url: str, live_server_factory) -> None:
    """Above 100,000 matches the server's numberMatched is the planner's estimate; with no
    statistics it is far below the truth, and the client must still read every feature."""
    n = 120_000
    with psycopg.connect(db_url) as conn:
        conn.execute("ALTER TABLE venues SET (autovacuum_enabled = false)")
        conn.execute(
            "INSERT INTO venues (code, name, category, capacity, geom) "
            "SELECT 'V' || lpad(i::text, 7, '0'), 'venue ' || i, 'shop', i %% 100, "
            "ST_SetSRID(ST_MakePoint(113.3 + (i %% 400) * 1e-4, 22.4 + (i / 400) * 1e-4), 4326) "
            "FROM generate_series(1, %s) AS i",
            (n,),
        )
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, "ONEMAP_LOG_LEVEL": "ERROR"})
    with OneMap(server.base_url, progress=False) as om:
        head = om.request(
            "GET",
            "/collections/venues/items",
            params={"f": "csv", "limit": 1, "filter": "capacity < 90"},
        )
        estimate = int(head.headers["OGC-NumberMatched"])
        got = om.read("venues", filter="capacity < 90", properties=["code", "capacity"])
        first = om.read("venues", limit=105_000, properties=["code"])
    expected = [f"V{i:07d}" for i in range(1, n + 1) if i % 100 < 90]
    assert estimate < len(expected)  # so the pages after the estimate are what is tested
    assert len(got) == len(expected) and list(got["code"]) == expected
    assert (got["capacity"] < 90).all()
    assert list(first["code"]) == [f"V{i:07d}" for i in range(1, 105_001)]


def test_doctests_of_the_client() -> None:
    import doctest

    from geo_service.client import errors, frames, maps

    for module in (errors, frames, maps):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_map_renders_offline_in_chromium(om: OneMap, tmp_path) -> None:
    """The map in a real browser: Leaflet runs, hillshade tiles and overlays draw, and no
    request leaves this server."""
    from playwright.sync_api import sync_playwright

    grids = om.read("grids")
    grids["level"] = [("blue", "yellow", "orange", "red")[i % 4] for i in range(len(grids))]
    page_file = tmp_path / "map.html"
    om.map(grids, om.read("shelters")).save(str(page_file))
    own = urlsplit(om.base_url).netloc
    foreign: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def guard(route) -> None:  # noqa: ANN001 (playwright's Route)
                url = route.request.url
                if url.startswith(("file:", "data:", "about:")) or urlsplit(url).netloc == own:
                    route.continue_()
                else:
                    foreign.append(url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(page_file.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('img.leaflet-tile-loaded').length > 0", timeout=20_000
            )
            assert page.evaluate("typeof L") == "object"
            n_paths = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
        finally:
            browser.close()
    assert foreign == [] and errors == []
    assert n_paths >= len(grids)
