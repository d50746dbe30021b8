"""Residents' and cadres' personal data never reach anonymous or viewer callers: every read
route of a warning's last mile (JSON, CSV, CAP, Atom), the exposure and statistics routes, the
residents layer and the live event stream are swept for the stored values."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest

from layers.keys import create_key
from tests.support.emergency_world import add_residents, build_world
from tests.support.sse_client import SseReader


def _secrets(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT name, phone, id_number, id_hash, cadre_name, cadre_phone FROM residents"
        ).fetchall()
    return {v for row in rows for v in row if v}


def _leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in text)


@pytest.fixture
def walked(db_url: str, live_server_factory):
    """A warning with an acknowledgement and a transfer, on a live server."""
    w = build_world(db_url)
    residents = add_residents(db_url, w)
    op = {"X-API-Key": create_key(db_url, "值班", "operator")[0]}
    viewer = {"X-API-Key": create_key(db_url, "大屏", "viewer")[0]}
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, "ONEMAP_LOG_LEVEL": "ERROR"})
    base = server.base_url
    r = httpx.post(base + "/warnings", json={"run_id": w.run_id, "level_min": "orange"}, headers=op)
    assert r.status_code == 201, r.text
    code = r.json()["id"]
    inside = {w.c0, w.c2}
    person = next(x for x in residents if x.tags and w.cell_of(x.lon, x.lat) in inside)
    r = httpx.post(f"{base}/warnings/{code}/acks", json={"code": person.cadre_code}, headers=op)
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{base}/warnings/{code}/residents/{person.code}/status",
        json={"status": "已转移", "note": "已送至安置点"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    return {"base": base, "code": code, "run": w.run_id, "op": op, "viewer": viewer, "lon":
            person.lon, "lat": person.lat}  # fmt: skip


def test_sweep_of_read_routes(walked, db_url: str) -> None:
    base, code = walked["base"], walked["code"]
    secrets = _secrets(db_url)
    assert len(secrets) > 100
    urls = [
        "/warnings",
        "/warnings?status=all",
        f"/warnings/{code}",
        f"/warnings/{code}/areas",
        f"/warnings/{code}/acks",
        f"/warnings/{code}/messages",
        f"/warnings/{code}.cap",
        "/warnings/feed.atom",
        f"/warnings/{code}/addresses.csv",
        f"/warnings/{code}/evacuation.csv",
        f"/analysis/exposure?run={walked['run']}&level_min=orange",
        "/stats/summary",
        "/stats/grids/G1",
        "/collections/residents/items?limit=1000",
        "/collections/residents/items?limit=1000&f=csv",
        f"/geo/nearby?layer=residents&lon={walked['lon']}&lat={walked['lat']}&limit=50",
    ]
    # The operator sees the personal data (so the sweep would find a leak) …
    seen = httpx.get(f"{base}/warnings/{code}/evacuation.csv", headers=walked["op"], timeout=30)
    assert seen.status_code == 200 and _leaks(seen.text, secrets)
    acks = httpx.get(f"{base}/warnings/{code}/acks", headers=walked["op"], timeout=30)
    assert _leaks(acks.text, secrets)
    # … anonymous and viewer callers never do.
    for who, headers in (("anonymous", {}), ("viewer", walked["viewer"])):
        for url in urls:
            r = httpx.get(base + url, headers=headers, timeout=30)
            assert r.status_code in (200, 401, 403), (who, url, r.status_code, r.text[:300])
            assert not _leaks(r.text, secrets), (who, url, _leaks(r.text, secrets)[:5])
        denied = httpx.get(f"{base}/warnings/{code}/evacuation.csv", headers=headers, timeout=30)
        assert denied.status_code in (401, 403)


def test_event_stream_carries_no_personal_data(walked, db_url: str) -> None:
    secrets = _secrets(db_url)
    for headers in ({}, walked["viewer"]):
        sse = SseReader(walked["base"] + "/events?last_event_id=0", headers)
        got = {}
        for kind in ("warning_issued", "warning_acked", "resident_status"):
            ev = sse.next(kind, timeout_s=10)
            got[kind] = ev.data
        text = json.dumps(got, ensure_ascii=False)
        assert got["warning_acked"]["code"] == walked["code"]
        assert got["resident_status"]["status"] == "已转移"
        assert not _leaks(text, secrets), _leaks(text, secrets)[:5]


def test_photos_and_exif_location_hidden(walked, db_url: str) -> None:
    import io

    from PIL import Image

    img = Image.new("RGB", (120, 90), "teal")
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (22.0, 30.0, 1.0), 3: "E", 4: (113.0, 20.0, 2.0)})
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    base = walked["base"]
    r = httpx.post(
        base + "/incidents",
        data={
            "kind": "fallen_tree",
            "lon": str(walked["lon"]),
            "lat": str(walked["lat"]),
            "reporter": "居民王五 13911112222",
        },  # fmt: skip
        files=[("photos", ("tree.jpg", buf.getvalue(), "image/jpeg"))],
        headers=walked["op"],
        timeout=30,
    )
    assert r.status_code == 201, r.text
    code = r.json()["id"]
    full = httpx.get(f"{base}/incidents/{code}", headers=walked["op"], timeout=30).text
    assert "exif_lat" in full and "13911112222" in full  # the operator sees them
    for headers in ({}, walked["viewer"]):
        urls = ("/incidents", f"/incidents/{code}", f"/incidents/{code}/steps",
                "/collections/incidents/items")  # fmt: skip
        for url in urls:
            text = httpx.get(base + url, headers=headers, timeout=30).text
            assert "exif_lat" not in text and "exif_lon" not in text, url
            assert "13911112222" not in text and "王五" not in text, url
        for size in ("full", "thumb"):
            photo = httpx.get(f"{base}/incidents/{code}/photos/1?size={size}", headers=headers)
            assert photo.status_code == 200 and b"Exif" not in photo.content
            with Image.open(io.BytesIO(photo.content)) as seen:
                assert not seen.getexif().get_ifd(0x8825)
