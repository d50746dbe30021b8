"""CAP 1.2 messages of a warning: issue → Alert, replace → Update, lift → Cancel, each valid
against the OASIS schema, read back by an independent CAP parser, listed in the Atom feed."""

from __future__ import annotations

import datetime as dt
import re

import feedparser
import h3
import psycopg
import shapely

from layers.keys import create_key
from tests.support.cap import assert_valid_cap, parse_cap
from tests.support.emergency_world import build_world, insert_run

IDENTIFIER = re.compile(r"^\d{14}_\d{14}_\d$")


def _rings(polygons: list[str]) -> list[shapely.Polygon]:
    out = []
    for text in polygons:
        pairs = [tuple(map(float, p.split(","))) for p in text.split()]
        assert pairs[0] == pairs[-1], "CAP rings are closed"
        assert 4 <= len(pairs) <= 100
        out.append(shapely.Polygon([(lon, lat) for lat, lon in pairs]))  # lat,lon order
    return out


def _refs(text: str) -> list[str]:
    return [r.split(",")[1] for r in text.split()]


async def test_alert_update_cancel_and_feed(client, db_url: str) -> None:
    w = build_world(db_url)
    key, _ = create_key(db_url, "值班", "operator")
    op = {"X-API-Key": key}
    r = await client.post("/warnings", json={"run_id": w.run_id, "level_min": "orange"}, headers=op)
    assert r.status_code == 201, r.text
    code = r.json()["id"]

    # 1. The Alert.
    r = await client.get(f"/warnings/{code}.cap")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/cap+xml")
    assert_valid_cap(r.content)
    alert = parse_cap(r.content)
    assert IDENTIFIER.match(alert["identifier"]) and alert["identifier"].startswith("442000")
    assert alert["msgType"] == "Alert" and alert["status"] == "Actual"
    assert alert["references"] is None and alert["infos"] == 1
    assert alert["sent"].endswith("+08:00") and alert["expires"].endswith("+08:00")
    assert alert["identifier"][15:29] == dt.datetime.fromisoformat(alert["sent"]).strftime(
        "%Y%m%d%H%M%S"
    )
    assert (alert["severity"], alert["urgency"], alert["certainty"]) == (
        "Severe",
        "Immediate",
        "Likely",
    )
    assert alert["headline"] == "洪涝灾害橙色预警" and "转移" in alert["instruction"]
    rings = _rings(alert["polygons"])
    covered = shapely.union_all(rings)
    for cell in (w.c0, w.c2):  # the orange-or-worse cells lie inside the CAP area
        lat, lon = h3.cell_to_latlng(cell)
        assert covered.contains(shapely.Point(lon, lat))
    lat, lon = h3.cell_to_latlng(w.c4)  # a blue cell two rings away stays outside
    assert not covered.contains(shapely.Point(lon, lat))

    # 2. Replacing it with a red warning from a newer run: an Update referencing the Alert.
    with psycopg.connect(db_url) as conn:
        newer = insert_run(conn, "flood", {w.c0: 4, w.c1: 4, w.c2: 3})
    r = await client.post(
        "/warnings",
        json={"run_id": newer, "level_min": "red", "replaces": code, "title": "内涝加剧"},
        headers=op,
    )
    assert r.status_code == 201, r.text
    code2 = r.json()["id"]
    update_xml = (await client.get(f"/warnings/{code2}.cap")).content
    assert_valid_cap(update_xml)
    update = parse_cap(update_xml)
    assert update["msgType"] == "Update" and update["severity"] == "Extreme"
    assert _refs(update["references"]) == [alert["identifier"]]
    assert update["references"].split(",")[0] == alert["sender"]
    old = (await client.get(f"/warnings/{code}")).json()
    assert old["properties"]["status"] == "lifted"
    # the replaced warning's Alert is still served by identifier, byte for byte
    again = await client.get(f"/warnings/{code}.cap", params={"identifier": alert["identifier"]})
    assert parse_cap(again.content) == alert

    # 3. The feed lists what is in force: the Update, not the superseded Alert.
    r = await client.get("/warnings/feed.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.bozo_exception
    links = [e.link for e in feed.entries]
    assert links == [f"http://testserver/warnings/{code2}.cap?identifier={update['identifier']}"]
    entry = feed.entries[0]
    assert entry.title == update["headline"] and entry.links[0].type == "application/cap+xml"
    served = await client.get(links[0].removeprefix("http://testserver"))
    assert served.content == update_xml

    # 4. Lift: a Cancel referencing the Update; the feed shows the Cancel.
    r = await client.post(f"/warnings/{code2}/lift", json={"reason": "雨停水退"}, headers=op)
    assert r.status_code == 200
    cancel_xml = (await client.get(f"/warnings/{code2}.cap")).content
    assert_valid_cap(cancel_xml)
    cancel = parse_cap(cancel_xml)
    assert cancel["msgType"] == "Cancel" and _refs(cancel["references"]) == [update["identifier"]]
    assert cancel["headline"].startswith("解除") and cancel["urgency"] == "Past"
    assert len({alert["identifier"], update["identifier"], cancel["identifier"]}) == 3
    messages = (await client.get(f"/warnings/{code2}/messages")).json()["messages"]
    assert [m["msg_type"] for m in messages] == ["Update", "Cancel"]
    feed = feedparser.parse((await client.get("/warnings/feed.atom")).content)
    assert [e.get("cap_msgtype") for e in feed.entries] == ["Cancel"]
    with psycopg.connect(db_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("warning.issue") == 2 and "warning.replace" in actions


async def test_cap_errors(client, db_url: str) -> None:
    w = build_world(db_url)
    key, _ = create_key(db_url, "值班", "operator")
    op = {"X-API-Key": key}
    r = await client.get("/warnings/W20990101-00001.cap")
    assert r.status_code == 404 and r.json()["code"] == "unknown_warning"
    body = {"run_id": w.run_id, "level_min": "orange", "replaces": "W20990101-00001"}
    r = await client.post("/warnings", json=body, headers=op)
    assert r.status_code == 404 and r.json()["code"] == "unknown_warning"
    r = await client.post("/warnings", json={"run_id": w.run_id, "level_min": "red"}, headers=op)
    code = r.json()["id"]
    r = await client.get(f"/warnings/{code}.cap", params={"identifier": "nope"})
    assert r.status_code == 404
    assert (await client.post(f"/warnings/{code}/lift", headers=op)).status_code == 200
    body = {"run_id": w.run_id, "level_min": "orange", "replaces": code}
    r = await client.post("/warnings", json=body, headers=op)
    assert r.status_code == 409 and r.json()["code"] == "warning_not_active"
    with psycopg.connect(db_url) as conn:
        landslide = insert_run(conn, "landslide", {w.c0: 4})
        active = conn.execute("SELECT count(*) FROM warnings WHERE status = 'active'").fetchone()
    r = await client.post("/warnings", json={"run_id": w.run_id, "level_min": "red"}, headers=op)
    flood = r.json()["id"]
    body = {"run_id": landslide, "level_min": "red", "replaces": flood}
    r = await client.post("/warnings", json=body, headers=op)
    assert r.status_code == 400 and "flood" in r.json()["detail"]
    # nothing of the refused replacement was kept: the flood warning is still in force
    assert (await client.get(f"/warnings/{flood}")).json()["properties"]["status"] == "active"
    assert active == (0,)
