"""Operator edits of layers through OGC API – Features Part 4: checked like imports, audited,
optimistic (a stale edit is 412 and loses nothing), announced, in the next tile; and the same
through OWSLib, a real Part 4 client."""

from __future__ import annotations

import time

import httpx
import mapbox_vector_tile
import morecantile
import psycopg
from owslib.ogcapi.features import Features

from layers.keys import create_key


def venue(code: str, lon: float = 113.39, lat: float = 22.52, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"code": code, "name": "中山纪念中学", "category": "school", **props},
    }


async def test_create_update_replace_delete(client, db_url: str) -> None:
    op = {"X-API-Key": create_key(db_url, "数据员", "operator")[0]}
    viewer = {"X-API-Key": create_key(db_url, "大屏", "viewer")[0]}
    url = "/collections/venues/items"
    conf = (await client.get("/conformance")).json()["conformsTo"]
    part4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"
    assert {part4 + "create-replace-delete", part4 + "update"} <= set(conf)
    assert (await client.post(url, json=venue("V1"))).status_code == 401
    assert (await client.post(url, json=venue("V1"), headers=viewer)).status_code == 403
    r = await client.post(url, json=venue("V1", capacity=800), headers=op)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "http://testserver/collections/venues/items/V1"
    tag1 = r.headers["etag"]
    got = (await client.get(f"{url}/V1")).json()
    assert got["properties"]["capacity"] == 800 and got["geometry"]["coordinates"] == [
        113.39,
        22.52,
    ]

    # The import checks, each a clear 4xx; nothing written.
    bad = [
        (venue("V2", category="castle"), 400),
        (venue("V2", colour="red"), 400),
        ({**venue("V2"), "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, 400),
        ({**venue("V2"), "geometry": {"type": "Point", "coordinates": [200, 95]}}, 400),
        ({"type": "Feature", "geometry": None, "properties": {"name": "x"}}, 400),
        ({"type": "FeatureCollection", "features": []}, 400),
        (venue("V1"), 409),
    ]
    for body, status in bad:
        r = await client.post(url, json=body, headers=op)
        assert r.status_code == status, (body, r.text)
    r = await client.post(url, content=b"{not json", headers=op)
    assert r.status_code == 400
    assert (
        await client.post("/collections/nope/items", json=venue("V2"), headers=op)
    ).status_code == 404
    r = await client.post("/collections/incidents/items", json=venue("V2"), headers=op)
    assert r.status_code == 405 and r.json()["code"] == "not_editable"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM venues").fetchone() == (1,)

    # Two editors read version 1; the first edit wins, the stale one is 412 and loses nothing.
    r = await client.patch(f"{url}/V1", json={"properties": {"name": "纪中"}},
                           headers={**op, "If-Match": tag1})  # fmt: skip
    assert r.status_code == 204, r.text
    tag2 = r.headers["etag"]
    assert tag2 != tag1
    r = await client.put(
        f"{url}/V1", json=venue("V1", capacity=5), headers={**op, "If-Match": tag1}
    )
    assert r.status_code == 412 and r.json()["code"] == "precondition_failed"
    got = (await client.get(f"{url}/V1")).json()["properties"]
    assert got["name"] == "纪中" and got["capacity"] == 800
    # A replace: absent properties become null; the geometry moves.
    r = await client.put(
        f"{url}/V1", json=venue("V1", lon=113.40, key_site=True), headers={**op, "If-Match": tag2}
    )
    assert r.status_code == 204, r.text
    got = (await client.get(f"{url}/V1")).json()
    assert got["properties"]["key_site"] is True and got["properties"].get("capacity") is None
    assert got["geometry"]["coordinates"] == [113.4, 22.52]
    r = await client.put(f"{url}/V1", json=venue("V9"), headers=op)
    assert r.status_code == 400  # the body's code is not the path's
    r = await client.patch(f"{url}/V1", json={"properties": {"category": "castle"}}, headers=op)
    assert r.status_code == 400
    assert (await client.patch(f"{url}/NOPE", json={}, headers=op)).status_code == 404

    tag3 = (await client.patch(f"{url}/V1", json={}, headers=op)).headers["etag"]
    assert (await client.get(f"{url}/V1")).headers["etag"] == tag3
    assert (await client.delete(f"{url}/V1", headers={**op, "If-Match": tag1})).status_code == 412
    assert (await client.delete(f"{url}/V1", headers={**op, "If-Match": tag3})).status_code == 204
    assert (await client.get(f"{url}/V1")).status_code == 404

    with psycopg.connect(db_url) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE target = 'venues/V1' ORDER BY id")]  # fmt: skip
        events = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'layer_changed' "
            "AND payload->>'layer' = 'venues'"
        ).fetchone()
    assert actions == [
        "feature.create",
        "feature.update",
        "feature.replace",
        "feature.update",
        "feature.delete",
    ]
    assert events is not None and events[0] >= 5


def test_owslib_edits_and_the_next_tile(db_url: str, live_server_factory) -> None:
    key = create_key(db_url, "数据员", "operator")[0]
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, "ONEMAP_LOG_LEVEL": "ERROR"})
    base = server.base_url
    api = Features(base, headers={"X-API-Key": key})
    assert api.collection_item_create("venues", venue("V7", lon=113.41, lat=22.51))
    assert api.collection_item("venues", "V7")["properties"]["name"] == "中山纪念中学"
    tile = morecantile.tms.get("WebMercatorQuad").tile(113.43, 22.53, 16)
    path = f"{base}/tiles/venues/{tile.z}/{tile.x}/{tile.y}.mvt"

    def names() -> list[str]:
        r = httpx.get(path, timeout=10)
        assert r.status_code in (200, 204), r.text
        layer = mapbox_vector_tile.decode(r.content).get("venues") if r.content else None
        return [f["properties"].get("name") for f in (layer or {"features": []})["features"]]

    assert names() == []  # nothing there yet (and the empty tile is now cached)
    moved = venue("V7", lon=113.43, lat=22.53, name="搬迁后的纪中")
    assert api.collection_item_update("venues", "V7", moved)
    deadline = time.monotonic() + 2.0
    seen = names()
    while "搬迁后的纪中" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = names()
    assert "搬迁后的纪中" in seen, "the edit did not reach the tile within 2 s"
    assert api.collection_item_delete("venues", "V7")
    r = httpx.get(f"{base}/collections/venues/items/V7", timeout=10)
    assert r.status_code == 404


async def test_a_value_too_long_for_its_index_is_a_clear_400(client, db_url: str) -> None:
    """An address of 1,200 characters cannot be indexed (B-tree entries hold 2,704 bytes):
    a 400 saying so, and nothing written, not a 500."""
    op = {"X-API-Key": create_key(db_url, "数据员", "operator")[0]}
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.39, 22.52]},
        # distinct characters: PostgreSQL compresses a repeated text below the limit
        "properties": {"code": "LONG1", "full_address": "".join(map(chr, range(0x4E00, 0x5300)))},
    }
    r = await client.post("/collections/addresses/items", json=feature, headers=op)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "value_too_long"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM addresses WHERE code = 'LONG1'").fetchone() == (
            0,
        )
