"""A warning's exposure counts residents and vulnerable residents per tag, grid and cadre;
the evacuation list names each vulnerable resident with the nearest shelter; personal
fields stay hidden below the operator role and every read of the list is audited."""

from __future__ import annotations

import csv
import io
from collections import Counter

import h3
import psycopg
import pytest
from pyproj import Geod

from layers.keys import create_key
from tests.support.emergency_world import add_point, add_residents, build_world, centre, offset

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def people(db_url: str):
    w = build_world(db_url)
    residents = add_residents(db_url, w)
    lon0, lat0 = centre(w.c0)
    shelters = {
        "S1": (offset(lon0, lat0, 270, 1200), 500),
        "S2": (offset(lon0, lat0, 90, 1500), 800),
        "S3": (offset(lon0, lat0, 0, 900), 300),
    }
    with psycopg.connect(db_url) as conn:
        for code, ((lon, lat), cap) in shelters.items():
            add_point(
                conn,
                "shelters",
                {"code": code, "name": f"避难所{code}", "capacity": cap, "contact": "x 1"},
                lon,
                lat,
            )
    inside = [r for r in residents if w.cell_of(r.lon, r.lat) in {w.c0, w.c2}]
    assert inside and any(r.tags for r in inside)
    return w, residents, inside, shelters


async def _issue(client, db_url: str, run_id: int) -> tuple[str, dict, str]:
    key, _ = create_key(db_url, "值班", "operator")
    r = await client.post(
        "/warnings", json={"run_id": run_id, "level_min": "orange"}, headers={"X-API-Key": key}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["properties"]["exposure"], key


async def test_exposure_counts_people(client, db_url: str, people) -> None:
    w, _, inside, _ = people
    code, exposure, key = await _issue(client, db_url, w.run_id)
    vulnerable = [r for r in inside if r.tags]
    assert exposure["summary"]["residents"] == len(inside)
    assert exposure["summary"]["vulnerable"] == len(vulnerable)
    tags = Counter(t for r in vulnerable for t in r.tags.split(","))
    assert exposure["residents"]["by_tag"] == dict(tags)
    by_grid = {g["code"]: (g["residents"], g["vulnerable"]) for g in exposure["grids"]}
    for grid in {r.grid_code for r in inside}:
        mine = [r for r in inside if r.grid_code == grid]
        assert by_grid[grid] == (len(mine), sum(1 for r in mine if r.tags))
    cadres = {c["code"]: c for c in exposure["residents"]["cadres"]}
    assert set(cadres) == {r.cadre_code for r in inside if r.cadre_code}
    for cc, c in cadres.items():
        mine = [r for r in inside if r.cadre_code == cc]
        assert (c["residents"], c["vulnerable"]) == (len(mine), sum(1 for r in mine if r.tags))
        assert c["name"] == f"干部{cc}" and c["phone"].startswith("13700")

    # Anonymous and viewer callers get the counts, never a name or phone.
    viewer, _ = create_key(db_url, "大屏", "viewer")
    for headers in ({}, {"X-API-Key": viewer}):
        r = await client.get(f"/warnings/{code}", headers=headers)
        doc = r.json()["properties"]["exposure"]
        assert doc["summary"]["vulnerable"] == len(vulnerable)
        assert all(set(c) == {"code", "grid_code", "residents", "vulnerable"}
                   for c in doc["residents"]["cadres"])  # fmt: skip
        assert "干部" not in r.text and "13700" not in r.text and "居民" not in r.text
    listed = (await client.get("/warnings")).text
    assert "干部" not in listed and "13700" not in listed
    assert (
        (await client.get(f"/warnings/{code}", headers={"X-API-Key": key}))
        .json()["properties"]["exposure"]["residents"]["cadres"][0]["phone"]
        .startswith("13700")
    )


async def test_evacuation_list(client, db_url: str, people) -> None:
    w, _, inside, shelters = people
    code, _, key = await _issue(client, db_url, w.run_id)
    viewer, _ = create_key(db_url, "大屏", "viewer")
    assert (await client.get(f"/warnings/{code}/evacuation.csv")).status_code == 401
    r = await client.get(f"/warnings/{code}/evacuation.csv", headers={"X-API-Key": viewer})
    assert r.status_code == 403
    assert (
        await client.get("/warnings/W0/evacuation.csv", headers={"X-API-Key": key})
    ).status_code == 404

    r = await client.get(f"/warnings/{code}/evacuation.csv", headers={"X-API-Key": key})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    vulnerable = {x.code: x for x in inside if x.tags}
    assert {row["resident_code"] for row in rows} == set(vulnerable)
    for row in rows:
        res = vulnerable[row["resident_code"]]
        assert row["tags"] == res.tags and row["cadre_code"] == (res.cadre_code or "")
        assert row["address_code"] == res.address_code and row["full_address"]
        assert row["transfer_status"] == "待转移"
        assert row["name"].startswith("居民") and row["phone"].startswith("1390000")
        dist = {
            s: GEOD.inv(res.lon, res.lat, lon, lat)[2] for s, ((lon, lat), _) in shelters.items()
        }
        nearest = min(dist, key=dist.__getitem__)
        assert row["shelter_code"] == nearest
        assert int(row["shelter_capacity"]) == shelters[nearest][1]
        assert float(row["shelter_distance_m"]) == pytest.approx(dist[nearest], abs=1.0)
        assert h3.latlng_to_cell(float(row["lat"]), float(row["lon"]), 9) in {w.c0, w.c2}
    await client.get(f"/warnings/{code}/evacuation.csv", headers={"X-API-Key": key})
    with psycopg.connect(db_url) as conn:
        audit = conn.execute(
            "SELECT actor, target, detail->>'vulnerable' FROM audit_log "
            "WHERE action = 'warning.evacuation_list' ORDER BY id"
        ).fetchall()
    assert audit == [("值班", code, str(len(vulnerable)))] * 2
