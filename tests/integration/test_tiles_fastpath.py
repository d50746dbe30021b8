"""The tile fast path answers cache hits and 304s exactly as the router would, and hands
everything else (misses, errors, keyed callers, risk, query strings) to the application."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from geo_service.tile_fastpath import TileFastPath
from tests.support.grid_tile import TILE, grid_names, insert_grid, rename_grid


class Recorder:
    """An inner ASGI app that records what reached it and answers 599."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(
    mw: TileFastPath, app: Any, path: str, headers: dict[str, str] | None = None, qs: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": qs,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "app": app,
    }
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            out["body"] += message.get("body", b"")

    await mw(scope, receive, send)
    return out["status"], out["headers"], out["body"]


async def test_fast_path_serves_hits_and_304_like_the_router(
    client: httpx.AsyncClient, db_url: str
) -> None:
    insert_grid(db_url, "Alpha")
    app = client._transport.app  # type: ignore[attr-defined]
    inner = Recorder()
    mw = TileFastPath(inner)
    path = f"/tiles/grids/{TILE}.mvt"

    # Cold: nothing cached yet, so the request goes on to the application.
    status, _, _ = await _call(mw, app, path)
    assert status == 599 and inner.paths == [path]

    routed = await client.get(path)  # the router renders and caches it
    assert routed.status_code == 200
    status, headers, body = await _call(mw, app, path)
    assert status == 200 and body == routed.content and inner.paths == [path]
    for name in ("etag", "cache-control", "vary", "content-type", "content-length"):
        assert headers[name] == routed.headers[name], name
    assert grid_names(body) == ["Alpha"]

    etag = routed.headers["etag"]
    status, headers, body = await _call(mw, app, path, {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["etag"] == etag
    routed_304 = await client.get(path, headers={"If-None-Match": etag})
    assert routed_304.status_code == 304

    # The OGC path shares the key of a single-layer tile.
    status, headers, _ = await _call(
        mw, app, f"/collections/grids/tiles/WebMercatorQuad/{TILE}", {"If-None-Match": etag}
    )
    assert status == 304 and headers["etag"] == etag

    # After a write the old ETag no longer matches and the stale tile is not served.
    rename_grid(db_url, "Beta")
    deadline = time.monotonic() + 2.0
    while True:
        status, _, _ = await _call(mw, app, path, {"If-None-Match": etag})
        if status != 304:
            break
        assert time.monotonic() < deadline, "the write did not reach the fast path in 2 s"
        await asyncio.sleep(0.05)
    assert status == 599  # a miss: rendered by the router
    fresh = await client.get(path)
    assert grid_names(fresh.content) == ["Beta"] and fresh.headers["etag"] != etag


async def test_fast_path_leaves_everything_else_to_the_application(
    client: httpx.AsyncClient, db_url: str
) -> None:
    insert_grid(db_url, "Alpha")
    app = client._transport.app  # type: ignore[attr-defined]
    path = f"/tiles/grids/{TILE}.mvt"
    etag = (await client.get(path)).headers["etag"]
    inner = Recorder()
    mw = TileFastPath(inner)
    passed = [
        (path, {"Authorization": "Bearer x"}, b""),  # a key: role from the database
        (path, {"X-API-Key": "x", "If-None-Match": etag}, b""),
        (path, {}, b"run=1"),  # query strings (risk runs) need the database
        (f"/tiles/risk/{TILE}.mvt", {}, b""),
        (f"/tiles/nope/{TILE}.mvt", {}, b""),  # unknown layer: the router's 404
        ("/tiles/grids/25/0/0.mvt", {}, b""),  # outside the grid: the router's 404
        ("/tiles/grids/14/x/0.mvt", {}, b""),  # malformed: the router's 422
        ("/collections/grids/tiles/OtherQuad/14/1/1", {}, b""),
        ("/collections/grids/items", {}, b""),
    ]
    for p, headers, qs in passed:
        status, _, _ = await _call(mw, app, p, headers, qs)
        assert status == 599, (p, headers, qs)
    assert len(inner.paths) == len(passed)
    # Through the real stack those requests still get their proper answers.
    assert (await client.get("/tiles/grids/25/0/0.mvt")).status_code == 404
    assert (await client.get("/tiles/nope/14/0/0.mvt")).status_code == 404
    assert (await client.get("/tiles/grids/14/x/0.mvt")).status_code == 422
