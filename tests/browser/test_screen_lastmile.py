"""The big screen's last mile in headless Chromium: each active warning shows the share of
recipients who acknowledged (叫应) and the vulnerable residents still to move, and both
follow acknowledgements and transfer statuses live over SSE without a reload."""

from __future__ import annotations

from collections.abc import Iterator

import h3
import httpx
import psycopg
import pytest
import shapely
from playwright.sync_api import Page

from layers.keys import create_key
from tests.support.chromium import (
    chromium,
    last_mile_box,
    screenshot,
    wait_last_mile,
    wait_ready,
)
from tests.support.emergency_world import insert_run
from tests.support.pg import demo_database, free_port
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    """A small demo city behind ``onemap serve`` and a hand-made flood run whose red cells
    cover the residents of the district's centre."""
    data_dir = tmp_path_factory.mktemp("lastmile-screen")
    with demo_database(pg_admin_url, template_db, "screen_lastmile", data_dir, 0.2, 7) as url:
        key, _ = create_key(url, "值班", "operator")
        with psycopg.connect(url) as conn:
            wkb = conn.execute(
                "SELECT ST_AsBinary(geom) FROM admin_areas WHERE level = 'district'"
            ).fetchone()
            assert wkb is not None
            district = shapely.from_wkb(bytes(wkb[0]))
            c = district.centroid
            centre = h3.latlng_to_cell(c.y, c.x, 9)
            run_id = insert_run(conn, "flood", {cell: 4 for cell in h3.grid_disk(centre, 6)})
        env = {
            "ONEMAP_DATABASE_URL": url,
            "ONEMAP_DATA_DIR": str(data_dir),
            "ONEMAP_LOG_LEVEL": "ERROR",
        }
        server = LiveServer(env, free_port())
        try:
            yield {"db": url, "server": server, "key": key, "run": run_id}
        finally:
            server.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        try:
            yield context.new_page()
        finally:
            context.close()


def test_screen_follows_acks_and_transfers(live: dict, page: Page) -> None:
    base = live["server"].base_url
    api = httpx.Client(base_url=base, headers={"X-API-Key": live["key"]}, timeout=60)
    r = api.post(
        "/warnings", json={"run_id": live["run"], "level_min": "red", "title": "内涝红色预警"}
    )
    assert r.status_code == 201, r.text
    code = r.json()["id"]
    acks = api.get(f"/warnings/{code}/acks").json()
    recipients = acks["progress"]["recipients"]
    vulnerable = acks["progress"]["vulnerable"]
    assert recipients >= 3 and vulnerable >= 1, acks["progress"]

    page.goto(base + "/screen")
    wait_ready(page)
    wait_last_mile(page, code, "recipients", recipients)
    box = last_mile_box(page, code)
    assert box["acknowledged"] == "0" and int(box["toMove"]) == vulnerable
    assert "叫应 0/" in box["text"] and "待转移" in box["text"]

    # Two receipts and one transfer arrive while the page stays open.
    for who in [x["code"] for x in acks["waiting"][:2]]:
        assert api.post(f"/warnings/{code}/acks", json={"code": who}).status_code == 200
    wait_last_mile(page, code, "acknowledged", 2)
    rows = api.get(f"/warnings/{code}/evacuation.csv").content.decode("utf-8-sig").splitlines()
    resident = rows[1].split(",")[0]
    r = api.post(f"/warnings/{code}/residents/{resident}/status", json={"status": "已转移"})
    assert r.status_code == 200, r.text
    wait_last_mile(page, code, "toMove", vulnerable - 1)
    box = last_mile_box(page, code)
    share = f"{100 * 2 / recipients:.1f}"
    assert f"2/{recipients}" in box["text"] and f"{share}%" in box["text"]
    # The wall runs as the anonymous viewer: no cadre's or resident's name or phone on it.
    text = page.evaluate("document.body.innerText")
    personal = [x["phone"] for x in acks["waiting"]] + [x["name"] for x in acks["waiting"]]
    personal += [row.split(",")[i] for row in rows[1:20] for i in (1, 2)]  # name, phone
    personal = [p for p in personal if p and len(p) >= 3]  # children have no phone
    assert personal and [p for p in personal if p in text] == []
    screenshot(page, "lastmile")
