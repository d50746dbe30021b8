"""/geo/locate, /geo/nearby, /geo/within against a real PostGIS."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest

from geo_service.app import create_app
from geo_service.auth import current_role
from geo_service.settings import Settings
from tests.support.district import db_scalar, err, seed

INSIDE_G1 = (108.262, 22.791)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db_url: str) -> httpx.AsyncClient:
    seed(db_url)
    return client


async def test_locate(seeded: httpx.AsyncClient, db_url: str) -> None:
    lon, lat = INSIDE_G1
    r = await seeded.get("/geo/locate", params={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.text
    body = r.json()
    admin = body["admin"]
    assert (admin["district"]["code"], admin["street"]["code"], admin["community"]["code"]) == (
        "D1",
        "S1",
        "C1",
    )
    assert admin["community"]["name"] == "竹溪社区"
    assert body["grid"]["code"] == "G1"
    assert "worker_name" not in body["grid"] and "worker_phone" not in body["grid"]
    near = body["nearest_address"]
    assert near["address"]["code"] == "A0"
    assert near["address"]["full_address"] == "广西南宁市青秀区竹溪大道1号"
    expected = db_scalar(
        db_url,
        "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) "
        "FROM addresses WHERE code = 'A0'",
        lon,
        lat,
    )
    assert near["distance_m"] == pytest.approx(expected, abs=0.01)
    assert 100 < near["distance_m"] < 300


async def test_locate_outside_everything(seeded: httpx.AsyncClient) -> None:
    body = (await seeded.get("/geo/locate?lon=100&lat=30")).json()
    assert body["admin"] == {"district": None, "street": None, "community": None}
    assert body["grid"] is None
    assert body["nearest_address"]["distance_m"] > 500_000


async def test_locate_bad_input(client: httpx.AsyncClient) -> None:
    for q in ("lon=181&lat=0", "lon=0&lat=-91", "lon=abc&lat=1", "lat=1", "lon=nan&lat=0", ""):
        await err(client, f"/geo/locate?{q}")


async def test_grid_worker_visible_to_operator(settings: Settings, db_url: str) -> None:
    seed(db_url)
    app = create_app(settings)
    app.dependency_overrides[current_role] = lambda: "operator"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = (
                await c.get("/geo/locate", params={"lon": INSIDE_G1[0], "lat": INSIDE_G1[1]})
            ).json()
            assert body["grid"]["worker_name"] == "张三"
            assert body["grid"]["worker_phone"] == "13800000001"


async def test_nearby_by_true_distance(seeded: httpx.AsyncClient, db_url: str) -> None:
    lon, lat = 108.27, 22.801
    r = await seeded.get(
        "/geo/nearby",
        params={"layer": "venues", "lon": lon, "lat": lat, "radius": 800, "limit": 50},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT code, ST_Distance(geom::geography, p::geography) d FROM venues, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326) p "
            "WHERE ST_DWithin(geom::geography, p::geography, 800) ORDER BY d, id",
            (lon, lat),
        ).fetchall()
    assert [f["id"] for f in fc["features"]] == [c for c, _ in rows]
    assert [f["properties"]["distance_m"] for f in fc["features"]] == pytest.approx(
        [d for _, d in rows], abs=0.01
    )
    assert fc["numberReturned"] == len(rows) > 3
    fc = (await seeded.get(f"/geo/nearby?layer=venues&lon={lon}&lat={lat}&limit=3")).json()
    assert [f["id"] for f in fc["features"]] == [c for c, _ in rows[:3]]
    fc = (
        await seeded.get(
            f"/geo/nearby?layer=venues&lon={lon}&lat={lat}&category=school&radius=5000"
        )
    ).json()
    assert fc["features"] and {f["properties"]["category"] for f in fc["features"]} == {"school"}
    fc = (await seeded.get(f"/geo/nearby?layer=grids&lon={lon}&lat={lat}")).json()
    assert "worker_name" not in fc["features"][0]["properties"]


async def test_nearby_metres_not_degrees(seeded: httpx.AsyncClient, db_url: str) -> None:
    """At 60°N a point 0.01° east (≈557 m) is nearer than one 0.008° north (≈890 m),
    although it is farther in degrees: the planar KNN order must not decide the answer."""
    with psycopg.connect(db_url) as conn:
        for code, lon, lat in (("EAST", 10.01, 60.0), ("NORTH", 10.0, 60.008)):
            conn.execute(
                "INSERT INTO venues (code, name, category, geom) "
                "VALUES (%s, %s, 'shop', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                (code, code, lon, lat),
            )
    fc = (await seeded.get("/geo/nearby?layer=venues&lon=10&lat=60&limit=1&radius=2000")).json()
    assert [f["id"] for f in fc["features"]] == ["EAST"]
    assert fc["features"][0]["properties"]["distance_m"] == pytest.approx(557, abs=5)


async def test_nearby_bad_input(seeded: httpx.AsyncClient) -> None:
    base = "/geo/nearby?lon=108.27&lat=22.8"
    await err(seeded, f"{base}&layer=nope", 404)
    body = await err(seeded, f"{base}&layer=cameras&category=school")
    assert "category" in body["detail"]
    for q in ("radius=50001", "radius=-1", "radius=abc", "limit=0", "limit=100000"):
        await err(seeded, f"{base}&layer=venues&{q}")
    await err(seeded, "/geo/nearby?layer=venues&lon=200&lat=0")
    await err(seeded, "/geo/nearby?layer=venues&lon=0&lat=95")


SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[108.265, 22.79], [108.305, 22.79], [108.305, 22.81], [108.265, 22.81], [108.265, 22.79]]
    ],
}


async def test_within(seeded: httpx.AsyncClient, db_url: str) -> None:
    body = {"geometry": SQUARE, "layers": ["venues", "grids", "addresses"], "limit": 5}
    r = await seeded.post("/geo/within", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["layers"]
    gj = json.dumps(SQUARE)
    n = db_scalar(
        db_url,
        "SELECT count(*) FROM venues "
        "WHERE ST_Intersects(geom, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
        gj,
    )
    v = out["venues"]
    assert v["type"] == "FeatureCollection"
    assert (v["numberMatched"], v["numberReturned"], len(v["features"])) == (n, 5, 5)
    assert out["grids"]["numberMatched"] == 2
    assert "worker_name" not in out["grids"]["features"][0]["properties"]
    r = await seeded.post("/geo/within", json={**body, "predicate": "within", "limit": 100})
    out = r.json()["layers"]
    assert out["grids"]["numberMatched"] == 0  # the grids stick out of the square
    assert out["venues"]["numberMatched"] == n
    assert out["addresses"]["numberMatched"] == db_scalar(
        db_url,
        "SELECT count(*) FROM addresses "
        "WHERE ST_Within(geom, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
        gj,
    )


async def test_within_bad_input(seeded: httpx.AsyncClient) -> None:
    async def post(body: object, status: int) -> dict:
        r = await seeded.post("/geo/within", json=body)
        assert r.status_code == status, r.text
        return r.json()

    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    out = await post({"geometry": bowtie, "layers": ["venues"]}, 422)
    assert "Self-intersection" in out["detail"]
    await post({"geometry": {"type": "Polygon", "coordinates": "x"}, "layers": ["venues"]}, 422)
    await post({"geometry": {"type": "Blob"}, "layers": ["venues"]}, 422)
    big = {"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]}
    await post({"geometry": big, "layers": ["venues"]}, 422)
    await post({"geometry": SQUARE, "layers": []}, 422)
    await post({"geometry": SQUARE, "layers": ["venues"], "predicate": "touches"}, 422)
    await post({"geometry": SQUARE, "layers": ["venues"], "limit": 0}, 422)
    await post({"layers": ["venues"]}, 422)
    out = await post({"geometry": SQUARE, "layers": ["venues", "nope"]}, 404)
    assert "nope" in out["detail"]
    line = [[108 + i * 1e-6, 22 + (i % 2) * 1e-6] for i in range(100_001)]
    await post({"geometry": {"type": "LineString", "coordinates": line}, "layers": ["venues"]}, 413)
    r = await seeded.post(
        "/geo/within",
        content=b"{" + b" " * (9 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    r = await seeded.post(
        "/geo/within", content=b"not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_json"
