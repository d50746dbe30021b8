"""The application factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from geo_service import __version__, emergency_runtime
from geo_service.db import HealthConnection, create_pool
from geo_service.errors import install_error_handlers
from geo_service.head_requests import HeadAsGet
from geo_service.layer_events import LayerVersions
from geo_service.logs import AccessLog, configure_logging
from geo_service.routers import addresses, features, geo, health, raster, styles, tiles
from geo_service.routers import analysis as analysis_router
from geo_service.routers import edits as edits_router
from geo_service.routers import events as events_router
from geo_service.routers import incidents as incidents_router
from geo_service.routers import nowcast as nowcast_router
from geo_service.routers import risk as risk_router
from geo_service.routers import screen as screen_router
from geo_service.routers import sensors as sensors_router
from geo_service.routers import stats as stats_router
from geo_service.routers import warnings as warnings_router
from geo_service.security import AllowedHosts, BodySizeLimit, ClientAddress, RateLimit
from geo_service.settings import Settings, get_settings
from geo_service.state import new_state
from geo_service.tile_fastpath import TileFastPath
from layers.catalog import CATALOG

log = logging.getLogger("onemap.http")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the OneMap FastAPI application.

    Args:
        settings: configuration; read from the ``ONEMAP_*`` environment when omitted.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    state = new_state(settings, CATALOG)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.pool = await create_pool(settings)
        state.health = HealthConnection(settings)
        await state.health.open(settings.health_timeout_s)
        versions = state.layer_versions = LayerVersions(settings.effective_database_url)
        cache = state.tiles.cache

        def drop_tiles(table: str, _version: int) -> None:
            cache.invalidate(table)

        versions.subscribe(drop_tiles)
        versions.start()
        await emergency_runtime.start(state)
        state.address_warmup = asyncio.create_task(
            addresses.warm_address_index(state), name="onemap-address-index"
        )
        log.info("started", extra={"database": _redacted(settings.effective_database_url)})
        try:
            yield
        finally:
            for task in (state.address_warmup, state.address_reload):
                if task is not None:
                    task.cancel()
            await emergency_runtime.stop(state)
            await versions.stop()
            await state.health.close()
            await state.pool.close()
            state.pool = None

    app = FastAPI(
        title="OneMap",
        summary="一张图 — one map for smart-community and emergency command centres",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.onemap = state
    install_error_handlers(app)
    # HEAD on every GET route, answered by the GET route without its body (innermost, so
    # limits and the access log see the real method).
    app.add_middleware(HeadAsGet)
    # Innermost: cached tiles and 304s skip routing but still pass CORS, limits and the log.
    app.add_middleware(TileFastPath)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
        )
    app.add_middleware(
        RateLimit,
        per_minute=settings.rate_limit_per_min,
        burst=settings.rate_limit_burst,
        anonymous_per_minute=settings.rate_limit_anonymous_per_min,
    )
    app.add_middleware(BodySizeLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024))

    app.add_middleware(AccessLog)
    # Outermost: the Host is checked and the client address settled before anything uses them.
    app.add_middleware(ClientAddress, trusted=settings.trusted_proxies)
    app.add_middleware(AllowedHosts, allowed_hosts=settings.allowed_hosts)

    _document_error_bodies(app)
    app.include_router(health.router)
    app.include_router(features.router)
    app.include_router(edits_router.router)
    app.include_router(geo.router)
    app.include_router(addresses.router)
    app.include_router(tiles.router)
    app.include_router(raster.router)
    app.include_router(styles.router)
    app.include_router(risk_router.router)
    app.include_router(screen_router.router)
    app.include_router(warnings_router.router)
    app.include_router(analysis_router.router)
    app.include_router(events_router.router)
    app.include_router(sensors_router.router)
    app.include_router(incidents_router.router)
    app.include_router(stats_router.router)
    app.include_router(nowcast_router.router)
    return app


def _redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


#: The JSON body of every error response (see geo_service/errors.py).
ERROR_SCHEMA: dict[str, object] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable error code"},
        "detail": {"type": "string", "description": "What was wrong, for a person"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


def _document_error_bodies(app: FastAPI) -> None:
    """Make the OpenAPI document the one OGC API clients read: OpenAPI 3.0 (as the landing
    page and /conformance claim), OneMap's real error body on every status an operation can
    answer, the OGC parameters typed, one items path per collection with its queryable
    properties (see :mod:`geo_service.features.openapi`)."""
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import iter_route_contexts

    from geo_service.features import openapi as oas

    def authenticated() -> set[tuple[str, str]]:
        """(path, method) of the operations that depend on the caller's API key."""
        out: set[tuple[str, str]] = set()
        for route in iter_route_contexts(app.routes):
            dependant = getattr(route, "dependant", None)
            stack, seen = [dependant] if dependant is not None else [], False
            while stack and not seen:
                dep = stack.pop()
                seen = getattr(dep.call, "__module__", "") == "geo_service.auth"
                stack.extend(dep.dependencies)
            if seen and route.path_format:
                out.update((route.path_format, m.lower()) for m in route.methods or ())
        return out

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            schemas = spec.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
                schemas.pop("ValidationError", None)
            spec = oas.to_openapi_30(spec)
            state = app.state.onemap
            oas.add_ogc_parameters(spec, state.catalog, state.settings.anonymous_role)
            oas.document_statuses(spec, authenticated(), ERROR_SCHEMA)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
