"""Sensor readings (validation, idempotence, rolling totals) and incidents (assignment to
grid, community and worker; filters; masking), on a hand-built world."""

from __future__ import annotations

import datetime as dt

import httpx
import psycopg
import pytest

from layers.keys import create_key
from tests.support.emergency_world import add_point, build_world, centre, offset


@pytest.fixture
def keys(db_url: str) -> dict[str, dict[str, str]]:
    op, _ = create_key(db_url, "采集网关", "operator")
    viewer, _ = create_key(db_url, "大屏", "viewer")
    return {"operator": {"X-API-Key": op}, "viewer": {"X-API-Key": viewer}}


@pytest.fixture
def sensors(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        add_point(
            conn,
            "sensors",
            {"code": "R1", "name": "雨量站1", "kind": "rain_gauge", "unit": "mm"},
            113.4,
            22.5,
        )  # noqa: E501
        add_point(
            conn,
            "sensors",
            {"code": "W1", "name": "水位站1", "kind": "water_level", "unit": "m"},
            113.41,
            22.5,
        )  # noqa: E501


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _stored(db_url: str) -> list[tuple[str, float]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT sensor_code, value FROM sensor_readings ORDER BY sensor_code, observed_at"
        ).fetchall()


async def test_readings_in_and_totals_out(client: httpx.AsyncClient, sensors, keys, db_url):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Rain before now: 10 min 2 mm, 50 min 3 mm, 2 h 5 mm, 20 h 7 mm, 30 h 11 mm.
    rain = [(10, 2.0), (50, 3.0), (120, 5.0), (1200, 7.0), (1800, 11.0)]
    batch = [
        {"sensor_code": "R1", "observed_at": _iso(now - dt.timedelta(minutes=m)), "value": v}
        for m, v in rain
    ] + [{"sensor_code": "W1", "observed_at": _iso(now - dt.timedelta(minutes=5)), "value": -0.4}]
    r = await client.post("/sensors/readings", json={"readings": batch}, headers=keys["operator"])
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 6, "inserted": 6, "updated": 0, "unchanged": 0, "sensors": 2}
    again = await client.post(
        "/sensors/readings", json={"readings": batch}, headers=keys["operator"]
    )  # noqa: E501
    assert again.json() == {
        "received": 6,
        "inserted": 0,
        "updated": 0,
        "unchanged": 6,
        "sensors": 2,
    }  # noqa: E501
    fixed = [{**batch[0], "value": 2.5}]
    r = await client.post("/sensors/readings", json={"readings": fixed}, headers=keys["operator"])
    assert r.json()["updated"] == 1
    assert len(_stored(db_url)) == 6

    fc = (await client.get("/sensors")).json()
    props = {f["id"]: f["properties"] for f in fc["features"]}
    assert props["R1"]["latest_value"] == 2.5
    assert props["R1"]["rain_mm_1h"] == pytest.approx(2.5 + 3.0)
    assert props["R1"]["rain_mm_3h"] == pytest.approx(2.5 + 3.0 + 5.0)
    assert props["R1"]["rain_mm_24h"] == pytest.approx(2.5 + 3.0 + 5.0 + 7.0)
    assert props["R1"]["stale"] is False
    assert props["W1"]["latest_value"] == -0.4 and props["W1"]["rain_mm_1h"] is None
    # Window ending at the newest reading (what the nowcast uses) and an explicit time.
    past = (
        await client.get("/sensors", params={"at": _iso(now - dt.timedelta(minutes=90))})
    ).json()
    p1 = {f["id"]: f["properties"] for f in past["features"]}["R1"]
    assert p1["rain_mm_1h"] == pytest.approx(5.0) and p1["rain_mm_24h"] == pytest.approx(12.0)
    assert (await client.get("/sensors?at=latest")).status_code == 200
    assert (await client.get("/sensors?at=yesterday")).status_code == 400

    with psycopg.connect(db_url) as conn:
        audits = conn.execute(
            "SELECT actor, client_addr FROM audit_log WHERE action = 'readings.ingest'"
        ).fetchall()
        events = conn.execute("SELECT count(*) FROM events WHERE type = 'readings_received'")
        n_events = events.fetchone()
    assert audits == [("采集网关", "127.0.0.1")] * 2  # the unchanged re-send wrote nothing
    assert n_events == (2,)


async def test_bad_readings_refuse_the_whole_batch(client, sensors, keys, db_url):
    now = dt.datetime.now(dt.UTC)
    good = {"sensor_code": "R1", "observed_at": _iso(now), "value": 1.0}
    cases = [
        ({"sensor_code": "R1", "observed_at": _iso(now), "value": -0.2}, "negative rain"),
        ({"sensor_code": "R9", "observed_at": _iso(now), "value": 1.0}, "unknown sensor"),
        (
            {"sensor_code": "R1", "observed_at": _iso(now + dt.timedelta(days=2)), "value": 1.0},
            "in the future",
        ),
        ({"sensor_code": "R1", "observed_at": "2026-06-01T08:00:00", "value": 1.0}, "time zone"),
        ({"sensor_code": "R1", "observed_at": _iso(now), "value": 1.0, "unit": "m"}, "unit"),
    ]
    for bad, reason in cases:
        r = await client.post(
            "/sensors/readings", json={"readings": [good, bad]}, headers=keys["operator"]
        )
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "invalid_readings"
        assert body["errors"][0]["index"] == 1 and reason in body["errors"][0]["reason"]
    malformed = [
        {"readings": [{"sensor_code": "R1", "observed_at": _iso(now)}]},
        {"readings": [{"sensor_code": "R1", "observed_at": "not a time", "value": 1}]},
        {"readings": "R1=3"},
        {"readings": []},
    ]
    for body in malformed:
        r = await client.post("/sensors/readings", json=body, headers=keys["operator"])
        assert 400 <= r.status_code < 500 and "code" in r.json(), r.text
    r = await client.post("/sensors/readings", json={"readings": [good]}, headers=keys["viewer"])
    assert r.status_code == 403
    assert _stored(db_url) == []


async def test_incidents_assigned_to_grid_community_worker(client, db_url, keys):
    w = build_world(db_url, n_addresses=10)
    lon0, lat0 = centre(w.c0)
    lon2, lat2 = centre(w.c2)
    op = keys["operator"]
    r = await client.post(
        "/incidents",
        json={"kind": "waterlogging", "description": "路面积水30厘米", "lon": lon0, "lat": lat0},
        headers=op,
    )
    assert r.status_code == 201, r.text
    a = r.json()["properties"]
    assert (a["grid_code"], a["community_code"]) == ("G1", "C1")
    assert (a["assigned_worker"], a["assigned_phone"]) == ("网格员G1", "13800001000")
    assert a["status"] == "open" and a["reporter"] == "采集网关"
    r = await client.post(
        "/incidents",
        json={"kind": "landslide", "geometry": {"type": "Point", "coordinates": [lon2, lat2]}},
        headers=op,
    )
    assert r.json()["properties"]["grid_code"] == "G3"
    # Inside the community but in no grid: community only, nobody assigned.
    x, y = centre(w.c4)
    r = await client.post("/incidents", json={"kind": "tree", "lon": x, "lat": y}, headers=op)
    p = r.json()["properties"]
    assert (p["grid_code"], p["community_code"], p["assigned_worker"]) == (None, "C1", None)
    # Far away: nothing.
    fx, fy = offset(lon0, lat0, 0, 50_000)
    r = await client.post("/incidents", json={"kind": "tree", "lon": fx, "lat": fy}, headers=op)
    assert r.json()["properties"]["community_code"] is None

    fc = (await client.get("/incidents", params={"grid_code": "G1"}, headers=op)).json()
    assert [f["properties"]["kind"] for f in fc["features"]] == ["waterlogging"]
    assert len((await client.get("/incidents?community_code=C1")).json()["features"]) == 3
    assert len((await client.get("/incidents?kind=tree")).json()["features"]) == 2
    box = f"{lon0 - 0.001},{lat0 - 0.001},{lon0 + 0.001},{lat0 + 0.001}"
    assert len((await client.get("/incidents", params={"bbox": box})).json()["features"]) == 1
    since = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert (await client.get("/incidents", params={"since": since})).json()["features"] == []
    # Viewers see no reporter and no worker.
    seen = (await client.get("/incidents", headers=keys["viewer"])).json()["features"]
    assert seen and all(
        "reporter" not in f["properties"] and "assigned_phone" not in f["properties"] for f in seen
    )
    # Status changes, audited; bad input is a 4xx and writes nothing.
    code = a["code"]
    r = await client.post(f"/incidents/{code}/status", json={"status": "closed"}, headers=op)
    assert r.status_code == 200 and r.json()["properties"]["status"] == "closed"
    assert len((await client.get("/incidents?status=open")).json()["features"]) == 3
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*) FROM incidents").fetchone()
    for body, headers, status in [
        ({"kind": "x", "lon": 200, "lat": 22}, op, 400),
        ({"kind": "x"}, op, 400),
        ({"kind": "", "lon": 113, "lat": 22}, op, 400),
        ({"kind": "x", "lon": 113, "lat": 22}, keys["viewer"], 403),
        ({"kind": "x", "lon": 113, "lat": 22}, {}, 401),
    ]:
        r = await client.post("/incidents", json=body, headers=headers)
        assert r.status_code == status, r.text
    assert (
        await client.post("/incidents/NOPE/status", json={"status": "closed"}, headers=op)
    ).status_code == 404  # noqa: E501
    assert (await client.get("/incidents?status=gone")).status_code == 400
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() == before
        actions = conn.execute(
            "SELECT action, count(*) FROM audit_log WHERE action LIKE 'incident.%%' GROUP BY 1 "
            "ORDER BY 1"
        ).fetchall()
        events = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'incident_reported'"
        ).fetchone()
    # closing by the status shorthand takes the five remaining steps of the loop
    assert actions == [("incident.report", 4), ("incident.step", 5)]
    assert events == (4,)
