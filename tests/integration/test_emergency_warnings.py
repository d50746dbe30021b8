"""Warnings: issue from a run (dissolved per level), exposure checked against a hand-built
world, idempotent re-issue, lift, expiry, audit, masking, refusals that write nothing."""

from __future__ import annotations

import asyncio
import csv
import io

import h3
import httpx
import psycopg
import pyproj
import pytest
import shapely

from layers.keys import create_key
from tests.support.emergency_world import (
    add_point,
    build_world,
    centre,
    hexagon,
    insert_run,
    offset,
)


@pytest.fixture
def world(db_url: str):
    w = build_world(db_url)
    lon0, lat0 = centre(w.c0)
    lon2, lat2 = centre(w.c2)
    lon1, lat1 = centre(w.c1)
    with psycopg.connect(db_url) as conn:
        v = "venues"
        add_point(
            conn,
            v,
            {"code": "V1", "name": "一小", "category": "school", "key_site": True},
            lon0,
            lat0,
        )  # noqa: E501
        add_point(
            conn,
            v,
            {"code": "V2", "name": "小卖部", "category": "shop", "key_site": False},
            lon2,
            lat2,
        )  # noqa: E501
        add_point(
            conn,
            v,
            {"code": "V3", "name": "幼儿园", "category": "kindergarten", "key_site": True},
            *offset(lon2, lat2, 0, 20),
        )  # noqa: E501
        add_point(
            conn,
            v,
            {"code": "V4", "name": "医院", "category": "hospital", "key_site": True},
            lon1,
            lat1,
        )  # noqa: E501
        # Shelters: one inside c0, two outside (1200 m and 2500 m west of c0's centre).
        s = "shelters"
        add_point(
            conn,
            s,
            {"code": "S0", "name": "内", "capacity": 100, "contact": "张三 139"},
            lon0,
            lat0,
        )  # noqa: E501
        add_point(
            conn,
            s,
            {"code": "S1", "name": "近", "capacity": 500, "contact": "李四 137"},
            *offset(lon0, lat0, 270, 1200),
        )  # noqa: E501
        add_point(
            conn,
            s,
            {"code": "S2", "name": "远", "capacity": 800, "contact": "王五 136"},
            *offset(lon0, lat0, 270, 2500),
        )  # noqa: E501
        # Cameras 300 m east of c0's centre: one looks west into c0, one looks east (away),
        # one offline looks west.
        cx, cy = offset(lon0, lat0, 90, 300)
        c = "cameras"
        add_point(
            conn,
            c,
            {
                "code": "K1",
                "name": "西望",
                "heading_deg": 270.0,
                "fov_deg": 60.0,
                "range_m": 400.0,
                "status": "online",
            },
            cx,
            cy,
        )  # noqa: E501
        add_point(
            conn,
            c,
            {
                "code": "K2",
                "name": "东望",
                "heading_deg": 90.0,
                "fov_deg": 60.0,
                "range_m": 100.0,
                "status": "online",
            },
            cx,
            cy,
        )  # noqa: E501
        add_point(
            conn,
            c,
            {
                "code": "K3",
                "name": "坏",
                "heading_deg": 270.0,
                "fov_deg": 60.0,
                "range_m": 400.0,
                "status": "offline",
            },
            cx,
            cy,
        )  # noqa: E501
    cam_cell = h3.latlng_to_cell(cy, cx, 9)
    assert cam_cell not in (w.c0, w.c2)  # precondition: the cameras stand outside the area
    # K2 looks east, away from c0; its whole sector must stay outside the warned cells.
    tip = offset(cx, cy, 90, 100)
    assert h3.latlng_to_cell(tip[1], tip[0], 9) not in (w.c0, w.c2)
    return w


def _expected_codes(w, cells: set[str]) -> set[str]:
    return {code for code, (x, y) in w.addresses.items() if w.cell_of(x, y) in cells}


def _counts(db_url: str) -> tuple[int, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM warnings), (SELECT count(*) FROM warning_areas), "
            "(SELECT count(*) FROM events WHERE type LIKE 'warning%%'), "
            "(SELECT count(*) FROM audit_log WHERE action LIKE 'warning.%%')"
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def keys(db_url: str) -> dict[str, dict[str, str]]:
    op, _ = create_key(db_url, "值班员", "operator")
    viewer, _ = create_key(db_url, "大屏", "viewer")
    return {"operator": {"X-API-Key": op}, "viewer": {"X-API-Key": viewer}}


async def test_issue_orange_warning_exposure(client: httpx.AsyncClient, world, keys, db_url):
    w = world
    body = {"run_id": w.run_id, "level_min": "orange", "title": "城区内涝橙色预警"}
    r = await client.post("/warnings", json=body, headers=keys["operator"])
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    f = r.json()
    p = f["properties"]
    assert f["id"] == p["code"] and p["level"] == "orange" and p["hazard"] == "flood"
    assert p["status"] == "active" and p["issued_by"] == "值班员" and p["run_id"] == w.run_id

    # The area is exactly the hexagons of c0 (red) and c2 (orange).
    geom = shapely.geometry.shape(f["geometry"])
    want = shapely.unary_union([hexagon(w.c0), hexagon(w.c2)])
    assert geom.symmetric_difference(want).area < 1e-3 * want.area
    levels = {x["level"]: x["cells"] for x in p["exposure"]["area"]["levels"]}
    assert levels == {"red": 1, "orange": 1}
    areas = (await client.get(f"/warnings/{p['code']}/areas")).json()["features"]
    assert [a["properties"]["level"] for a in areas] == ["red", "orange"]
    red = shapely.geometry.shape(areas[0]["geometry"])
    assert red.symmetric_difference(hexagon(w.c0)).area < 1e-3 * red.area

    e = p["exposure"]
    expected = _expected_codes(w, {w.c0, w.c2})
    assert len(expected) > 10
    assert e["addresses"]["count"] == len(expected) == e["summary"]["addresses"]
    assert {a["code"] for a in e["addresses"]["items"]} == expected
    # Venues: key sites first; the hospital in c1 is outside.
    assert e["venues"]["by_category"] == {"school": 1, "kindergarten": 1, "shop": 1}
    assert [v["code"] for v in e["venues"]["items"]][:2] == ["V3", "V1"]  # key, by category
    assert {v["code"] for v in e["venues"]["key_sites"]} == {"V1", "V3"}
    assert e["summary"]["key_sites"] == 2
    # Grids: G1 wholly, G3 half (one of its two equal hexagons); G2 only touches.
    grids = {g["code"]: g for g in e["grids"]}
    assert set(grids) == {"G1", "G3"}
    assert grids["G1"]["share"] == pytest.approx(1.0, abs=1e-6)
    assert grids["G3"]["share"] == pytest.approx(0.5, abs=0.005)
    assert grids["G1"]["worker_name"] == "网格员G1"  # operators see the worker
    assert e["population"] == pytest.approx(1000 + 400, abs=5)
    # Cameras: only K1 (online, looking west into c0).
    assert [c["code"] for c in e["cameras"]["items"]] == ["K1"]
    # Shelters: S0 is inside; S1 then S2 outside, at most their distance to c0's centre and
    # at least that minus the hexagon's circumradius.
    sh = e["shelters"]
    assert [s["code"] for s in sh["inside"]] == ["S0"]
    assert [s["code"] for s in sh["nearest"]] == ["S1", "S2"]
    # Expected distances: shapely in UTM 49N (EPSG:32649) from the shelter to the hexagons.
    to_utm = pyproj.Transformer.from_crs(4326, 32649, always_xy=True).transform
    area_utm = shapely.transform(want, to_utm, interleaved=False)
    for s in sh["nearest"]:
        d = area_utm.distance(shapely.Point(to_utm(s["lon"], s["lat"])))
        assert s["distance_m"] == pytest.approx(d, rel=0.01)
    assert sh["nearest"][0]["contact"] == "李四 137"

    # A viewer sees the same warning without personal fields.
    v = (await client.get(f"/warnings/{p['code']}", headers=keys["viewer"])).json()
    vg = v["properties"]["exposure"]["grids"]
    assert all("worker_name" not in g and "population" not in g for g in vg)
    assert all("contact" not in s for s in v["properties"]["exposure"]["shelters"]["nearest"])
    assert v["properties"]["exposure"]["population"] == e["population"]

    # The list (what the screen draws) carries the summary.
    fc = (await client.get("/warnings")).json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    assert fc["features"][0]["properties"]["exposure"]["addresses"] == len(expected)

    # CSV of every exposed address.
    csv_r = await client.get(f"/warnings/{p['code']}/addresses.csv")
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert {row["code"] for row in rows} == expected

    # Audit: who, what, from where; one event.
    with psycopg.connect(db_url) as conn:
        audit = conn.execute(
            "SELECT actor, role, target, client_addr FROM audit_log WHERE action = 'warning.issue'"
        ).fetchall()
        events = conn.execute(
            "SELECT payload->>'code' FROM events WHERE type = 'warning_issued'"
        ).fetchall()
    assert audit == [("值班员", "operator", p["code"], "127.0.0.1")]
    assert events == [(p["code"],)]


async def test_reissue_is_idempotent_and_lift(client, world, keys, db_url):
    body = {"run_id": world.run_id, "level_min": "yellow"}
    first = await client.post("/warnings", json=body, headers=keys["operator"])
    again = await client.post("/warnings", json=body, headers=keys["operator"])
    assert first.status_code == 201 and again.status_code == 200
    code = first.json()["id"]
    assert again.json()["id"] == code
    before = _counts(db_url)
    assert before[0] == 1

    lifted = await client.post(
        f"/warnings/{code}/lift", json={"reason": "雨停"}, headers=keys["operator"]
    )  # noqa: E501
    assert lifted.status_code == 200 and lifted.json()["properties"]["status"] == "lifted"
    assert lifted.json()["properties"]["lifted_at"]
    twice = await client.post(f"/warnings/{code}/lift", headers=keys["operator"])
    assert twice.status_code == 409 and twice.json()["code"] == "warning_not_active"
    # History stays: the lifted warning is listed under lifted/all, not active.
    assert (await client.get("/warnings")).json()["features"] == []
    assert [f["id"] for f in (await client.get("/warnings?status=lifted")).json()["features"]] == [
        code
    ]  # noqa: E501
    # After a lift, issuing again makes a new warning.
    renewed = await client.post("/warnings", json=body, headers=keys["operator"])
    assert renewed.status_code == 201 and renewed.json()["id"] != code
    with psycopg.connect(db_url) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE action LIKE 'warning.%' ORDER BY id"
            )
        ]
    assert actions == ["warning.issue", "warning.lift", "warning.issue"]


async def test_refusals_write_nothing(client, world, keys, db_url):
    with psycopg.connect(db_url) as conn:
        pending = insert_run(conn, "flood", {world.c0: 4}, status="running")
        empty = insert_run(conn, "landslide", {world.c0: 1})
    before = _counts(db_url)
    op = keys["operator"]
    cases = [
        ({"run_id": 999999, "level_min": "red"}, op, 404, "unknown_run"),
        ({"run_id": world.run_id, "level_min": "purple"}, op, 400, "invalid_level"),
        ({"run_id": world.run_id, "level_min": "red", "hazard": "fire"}, op, 400, "invalid_input"),
        ({"run_id": world.run_id, "level_min": "red", "valid_hours": -1}, op, 400, "invalid_input"),
        ({"run_id": pending, "level_min": "red"}, op, 409, "run_not_ready"),
        ({"run_id": empty, "level_min": "yellow"}, op, 409, "nothing_to_warn"),
        ({"level_min": "red"}, op, 422, "invalid_request"),
        ({"run_id": world.run_id, "level_min": "red"}, keys["viewer"], 403, "forbidden"),
        ({"run_id": world.run_id, "level_min": "red"}, {}, 401, "unauthorized"),
    ]
    for body, headers, status, code in cases:
        r = await client.post("/warnings", json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    r = await client.post("/warnings/NOPE/lift", headers=op)
    assert r.status_code == 404
    r = await client.get("/warnings?status=bogus")
    assert r.status_code == 400
    assert _counts(db_url) == before


async def test_expiry(client, world, keys, db_url):
    body = {"run_id": world.run_id, "level_min": "red", "valid_hours": 1 / 3600}
    r = await client.post("/warnings", json=body, headers=keys["operator"])
    assert r.status_code == 201
    code = r.json()["id"]
    await asyncio.sleep(1.5)
    got = (await client.get(f"/warnings/{code}")).json()
    assert got["properties"]["status"] == "expired"
    assert (await client.get("/warnings?status=expired")).json()["features"][0]["id"] == code
    lift = await client.post(f"/warnings/{code}/lift", headers=keys["operator"])
    assert lift.status_code == 409
    # The sweeper writes it down, with an audit row and an event.
    import asyncpg

    from emergency.warnings import expire_due

    conn = await asyncpg.connect(db_url)
    try:
        assert await expire_due(conn) == [code]
        assert await expire_due(conn) == []
    finally:
        await conn.close()
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT status FROM warnings WHERE code = %s", (code,)).fetchone() == (
            "expired",
        )  # noqa: E501
        assert c.execute(
            "SELECT count(*) FROM events WHERE type = 'warning_expired'"
        ).fetchone() == (1,)  # noqa: E501
    # Re-issuing after expiry gives a new warning.
    again = await client.post("/warnings", json=body, headers=keys["operator"])
    assert again.status_code == 201 and again.json()["id"] != code


async def test_analysis_exposure_matches_warning(client, world, keys):
    r = await client.get(f"/analysis/exposure?run={world.run_id}&level_min=orange")
    assert r.status_code == 200, r.text
    doc = r.json()
    expected = _expected_codes(world, {world.c0, world.c2})
    assert doc["addresses"]["count"] == len(expected)
    assert doc["area"]["cells"] == 2
    assert all("worker_phone" not in g for g in doc["grids"])  # anonymous → viewer
    blue = (await client.get(f"/analysis/exposure?run={world.run_id}&level_min=blue")).json()
    all_cells = {world.c0, world.c1, world.c2, world.c4}
    assert blue["addresses"]["count"] == len(_expected_codes(world, all_cells))
    csv_r = await client.get(f"/analysis/exposure/addresses.csv?run={world.run_id}&level_min=red")
    rows = list(csv.DictReader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert {row["code"] for row in rows} == _expected_codes(world, {world.c0})
    bad = await client.get("/analysis/exposure?run=424242&level_min=red")
    assert bad.status_code == 404 and bad.json()["code"] == "unknown_run"
    bad = await client.get(f"/analysis/exposure?run={world.run_id}&level_min=5")
    assert bad.status_code == 400
