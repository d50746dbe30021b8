"""The big screen's field-work figures in headless Chromium: open incidents with how many are
past their deadline and the on-time rate, following reports, steps and overdue marks live over
SSE without a reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import psycopg
import pytest
from playwright.sync_api import Page

from emergency.incidents import mark_overdue
from layers.keys import create_key
from tests.support.chromium import chromium, screenshot, wait_ready
from tests.support.pg import demo_database, free_port
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    data_dir = tmp_path_factory.mktemp("fieldwork-screen")
    with demo_database(pg_admin_url, template_db, "screen_fieldwork", data_dir, 0.2, 11) as url:
        env = {"ONEMAP_DATABASE_URL": url, "ONEMAP_DATA_DIR": str(data_dir),
               "ONEMAP_LOG_LEVEL": "ERROR"}  # fmt: skip
        server = LiveServer(env, free_port())
        try:
            yield {
                "db": url,
                "server": server,
                "op": create_key(url, "网格员", "operator")[0],
                "admin": create_key(url, "管理员", "admin")[0],
            }
        finally:
            server.stop()


def _sweep(url: str) -> list[str]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return await mark_overdue(conn)
        finally:
            await conn.close()

    # (Playwright's sync API holds an event loop in this thread: run ours in another.)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def _sla(page: Page) -> dict:
    return page.evaluate(
        "(() => { const e = document.getElementById('kpi-incidents-sla');"
        " return {...e.dataset, text: e.textContent, late: e.classList.contains('late')}; })()"
    )


def test_screen_shows_overdue_incidents_live(live: dict, page: Page) -> None:
    base = live["server"].base_url
    _sweep(live["db"])  # the demo's old open incidents are past their deadlines already
    before = httpx.get(base + "/stats/summary", timeout=30).json()["incidents"]
    page.goto(base + "/screen")
    wait_ready(page)
    page.wait_for_function(
        "(n) => document.getElementById('kpi-incidents-sla').dataset.overdue === String(n)",
        arg=before["overdue"],
        timeout=15_000,
    )
    r = httpx.put(
        base + "/incidents/kinds/fire",
        json={"department": "xfjy", "deadline_h": 1 / 3600},
        headers={"X-API-Key": live["admin"]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    with psycopg.connect(live["db"]) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM admin_areas "
            "WHERE level = 'district'"
        ).fetchone()
    r = httpx.post(
        base + "/incidents",
        json={"kind": "fire", "lon": lon, "lat": lat, "description": "仓库冒烟"},
        headers={"X-API-Key": live["op"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    code = r.json()["id"]
    time.sleep(1.5)
    assert _sweep(live["db"]) == [code]
    page.wait_for_function(
        "(n) => document.getElementById('kpi-incidents-sla').dataset.overdue === String(n)",
        arg=before["overdue"] + 1,
        timeout=15_000,
    )
    sla = _sla(page)
    assert sla["late"] and f"{before['overdue'] + 1}" in sla["text"].replace(",", "")
    toasts = page.evaluate("document.getElementById('toasts').innerText")
    assert code in toasts
    screenshot(page, "fieldwork")


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        try:
            yield context.new_page()
        finally:
            context.close()
