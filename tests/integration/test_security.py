"""Request hardening: oversize bodies, rate limits, CORS, production refusals."""

from __future__ import annotations

import httpx
import pytest

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.keys import create_key


async def _client(settings: Settings):
    app = create_app(settings)
    ctx = app.router.lifespan_context(app)
    await ctx.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return app, ctx, client


async def test_oversize_body_is_413(settings: Settings) -> None:
    app, ctx, client = await _client(settings.model_copy(update={"max_body_mb": 1.0}))
    try:
        big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        r = await client.post(
            "/geo/within", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

        async def chunks():
            for _ in range(40):
                yield b" " * 65536

        r = await client.post(
            "/geo/within", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        small = await client.post("/geo/within", json={"geometry": None, "layers": []})
        assert small.status_code == 422  # reaches the app and is validated there
    finally:
        await client.aclose()
        await ctx.__aexit__(None, None, None)


async def test_rate_limit_per_key(settings: Settings, db_url: str) -> None:
    key, _ = create_key(db_url, "脚本", "viewer")
    app, ctx, client = await _client(
        settings.model_copy(update={"rate_limit_per_min": 60, "rate_limit_burst": 5})
    )
    try:
        codes = [
            (await client.get("/conformance", headers={"X-API-Key": key})).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [200] * 5
        assert 429 in codes[5:]
        limited = await client.get("/conformance", headers={"X-API-Key": key})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # Health checks, anonymous traffic and other keys are not held back by this bucket.
        assert (await client.get("/health", headers={"X-API-Key": key})).status_code == 200
        assert (await client.get("/conformance")).status_code == 200
        other, _ = create_key(db_url, "另一个", "viewer")
        assert (await client.get("/conformance", headers={"X-API-Key": other})).status_code == 200
    finally:
        await client.aclose()
        await ctx.__aexit__(None, None, None)


async def test_cors_allow_list(settings: Settings) -> None:
    app, ctx, client = await _client(
        settings.model_copy(update={"cors_origins": ["http://screen.local"]})
    )
    try:
        ok = await client.get("/health", headers={"Origin": "http://screen.local"})
        assert ok.headers.get("access-control-allow-origin") == "http://screen.local"
        other = await client.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        await client.aclose()
        await ctx.__aexit__(None, None, None)


def test_production_refuses_wildcard_cors() -> None:
    with pytest.raises(ValueError, match="CORS"):
        Settings(env="production", database_url="postgresql://u:p@db/x", cors_origins=["*"])
