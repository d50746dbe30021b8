"""Bounds on what one caller may cost: a deadline over all statements of an /items request,
a vertex bound on anonymous filter geometries, an optional per-address rate limit."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator

import asyncpg
import httpx
import psycopg
import pytest

from geo_service.app import create_app
from geo_service.db import Deadline
from geo_service.features.cql import MAX_ANONYMOUS_FILTER_VERTICES
from geo_service.settings import Settings
from layers.keys import create_key
from tests.integration.test_hardening_filters import seed_buildings
from tests.support.district import err


async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_deadline_covers_every_statement_of_a_request(db_url: str) -> None:
    """Two statements of 0.6 s each, each under a 30 s statement timeout, do not both fit
    in a 1 s budget: the second one is cancelled."""
    conn = await asyncpg.connect(db_url, command_timeout=30)
    try:
        async with conn.transaction():
            deadline = Deadline(1.0)
            with pytest.raises(asyncpg.exceptions.QueryCanceledError):
                for _ in range(2):
                    await deadline.arm(conn)
                    await conn.execute("SELECT pg_sleep(0.6)")
        # SET LOCAL: the next transaction has the connection's own timeout again.
        assert await conn.fetchval("SHOW statement_timeout") == "0"
    finally:
        await conn.close()


async def test_items_request_is_cancelled_at_its_deadline(settings: Settings, db_url: str) -> None:
    """A request blocked behind a lock is cancelled at ONEMAP_ITEMS_DEADLINE_S (503), not
    after the lock goes (which, without the deadline, would give a late 200)."""
    seed_buildings(db_url)
    locker = psycopg.connect(db_url)
    locker.execute("LOCK TABLE buildings IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(8.0, locker.rollback)
    release.start()
    try:
        async for c in app_client(settings.model_copy(update={"items_deadline_s": 0.5})):
            r = await c.get("/collections/buildings/items")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "query_timeout"
    finally:
        release.cancel()
        locker.rollback()
        locker.close()


def _polygon_wkt(n_vertices: int) -> str:
    """A closed ring of ``n_vertices`` coordinates (the first repeated last) around the
    seeded buildings."""
    pts = [
        (108.262 + 0.01 * math.cos(2 * math.pi * i / (n_vertices - 1)),
         22.79 + 0.01 * math.sin(2 * math.pi * i / (n_vertices - 1)))
        for i in range(n_vertices - 1)
    ]  # fmt: skip
    pts.append(pts[0])
    return "POLYGON((" + ", ".join(f"{x:.5f} {y:.5f}" for x, y in pts) + "))"


async def test_anonymous_filter_geometries_are_bounded(
    client: httpx.AsyncClient, db_url: str
) -> None:
    seed_buildings(db_url)
    n = MAX_ANONYMOUS_FILTER_VERTICES
    url = "/collections/buildings/items"
    at_bound = {"filter": f"S_INTERSECTS(geometry, {_polygon_wkt(n)})"}
    r = await client.get(url, params=at_bound)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["numberMatched"] == 3
    beyond = {"filter": f"S_TOUCHES(geometry, {_polygon_wkt(n + 1)})"}
    body = await err(client, url, params=beyond)
    assert body["code"] == "filter_geometry_too_large"
    assert str(n) in body["detail"]
    # A caller with a key may send more.
    key, _ = create_key(db_url, "规划", "viewer")
    r = await client.get(url, params=beyond, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text[:300]


async def test_anonymous_rate_limit_per_client_address(settings: Settings) -> None:
    limited = settings.model_copy(
        update={
            "rate_limit_anonymous_per_min": 60,
            "rate_limit_burst": 3,
            "trusted_proxies": ["127.0.0.1"],
        }
    )
    async for c in app_client(limited):
        codes = [(await c.get("/conformance")).status_code for _ in range(5)]
        assert codes[:3] == [200] * 3 and codes[3:] == [429, 429]
        assert (await c.get("/health")).status_code == 200  # probes are never limited
        # Another client behind the trusted proxy has its own bucket.
        other = {"X-Forwarded-For": "203.0.113.7"}
        assert (await c.get("/conformance", headers=other)).status_code == 200
    async for c in app_client(settings):  # off by default
        codes = [(await c.get("/conformance")).status_code for _ in range(20)]
        assert set(codes) == {200}


async def test_limits_leave_concurrent_reads_alone(client: httpx.AsyncClient, db_url: str) -> None:
    """Pages and counts in one read-only snapshot still serve concurrent readers."""
    seed_buildings(db_url)
    rs = await asyncio.gather(
        *[client.get("/collections/buildings/items", params={"limit": 1}) for _ in range(12)]
    )
    assert {r.status_code for r in rs} == {200}
    assert {r.json()["numberMatched"] for r in rs} == {3}


async def test_anonymous_within_geometries_are_bounded(
    client: httpx.AsyncClient, db_url: str
) -> None:
    """POST /geo/within applies the same bound to callers without a key."""
    import shapely
    import shapely.wkt

    seed_buildings(db_url)
    n = MAX_ANONYMOUS_FILTER_VERTICES

    def body(vertices: int) -> dict:
        geom = shapely.geometry.mapping(shapely.wkt.loads(_polygon_wkt(vertices)))
        return {"geometry": geom, "layers": ["buildings"]}

    r = await client.post("/geo/within", json=body(n))
    assert r.status_code == 200, r.text[:300]
    assert r.json()["layers"]["buildings"]["numberMatched"] == 3
    r = await client.post("/geo/within", json=body(n + 1))
    assert r.status_code == 413 and "without an API key" in r.json()["detail"], r.text[:300]
    key, _ = create_key(db_url, "规划", "viewer")
    r = await client.post("/geo/within", json=body(n + 1), headers={"X-API-Key": key})
    assert r.status_code == 200, r.text[:300]
