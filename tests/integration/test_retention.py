"""Retention and quotas: old risk runs and events are pruned (evidence kept; a run's cells are
its partition, dropped whole), a key's runs per hour are bounded, and cells without a level
are not stored or keep only a slim explanation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import psycopg
import pytest

from emergency.runs import SLIM_KEYS, prune
from geo_service.app import create_app
from geo_service.settings import Settings
from layers.keys import create_key
from tests.support.pg import demo_database

ONEMAP = str(Path(sys.executable).parent / "onemap")


def _run(conn: psycopg.Connection, model: str, age_days: float, status: str = "done") -> int:
    row = conn.execute(
        "INSERT INTO risk_runs (model, status, created_at, finished_at) VALUES "
        "(%s, %s, now() - make_interval(secs => %s * 86400), "
        "now() - make_interval(secs => %s * 86400)) RETURNING id",
        (model, status, age_days, age_days),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO risk_cells (run_id, h3, res, level) VALUES (%s, 617700169958293503, 9, 1), "
        "(%s, 617700169958555647, 9, 0)",
        (row[0], row[0]),
    )
    return int(row[0])


def _world(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        ids = {
            "old": _run(conn, "landslide", 40),
            "old_failed": _run(conn, "flood", 45, "failed"),
            "old_warned": _run(conn, "landslide", 50),
            "latest_flood": _run(conn, "flood", 60),  # old, but the newest flood run
            "recent": _run(conn, "landslide", 1),
            "old_running": _run(conn, "rainstorm", 40, "running"),
        }
        conn.execute(
            "INSERT INTO warnings (code, hazard, level, status, valid_from, valid_to, run_id, "
            "geom) VALUES ('W1', 'landslide', 'blue', 'lifted', now() - interval '50 days', "
            "now() - interval '49 days', %s, ST_Multi(ST_Buffer(ST_SetSRID("
            "ST_MakePoint(113.4, 22.5), 4326), 0.01)))",
            (ids["old_warned"],),
        )
        conn.execute(
            "INSERT INTO events (type, payload, at) VALUES ('x', '{}', now() - interval '10 days'),"
            " ('x', '{}', now() - interval '1 day')"
        )
    return ids


def _left(db_url: str) -> tuple[set[int], int, int]:
    with psycopg.connect(db_url) as conn:
        runs = {r[0] for r in conn.execute("SELECT id FROM risk_runs")}
        cells = conn.execute("SELECT count(*) FROM risk_cells").fetchone()
        events = conn.execute("SELECT count(*) FROM events WHERE type = 'x'").fetchone()
    assert cells is not None and events is not None
    return runs, int(cells[0]), int(events[0])


async def test_prune_keeps_evidence_and_the_latest_runs(db_url: str) -> None:
    ids = _world(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        dry = await prune(conn, runs_keep_days=30, events_keep_days=7, dry_run=True)
        assert dry == {"runs": 2, "cells": 4, "events": 1}
        assert _left(db_url) == (set(ids.values()), 12, 2)  # a dry run deletes nothing
        done = await prune(conn, runs_keep_days=30, events_keep_days=7, dry_run=False)
        assert done == dry
        kept = set(ids.values()) - {ids["old"], ids["old_failed"]}
        assert _left(db_url) == (kept, 8, 1)
        # 0 keeps everything
        assert await prune(conn, runs_keep_days=0, events_keep_days=0, dry_run=False) == {
            "runs": 0,
            "cells": 0,
            "events": 0,
        }
    finally:
        await conn.close()


def test_cli_prune(db_url: str) -> None:
    ids = _world(db_url)
    env = {"ONEMAP_DATABASE_URL": db_url, "ONEMAP_RISK_RUNS_KEEP_DAYS": "30", "PATH": "/usr/bin"}
    out = subprocess.run(
        [ONEMAP, "db", "prune", "--dry-run"], env=env, capture_output=True, text=True, check=True
    )
    said = " ".join((out.stdout + out.stderr).split())
    assert "would delete 2 risk runs (4 cells)" in said and "1 events older than 7 days" in said
    bad = subprocess.run(
        [ONEMAP, "db", "prune", "--runs-days", "-1"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "must be ≥ 0" in bad.stdout + bad.stderr
    subprocess.run([ONEMAP, "db", "prune", "--runs-days", "42"], env=env, check=True)
    runs, _, _ = _left(db_url)
    assert ids["old"] in runs and ids["old_failed"] not in runs  # 40 < 42 days < 45


@pytest.fixture(scope="module")
def demo(pg_admin_url: str, template_db: str, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("retention-demo")
    with demo_database(pg_admin_url, template_db, "retention_module", data_dir, 0.3, 5) as url:
        yield url, data_dir


async def test_runs_per_key_per_hour_and_slim_level_0_cells(demo) -> None:
    url, data_dir = demo
    key, _ = create_key(url, "夜班值班员", "operator")
    settings = Settings(
        database_url=url, env="test", data_dir=data_dir, risk_runs_per_key_per_hour=2
    )
    app = create_app(settings)
    body = {"model": "landslide", "rain": {"scenario": "typhoon_300mm_24h"}}
    headers = {"X-API-Key": key}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=300) as api:
            first = (await api.post("/risk/runs", json=body, headers=headers)).json()["id"]
            assert (await api.post("/risk/runs", json=body, headers=headers)).status_code == 202
            third = await api.post("/risk/runs", json=body, headers=headers)
            assert third.status_code == 429 and third.json()["code"] == "too_many_runs"
            assert "per key and hour" in third.json()["detail"]
            for _ in range(3000):
                run = (await api.get(f"/risk/runs/{first}")).json()
                if run["status"] in ("done", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert run["status"] == "done", run
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(
                    "SELECT h3, level, factors, stored FROM risk_run_cells($1)", first
                )
                second = int(await conn.fetchval("SELECT max(id) FROM risk_runs"))
                for _ in range(3000):
                    if await conn.fetchval(
                        "SELECT status IN ('done', 'failed') FROM risk_runs WHERE id = $1", second
                    ):
                        break
                    await asyncio.sleep(0.1)
                light = (
                    await api.post(
                        "/risk/runs",
                        json={"model": "landslide", "rain": {"scenario": "light_rain"}},
                        headers={"X-API-Key": create_key(url, "值班长", "operator")[0]},
                    )
                ).json()["id"]
                for _ in range(3000):
                    status = await conn.fetchval(
                        "SELECT status FROM risk_runs WHERE id = $1", light
                    )
                    if status in ("done", "failed"):
                        break
                    await asyncio.sleep(0.1)
                lifted = await conn.fetch(
                    "SELECT h3, factors FROM risk_cells WHERE run_id = $1 AND level = 0", light
                )
            finally:
                await conn.close()
            zero = [r for r in rows if r["level"] == 0]
            warned = [r for r in rows if r["level"] > 0]
            assert zero and warned
            # the first run of the model stores only its warned cells: level-0 cells are
            # not stored and read with a slim explanation saying why
            assert all(r["stored"] for r in warned) and not any(r["stored"] for r in zero)
            # cells the light rain lifts back to none are stored, with the slim explanation
            assert lifted
            for r in lifted:
                ex = json.loads(r["factors"]) if isinstance(r["factors"], str) else r["factors"]
                assert set(ex) <= {*SLIM_KEYS, "detail"} and "rule" in ex and ex["level"] == 0
            full = (
                json.loads(warned[0]["factors"])
                if isinstance(warned[0]["factors"], str)
                else warned[0]["factors"]
            )
            assert "top_factors" in full
            r = await api.get(f"/risk/cells/{format(zero[0]['h3'], 'x')}", params={"run": first})
            ex = r.json()["explanation"]
            assert ex["level"] == 0 and set(ex) <= {*SLIM_KEYS, "detail"} and "rule" in ex
