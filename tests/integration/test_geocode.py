"""Geocoding against the demo city: cascade levels, batch, bad input, reverse, accuracy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from geo_service.app import create_app
from geo_service.routers.addresses import router
from geo_service.settings import Settings
from layers.addresses.index import AddressIndex, GeocodeResult
from layers.addresses.variants import make_variants
from tests.support.pg import demo_database


@pytest.fixture(scope="module")
def demo_url(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    data_dir = tmp_path_factory.mktemp("demo")
    with demo_database(pg_admin_url, template_db, "geocode_demo_module", data_dir, 1, 42) as url:
        yield url


Geocode = Callable[[str], GeocodeResult]


@pytest.fixture(scope="module")
def db(demo_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def geocode(db: psycopg.Connection) -> Geocode:
    """One geocode through the index (names in memory, rows looked up in the database)."""
    index = AddressIndex.load(db)
    return lambda q: index.geocode(db, q)


@pytest.fixture(scope="module")
def sample(demo_url: str) -> dict[str, dict[str, object]]:
    with psycopg.connect(demo_url, row_factory=dict_row) as conn:
        room = conn.execute("SELECT * FROM addresses WHERE unit IS NOT NULL LIMIT 1").fetchone()
        assert room
        house = conn.execute(
            "SELECT * FROM addresses WHERE room IS NULL AND estate IS NULL LIMIT 1"
        ).fetchone()
    return {"room": room, "house": house}  # type: ignore[dict-item]


@pytest.fixture
async def api(demo_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=demo_url, env="test", data_dir=tmp_path))
    if not any(getattr(r, "path", "") == "/geo/geocode" for r in app.routes):
        app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


def test_cascade_levels(geocode: Geocode, sample: dict[str, dict[str, object]]) -> None:
    r = sample["room"]
    est, bld, unit, room = r["estate"], r["building"], r["unit"], r["room"]
    road, num = r["road"], r["house_number"]
    assert geocode(str(r["code"])).match_level == "room"
    res = geocode(str(r["full_address"]))
    assert (res.match_level, res.code, res.score) == ("room", r["code"], 1.0)
    res = geocode(f"{est}{str(bld)[:-1]}-{str(unit)[:-2]}-{str(room)[:-1]}")
    assert (res.match_level, res.code) == ("room", r["code"])
    res = geocode(f"{road}{num}{est}{bld}")
    assert res.match_level == "building" and res.full_address.endswith(f"{est}{bld}")  # type: ignore[union-attr]
    assert geocode(f"{road}{num}").match_level == "number"
    assert geocode(f"{road}").match_level == "road"
    assert geocode(f"{road}999号").match_level == "road"
    assert geocode(str(r["community"])).match_level == "community"
    assert geocode(str(r["street"])).match_level == "street"
    assert geocode("广东省中山市石岐区").match_level == "district"
    assert geocode("火星基地").match_level == "none"
    # a room that does not exist never comes back as a room
    res = geocode(f"{est}{bld}{unit}9999室")
    assert res.match_level == "building" and res.score < 0.9


def test_address_elsewhere_is_not_matched(
    geocode: Geocode, sample: dict[str, dict[str, object]]
) -> None:
    """The same road and number in another province or city is not the demo's address."""
    r = sample["room"]
    here = f"{r['road']}{r['house_number']}{r['estate']}{r['building']}"
    assert geocode(here).match_level == "building"
    assert geocode(f"{r['province']}{r['city']}{here}").match_level == "building"
    for elsewhere in ("浙江省杭州市西湖区", "北京市海淀区", "绍兴柯桥"):
        res = geocode(elsewhere + here)
        assert (res.match_level, res.code) == ("none", None), elsewhere


def test_grid_and_coordinates(geocode: Geocode, sample: dict[str, dict[str, object]]) -> None:
    res = geocode(str(sample["house"]["full_address"]))
    assert res.match_level == "number" and res.grid_code and res.lon and res.lat


def test_messy_accuracy(db: psycopg.Connection) -> None:
    with db.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM addresses ORDER BY id").fetchall()
    variants = make_variants(rows, 5000, seed=11)
    index = AddressIndex.load(db)
    results = index.geocode_many(db, [text for text, _, _ in variants])
    # a batch answers each query as if it were alone
    alone = [index.geocode(db, text) for text, _, _ in variants[:300]]
    assert [r.as_dict() for r in alone] == [r.as_dict() for r in results[:300]]
    correct = sum(r.code == code for r, (_, code, _) in zip(results, variants, strict=True))
    rooms = [(r, code) for r, (_, code, _) in zip(results, variants, strict=True)
             if r.match_level == "room"]  # fmt: skip
    room_ok = sum(r.code == code for r, code in rooms) / len(rooms)
    print(
        f"messy: top-1 {correct / len(variants):.4f}, room claims {len(rooms)} right {room_ok:.4f}"
    )
    assert len(variants) >= 5000
    assert correct / len(variants) >= 0.97
    assert room_ok >= 0.995


async def test_http_parse_geocode(
    api: httpx.AsyncClient, sample: dict[str, dict[str, object]]
) -> None:
    r = await api.get("/geo/parse", params={"q": "广东中山石岐区中山路十二号三栋"})
    assert r.status_code == 200 and r.json()["components"]["house_number"] == "12号"
    r = await api.get("/geo/geocode", params={"q": sample["room"]["full_address"]})
    body = r.json()
    assert r.status_code == 200 and body["match_level"] == "room" and body["grid_code"]


async def test_http_parse_national_with_spans(api: httpx.AsyncClient) -> None:
    """A county of another province parses from the national gazetteer, and each component
    comes with the text it was read from."""
    r = await api.get("/geo/parse", params={"q": "浙江嵊州崇仁镇崇仁路５号B懂302"})
    assert r.status_code == 200
    c = r.json()["components"]
    assert (c["city"], c["district"], c["street"]) == ("绍兴市", "嵊州市", "崇仁镇")
    assert (c["house_number"], c["building"], c["room"], c["floor"]) == (
        "5号",
        "B栋",
        "302室",
        None,
    )
    assert c["spans"]["district"] == "嵊州"
    assert c["spans"]["house_number"] == "５号"
    assert c["spans"]["building"] == "B懂"
    assert "city" not in c["spans"]  # filled from the hierarchy, not read


async def test_http_batch(api: httpx.AsyncClient, sample: dict[str, dict[str, object]]) -> None:
    room = str(sample["room"]["full_address"])
    # a NUL or a lone surrogate inside one address spoils neither it nor the batch
    noisy = room[:4] + "\x00" + room[4:] + "\udc80"
    addrs = [room, "火星基地", "", 12, "😀", noisy, "\x00" * 8]
    body = json.dumps({"addresses": addrs})  # ASCII escapes: \\udc80 as a client sends it
    r = await api.post("/geo/geocode", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    levels = [x["match_level"] for x in r.json()["results"]]
    assert levels == ["room", "none", "none", "none", "none", "room", "none"]
    r = await api.post("/geo/geocode", json={"addresses": ["中山路"] * 10_001})
    assert r.status_code == 413 and r.json()["code"] == "too_many_addresses"


@pytest.mark.parametrize(
    "q", ["", "x" * 501, "hello", "😀😀😀", "'; DROP TABLE addresses;--", "1 OR 1=1"]
)
async def test_http_bad_input(api: httpx.AsyncClient, q: str) -> None:
    r = await api.get("/geo/geocode", params={"q": q})
    assert 400 <= r.status_code < 500 or r.json()["match_level"] in ("none", "road", "district")
    assert r.status_code < 500
    if r.status_code == 200:
        assert r.json()["match_level"] != "room"


async def test_http_control_characters_only_is_an_empty_query(api: httpx.AsyncClient) -> None:
    r = await api.get("/geo/geocode", params={"q": "\x00\x01 "})
    assert r.status_code == 400 and r.json()["code"] == "empty_query"


async def test_http_invalid_utf8(api: httpx.AsyncClient) -> None:
    r = await api.get("/geo/geocode?q=%FF%FE%C3")
    assert r.status_code < 500
    r = await api.post("/geo/geocode", content=b'{"addresses": ["\xff\xfe"]}',
                       headers={"content-type": "application/json"})  # fmt: skip
    assert 400 <= r.status_code < 500


async def test_http_reverse(api: httpx.AsyncClient, sample: dict[str, dict[str, object]]) -> None:
    r = await api.get("/geo/geocode", params={"q": sample["house"]["full_address"]})
    lon, lat = r.json()["lon"], r.json()["lat"]
    r = await api.get("/geo/reverse", params={"lon": lon, "lat": lat})
    body = r.json()
    assert r.status_code == 200 and body["distance_m"] < 1.0
    assert body["address"]["district"] == "石岐区" and body["address"]["grid_code"]
    r = await api.get("/geo/reverse", params={"lon": lon, "lat": lat - 1.0})
    assert r.json()["distance_m"] > 50_000
    for bad in ({"lon": 200, "lat": 22}, {"lon": 113, "lat": -91}, {"lon": "x", "lat": 1}, {}):
        assert (await api.get("/geo/reverse", params=bad)).status_code == 400


async def test_http_gazetteer_missing_is_a_clear_503(
    api: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the admin-division data the address routes say what to install, not 500."""
    monkeypatch.setenv("ONEMAP_GAZETTEER_DIR", str(tmp_path))
    r = await api.get("/geo/geocode", params={"q": "中山路12号"})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == "gazetteer_unavailable" and "make setup" in body["detail"]


def _insert(conn: psycopg.Connection, rows: list[dict[str, object]]) -> None:
    for r in rows:
        cols = [k for k in r if k not in ("lon", "lat")]
        conn.execute(
            f"INSERT INTO addresses ({', '.join(cols)}, geom) VALUES "  # noqa: S608
            f"({', '.join(['%s'] * len(cols))}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            [*(r[c] for c in cols), r["lon"], r["lat"]],
        )


def test_names_written_alike_stay_apart(db_url: str) -> None:
    """Estates the parser writes alike (东侧花园 and 西侧花园 lose their 东侧/西侧 as noise)
    are tied candidates that the road and number tell apart, not one merged estate; stored
    letters and full-width digits key like the parser's (12a号 is 12A, not 12; １６号 is 16)."""
    base = {"province": "广东省", "city": "中山市", "district": "石岐区", "road": "华景路"}
    with psycopg.connect(db_url, autocommit=True) as conn:
        _insert(conn, [
            {**base, "code": "E6", "full_address": "华景路14号东侧花园1栋", "estate": "东侧花园",
             "house_number": "14号", "building": "1栋", "lon": 113.40, "lat": 22.50},
            {**base, "code": "E7", "full_address": "华景路16号西侧花园1栋", "estate": "西侧花园",
             "house_number": "１６号", "building": "1栋", "lon": 113.41, "lat": 22.51},
            {**base, "code": "N1", "full_address": "华景路12a号", "house_number": "12a号",
             "lon": 113.42, "lat": 22.52},
            {**base, "code": "N2", "full_address": "华景路12号", "house_number": "12号",
             "lon": 113.43, "lat": 22.53},
        ])  # fmt: skip
        index = AddressIndex.load(conn)
        got = {q: index.geocode(conn, q) for q in (
            "华景路14号东侧花园1栋", "华景路16号西侧花园1栋", "华景路12号", "华景路16号",
            "华景路12A号",
        )}  # fmt: skip
    assert (got["华景路14号东侧花园1栋"].match_level, got["华景路14号东侧花园1栋"].code) == (
        "building", "E6")  # fmt: skip
    assert (got["华景路16号西侧花园1栋"].match_level, got["华景路16号西侧花园1栋"].code) == (
        "building", "E7")  # fmt: skip
    assert (got["华景路12号"].match_level, got["华景路12号"].code) == ("number", "N2")
    assert (got["华景路12A号"].match_level, got["华景路12A号"].code) == ("number", "N1")
    assert got["华景路16号"].code == "E7"
