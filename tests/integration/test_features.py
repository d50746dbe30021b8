"""OGC API – Features + CQL2 against a real PostGIS: every endpoint, paging, masking, bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import psycopg
import pytest

from geo_service.app import create_app
from geo_service.auth import current_role
from geo_service.features.items import ItemsQuery, count_matched
from geo_service.settings import Settings
from layers.catalog import CATALOG
from tests.support.district import N_VENUES, db_scalar, err, seed


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    seed(db_url)
    yield client


# --- landing, conformance, collections -----------------------------------------------


async def test_landing_conformance(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    rels = {lk["rel"] for lk in r.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = (await client.get("/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in conf
    await err(client, "/conformance?f=xml")


async def test_collections_from_catalog(seeded: httpx.AsyncClient) -> None:
    body = (await seeded.get("/collections")).json()
    assert [c["id"] for c in body["collections"]] == list(CATALOG)
    venues = (await seeded.get("/collections/venues")).json()
    assert venues["id"] == "venues"
    bbox = venues["extent"]["spatial"]["bbox"][0]
    assert bbox == pytest.approx([108.26, 22.8, 108.26 + 29 * 0.002, 22.8])
    assert any(lk["rel"] == "items" for lk in venues["links"])
    inc = (await seeded.get("/collections/incidents")).json()
    assert inc["extent"]["temporal"]["interval"][0][0].startswith("2024-01-01")
    body = await err(seeded, "/collections/nope", 404)
    assert "nope" in body["detail"]
    await err(seeded, "/collections/nope/items", 404)
    await err(seeded, "/collections/nope/queryables", 404)


async def test_collection_extent_follows_writes(seeded: httpx.AsyncClient, db_url: str) -> None:
    """Extents are memoised per layer version: a new venue far east widens the extent of the
    next documents within 2 s, and /collections agrees with /collections/{id}."""
    import asyncio
    import time

    app = seeded._transport.app  # type: ignore[attr-defined]
    await asyncio.wait_for(app.state.onemap.layer_versions.connected.wait(), 5)
    before = (await seeded.get("/collections/venues")).json()["extent"]["spatial"]["bbox"][0]
    assert (await seeded.get("/collections")).status_code == 200  # both documents memoised
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO venues (code, name, category, geom) "
            "VALUES ('FAR', 'far', 'shop', ST_SetSRID(ST_MakePoint(110.5, 23.0), 4326))"
        )
    deadline = time.monotonic() + 2.0
    while True:
        doc = (await seeded.get("/collections/venues")).json()
        after = doc["extent"]["spatial"]["bbox"][0]
        if after != before:
            break
        assert time.monotonic() < deadline, "the extent did not follow the write within 2 s"
        await asyncio.sleep(0.05)
    assert after[2] == pytest.approx(110.5) and after[3] == pytest.approx(23.0)
    assert after[0] == pytest.approx(before[0])
    listed = (await seeded.get("/collections")).json()["collections"]
    venues = next(c for c in listed if c["id"] == "venues")
    assert venues["extent"]["spatial"]["bbox"][0] == after


async def test_queryables_masks_sensitive(client: httpx.AsyncClient) -> None:
    q = (await client.get("/collections/venues/queryables")).json()
    assert q["properties"]["category"]["enum"][0] == "shop"
    assert q["properties"]["capacity"]["type"] == "integer"
    assert "geometry" in q["properties"]
    g = (await client.get("/collections/grids/queryables")).json()
    assert "worker_name" not in g["properties"] and "name" in g["properties"]
    inc = (await client.get("/collections/incidents/queryables")).json()
    assert inc["properties"]["reported_at"]["format"] == "date-time"


# --- items ---------------------------------------------------------------------------


async def test_items_default_page(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/collections/venues/items")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert (fc["numberMatched"], fc["numberReturned"]) == (N_VENUES, 10)
    assert "numberMatchedEstimated" not in fc
    f0 = fc["features"][0]
    assert f0["id"] == "V00" and f0["properties"]["name"] == "竹溪第0小学"
    assert f0["geometry"] == {"type": "Point", "coordinates": [108.26, 22.8]}
    assert f0["properties"]["key_site"] is True
    assert any(lk["rel"] == "next" for lk in fc["links"])


async def test_paging_follows_next_to_the_end(seeded: httpx.AsyncClient, db_url: str) -> None:
    url: str | None = "/collections/venues/items?limit=7&category=school"
    seen: list[str] = []
    pages = 0
    while url:
        fc = (await seeded.get(url)).json()
        pages += 1
        seen += [f["id"] for f in fc["features"]]
        if pages > 1:
            assert any(lk["rel"] == "prev" for lk in fc["links"])
        nxt = [lk["href"] for lk in fc["links"] if lk["rel"] == "next"]
        url = nxt[0] if nxt else None
        if url:
            assert dict(parse_qsl(urlsplit(url).query))["category"] == "school"
    n = db_scalar(db_url, "SELECT count(*) FROM venues WHERE category = 'school'")
    assert len(seen) == len(set(seen)) == n == 10
    assert pages == 2


async def test_single_item(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/collections/venues/items/V05")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == "V05" and f["properties"]["capacity"] == 50
    assert any(lk["rel"] == "collection" for lk in f["links"])
    body = await err(seeded, "/collections/venues/items/NOPE", 404)
    assert "NOPE" in body["detail"]


async def test_bbox_crs84_and_3857(seeded: httpx.AsyncClient, db_url: str) -> None:
    box = (108.265, 22.79, 108.285, 22.81)
    n = db_scalar(
        db_url,
        "SELECT count(*) FROM venues WHERE ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
        *box,
    )
    a = (
        await seeded.get("/collections/venues/items", params={"bbox": ",".join(map(str, box))})
    ).json()
    assert a["numberMatched"] == n > 0
    from pyproj import Transformer

    tr = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = tr.transform(box[0], box[1])
    x1, y1 = tr.transform(box[2], box[3])
    b = (
        await seeded.get(
            "/collections/venues/items",
            params={
                "bbox": f"{x0},{y0},{x1},{y1}",
                "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            },
        )
    ).json()
    assert [f["id"] for f in b["features"]] == [f["id"] for f in a["features"]]


BAD_QUERIES = (
    "bbox=1,2,3",
    "bbox=1,2,3,4,5",
    "bbox=10,0,5,1",
    "bbox=0,10,1,5",
    "bbox=-190,0,0,1",
    "bbox=0,-91,1,1",
    "bbox=a,b,c,d",
    "bbox=0,0,1,1&bbox-crs=EPSG:9999",
    "limit=0",
    "limit=abc",
    "offset=-1",
    "f=xml",
    "sortby=nope",
    "properties=name,nope",
    "nope=1",
    "capacity=abc",
    "key_site=maybe",
    "datetime=yesterday",
    "crs=http://www.opengis.net/def/crs/EPSG/0/9999",
    "crs=EPSG:4326",
    "filter=nope = 1",
    "filter=category = ",
    "filter=capacity = 'abc'",
    'filter={"op": "="}&filter-lang=cql2-json',
    "filter=x&filter-lang=sql",
)


async def test_items_bad_input_is_400(seeded: httpx.AsyncClient) -> None:
    for query in BAD_QUERIES:
        body = await err(seeded, f"/collections/venues/items?{query}")
        if "nope" in query:
            assert "nope" in body["detail"]


async def test_invalid_cql2_reports_parser_message(seeded: httpx.AsyncClient) -> None:
    body = await err(seeded, "/collections/venues/items", params={"filter": "category = "})
    assert body["code"] == "invalid_filter" and "expected" in body["detail"]
    body = await err(seeded, "/collections/venues/items", params={"filter": "unknown_prop > 3"})
    assert "unknown_prop" in body["detail"]


async def test_property_equality(seeded: httpx.AsyncClient, db_url: str) -> None:
    fc = (await seeded.get("/collections/venues/items?category=hospital&limit=100")).json()
    n = db_scalar(db_url, "SELECT count(*) FROM venues WHERE category = 'hospital'")
    assert fc["numberMatched"] == len(fc["features"]) == n
    assert {f["properties"]["category"] for f in fc["features"]} == {"hospital"}
    fc = (await seeded.get("/collections/venues/items?key_site=true&capacity=40")).json()
    assert [f["id"] for f in fc["features"]] == ["V04"]


CQL_CASES = [
    ("category = 'school' AND capacity > 100", "category = 'school' AND capacity > 100"),
    ("name LIKE '%小学'", "name LIKE '%%小学'"),
    (
        "category IN ('shop', 'hospital') AND NOT (key_site = true)",
        "category IN ('shop','hospital') AND NOT key_site",
    ),
    ("capacity BETWEEN 50 AND 120", "capacity BETWEEN 50 AND 120"),
    ("capacity + 10 >= 200 OR grid_code IS NULL", "capacity + 10 >= 200 OR grid_code IS NULL"),
    (
        "S_INTERSECTS(geometry, BBOX(108.259, 22.79, 108.27, 22.81))",
        "ST_Intersects(geom, ST_MakeEnvelope(108.259, 22.79, 108.27, 22.81, 4326))",
    ),
    (
        "S_WITHIN(geometry, POLYGON((108.25 22.75, 108.30 22.75, 108.30 22.85, "
        "108.25 22.85, 108.25 22.75)))",
        "ST_Within(geom, ST_MakeEnvelope(108.25, 22.75, 108.30, 22.85, 4326))",
    ),
    ("CASEI(category) = casei('SCHOOL')", "category = 'school'"),
]


@pytest.mark.parametrize(("cql", "where"), CQL_CASES)
async def test_cql2_text_and_json(
    seeded: httpx.AsyncClient, db_url: str, cql: str, where: str
) -> None:
    import cql2

    expected = db_scalar(db_url, f"SELECT count(*) FROM venues WHERE {where}")
    fc = (
        await seeded.get("/collections/venues/items", params={"filter": cql, "limit": 100})
    ).json()
    assert fc["numberMatched"] == len(fc["features"]) == expected
    as_json = json.dumps(cql2.parse_text(cql).to_json())
    fc2 = (
        await seeded.get(
            "/collections/venues/items",
            params={"filter": as_json, "filter-lang": "cql2-json", "limit": 100},
        )
    ).json()
    assert [f["id"] for f in fc2["features"]] == [f["id"] for f in fc["features"]]


async def test_sortby_and_properties(seeded: httpx.AsyncClient) -> None:
    fc = (await seeded.get("/collections/venues/items?sortby=-capacity&limit=5")).json()
    caps = [f["properties"]["capacity"] for f in fc["features"]]
    assert caps == [290, 280, 270, 260, 250]
    fc = (await seeded.get("/collections/venues/items?sortby=category,-capacity&limit=30")).json()
    pairs = [(f["properties"]["category"], -f["properties"]["capacity"]) for f in fc["features"]]
    assert pairs == sorted(pairs)
    fc = (await seeded.get("/collections/venues/items?properties=name,capacity&limit=1")).json()
    assert set(fc["features"][0]["properties"]) == {"name", "capacity"}


async def test_datetime_on_incidents(seeded: httpx.AsyncClient) -> None:
    async def ids(dt: str) -> list[str]:
        r = await seeded.get("/collections/incidents/items", params={"datetime": dt})
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    assert await ids("2024-01-02T08:00:00Z") == ["I1"]
    assert await ids("2024-01-03") == ["I2"]
    assert await ids("2024-01-02T00:00:00Z/2024-01-04T00:00:00Z") == ["I1", "I2"]
    assert await ids("../2024-01-02T08:00:00Z") == ["I0", "I1"]
    assert await ids("2024-01-04T00:00:00Z/..") == ["I3", "I4"]
    assert await ids("2024-01-04T00:00:00Z/") == ["I3", "I4"]
    f = (await seeded.get("/collections/incidents/items/I0")).json()
    assert f["properties"]["reported_at"] == "2024-01-01T08:00:00Z"
    assert "reporter" not in f["properties"]
    fc = (
        await seeded.get(
            "/collections/incidents/items",
            params={"filter": "reported_at > TIMESTAMP('2024-01-03T12:00:00Z')"},
        )
    ).json()
    assert [f["id"] for f in fc["features"]] == ["I3", "I4"]
    fc = (
        await seeded.get(
            "/collections/incidents/items",
            params={"filter": "T_INTERSECTS(reported_at, INTERVAL('2024-01-02T00:00:00Z', '..'))"},
        )
    ).json()
    assert fc["numberMatched"] == 4
    for bad in ("yesterday", "2024-01-05/2024-01-01", "../..", "2024-13-01"):
        await err(seeded, "/collections/incidents/items", params={"datetime": bad})


async def test_csv(seeded: httpx.AsyncClient, db_url: str) -> None:
    r = await seeded.get("/collections/venues/items?f=csv&limit=100&category=school")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    n = db_scalar(db_url, "SELECT count(*) FROM venues WHERE category = 'school'")
    assert len(rows) == n == int(r.headers["OGC-NumberMatched"])
    assert rows[0]["code"] == "V00" and rows[0]["name"] == "竹溪第0小学"
    assert (float(rows[0]["lon"]), float(rows[0]["lat"])) == (108.26, 22.8)
    assert rows[0]["key_site"] == "true"
    g = await seeded.get("/collections/grids/items?f=csv")
    grows = list(csv.DictReader(io.StringIO(g.text)))
    assert grows[0]["wkt"].startswith("MULTIPOLYGON")
    assert "worker_name" not in grows[0] and "张三" not in g.text


async def test_sensitive_masked_for_viewer(seeded: httpx.AsyncClient) -> None:
    fc = (await seeded.get("/collections/grids/items")).json()
    props = fc["features"][0]["properties"]
    assert props["name"] == "竹溪G1网格"
    for hidden in ("worker_name", "worker_phone", "households", "population"):
        assert hidden not in props
    assert "张三" not in json.dumps(fc, ensure_ascii=False)
    f = (await seeded.get("/collections/grids/items/G1")).json()
    assert "worker_phone" not in f["properties"]
    for q in (
        "worker_name=张三",
        "sortby=worker_phone",
        "properties=worker_name",
        "filter=worker_phone LIKE '138%'",
    ):
        body = await err(seeded, f"/collections/grids/items?{q}")
        assert "worker_" in body["detail"]


async def test_role_dependency_is_the_single_switch(settings: Settings, db_url: str) -> None:
    """Overriding geo_service.auth.current_role unmasks sensitive fields everywhere."""
    seed(db_url)
    app = create_app(settings)
    app.dependency_overrides[current_role] = lambda: "operator"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            f = (await c.get("/collections/grids/items/G1")).json()
            assert f["properties"]["worker_name"] == "张三"
            fc = (await c.get("/collections/grids/items?worker_phone=13800000002")).json()
            assert [x["id"] for x in fc["features"]] == ["G2"]
            q = (await c.get("/collections/grids/queryables")).json()
            assert "worker_phone" in q["properties"]


async def test_number_matched_estimate_beyond_cap(seeded: httpx.AsyncClient, db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("ANALYZE venues")
        layer = CATALOG["venues"]
        q = ItemsQuery(layer, set(layer.property_names), list(layer.properties))
        assert await count_matched(conn, q, cap=100) == (N_VENUES, False)
        n, estimated = await count_matched(conn, q, cap=5)
        assert estimated and n >= 6
    finally:
        await conn.close()


ODD_QUERIES = (
    "filter=S_INTERSECTS(geometry, POINT(1))",
    "filter=name > 3",
    "filter=key_site LIKE 'x'",
    "filter=T_AFTER(name, TIMESTAMP('2024-01-01T00:00:00Z'))",
    "sortby=+",
    "bbox=nan,0,1,1",
    "filter=capacity = TIMESTAMP('2024-01-01T00:00:00Z')",
    "filter=A_CONTAINS(name, ('a'))",
    "filter=S_INTERSECTS(capacity, geometry)",
    "offset=99999999999999999999",
)


async def test_odd_input_never_5xx(seeded: httpx.AsyncClient) -> None:
    for query in ODD_QUERIES:
        r = await seeded.get(f"/collections/venues/items?{query}")
        assert r.status_code in (200, 400), (query, r.text)
