"""Acknowledged delivery (叫应): issuing writes one notification per cadre and grid worker
in the area; receipts and transfer statuses are recorded, audited, announced as events and
summed up per warning."""

from __future__ import annotations

import csv
import io
import json

import psycopg

from layers.keys import create_key
from tests.support.emergency_world import add_residents, build_world


async def test_notifications_acks_and_transfers(client, db_url: str) -> None:
    w = build_world(db_url)
    residents = add_residents(db_url, w)
    inside = [r for r in residents if w.cell_of(r.lon, r.lat) in {w.c0, w.c2}]
    vulnerable = [r for r in inside if r.tags]
    outside_vulnerable = next(r for r in residents if r.tags and r not in inside)
    not_vulnerable = next(r for r in inside if not r.tags)
    key, _ = create_key(db_url, "值班", "operator")
    viewer, _ = create_key(db_url, "大屏", "viewer")
    op = {"X-API-Key": key}
    r = await client.post("/warnings", json={"run_id": w.run_id, "level_min": "orange"}, headers=op)
    assert r.status_code == 201
    code = r.json()["id"]
    grids = {g["code"] for g in r.json()["properties"]["exposure"]["grids"]}
    assert grids == {"G1", "G3"}  # c0 is G1, c2 lies in G3; G2 only touches the area
    cadres = {x.cadre_code for x in inside if x.cadre_code}
    assert r.json()["properties"]["exposure"]["summary"]["notified"] == len(cadres) + 2

    with psycopg.connect(db_url) as conn:
        sent = conn.execute(
            "SELECT recipient_kind, recipient_code, recipient_phone FROM warning_notifications"
        ).fetchall()
    assert {(k, c) for k, c, _ in sent} == {("cadre", c) for c in cadres} | {
        ("worker", g) for g in grids
    }
    assert all(p for _, _, p in sent)

    # Nobody has acknowledged yet; anonymous callers see codes and counts, no names/phones.
    doc = (await client.get(f"/warnings/{code}/acks")).json()
    assert doc["acknowledged"] == [] and len(doc["waiting"]) == len(sent)
    assert doc["progress"]["ack_share"] == 0.0
    assert all("phone" not in x and "name" not in x for x in doc["waiting"])
    assert all(x["waiting_s"] >= 0 for x in doc["waiting"])
    full = (await client.get(f"/warnings/{code}/acks", headers=op)).json()
    assert all(x["phone"] for x in full["waiting"])

    # Receipts.
    cadre = sorted(cadres)[0]
    assert (await client.post(f"/warnings/{code}/acks", json={"code": cadre})).status_code == 401
    r = await client.post(
        f"/warnings/{code}/acks", json={"code": cadre}, headers={"X-API-Key": viewer}
    )
    assert r.status_code == 403
    r = await client.post(f"/warnings/{code}/acks", json={"code": "BB-nobody"}, headers=op)
    assert r.status_code == 404 and r.json()["code"] == "unknown_recipient"
    r = await client.post(
        f"/warnings/{code}/acks", json={"code": cadre, "note": "已收到"}, headers=op
    )
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["progress"]["acknowledged"] == 1 and first["seconds_after_issue"] >= 0
    again = await client.post(f"/warnings/{code}/acks", json={"code": cadre}, headers=op)
    assert again.json()["acked_at"] == first["acked_at"]  # the first receipt stands
    r = await client.post(f"/warnings/{code}/acks", json={"code": "G1"}, headers=op)
    assert r.json()["recipient_kind"] == "worker"
    doc = (await client.get(f"/warnings/{code}/acks")).json()
    assert {x["code"] for x in doc["acknowledged"]} == {cadre, "G1"}
    assert doc["progress"]["acknowledged"] == 2
    assert doc["progress"]["ack_share"] == round(2 / len(sent), 4)

    # Transfers.
    person = vulnerable[0]
    url = f"/warnings/{code}/residents/{person.code}/status"
    assert (await client.post(url, json={"status": "走了"}, headers=op)).status_code == 400
    for who in (outside_vulnerable, not_vulnerable):
        r = await client.post(
            f"/warnings/{code}/residents/{who.code}/status", json={"status": "已转移"}, headers=op
        )
        assert r.status_code == 404 and r.json()["code"] == "unknown_resident", who
    r = await client.post(url, json={"status": "已转移", "note": "送至避难所"}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["progress"]["to_move"] == len(vulnerable) - 1
    listed = (await client.get("/warnings")).json()["features"][0]["properties"]["last_mile"]
    assert listed == {
        "recipients": len(sent),
        "acknowledged": 2,
        "ack_share": round(2 / len(sent), 4),
        "vulnerable": len(vulnerable),
        "to_move": len(vulnerable) - 1,
    }
    rows = (await client.get(f"/warnings/{code}/evacuation.csv", headers=op)).content
    status = {
        row["resident_code"]: row["transfer_status"]
        for row in csv.DictReader(io.StringIO(rows.decode("utf-8-sig")))
    }
    assert status[person.code] == "已转移"
    assert sum(1 for s in status.values() if s == "待转移") == len(vulnerable) - 1
    r = await client.post(url, json={"status": "已返回"}, headers=op)
    assert r.json()["progress"]["transfers"]["已返回"] == 1

    with psycopg.connect(db_url) as conn:
        events = conn.execute(
            "SELECT type, payload FROM events WHERE type IN ('warning_acked', 'resident_status') "
            "ORDER BY id"
        ).fetchall()
        audit = [a for (a,) in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert [t for t, _ in events] == ["warning_acked"] * 3 + ["resident_status"] * 2
    payloads = [p if isinstance(p, dict) else json.loads(p) for _, p in events]
    assert payloads[0]["recipient_code"] == cadre and payloads[3]["status"] == "已转移"
    text = json.dumps(payloads, ensure_ascii=False)
    assert "干部" not in text and "居民" not in text and "13700" not in text
    assert audit.count("warning.ack") == 3 and audit.count("warning.resident_status") == 2
