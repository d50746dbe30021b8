"""/health against a real PostGIS: ok, 503 when the database stops, recovery by itself."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.pg import destroy_cluster, throwaway_cluster


async def test_health_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["postgis"].startswith("3.")
    assert body["schema_revision"] is not None


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/health" in spec["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def _get_health(base_url: str) -> tuple[int, dict, float]:
    t0 = time.monotonic()
    r = httpx.get(base_url + "/health", timeout=10)
    return r.status_code, r.json(), time.monotonic() - t0


@pytest.mark.slow
def test_health_degrades_and_recovers_without_restart(live_server_factory) -> None:
    """A real server process; the database is stopped with pg_ctl and started again."""
    cluster = throwaway_cluster("onemap-health-")
    try:
        cluster.ensure_database("onemap")
        server = live_server_factory({"ONEMAP_DATABASE_URL": cluster.url("onemap")})

        status, body, _ = _get_health(server.base_url)
        assert (status, body["database"]) == (200, "ok")

        cluster.stop("fast")  # a real `pg_ctl stop`
        status, body, elapsed = _get_health(server.base_url)
        assert status == 503
        assert body["status"] == "degraded" and body["database"] == "down"
        assert "reason" in body
        # Health must answer promptly (within 2 s) rather than hang on a dead database.
        assert elapsed < 2.0, f"health took {elapsed:.2f}s with the database down"

        cluster.start()
        deadline = time.monotonic() + 10
        while True:
            status, body, _ = _get_health(server.base_url)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (status, body["database"]) == (200, "ok"), body
        assert server.proc.poll() is None, "the server must not have restarted"
    finally:
        destroy_cluster(cluster)


async def test_layer_versions_follow_writes(client: httpx.AsyncClient, db_url: str) -> None:
    """A write to a layer moves its version in the app through LISTEN/NOTIFY."""
    import asyncio

    import psycopg

    app = client._transport.app  # type: ignore[attr-defined]
    versions = app.state.onemap.layer_versions
    await asyncio.wait_for(versions.connected.wait(), 5)
    before = versions.version("rivers")
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO rivers (code, name, geom) VALUES "
            "('R1', '河', ST_Multi(ST_GeomFromText('LINESTRING(113 22, 113.1 22.1)', 4326)))"
        )
    for _ in range(100):
        if versions.version("rivers") > before:
            break
        await asyncio.sleep(0.02)
    assert versions.version("rivers") == before + 1
