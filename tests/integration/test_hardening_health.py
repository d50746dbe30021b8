"""/health against a saturated pool: the check has its own connection, so a pool busy
with slow reads is not reported as a database that is down; liveness needs no database."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from geo_service.settings import Settings


async def test_health_is_ok_while_the_pool_is_exhausted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    pool = app.state.onemap.pool
    held = [await pool.acquire() for _ in range(settings.database_pool_max)]
    try:
        # The pool has nothing left: a request that needs it waits.
        waiting = asyncio.ensure_future(client.get("/collections/venues/items"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        for path in ("/health", "/health/ready"):
            r = await client.get(path)
            assert r.status_code == 200, r.text
            assert r.json()["database"] == "ok"
        live = await client.get("/health/live")
        assert live.status_code == 200 and "database" not in live.json()
    finally:
        for conn in held:
            await pool.release(conn)
    assert (await waiting).status_code == 200


async def test_health_reconnects_its_connection_when_it_is_lost(
    client: httpx.AsyncClient, db_url: str
) -> None:
    assert (await client.get("/health")).status_code == 200
    with psycopg.connect(db_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'onemap-health' AND datname = current_database()"
        ).fetchone()
    assert killed == (1,)
    r = await client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["database"] == "ok"
