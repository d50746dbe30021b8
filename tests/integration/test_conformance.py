"""OGC API – Features requirement by requirement (Part 1 core, Part 2 CRS, Part 3 filtering),
and GDAL's OAPIF driver pushing ``-where`` and ``-spat`` to the server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import psycopg
import pytest
from pyproj import Transformer

from geo_service.features.params import MAX_LIMIT
from tests.support.district import N_VENUES, err, seed

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    seed(db_url)
    yield client


def db_rows(db_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


# --- the OpenAPI document --------------------------------------------------------------


async def test_service_desc_is_openapi_30_with_its_media_type(client: httpx.AsyncClient) -> None:
    landing = (await client.get("/")).json()
    desc = next(lk for lk in landing["links"] if lk["rel"] == "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    r = await client.get(urlsplit(desc["href"]).path)
    assert r.status_code == 200
    assert r.headers["content-type"] == desc["type"]
    spec = r.json()
    assert spec["openapi"].startswith("3.0.")
    conf = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conf
    # No 3.1-only construct is left anywhere in the document.
    text = json.dumps(spec)
    assert '{"type": "null"}' not in text and '"summary": "\\u4e00' not in text
    assert spec == (await client.get("/openapi.json")).json()


async def test_items_parameters_are_typed(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api")).json()
    for path in spec["paths"]:
        if path.startswith("/collections/{"):
            assert path.startswith("/collections/{collectionId}"), path
    op = spec["paths"]["/collections/{collectionId}/items"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_LIMIT,
        "default": 10,
    }
    bbox = params["bbox"]
    assert bbox["schema"]["type"] == "array" and bbox["explode"] is False
    assert (bbox["schema"]["minItems"], bbox["schema"]["maxItems"]) == (4, 6)
    assert bbox["schema"]["items"] == {"type": "number"}
    lang = params["filter-lang"]["schema"]
    assert lang["default"] == "cql2-text" and {"cql2-text", "cql2-json"} <= set(lang["enum"])
    for name in ("crs", "bbox-crs"):
        assert set(params[name]["schema"]["enum"]) == {CRS84, EPSG4326, EPSG3857, EPSG4490}
    responses = op["responses"]
    assert {"application/geo+json", "text/csv"} <= set(responses["200"]["content"])
    for status in ("400", "404", "429", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    # One path per collection documents its queryable properties as parameters.
    venues = {p["name"]: p for p in spec["paths"]["/collections/venues/items"]["get"]["parameters"]}
    assert venues["category"]["schema"]["type"] == "string"
    assert "school" in venues["category"]["schema"]["enum"]
    assert venues["capacity"]["schema"]["type"] == "integer"
    grids = {p["name"] for p in spec["paths"]["/collections/grids/items"]["get"]["parameters"]}
    assert "name" in grids and "worker_phone" not in grids  # sensitive: not for anyone
    queryables = spec["paths"]["/collections/{collectionId}/queryables"]["get"]["responses"]
    assert "application/schema+json" in queryables["200"]["content"]


# --- Part 1 core -------------------------------------------------------------------------


async def test_limit_above_the_maximum_is_clamped(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/collections/venues/items", params={"limit": MAX_LIMIT * 5})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["numberReturned"] == N_VENUES == fc["numberMatched"]
    await err(seeded, "/collections/venues/items?limit=0")
    await err(seeded, "/collections/venues/items?limit=-3")


async def test_datetime_on_a_layer_without_time_matches_everything(
    seeded: httpx.AsyncClient,
) -> None:
    for dt in ("2024-01-01", "2024-01-01T00:00:00Z/..", "../2030-12-31T00:00:00Z"):
        fc = (await seeded.get("/collections/venues/items", params={"datetime": dt})).json()
        assert fc["numberMatched"] == N_VENUES, dt
    # Still checked: a malformed value is a 400 even where it filters nothing.
    body = await err(seeded, "/collections/venues/items", params={"datetime": "soon"})
    assert body["code"] == "invalid_datetime"
    # Where there is time, it filters (incidents reported on Jan 1–5, 2024).
    fc = (
        await seeded.get("/collections/incidents/items", params={"datetime": "2024-01-02"})
    ).json()
    assert fc["numberMatched"] == 1


async def test_time_stamp_and_links(seeded: httpx.AsyncClient) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    fc = (await seeded.get("/collections/venues/items?limit=5&category=school")).json()
    stamp = datetime.fromisoformat(fc["timeStamp"].replace("Z", "+00:00"))
    assert before <= stamp <= datetime.now(UTC) + timedelta(seconds=1)
    links = {lk["rel"]: lk for lk in fc["links"]}
    assert links["self"]["type"] == "application/geo+json"
    alt = links["alternate"]
    assert alt["type"] == "text/csv"
    assert dict(parse_qsl(urlsplit(alt["href"]).query)) == {
        "limit": "5",
        "category": "school",
        "f": "csv",
    }
    r = await seeded.get(urlsplit(alt["href"]).path + "?" + urlsplit(alt["href"]).query)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["code"] for row in rows] == [f["id"] for f in fc["features"]]
    assert 'rel="alternate"' in r.headers["link"] and "f=json" in r.headers["link"]
    assert r.headers["ogc-numbermatched"] == str(fc["numberMatched"])


def _link_header(value: str) -> dict[str, dict[str, str]]:
    """An RFC 8288 Link header → {rel: {"href", "type"}}."""
    out = {}
    for part in value.split(", <"):
        target, *params = part.split(";")
        attrs = dict(p.strip().split("=", 1) for p in params)
        rel = attrs["rel"].strip('"')
        out[rel] = {"href": target.strip().strip("<>"), "type": attrs["type"].strip('"')}
    return out


async def test_items_link_header(seeded: httpx.AsyncClient) -> None:
    """Links in the Link header too, with their media types: the queryables (Part 3,
    /req/queryables/get-queryables-uris), self and alternate formats, next."""
    for method in ("GET", "HEAD"):
        r = await seeded.request(method, "/collections/venues/items?limit=4&bbox=108,22,109,23")
        links = _link_header(r.headers["link"])
        q = links["http://www.opengis.net/def/rel/ogc/1.0/queryables"]
        assert q["type"] == "application/schema+json"
        assert urlsplit(q["href"]).path == "/collections/venues/queryables"
        assert links["self"]["type"] == "application/geo+json"
        assert links["alternate"]["type"] == "text/csv"
        nxt = urlsplit(links["next"]["href"])
        assert "," not in nxt.query  # percent-encoded: naive readers split on commas
        assert dict(parse_qsl(nxt.query)) == {"limit": "4", "bbox": "108,22,109,23", "offset": "4"}
    conf = (await seeded.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf


async def test_accept_header_chooses_the_format(seeded: httpx.AsyncClient) -> None:
    url = "/collections/venues/items?limit=3"
    r = await seeded.get(url, headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 3
    r = await seeded.get(url, headers={"Accept": "text/csv;q=0.5, application/geo+json"})
    assert r.headers["content-type"] == "application/geo+json"
    r = await seeded.get(url, headers={"Accept": "text/html, */*;q=0.1"})
    assert r.headers["content-type"] == "application/geo+json"
    # f wins over Accept.
    r = await seeded.get(url + "&f=json", headers={"Accept": "text/csv"})
    assert r.headers["content-type"] == "application/geo+json"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/conformance",
        "/functions",
        "/api",
        "/collections",
        "/collections/venues",
        "/collections/venues/queryables",
        "/collections/venues/items?limit=2",
        "/collections/venues/items?f=csv",
        "/collections/venues/items/V01",
        "/collections/venues/items/nope",
        "/collections/venues/tiles",
        "/tileMatrixSets/WebMercatorQuad",
        "/health/live",
    ],
)
async def test_head_answers_like_get_without_a_body(seeded: httpx.AsyncClient, path: str) -> None:
    got = await seeded.get(path)
    head = await seeded.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) == len(got.content)


# --- Part 2 CRS --------------------------------------------------------------------------


async def test_collection_lists_its_crs(client: httpx.AsyncClient) -> None:
    coll = (await client.get("/collections/venues")).json()
    assert coll["storageCrs"] == CRS84
    assert set(coll["crs"]) == {CRS84, EPSG4326, EPSG3857, EPSG4490}


async def test_crs_of_the_returned_geometries(seeded: httpx.AsyncClient, db_url: str) -> None:
    lonlat = {
        code: (x, y)
        for code, x, y in db_rows(db_url, "SELECT code, ST_X(geom), ST_Y(geom) FROM venues")
    }
    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)

    async def coords(crs: str | None) -> dict[str, list[float]]:
        params = {"limit": 100, **({"crs": crs} if crs else {})}
        r = await seeded.get("/collections/venues/items", params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-crs"] == f"<{crs or CRS84}>"
        return {f["id"]: f["geometry"]["coordinates"] for f in r.json()["features"]}

    assert len(lonlat) == N_VENUES
    for code, xy in (await coords(None)).items():
        assert xy == pytest.approx(lonlat[code], abs=1e-7)
    for code, xy in (await coords(CRS84)).items():
        assert xy == pytest.approx(lonlat[code], abs=1e-7)
    # EPSG:4326 and CGCS2000 are latitude first (Part 2, /req/crs/crs-action).
    for crs in (EPSG4326, EPSG4490):
        for code, xy in (await coords(crs)).items():
            assert xy == pytest.approx(lonlat[code][::-1], abs=1e-6), crs
    for code, xy in (await coords(EPSG3857)).items():
        assert xy == pytest.approx(to_3857.transform(*lonlat[code]), abs=0.01)
    one = await seeded.get("/collections/venues/items/V03", params={"crs": EPSG3857})
    assert one.headers["content-crs"] == f"<{EPSG3857}>"
    assert one.json()["geometry"]["coordinates"] == pytest.approx(
        to_3857.transform(*lonlat["V03"]), abs=0.01
    )
    for bad in ("EPSG:4326", "http://www.opengis.net/def/crs/EPSG/0/32649", "x"):
        body = await err(seeded, "/collections/venues/items", params={"crs": bad})
        assert body["code"] == "invalid_crs" and CRS84 in body["detail"]


async def test_bbox_crs(seeded: httpx.AsyncClient) -> None:
    async def codes(bbox: str, crs: str | None) -> list[str]:
        params = {"bbox": bbox, "limit": 100, **({"bbox-crs": crs} if crs else {})}
        r = await seeded.get("/collections/venues/items", params=params)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    lon_first = await codes("108.259,22.79,108.281,22.81", None)
    assert lon_first == [f"V{i:02d}" for i in range(11)]
    assert await codes("108.259,22.79,108.281,22.81", CRS84) == lon_first
    assert await codes("22.79,108.259,22.81,108.281", EPSG4326) == lon_first
    assert await codes("22.79,108.259,22.81,108.281", EPSG4490) == lon_first
    x0, y0 = Transformer.from_crs(4326, 3857, always_xy=True).transform(108.259, 22.79)
    x1, y1 = Transformer.from_crs(4326, 3857, always_xy=True).transform(108.281, 22.81)
    assert await codes(f"{x0},{y0},{x1},{y1}", EPSG3857) == lon_first
    # Longitude first in a latitude-first CRS is outside its range: a 400, not a silent miss.
    await err(
        seeded,
        "/collections/venues/items",
        params={"bbox": "108.259,22.79,108.281,22.81", "bbox-crs": EPSG4326},
    )


# --- Part 3 ------------------------------------------------------------------------------


async def test_filter_crs(seeded: httpx.AsyncClient) -> None:
    """Filter geometries in ``filter-crs``, in that CRS's axis order (Part 3, /req/filter/
    filter-crs-wgs84 and other CRS)."""

    async def codes(flt: str, crs: str | None, lang: str = "cql2-text") -> list[str]:
        params = {"filter": flt, "filter-lang": lang, "limit": 100}
        if crs:
            params["filter-crs"] = crs
        r = await seeded.get("/collections/venues/items", params=params)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    expected = [f"V{i:02d}" for i in range(11)]  # 108.26 … 108.28 E at 22.80 N
    lonlat = "POLYGON((108.259 22.79, 108.281 22.79, 108.281 22.81, 108.259 22.81, 108.259 22.79))"
    assert await codes(f"S_INTERSECTS(geometry, {lonlat})", None) == expected
    assert await codes(f"S_INTERSECTS(geometry, {lonlat})", CRS84) == expected
    latlon = "POLYGON((22.79 108.259, 22.79 108.281, 22.81 108.281, 22.81 108.259, 22.79 108.259))"
    for crs in (EPSG4326, EPSG4490):
        assert await codes(f"S_INTERSECTS(geometry, {latlon})", crs) == expected, crs
        assert await codes("S_INTERSECTS(geometry, BBOX(22.79, 108.259, 22.81, 108.281))", crs) == (
            expected
        )
    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = to_3857.transform([108.259, 108.281], [22.79, 22.81])
    box = {"bbox": [x0, y0, x1, y1]}
    as_json = json.dumps({"op": "s_intersects", "args": [{"property": "geometry"}, box]})
    assert await codes(as_json, EPSG3857, "cql2-json") == expected
    # Lon/lat numbers read as lat/lon match nothing here: the CRS is really applied.
    assert await codes(f"S_INTERSECTS(geometry, {lonlat})", EPSG4326) == []
    body = await err(
        seeded, "/collections/venues/items", params={"filter": "TRUE", "filter-crs": "EPSG:1"}
    )
    assert body["code"] == "invalid_crs"


async def test_queryables_are_json_schema_2020_12(client: httpx.AsyncClient) -> None:
    r = await client.get("/collections/venues/queryables")
    assert r.headers["content-type"] == "application/schema+json"
    q = r.json()
    assert q["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert q["$id"].endswith("/collections/venues/queryables") and q["type"] == "object"
    geom = q["properties"]["geometry"]
    assert geom["format"] == "geometry-point" and "$ref" not in geom
    assert "$ref" not in json.dumps(q)
    roads = (await client.get("/collections/roads/queryables")).json()
    assert roads["properties"]["geometry"]["format"] == "geometry-multilinestring"
    hazards = (await client.get("/collections/hazard_sites/queryables")).json()
    assert hazards["properties"]["geometry"]["format"] == "geometry-any"


async def test_functions(seeded: httpx.AsyncClient) -> None:
    landing = (await seeded.get("/")).json()
    rel = "http://www.opengis.net/def/rel/ogc/1.0/functions"
    href = next(lk["href"] for lk in landing["links"] if lk["rel"] == rel)
    listed = (await seeded.get(urlsplit(href).path)).json()["functions"]
    assert [fn["name"] for fn in listed] == ["casei"]
    assert listed[0]["returns"] == ["string"] and listed[0]["arguments"][0]["type"] == ["string"]
    # What is listed works in a filter.
    fc = (
        await seeded.get(
            "/collections/venues/items", params={"filter": "CASEI(category) = casei('SCHOOL')"}
        )
    ).json()
    assert fc["numberMatched"] == N_VENUES // 3


async def test_legacy_cql_text_name_is_cql2_text(seeded: httpx.AsyncClient) -> None:
    """GDAL before 3.7 sends ``filter-lang=cql-text`` (the drafts' name)."""
    params = {"filter": "(category = 'school') AND (capacity > 50)", "limit": 100}
    new = (await seeded.get("/collections/venues/items", params=params)).json()
    old = (
        await seeded.get("/collections/venues/items", params={**params, "filter-lang": "cql-text"})
    ).json()
    assert [f["id"] for f in old["features"]] == [f["id"] for f in new["features"]]
    assert new["numberMatched"] == len([i for i in range(0, N_VENUES, 3) if i * 10 > 50])


# --- GDAL ---------------------------------------------------------------------------------

OGR2OGR = "/usr/bin/ogr2ogr"


def _ogr2ogr(url: str, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"GDAL_HTTP_TIMEOUT": "20", "CPL_DEBUG": "ON", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [OGR2OGR, "-f", "GeoJSON", str(dest), url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _item_requests(log: str) -> list[dict[str, str]]:
    """Query parameters of every /items request GDAL made (from its CPL_DEBUG log)."""
    out = []
    for line in log.splitlines():
        if line.startswith("HTTP: Fetch(") and "/items" in line:
            url = line[len("HTTP: Fetch(") : -1]
            out.append({k: unquote(v) for k, v in parse_qsl(urlsplit(url).query)})
    return out


def test_gdal_pushes_where_and_spat_to_the_server(
    db_url: str, live_server_factory, tmp_path: Path
) -> None:
    seed(db_url)
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url})
    url = f"OAPIF:{server.base_url}/collections/venues"
    spat = ("-spat", "108.259", "22.79", "108.291", "22.81")
    cases = [
        ("category = 'school'", "category = 'school'"),
        ("category = 'school' AND capacity > 50", "category = 'school' AND capacity > 50"),
        ("name LIKE '%小学' OR capacity <= 20", "(name LIKE '%小学' OR capacity <= 20)"),
    ]
    for i, (where, sql_where) in enumerate(cases):
        dest = tmp_path / f"out{i}.geojson"
        run = _ogr2ogr(url, dest, "-where", where, *spat)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "evaluated on client side" not in run.stderr, run.stderr[-3000:]
        requests = _item_requests(run.stderr)
        filtered = [r for r in requests if "bbox" in r]
        assert filtered, requests
        for r in filtered:
            assert "category" in r or "filter" in r, r
        got = [f["properties"]["code"] for f in json.loads(dest.read_text())["features"]]
        expected = db_rows(
            db_url,
            f"SELECT code FROM venues WHERE ({sql_where}) AND "  # noqa: S608 (the test's own SQL)
            "ST_Intersects(geom, ST_MakeEnvelope(108.259, 22.79, 108.291, 22.81, 4326)) "
            "ORDER BY id",
        )
        assert got == [r[0] for r in expected] != [], where
    # A date comparison goes to the server as a CQL2 timestamp comparison too.
    dest = tmp_path / "incidents.geojson"
    run = _ogr2ogr(
        f"OAPIF:{server.base_url}/collections/incidents",
        dest,
        "-where",
        "reported_at >= '2024/01/03 00:00:00' AND status = 'open'",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "evaluated on client side" not in run.stderr, run.stderr[-3000:]
    assert all("filter" in r for r in _item_requests(run.stderr)[1:])
    got = sorted(f["properties"]["code"] for f in json.loads(dest.read_text())["features"])
    assert got == ["I2", "I3", "I4"]
