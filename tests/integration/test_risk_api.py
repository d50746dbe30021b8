"""Risk runs through real HTTP on a demo city: start, poll, cells, explanations, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import h3
import httpx
import numpy as np
import pytest
import rasterio
from affine import Affine

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.keys import create_key
from layers.rasters import import_raster
from tests.support.pg import demo_database

DB_NAME = "risk_api_module"


@pytest.fixture(scope="module")
def demo(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("risk-demo")
    with demo_database(pg_admin_url, template_db, DB_NAME, data_dir, 1, 42) as url:
        yield url, data_dir


@pytest.fixture(scope="module")
def keys(demo) -> dict[str, str]:
    url, _ = demo
    return {
        "operator": create_key(url, "值班员", "operator")[0],
        "viewer": create_key(url, "大屏", "viewer")[0],
    }


@pytest.fixture(scope="module")
async def api(demo) -> AsyncIterator[httpx.AsyncClient]:
    url, data_dir = demo
    settings = Settings(database_url=url, env="test", log_level="WARNING", data_dir=data_dir)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=120
        ) as c:
            yield c


def op(keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys['operator']}"}


async def start(api: httpx.AsyncClient, keys: dict[str, str], body: dict) -> dict:
    r = await api.post("/risk/runs", json=body, headers=op(keys))
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] in ("pending", "running")
    assert r.headers["location"] == f"/risk/runs/{run['id']}"
    return run


async def finish(api: httpx.AsyncClient, run_id: int, timeout_s: float = 300) -> dict:
    for _ in range(int(timeout_s * 10)):
        r = await api.get(f"/risk/runs/{run_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed"):
            return r.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def levels_of(api: httpx.AsyncClient, run_id: int) -> dict[str, int]:
    r = await api.get(f"/risk/runs/{run_id}/cells")
    assert r.status_code == 200
    return {f["id"]: f["properties"]["level"] for f in r.json()["features"]}


async def test_landslide_runs_persist_cells_and_explain_them(api, keys, demo) -> None:
    url, _ = demo
    conn = await asyncpg.connect(url)
    got: list[dict] = []
    await conn.add_listener("onemap_events", lambda *a: got.append(json.loads(a[3])))
    try:
        heavy = await start(
            api, keys, {"model": "landslide", "rain": {"scenario": "typhoon_300mm_24h"}}
        )
        run = await finish(api, heavy["id"])
        assert run["status"] == "done", run["error"]
        assert run["code_version"] and run["params"]["res"] == 9
        assert {"static_s", "nowcast_s", "write_s", "total_s"} <= set(run["timings"])
        assert run["inputs"]["hazard_sites"] > 0
        n_cells = await conn.fetchval("SELECT count(*) FROM risk_run_cells($1)", heavy["id"])
        assert run["summary"]["cells"] == n_cells > 1000
        assert sum(run["summary"]["by_level"].values()) == n_cells
        # only the informative cells are stored: the first run of the model has no previous
        # run to differ from, so exactly the cells above none
        stored = await conn.fetchval(
            "SELECT count(*) FROM risk_cells WHERE run_id = $1", heavy["id"]
        )
        warned = n_cells - run["summary"]["by_level"]["none"]
        assert run["summary"]["stored_cells"] == stored == warned < n_cells
        await asyncio.sleep(0.5)
    finally:
        await conn.close()
    finished = [e.get("payload", e) for e in got if e.get("type") == "run_finished"]
    assert any(p.get("run_id") == heavy["id"] and p.get("status") == "done" for p in finished)

    light = await start(api, keys, {"model": "landslide", "rain": {"scenario": "light_rain"}})
    light_run = await finish(api, light["id"])
    assert light_run["status"] == "done"
    assert light_run["timings"]["static_cached"] is True  # same DEM, res, sites: cached table
    heavy_levels = await levels_of(api, heavy["id"])
    light_levels = await levels_of(api, light["id"])
    assert heavy_levels.keys() == light_levels.keys()
    # more rain never lowers a cell's level, and the typhoon raises some
    assert all(heavy_levels[c] >= light_levels[c] for c in heavy_levels)
    assert sum(heavy_levels.values()) > sum(light_levels.values())

    r = await api.get(f"/risk/runs/{heavy['id']}/cells", params={"level_min": 3})
    doc = r.json()
    assert r.headers["content-type"].startswith("application/geo+json")
    assert doc["features"] and all(f["properties"]["level"] >= 3 for f in doc["features"])
    feat = doc["features"][0]
    assert h3.is_valid_cell(feat["id"]) and h3.get_resolution(feat["id"]) == 9
    ring = feat["geometry"]["coordinates"][0]
    assert len(ring) == 7 and ring[0] == ring[-1]
    assert 113.0 < ring[0][0] < 114.0 and 22.0 < ring[0][1] < 23.0

    r = await api.get(f"/risk/cells/{feat['id']}", params={"run": heavy["id"]})
    assert r.status_code == 200, r.text
    ex = r.json()["explanation"]
    assert ex["level"] == feat["properties"]["level"]
    assert ex["susceptibility_class"] in (0, 1, 2, 3) and ex["rain_class"] in (0, 1, 2, 3)
    assert "->" in ex["rule"] and len(ex["top_factors"]) == 3
    contribs = [f["contribution"] for f in ex["top_factors"]]
    assert contribs == sorted(contribs, reverse=True)
    assert ex["rain"]["rain_mm_24h"] > 100 and ex["rain"]["antecedent_re_mm"] > 0
    assert isinstance(ex["fs_below_1"], bool)

    # without ?run= the latest finished run holding the cell answers
    r = await api.get(f"/risk/cells/{feat['id']}")
    assert r.json()["run_id"] == light["id"]
    r = await api.get("/risk/runs")
    ids = [x["id"] for x in r.json()["runs"]]
    assert ids.index(light["id"]) < ids.index(heavy["id"])


async def test_flood_run_on_gauges(api, keys, demo) -> None:
    url, _ = demo
    run = await finish(
        api,
        (await start(api, keys, {"model": "flood", "rain": {"gauges": True, "hours": 24}}))["id"],
    )
    assert run["status"] == "done", run["error"]
    conn = await asyncpg.connect(url)
    try:
        n_gauges = await conn.fetchval("SELECT count(*) FROM sensors WHERE kind = 'rain_gauge'")
    finally:
        await conn.close()
    src = run["inputs"]["rain_source"]
    assert 0 < src["gauges"] <= n_gauges and src["hours"] == 24
    r = await api.get(f"/risk/runs/{run['id']}/cells", params={"level_min": 0, "limit": 5})
    feat = r.json()["features"][0]
    ex = (await api.get(f"/risk/cells/{feat['id']}", params={"run": run["id"]})).json()
    assert ex["explanation"]["model"] == "flood"
    assert ex["explanation"]["depth_m"] == pytest.approx(feat["properties"]["score"], abs=1e-3)


def _rain_raster(path: Path, value_mm: float) -> Path:
    """A 1-band EPSG:4326 rain raster over the demo city (event total, mm)."""
    data = np.full((40, 40), value_mm, dtype="float32")
    transform = Affine(0.01, 0, 113.2, 0, -0.01, 22.7)
    with rasterio.open(
        path, "w", driver="GTiff", width=40, height=40, count=1, dtype="float32",
        crs="EPSG:4326", transform=transform,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path


async def test_rain_raster_runs_and_negative_rain_fails_clearly(api, keys, demo, tmp_path) -> None:
    url, data_dir = demo
    import_raster(url, _rain_raster(tmp_path / "wet.tif", 120.0), "rain_wet", data_dir)
    import_raster(url, _rain_raster(tmp_path / "bad.tif", -5.0), "rain_bad", data_dir)
    body = {"model": "rainstorm", "rain": {"raster": "rain_wet", "hours": 3}, "res": 8}
    run = await finish(api, (await start(api, keys, body))["id"])
    assert run["status"] == "done", run["error"]
    # 120 mm in 3 h everywhere: the CMA red rainstorm signal (≥ 100 mm in 3 h)
    assert run["summary"]["by_level"]["red"] == run["summary"]["cells"] > 0
    assert run["inputs"]["rain_source"]["raster"] == "rain_wet"
    assert "/" not in json.dumps(run["inputs"])  # no server paths in the run record
    body["rain"] = {"raster": "rain_bad"}
    bad = await finish(api, (await start(api, keys, body))["id"])
    assert bad["status"] == "failed"
    assert "≥ 0" in bad["error"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"model": "tsunami", "rain": {"scenario": "light_rain"}}, "unknown_model"),
        ({"model": "flood", "rain": {"scenario": "light_rain"}, "res": 12}, "invalid_model_input"),
        ({"model": "flood", "rain": {"scenario": "no_such"}}, "invalid_scenario"),
        ({"model": "flood", "rain": {"scenario": "../../etc/passwd"}}, "invalid_scenario"),
        ({"model": "flood", "rain": {"raster": "nope"}}, "invalid_model_input"),
        ({"model": "flood", "rain": {}}, "invalid_model_input"),
        ({"model": "flood", "rain": {"gauges": True, "hours": -3}}, "invalid_model_input"),
        (
            {"model": "flood", "rain": {"scenario": "light_rain"}, "params": {"colour": 1}},
            "invalid_model_input",
        ),
        (
            {"model": "flood", "rain": {"scenario": "light_rain"}, "params": {"stage_m": -1}},
            "invalid_model_input",
        ),
        (
            {
                "model": "landslide",
                "rain": {"scenario": "light_rain"},
                "params": {"fs": {"depth_m": "x"}},
            },
            "invalid_model_input",
        ),
        (
            {"model": "flood", "rain": {"scenario": "light_rain"}, "params": {"matrix": [[9]]}},
            "invalid_model_input",
        ),
        (
            {
                "model": "landslide",
                "rain": {"scenario": "light_rain"},
                "params": {"bbox": [10.0, 10.0, 10.5, 10.5]},
            },
            "empty_area",
        ),
    ],
)
async def test_bad_run_requests_are_clear_400s(api, keys, body, code) -> None:
    r = await api.post("/risk/runs", json=body, headers=op(keys))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code and r.json()["detail"]


async def test_roles_and_unknown_things(api, keys) -> None:
    body = {"model": "flood", "rain": {"scenario": "light_rain"}}
    assert (await api.post("/risk/runs", json=body)).status_code == 401
    viewer = {"X-API-Key": keys["viewer"]}
    r = await api.post("/risk/runs", json=body, headers=viewer)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert (await api.get("/risk/runs", headers=viewer)).status_code == 200
    r = await api.get("/risk/runs/987654")
    assert r.status_code == 404 and r.json()["code"] == "unknown_run"
    for path in ("/risk/runs/99999999999999999999999", "/risk/runs/0/cells"):
        assert (await api.get(path)).status_code == 422
    r = await api.get("/risk/cells/89411c0d3ffffff", params={"run": 10**30})
    assert r.status_code == 422
    assert (await api.get("/risk/runs/987654/cells")).status_code == 404
    r = await api.get("/risk/cells/not-a-cell")
    assert r.status_code == 400 and r.json()["code"] == "invalid_h3"
    far = h3.latlng_to_cell(-40.0, 10.0, 9)
    r = await api.get(f"/risk/cells/{far}")
    assert r.status_code == 404 and r.json()["code"] == "unknown_cell"


def test_cli_run_on_dask_stores_the_same_cells(demo, tmp_path, monkeypatch) -> None:
    """``onemap risk run`` in-process and on a 2-worker LocalCluster (separate caches) store
    identical cells."""
    import psycopg
    from typer.testing import CliRunner

    from geo_service.cli import app

    url, _ = demo
    monkeypatch.setenv("ONEMAP_DATABASE_URL", url)
    args = [
        "risk", "run", "--model", "landslide", "--scenario", "cloudburst_100mm_3h", "--res", "8",
        "--params", json.dumps({"bbox": [113.3, 22.42, 113.5, 22.58]}),
    ]  # fmt: skip
    ids = []
    for name, extra in (("a", []), ("b", ["--scheduler", "local"])):
        monkeypatch.setenv("ONEMAP_DATA_DIR", str(tmp_path / name))
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        ids.append(int(result.output.strip().splitlines()[-1]))
    with psycopg.connect(url) as conn:
        rows = [
            conn.execute(
                "SELECT h3, level, score, factors, stored FROM risk_run_cells(%s) ORDER BY h3",
                (run_id,),
            ).fetchall()
            for run_id in ids
        ]
        scheduler = conn.execute(
            "SELECT inputs->>'scheduler' FROM risk_runs WHERE id = %s", (ids[1],)
        ).fetchone()
    assert scheduler == ("local",)
    assert len(rows[0]) > 100 and rows[0] == rows[1]
    assert len({r[1] for r in rows[0]}) > 1 and any(r[4] for r in rows[0])


def test_cli_run_refuses_bad_input(demo, monkeypatch) -> None:
    from typer.testing import CliRunner

    from geo_service.cli import app

    monkeypatch.setenv("ONEMAP_DATABASE_URL", demo[0])
    result = CliRunner().invoke(app, ["risk", "run", "--model", "flood"])
    assert result.exit_code == 1 and "exactly one of" in result.output
    result = CliRunner().invoke(app, ["risk", "run", "--model", "quake", "--gauges"])
    assert result.exit_code == 1 and "unknown model" in result.output


async def test_coarser_and_finer_cells_resolve_to_run_cells(api, keys) -> None:
    run = await finish(
        api,
        (await start(api, keys, {"model": "landslide", "rain": {"scenario": "typhoon_300mm_24h"}}))[
            "id"
        ],
    )
    levels = await levels_of(api, run["id"])
    top = max(levels, key=lambda c: (levels[c], c))
    parent = h3.cell_to_parent(top, 7)
    inside = {c: lv for c, lv in levels.items() if h3.cell_to_parent(c, 7) == parent}
    r = await api.get(f"/risk/cells/{parent}", params={"run": run["id"]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["requested"] == parent and doc["cells"] == len(inside) > 1
    assert doc["h3"] in inside and doc["level"] == max(inside.values())
    child = h3.cell_to_center_child(top, 11)
    doc = (await api.get(f"/risk/cells/{child}", params={"run": run["id"]})).json()
    assert doc["h3"] == top and doc["requested"] == child and doc["level"] == levels[top]


async def test_abandoned_runs_are_failed_by_the_next_start(api, keys, demo) -> None:
    url, _ = demo
    conn = await asyncpg.connect(url)
    try:
        stale = await conn.fetchval(
            "INSERT INTO risk_runs (model, status, created_at) "
            "VALUES ('flood', 'running', now() - interval '2 days') RETURNING id"
        )
        recent = await conn.fetchval(
            "INSERT INTO risk_runs (model, status) VALUES ('flood', 'running') RETURNING id"
        )
        run = await start(api, keys, {"model": "rainstorm", "rain": {"scenario": "light_rain"}})
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, status, error FROM risk_runs WHERE id = ANY($1::bigint[])",
                [stale, recent],
            )
        }
        await conn.execute("DELETE FROM risk_runs WHERE id = $1", recent)
    finally:
        await conn.close()
    assert rows[stale]["status"] == "failed" and "abandoned" in rows[stale]["error"]
    assert rows[recent]["status"] == "running"  # may still be computing somewhere
    assert (await finish(api, run["id"]))["status"] == "done"


async def test_active_runs_are_bounded(api, keys, demo) -> None:
    """At ONEMAP_RISK_MAX_ACTIVE_RUNS pending/running runs, a new run or nowcast is a 429
    and nothing is written; once they finish, runs start again."""
    url, _ = demo
    limit = Settings(database_url=url).risk_max_active_runs
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE risk_runs SET status = 'done' WHERE status IN ('pending', 'running')"
        )
        busy = [
            await conn.fetchval(
                "INSERT INTO risk_runs (model, status) VALUES ('flood', 'running') RETURNING id"
            )
            for _ in range(limit)
        ]
        before = await conn.fetchval("SELECT count(*) FROM risk_runs")
        body = {"model": "rainstorm", "rain": {"scenario": "light_rain"}}
        r = await api.post("/risk/runs", json=body, headers=op(keys))
        assert r.status_code == 429 and r.json()["code"] == "too_many_runs", r.text
        assert str(limit) in r.json()["detail"]
        r = await api.post("/nowcast", json={}, headers=op(keys))
        assert r.status_code == 429 and r.json()["code"] == "too_many_runs", r.text
        assert await conn.fetchval("SELECT count(*) FROM risk_runs") == before
        await conn.execute("UPDATE risk_runs SET status = 'done' WHERE id = ANY($1)", busy)
    finally:
        await conn.close()
    run = await start(api, keys, body)
    assert (await finish(api, run["id"]))["status"] == "done"


async def test_run_starts_are_audited(api, keys, demo) -> None:
    url, _ = demo
    run = await start(api, keys, {"model": "rainstorm", "rain": {"scenario": "light_rain"}})
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT actor, role, detail, client_addr FROM audit_log "
            "WHERE action = 'risk_run.start' AND target = $1",
            str(run["id"]),
        )
    finally:
        await conn.close()
    assert row is not None, "the run start was not written to audit_log"
    assert row["actor"] == "值班员" and row["role"] == "operator"
    assert json.loads(row["detail"])["model"] == "rainstorm"
    assert row["client_addr"]
    assert (await finish(api, run["id"]))["status"] == "done"


async def test_verification_counts_reported_incidents_in_warned_cells(api, keys, demo) -> None:
    """复盘: incidents reported in the run's window are placed in their cells and counted
    per level threshold, against the share of cells at or above it."""
    url, _ = demo
    run_id = (
        await start(api, keys, {"model": "landslide", "rain": {"scenario": "typhoon_300mm_24h"}})
    )["id"]
    assert (await finish(api, run_id))["status"] == "done"
    levels = {int(c, 16): lv for c, lv in (await levels_of(api, run_id)).items()}
    warned = [c for c, lv in levels.items() if lv >= 1][:3]
    calm = [c for c, lv in levels.items() if lv == 0][:2]
    assert warned and calm, "the typhoon warns some cells and leaves others"
    conn = await asyncpg.connect(url)
    try:
        for i, cell in enumerate(warned + calm):
            lat, lon = h3.cell_to_latlng(format(cell, "x"))
            await conn.execute(
                "INSERT INTO incidents (code, kind, description, status, reported_at, geom) "
                "VALUES ($1, 'landslide', '山体滑坡', 'open', now(), "
                "ST_SetSRID(ST_MakePoint($2, $3), 4326))",
                f"VERIFY-{run_id}-{i}",
                lon,
                lat,
            )
        r = await api.get(f"/risk/runs/{run_id}/verification")
        assert r.status_code == 200, r.text
        doc = r.json()
        start_t, end_t = doc["window"]["start"], doc["window"]["end"]
        rows = await conn.fetch(
            "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents WHERE kind = ANY($1) "
            "AND reported_at >= $2 AND reported_at < $3",
            doc["event_kinds"],
            datetime.fromisoformat(start_t),
            datetime.fromisoformat(end_t),
        )
    finally:
        await conn.close()
    # the expected figures, from the run's cells and the incidents, computed independently
    ev_levels = [levels.get(int(h3.latlng_to_cell(r["lat"], r["lon"], 9), 16), -1) for r in rows]
    inside = [lv for lv in ev_levels if lv >= 0]
    assert doc["n_events"] == len(rows) >= 5 and doc["n_events_in_area"] == len(inside)
    for row in doc["levels"]:
        k = row["level"]
        assert row["hits"] == sum(lv >= k for lv in inside)
        assert row["pod"] == pytest.approx(row["hits"] / len(inside))
        share = sum(lv >= k for lv in levels.values()) / len(levels)
        assert row["area_share"] == pytest.approx(share)
    assert doc["levels"][0]["hits"] >= len(warned)  # the planted ones in warned cells count
    png = await api.get(f"/risk/runs/{run_id}/verification.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    none = await api.get(
        f"/risk/runs/{run_id}/verification",
        params={"from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"},
    )
    assert none.status_code == 409 and none.json()["code"] == "nothing_to_verify"
    assert (await api.get("/risk/runs/999999/verification")).status_code == 404


async def test_cells_outside_the_district_are_not_warned(api, keys, demo) -> None:
    """The DEM's margin around the district feeds the terrain but gets no stored cell."""
    import shapely

    url, _ = demo
    run_id = (
        await start(api, keys, {"model": "flood", "rain": {"scenario": "typhoon_300mm_24h"}})
    )["id"]
    run = await finish(api, run_id)
    assert run["status"] == "done", run["error"]
    conn = await asyncpg.connect(url)
    try:
        wkb = await conn.fetchval(
            "SELECT ST_AsBinary(ST_Union(geom)) FROM admin_areas WHERE level = 'district'"
        )
        cells = [r["h3"] for r in await conn.fetch("SELECT h3 FROM risk_run_cells($1)", run_id)]
    finally:
        await conn.close()
    district = shapely.from_wkb(bytes(wkb))
    centres = [h3.cell_to_latlng(format(c, "x")) for c in cells]
    outside = [
        c
        for c, (lat, lon) in zip(cells, centres, strict=True)
        if not district.contains(shapely.Point(lon, lat))
    ]
    assert cells and outside == []
    assert run["inputs"]["cells_outside_district"] > 0  # the demo DEM is larger than the district
    assert run["summary"]["cells"] == len(cells)
