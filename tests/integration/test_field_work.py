"""Field work: a grid worker's report with photos goes through the loop 上报 → 受理 → 派遣 →
处置 → 核查 → 结案 against its kind's deadline; KPIs per grid; photos by role with the EXIF
location only for those who may see it; bad uploads are clear 4xx and store nothing."""

from __future__ import annotations

import asyncio
import io
import random
import socket
from pathlib import Path

import asyncpg
import httpx
import psycopg
import pytest
from PIL import Image

from emergency.incidents import mark_overdue
from geo_service.app import create_app
from geo_service.settings import Settings
from layers.keys import create_key
from tests.support.emergency_world import build_world

GPS = {1: "N", 2: (22.0, 31.0, 12.0), 3: "E", 4: (113.0, 23.0, 24.0)}


def jpeg_with_gps(w: int = 640, h: int = 480, colour: str = "steelblue") -> bytes:
    img = Image.new("RGB", (w, h), colour)
    exif = Image.Exif()
    exif.get_ifd(0x8825).update(GPS)
    exif.get_ifd(0x8769)[36867] = "2026:07:01 09:30:00"
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(w: int = 200, h: int = 150, noise: bool = False) -> bytes:
    img = Image.new("RGB", (w, h), "orange")
    if noise:
        rng = random.Random(7)
        img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                     for _ in range(w * h)])  # fmt: skip
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def one(name: str, data: bytes) -> tuple[str, tuple[str, bytes, str]]:
    """A ``photos`` part (declared as JPEG or PNG by its name; the server checks the bytes)."""
    return ("photos", (name, data, "image/png" if name.endswith(".png") else "image/jpeg"))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_report_with_photos_through_the_loop(client, db_url, settings) -> None:
    w = build_world(db_url, n_addresses=20)
    op = {"X-API-Key": create_key(db_url, "网格员张三", "operator")[0]}
    admin = {"X-API-Key": create_key(db_url, "管理员", "admin")[0]}
    viewer = {"X-API-Key": create_key(db_url, "大屏", "viewer")[0]}
    body = {"department": "swj", "deadline_h": 4, "title": "内涝积水"}
    assert (
        await client.put("/incidents/kinds/waterlogging", json=body, headers=op)
    ).status_code == 403
    r = await client.put("/incidents/kinds/waterlogging", json=body, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.put("/incidents/kinds/x", json={**body, "department": "nope"}, headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "unknown_department"

    lon, lat = h3_centre(w.c0)
    photo1, photo2 = jpeg_with_gps(), png()
    r = await client.post(
        "/incidents",
        data={"kind": "waterlogging", "lon": str(lon), "lat": str(lat), "description": "路口积水"},
        files=[
            ("photos", ("a.jpg", photo1, "image/jpeg")),
            ("photos", ("b.png", photo2, "image/png")),
        ],
        headers=op,
    )
    assert r.status_code == 201, r.text
    inc = r.json()["properties"]
    code = inc["code"]
    assert inc["stage"] == "上报" and inc["status"] == "open" and inc["grid_code"] == "G1"
    assert inc["department_code"] == "swj" and inc["overdue"] is False
    reported = inc["reported_at"]
    assert [p["n"] for p in inc["photos"]] == [1, 2]
    assert inc["photos"][0]["media_type"] == "image/jpeg" and inc["photos"][0]["width"] == 640
    assert inc["photos"][0]["exif_lat"] == pytest.approx(22 + 31 / 60 + 12 / 3600)
    assert inc["photos"][0]["exif_lon"] == pytest.approx(113 + 23 / 60 + 24 / 3600)
    assert inc["photos"][0]["taken_at"].startswith("2026-07-01T")

    # Photos by role: the original with its EXIF for operators, no metadata for others.
    got = await client.get(f"/incidents/{code}/photos/1", headers=op)
    assert got.status_code == 200 and got.content == photo1
    for headers in ({}, viewer):
        seen = (await client.get(f"/incidents/{code}", headers=headers)).json()["properties"]
        assert all("exif_lat" not in p and "exif_lon" not in p for p in seen["photos"])
        assert "reporter" not in seen
        pub = await client.get(f"/incidents/{code}/photos/1", headers=headers)
        assert pub.status_code == 200 and pub.headers["content-type"] == "image/jpeg"
        assert pub.content != photo1 and b"Exif" not in pub.content
        with Image.open(io.BytesIO(pub.content)) as img:
            assert img.size == (640, 480) and not img.getexif().get_ifd(0x8825)
        thumb = await client.get(f"/incidents/{code}/photos/2?size=thumb", headers=headers)
        with Image.open(io.BytesIO(thumb.content)) as img:
            assert max(img.size) <= 320 and not img.getexif()
    assert (await client.get(f"/incidents/{code}/photos/3")).status_code == 404

    # A phone's HEIC photo: accepted by its bytes, served to viewers as a plain JPEG.
    import pillow_heif

    pillow_heif.register_heif_opener()
    heic = io.BytesIO()
    Image.new("RGB", (96, 64), "olive").save(heic, "HEIF")
    r = await client.post(
        "/incidents",
        data={"kind": "fallen_tree", "lon": str(lon), "lat": str(lat)},
        files=[("photos", ("IMG_0001.HEIC", heic.getvalue(), "application/octet-stream"))],
        headers=op,
    )
    assert r.status_code == 201, r.text
    tree = r.json()["properties"]
    assert tree["photos"][0]["media_type"] == "image/heic" and tree["photos"][0]["width"] == 96
    seen = await client.get(f"/incidents/{tree['code']}/photos/1", headers=viewer)
    assert seen.headers["content-type"] == "image/jpeg" and seen.content[:3] == b"\xff\xd8\xff"
    mine = await client.get(f"/incidents/{tree['code']}/photos/1", headers=op)
    assert mine.content == heic.getvalue()

    # The loop: each step in order, by an operator, with a note.
    r = await client.post(f"/incidents/{code}/steps", json={"stage": "处置"}, headers=op)
    assert r.status_code == 409 and r.json()["code"] == "step_refused"
    assert (
        await client.post(f"/incidents/{code}/steps", json={"stage": "受理"})
    ).status_code == 401
    r = await client.post(f"/incidents/{code}/steps", json={"stage": "受理"}, headers=viewer)
    assert r.status_code == 403
    for stage, extra in (
        ("受理", {"note": "已受理"}),
        ("派遣", {"department": "cgj", "note": "派城管"}),
        ("处置", {"note": "已抽排"}),
        ("核查", {"note": "未清完，退回"}),
        ("处置", {"note": "再次抽排"}),
        ("核查", {"note": "现场已无积水"}),
        ("结案", {}),
    ):
        r = await client.post(
            f"/incidents/{code}/steps", json={"stage": stage, **extra}, headers=op
        )
        assert r.status_code == 200, (stage, r.text)
        assert r.json()["properties"]["stage"] == stage
    done = r.json()["properties"]
    assert done["status"] == "closed" and done["department_code"] == "cgj"
    assert done["closed_at"] >= reported and done["overdue"] is False
    r = await client.post(f"/incidents/{code}/steps", json={"stage": "受理"}, headers=op)
    assert r.status_code == 409
    history = (await client.get(f"/incidents/{code}/steps", headers=op)).json()["steps"]
    assert [s["stage"] for s in history] == [
        "上报",
        "受理",
        "派遣",
        "处置",
        "核查",
        "处置",
        "核查",
        "结案",
    ]
    assert history[0]["actor"] == "网格员张三" and history[0]["hours"] is None
    assert all(s["hours"] >= 0 for s in history[1:])
    anon = (await client.get(f"/incidents/{code}/steps")).json()["steps"]
    assert all("actor" not in s for s in anon)

    # A second incident of a kind with a 1-second deadline goes overdue.
    r = await client.put(
        "/incidents/kinds/fire", json={"department": "xfjy", "deadline_h": 1 / 3600}, headers=admin
    )
    assert r.status_code == 200
    lon2, lat2 = h3_centre(w.c2)
    r = await client.post("/incidents", json={"kind": "fire", "lon": lon2, "lat": lat2}, headers=op)
    late = r.json()["properties"]["code"]
    await asyncio.sleep(1.5)
    conn = await asyncpg.connect(db_url)
    try:
        assert await mark_overdue(conn) == [late]
        assert await mark_overdue(conn) == []  # marked once
    finally:
        await conn.close()
    over = (await client.get("/incidents?overdue=true")).json()["features"]
    assert [f["id"] for f in over] == [late]
    with psycopg.connect(db_url) as c:
        (payload,) = c.execute(
            "SELECT payload FROM events WHERE type = 'incident_overdue'"
        ).fetchone()
    assert payload["code"] == late and payload["department"] == "xfjy"

    # KPIs per grid: G1 closed one on time; G3 has one open past its deadline.
    rows = {r["key"]: r for r in (await client.get("/stats/incidents?by=grid")).json()["rows"]}
    assert rows["G1"]["closed"] == 1 and rows["G1"]["on_time_rate"] == 1.0
    assert rows["G1"]["median_close_h"] >= 0
    assert rows["G3"]["overdue_open"] == 1 and rows["G3"]["on_time_rate"] is None
    summary = (await client.get("/stats/summary")).json()["incidents"]
    assert summary["overdue"] == 1 and summary["on_time_rate"] == 1.0
    assert (await client.get("/stats/incidents?by=nope")).status_code == 400


def h3_centre(cell: str) -> tuple[float, float]:
    import h3

    lat, lon = h3.cell_to_latlng(cell)
    return lon, lat


@pytest.fixture
async def small_client(db_url: str, tmp_path: Path):
    """The app with a 50 kB photo limit."""
    settings = Settings(
        database_url=db_url, env="test", data_dir=tmp_path / "data", photo_max_mb=0.05
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, settings


async def test_bad_uploads_store_nothing(small_client, db_url) -> None:
    client, settings = small_client
    w = build_world(db_url, n_addresses=5)
    op = {"X-API-Key": create_key(db_url, "网格员", "operator")[0]}
    lon, lat = h3_centre(w.c0)
    fields = {"kind": "waterlogging", "lon": str(lon), "lat": str(lat)}
    root = settings.data_dir / "photos"
    good = jpeg_with_gps(64, 48)
    cut = jpeg_with_gps(640, 480, "green")
    text = b"not an image at all, only text"
    cases = [
        ([one("big.png", png(200, 200, noise=True))], 413, "photo_too_large"),
        ([one("a.jpg", text)], 400, "invalid_photo"),
        ([one("cut.jpg", cut[: len(cut) // 2])], 400, "invalid_photo"),
        ([one(f"{i}.jpg", good) for i in range(4)], 400, None),
        ([("scan", ("a.jpg", good, "image/jpeg"))], 400, "invalid_input"),
    ]
    for files, status, code in cases:
        r = await client.post("/incidents", data=fields, files=files, headers=op)
        assert r.status_code == status, (files[0][1][0], r.status_code, r.text)
        if code:
            assert r.json()["code"] == code
    bad = {**fields, "lon": "east"}
    r = await client.post("/incidents", data=bad, files=[one("a.jpg", good)], headers=op)
    assert r.status_code == 422
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
    assert _files(root) == []

    # A report that fails inside its transaction (a reused Idempotency-Key with a different
    # report) leaves its photo's files behind neither.
    key = {**op, "Idempotency-Key": "report-1"}
    r = await client.post("/incidents", data=fields, files=[one("a.jpg", good)], headers=key)
    assert r.status_code == 201
    kept = _files(root)
    assert len(kept) == 3  # original, public copy, thumbnail
    other = png(30, 30)
    r = await client.post("/incidents", data=fields, files=[one("b.png", other)], headers=key)
    assert r.status_code == 409
    assert _files(root) == kept
    # the same report again is a replay: 200, the first incident, no new files
    r = await client.post("/incidents", data=fields, files=[one("a.jpg", good)], headers=key)
    assert r.status_code == 200 and _files(root) == kept


def test_upload_cut_off_midway_stores_nothing(db_url, live_server_factory, tmp_path) -> None:
    w = build_world(db_url, n_addresses=5)
    key = create_key(db_url, "网格员", "operator")[0]
    data_dir = tmp_path / "live"
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, "ONEMAP_DATA_DIR": str(data_dir),
                                  "ONEMAP_LOG_LEVEL": "ERROR"})  # fmt: skip
    lon, lat = h3_centre(w.c0)
    req = httpx.Request(
        "POST",
        server.base_url + "/incidents",
        data={"kind": "waterlogging", "lon": str(lon), "lat": str(lat)},
        files=[("photos", ("a.jpg", jpeg_with_gps(), "image/jpeg"))],
        headers={"X-API-Key": key},
    )
    body = req.read()
    head = f"POST /incidents HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "host")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body[: len(body) // 2])
    # the connection is gone with half the body; then a whole report still works
    ok = httpx.post(server.base_url + "/incidents", json={"kind": "fire", "lon": lon, "lat": lat},
                    headers={"X-API-Key": key}, timeout=30)  # fmt: skip
    assert ok.status_code == 201
    with psycopg.connect(db_url) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM incidents")]
        photos = conn.execute("SELECT count(*) FROM incident_photos").fetchone()
    assert kinds == ["fire"] and photos == (0,)
    assert _files(data_dir / "photos") == []
