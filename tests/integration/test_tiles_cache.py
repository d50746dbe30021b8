"""Tile caching: ETag from layer versions, 304s, the LRU, and writes visible within 2 s
(in-process and on a live server with two workers)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import httpx
import pytest

from tests.support.grid_tile import TILE, grid_names, insert_grid, rename_grid
from tests.support.pg import BIN, free_port
from tiles.cache import TileCache, etag_matches, make_etag


def test_lru_is_bounded_by_bytes_and_invalidates_by_table() -> None:
    cache = TileCache(max_bytes=1000)
    for i in range(10):
        cache.put(("t", i), bytes(300), tables=("grids",) if i % 2 else ("roads",))
    assert cache.bytes <= 1000 and len(cache) == 3
    assert cache.get(("t", 0)) is None and cache.get(("t", 9)) is not None
    cache.get(("t", 7))  # 7 becomes the most recent; 8 is now the oldest
    cache.put(("t", 10), bytes(300), tables=("roads",))
    assert cache.get(("t", 8)) is None and cache.get(("t", 7)) is not None
    dropped = cache.invalidate("grids")
    assert dropped == 2 and cache.get(("t", 9)) is None and cache.get(("t", 10)) is not None
    cache.put(("big",), bytes(2000))  # larger than the whole cache: not stored
    assert cache.get(("big",)) is None and cache.bytes == 300


def test_etag_helpers() -> None:
    a = make_etag("mvt", ("grids",), (1,), 14, 1, 2)
    assert a.startswith('"') and a != make_etag("mvt", ("grids",), (2,), 14, 1, 2)
    assert etag_matches(a, a) and etag_matches(f'"zzz", W/{a}', a) and etag_matches("*", a)
    assert not etag_matches(None, a) and not etag_matches('"other"', a)


async def test_etag_304_and_write_visible_within_2s(client: httpx.AsyncClient, db_url: str) -> None:
    insert_grid(db_url, "Alpha")
    path = f"/tiles/grids/{TILE}.mvt"
    r1 = await client.get(path)
    assert r1.status_code == 200, r1.text
    assert grid_names(r1.content) == ["Alpha"]
    etag = r1.headers["etag"]
    assert r1.headers["cache-control"] == "public, max-age=60, must-revalidate"
    # The second request is a cache hit with the same bytes and validator.
    r2 = await client.get(path)
    assert r2.content == r1.content and r2.headers["etag"] == etag
    r304 = await client.get(path, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    # A different validator gets the tile.
    assert (await client.get(path, headers={"If-None-Match": '"nope"'})).status_code == 200

    rename_grid(db_url, "Beta")
    deadline = time.monotonic() + 2.0
    while True:
        r3 = await client.get(path, headers={"If-None-Match": etag})
        if r3.status_code == 200:
            break
        assert time.monotonic() < deadline, "the write did not reach the tile within 2 s"
        await asyncio.sleep(0.05)
    assert r3.headers["etag"] != etag
    assert grid_names(r3.content) == ["Beta"]
    # The OGC path and the multi-layer path see the change too.
    ogc = await client.get(f"/collections/grids/tiles/WebMercatorQuad/{TILE}")
    assert grid_names(ogc.content) == ["Beta"]


async def test_stale_tiles_are_dropped_from_the_cache(
    client: httpx.AsyncClient, db_url: str
) -> None:
    insert_grid(db_url, "Alpha")
    await client.get(f"/tiles/grids/{TILE}.mvt")
    await client.get(f"/tiles/grids,roads/{TILE}.mvt")
    app = client._transport.app  # type: ignore[attr-defined]
    cache = app.state.onemap.tiles.cache
    assert len(cache) == 2
    rename_grid(db_url, "Gamma")
    for _ in range(40):  # 2 s
        if not len(cache):
            break
        await asyncio.sleep(0.05)
    assert len(cache) == 0


def test_live_server_two_workers_sees_write_within_2s(db_url: str) -> None:
    """``onemap serve --workers 2``: each worker has its own cache and listener; after a
    write, every worker serves the new tile within 2 s."""
    insert_grid(db_url, "Alpha")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "onemap"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env={**os.environ, "ONEMAP_DATABASE_URL": db_url, "ONEMAP_LOG_LEVEL": "ERROR"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/tiles/grids/{TILE}.mvt"

    def fetch_names() -> list[str]:
        with httpx.Client(timeout=5) as fresh:  # a new connection: any worker may answer
            return grid_names(fresh.get(url).content)

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        for _ in range(20):  # warm both workers' caches
            assert fetch_names() == ["Alpha"]
        rename_grid(db_url, "Beta")
        t0 = time.monotonic()
        fresh_in_a_row = 0
        while fresh_in_a_row < 20:
            if fetch_names() == ["Beta"]:
                fresh_in_a_row += 1
            else:
                fresh_in_a_row = 0
                assert time.monotonic() - t0 < 2.0, "a worker served a stale tile after 2 s"
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize("mb", ["0.001"])
async def test_cache_size_setting(monkeypatch, settings, mb: str) -> None:
    """ONEMAP_TILES_CACHE_MB bounds the cache."""
    from geo_service.app import create_app

    monkeypatch.setenv("ONEMAP_TILES_CACHE_MB", mb)
    from geo_service.settings import Settings

    assert Settings().tiles_cache_mb == float(mb)  # read from the environment
    insert_grid(settings.effective_database_url, "Alpha")
    app = create_app(settings.model_copy(update={"tiles_cache_mb": float(mb)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c:
            assert (await c.get(f"/tiles/grids/{TILE}.mvt")).status_code == 200
            assert app.state.onemap.tiles.cache.max_bytes == int(float(mb) * 1024 * 1024)
            assert app.state.onemap.tiles.cache.bytes <= app.state.onemap.tiles.cache.max_bytes
