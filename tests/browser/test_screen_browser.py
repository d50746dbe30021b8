"""The big screen in real headless Chromium (Debian's, driven by Playwright) against a live
server with a small demo city and one finished landslide run.

Screenshots (1920×1080, zh and en) and the measured figures (page ready, JS heap after the
live-updates soak) are written under tests/artifacts/screen/ (git-ignored) for review.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page

from layers.catalog import CATALOG
from layers.keys import create_key
from tests.support.chromium import (
    ARTIFACTS,
    PageWatch,
    chromium,
    rendered,
    screenshot,
    wait_idle,
    wait_ready,
)
from tests.support.pg import demo_database, free_port
from tests.support.servers import LiveServer

SCENARIO = "typhoon_300mm_24h"
HOST = "127.0.0.1"
#: Seconds of live updates in the soak (the goal speaks of 10 minutes; CI runs less).
SOAK_S = float(os.environ.get("ONEMAP_SCREEN_SOAK_S", "120"))


def record_metric(name: str, value: Any) -> None:
    """Adds a measured figure to tests/artifacts/screen/metrics.json and prints it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics[name] = value
    path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"\n[screen] {name} = {value}")


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    """A demo city behind ``onemap serve``, an operator key and one finished run."""
    data_dir = tmp_path_factory.mktemp("screen-data")
    with demo_database(pg_admin_url, template_db, "screen_module", data_dir, 0.2, 7) as url:
        key, _ = create_key(url, "大屏值班", "operator")
        env = {
            "ONEMAP_DATABASE_URL": url,
            "ONEMAP_DATA_DIR": str(data_dir),
            "ONEMAP_LOG_LEVEL": "ERROR",
        }
        server = LiveServer(env, free_port())
        try:
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as api:
                r = api.post(
                    "/risk/runs",
                    json={"model": "landslide", "rain": {"scenario": SCENARIO}, "res": 9},
                )
                assert r.status_code == 202, r.text
                run_id = r.json()["id"]
                deadline = time.monotonic() + 300
                while (run := api.get(f"/risk/runs/{run_id}").json())["status"] not in (
                    "done",
                    "failed",
                ):
                    assert time.monotonic() < deadline, "risk run did not finish in 300 s"
                    time.sleep(0.5)
                assert run["status"] == "done", run
                yield {"db": url, "env": env, "server": server, "key": key, "run": run_id}
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def open_screen(page: Page, base_url: str, query: str = "") -> tuple[PageWatch, float]:
    watch = PageWatch().attach(page)
    page.goto(f"{base_url}/screen{query}")
    ready_ms = wait_ready(page)
    wait_idle(page)
    # KPIs and charts drawn (ECharts loads after the map).
    page.wait_for_function("window.onemapScreen.state.stats !== null")
    return watch, ready_ms


def wait_badge(page: Page, state: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "(s) => document.getElementById('status').dataset.state === s",
        arg=state,
        timeout=timeout_ms,
    )


def api(live: dict, base_url: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base_url or live["server"].base_url,
        headers={"X-API-Key": live["key"]},
        timeout=30,
    )


def test_page_loads_clean_and_local(live: dict, page: Page) -> None:
    watch, ready_ms = open_screen(page, live["server"].base_url)
    wait_badge(page, "live")
    page.wait_for_function("document.getElementById('kpi-warnings').textContent !== '—'")
    assert watch.bad_status == [] and watch.failed == []
    assert watch.console_errors() == []
    assert watch.foreign_requests(HOST) == []
    urls = " ".join(watch.requests)
    for expected in ("/vendor/maplibre-gl/", "/styles/onemap.json", "/tiles/", "/raster/"):
        assert expected in urls, expected
    assert "指挥中心" in page.title()
    assert page.inner_text("#topbar").count("一张图") == 1
    # Layer counts come from /stats/summary, one row per layer it reports.
    stats = httpx.get(live["server"].base_url + "/stats/summary").json()
    assert page.locator("#layer-counts .count").count() == len(stats["layers"])
    assert page.inner_text("#kpi-warnings") == str(stats["warnings"]["active"])
    screenshot(page, "screen-1920x1080-zh")
    record_metric("page_ready_ms_first_load", round(ready_ms))
    # A second load (browser cache warm, like a wall PC after a reload).
    page.reload()
    record_metric("page_ready_ms_reload", round(wait_ready(page)))


def test_map_draws_default_layers(live: dict, page: Page) -> None:
    watch, _ = open_screen(page, live["server"].base_url)
    zoom = page.evaluate("window.onemapScreen.map.getZoom()")
    counts = httpx.get(live["server"].base_url + "/stats/summary").json()["layers"]
    expected = [
        lyr
        for lyr in CATALOG.values()
        if lyr.default_on and lyr.min_zoom <= zoom and counts.get(lyr.id, 0) > 0
    ]
    assert {"admin_areas", "grids", "roads", "rivers"} <= {lyr.id for lyr in expected}
    for layer in expected:
        main = {"fill": "fill", "line": "line", "circle": "circle"}[layer.style.kind]
        features = rendered(page, f"{layer.id}-{main}")
        assert features, f"{layer.id} has data but nothing is drawn at zoom {zoom:.1f}"
    # Risk hexagons of the run, in the four levels.
    risk = rendered(page, "risk-fill")
    assert risk and {f["run_id"] for f in risk} == {live["run"]}
    assert {f["level"] for f in risk} <= {1, 2, 3, 4}
    # The hillshade basemap, and labels in Chinese (glyphs from this server + local CJK font).
    assert page.evaluate("window.onemapScreen.map.isSourceLoaded('hillshade')")
    assert any("/raster/hillshade/" in u for u in watch.requests)
    labels = rendered(page, "admin_areas-label")
    assert labels and any("\u4e00" <= ch <= "\u9fff" for f in labels for ch in f["name"])
    # Closer in, the layers that start at higher zooms are drawn too.
    page.evaluate("window.onemapScreen.map.jumpTo({zoom: 15})")
    wait_idle(page)
    for layer_id in ("buildings-fill", "venues-circle", "cameras-circle"):
        assert rendered(page, layer_id), layer_id
    assert watch.console_errors() == [] and watch.bad_status == []


def test_layer_switcher_and_run_selector(live: dict, page: Page) -> None:
    open_screen(page, live["server"].base_url)
    boxes = page.locator("#layer-switcher input[type=checkbox]")
    toggles = {boxes.nth(i).get_attribute("data-toggle") for i in range(boxes.count())}
    assert set(CATALOG) | {"hillshade", "dem", "risk"} <= toggles
    roads = page.locator("input[data-toggle=roads]")
    roads.uncheck()
    wait_idle(page)
    assert rendered(page, "roads-line") == []
    roads.check()
    wait_idle(page)
    assert rendered(page, "roads-line")
    # The run selector lists the run; choosing it draws that run's cells.
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('#run-select option')].some(o => o.value == id)",
        arg=live["run"],
    )
    page.select_option("#run-select", str(live["run"]))
    page.wait_for_timeout(300)
    wait_idle(page)
    risk = rendered(page, "risk-fill")
    assert risk and {f["run_id"] for f in risk} == {live["run"]}
    assert "run=" in page.evaluate("window.onemapScreen.map.getSource('risk').tiles[0]")


def _click_feature(page: Page, style_layer: str) -> dict:
    """Zooms onto one rendered feature of ``style_layer``, leaves only that layer visible,
    clicks it and returns its properties."""
    feature = page.evaluate(
        """(id) => { const m = window.onemapScreen.map;
          const f = m.queryRenderedFeatures({layers: [id]})
            .find(f => !(f.properties.point_count > 1));
          return {props: f.properties, lnglat: f.geometry.coordinates}; }""",
        style_layer,
    )
    page.evaluate(
        """([id, lnglat]) => { const s = window.onemapScreen.screen;
          for (const box of document.querySelectorAll('#layer-switcher input')) {
            if (box.dataset.toggle !== id.split('-')[0]) s.setVisible(box.dataset.toggle, false);
          }
          s.map.jumpTo({center: lnglat, zoom: 16}); }""",
        [style_layer, feature["lnglat"]],
    )
    wait_idle(page)
    page.mouse.click(960, 540)
    page.wait_for_selector(".maplibregl-popup .popup h3")
    page.wait_for_function(
        "!document.querySelector('.maplibregl-popup .popup').textContent.includes('…')"
    )
    return feature["props"]


def test_popup_masks_sensitive_fields_by_role(live: dict, page: Page) -> None:
    open_screen(page, live["server"].base_url)
    props = _click_feature(page, "shelters-circle")
    popup = page.inner_text(".maplibregl-popup")
    contact = (
        psycopg.connect(live["db"])
        .execute("SELECT contact FROM shelters WHERE code = %s", (props["code"],))
        .fetchone()
    )
    assert contact and contact[0]
    assert props["code"] in popup
    assert contact[0] not in popup and "🔒" in popup  # anonymous viewer: masked
    # An operator opening /screen#key=… sees the contact (the key never goes in a URL).
    page.goto(f"{live['server'].base_url}/screen#key={live['key']}")
    wait_ready(page)
    wait_idle(page)
    assert "key=" not in page.url
    _click_feature(page, "shelters-circle")
    popup = page.inner_text(".maplibregl-popup")
    assert contact[0] in popup and "🔒" not in popup


def test_issued_warning_appears_within_3_s(live: dict, page: Page) -> None:
    watch, _ = open_screen(page, live["server"].base_url)
    wait_badge(page, "live")
    with api(live) as client:
        started = time.time()
        r = client.post(
            "/warnings", json={"run_id": live["run"], "level_min": "orange", "valid_hours": 6}
        )
        assert r.status_code == 201, r.text
        issued = time.time()  # committed: the warning exists from here on
        code = r.json()["properties"]["code"]
        # The page notes when it first painted the card (epoch ms, same clock as ours).
        page.wait_for_function(
            "(code) => window.onemapScreen.state.shownAt.has(code)", arg=code, timeout=10_000
        )
        shown = page.evaluate("(code) => window.onemapScreen.state.shownAt.get(code)", code)
        elapsed_s = shown / 1000 - issued
        record_metric(
            "warning_issued_to_painted_s",
            {"after_201": round(elapsed_s, 3), "post_took_s": round(issued - started, 3)},
        )
        assert elapsed_s <= 3.0
        assert page.locator(f'#warning-list [data-warning-code="{code}"]').is_visible()
        card = page.locator(f'[data-warning-code="{code}"]')
        level = r.json()["properties"]["level"]
        assert card.get_attribute("data-level") == level
        population = r.json()["properties"]["exposure"]["summary"]["population"]
        assert f"{population:,}" in card.inner_text()
        # The warning area is drawn on the map from fresh tiles, and the KPI counts it.
        page.wait_for_function(
            """(code) => window.onemapScreen.map.queryRenderedFeatures({layers: ['warnings-fill']})
                 .some(f => f.properties.code === code)""",
            arg=code,
            timeout=10_000,
        )
        page.wait_for_function(
            "document.getElementById('kpi-warnings').textContent !== '0'", timeout=5000
        )
        screenshot(page, "screen-1920x1080-warning")
        assert client.post(f"/warnings/{code}/lift", json={"reason": "test"}).status_code == 200
        page.wait_for_selector(f'[data-warning-code="{code}"]', state="detached", timeout=3000)
    assert watch.console_errors() == []


def test_incident_and_layer_change_show_without_reload(live: dict, page: Page) -> None:
    watch, _ = open_screen(page, live["server"].base_url)
    wait_badge(page, "live")
    center = page.evaluate("window.onemapScreen.map.getCenter().toArray()")
    page.evaluate("window.onemapScreen.map.jumpTo({zoom: 15})")
    wait_idle(page)
    camera = page.evaluate(
        """() => window.onemapScreen.map.queryRenderedFeatures({layers: ['cameras-circle']})
             .map(f => f.properties).find(p => p.status === 'online' && !(p.point_count > 1))"""
    )
    assert camera, "no single online camera drawn at zoom 15"
    with api(live) as client:
        r = client.post("/incidents", json={"kind": "flood", "lon": center[0], "lat": center[1]})
        assert r.status_code == 201, r.text
        incident = r.json().get("id") or r.json()["properties"]["code"]
        with psycopg.connect(live["db"]) as db:
            db.execute("UPDATE cameras SET status = 'offline' WHERE code = %s", (camera["code"],))
        try:
            # Both come from fresh tiles after the events, with no page reload.
            page.wait_for_function(
                """([inc, cam]) => { const m = window.onemapScreen.map;
                  const incs = m.queryRenderedFeatures({layers: ['incidents-circle']});
                  const cams = m.queryRenderedFeatures({layers: ['cameras-circle']});
                  return incs.some(f => f.properties.code === inc)
                    && cams.some(f => f.properties.code === cam
                                      && f.properties.status === 'offline'); }""",
                arg=[incident, camera["code"]],
                timeout=10_000,
            )
        finally:
            with psycopg.connect(live["db"]) as db:
                db.execute(
                    "UPDATE cameras SET status = 'online' WHERE code = %s", (camera["code"],)
                )
    assert page.evaluate("window.onemapScreen.live.counts.incident_reported") >= 1
    assert watch.console_errors() == []


def test_english_page(live: dict, page: Page) -> None:
    watch, _ = open_screen(page, live["server"].base_url, "?lang=en")
    assert "Command Centre" in page.title()
    assert "Active warnings" in page.inner_text("#right")
    assert watch.console_errors() == []
    screenshot(page, "screen-1920x1080-en")


def test_4k_wall(live: dict, browser: Browser) -> None:
    """At 3840×2160 the same layout fills the wall (1 rem = 1/120 of the width)."""
    context = browser.new_context(viewport={"width": 3840, "height": 2160})
    try:
        page = context.new_page()
        watch, _ = open_screen(page, live["server"].base_url)
        rem = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        assert rem == pytest.approx(32, abs=0.5)
        left = page.locator("#left").bounding_box()
        assert left and left["width"] == pytest.approx(23 * rem, abs=2)
        assert rendered(page, "admin_areas-line")
        assert watch.console_errors() == []
        screenshot(page, "screen-3840x2160-zh")
    finally:
        context.close()


def test_badge_and_reconnect_after_server_restart(live: dict, page: Page) -> None:
    port = free_port()
    server = LiveServer(live["env"], port)
    try:
        open_screen(page, server.base_url)
        wait_badge(page, "live")
        server.stop()
        # Not a blank map: the badge says the server is gone, the map stays drawn.
        wait_badge(page, "server", timeout_ms=30_000)
        assert rendered(page, "admin_areas-line")
        screenshot(page, "screen-1920x1080-server-down")
        server = LiveServer(live["env"], port)
        wait_badge(page, "live", timeout_ms=30_000)
        # Events flow again through the restarted server: a warning shows without reload.
        with api(live) as client:
            r = client.post(
                "/warnings", json={"run_id": live["run"], "level_min": "red", "valid_hours": 1}
            )
            assert r.status_code == 201, r.text
            code = r.json()["properties"]["code"]
            try:
                # (how fast is test_issued_warning_appears_within_3_s's question, not this one's)
                page.wait_for_selector(f'[data-warning-code="{code}"]', timeout=15_000)
            finally:  # the module's other tests issue from the same run
                client.post(f"/warnings/{code}/lift", json={"reason": "test"})
    finally:
        server.stop()


def _heap_mb(page: Page) -> float:
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    cdp.detach()
    return round(used / 1024 / 1024, 1)


@pytest.mark.slow
def test_live_updates_soak_heap(live: dict, page: Page) -> None:
    """Frequent real changes (camera status writes → layer_changed, warnings issued and
    lifted) for SOAK_S seconds; the JS heap after a GC is reported and bounded."""
    watch, _ = open_screen(page, live["server"].base_url)
    wait_badge(page, "live")
    heap_start = _heap_mb(page)
    writes = warnings = 0
    with psycopg.connect(live["db"], autocommit=True) as db, api(live) as client:
        cameras = [c for (c,) in db.execute("SELECT code FROM cameras ORDER BY code LIMIT 50")]
        started = time.monotonic()
        while time.monotonic() - started < SOAK_S:
            code = cameras[writes % len(cameras)]
            db.execute(
                "UPDATE cameras SET status = CASE status WHEN 'online' THEN 'offline' "
                "ELSE 'online' END WHERE code = %s",
                (code,),
            )
            writes += 1
            if writes % 20 == 0:
                r = client.post(
                    "/warnings",
                    json={"run_id": live["run"], "level_min": "red", "valid_hours": 1},
                )
                assert r.status_code == 201, r.text
                client.post(f"/warnings/{r.json()['id']}/lift", json={"reason": "soak"})
                warnings += 1
            time.sleep(0.5)
        ran_s = time.monotonic() - started
    page.wait_for_timeout(2000)
    counts = page.evaluate("window.onemapScreen.live.counts")
    heap_end = _heap_mb(page)
    record_metric(
        "soak",
        {
            "seconds": round(ran_s),
            "layer_writes": writes,
            "warnings_issued_and_lifted": warnings,
            "events_received": counts,
            "heap_mb_start": heap_start,
            "heap_mb_end": heap_end,
        },
    )
    assert counts.get("layer_changed", 0) >= writes * 0.9
    assert counts.get("warning_issued", 0) >= warnings
    assert watch.console_errors() == []
    assert heap_end <= 150


def test_district_view_colours_the_share_of_cells_warned(live: dict, page: Page) -> None:
    """District-wide, rolled-up hexagons are coloured so that the area drawn at or above each
    level matches the area of the run's cells at or above it (not the hottest child's level
    spread over a whole parent), and the legend states the district's share per level."""
    import h3

    base = live["server"].base_url
    open_screen(page, base)
    with api(live) as c:
        run = c.get(f"/risk/runs/{live['run']}").json()
        cells = c.get(f"/risk/runs/{live['run']}/cells").json()["features"]
    area = {f["id"]: h3.cell_area(f["id"], unit="km^2") for f in cells}
    total = sum(area.values())
    lons = [pt[0] for f in cells for pt in f["geometry"]["coordinates"][0]]
    lats = [pt[1] for f in cells for pt in f["geometry"]["coordinates"][0]]
    # the whole district with room around it (a wall overview): hexagons roll up to parents
    page.evaluate(
        """(b) => { const m = window.onemapScreen.map;
          m.fitBounds(b, {animate: false, padding: 40}); m.jumpTo({zoom: m.getZoom() - 1.5}); }""",
        [[min(lons), min(lats)], [max(lons), max(lats)]],
    )
    wait_idle(page)
    drawn = {f["h3"]: f for f in rendered(page, "risk-fill")}
    assert drawn, "no risk hexagon drawn district-wide"
    assert max(f["res"] for f in drawn.values()) < 9, "hexagons are rolled up"
    shares = {}
    for k, name in enumerate(("blue", "yellow", "orange", "red"), start=1):
        expected = sum(area[f["id"]] for f in cells if f["properties"]["level"] >= k) / total
        coloured = sum(h3.cell_area(c, unit="km^2") for c, f in drawn.items() if f["level"] >= k)
        shares[name] = {"cells": round(expected, 4), "drawn": round(coloured / total, 4)}
        # rolled-up parents straddle the district edge and round to their median level:
        # a few points of the district either way, never a whole parent per hot child
        assert abs(coloured / total - expected) <= 0.04 + 0.25 * expected, shares
        legend = page.locator(f"#legend [data-share={name}]").inner_text()
        assert legend == f"{run['summary']['by_level'][name] / run['summary']['cells'] * 100:.1f}%"
    record_metric("district_view_share_at_or_above_level", shares)
