"""``GET /health``: is the service up, and can it reach its database?"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from geo_service import __version__
from geo_service.db import check_database
from geo_service.deps import PoolDep, SettingsDep

router = APIRouter(tags=["health"])
log = logging.getLogger("onemap.health")


@router.get(
    "/health",
    summary="Service and database health",
    responses={503: {"description": "The database is unreachable (status degraded)"}},
)
async def health(pool: PoolDep, settings: SettingsDep) -> JSONResponse:
    """200 with ``database: ok`` when PostGIS answers within ``ONEMAP_HEALTH_TIMEOUT_S``;
    503 with ``database: down`` and the reason otherwise (never hangs)."""
    body: dict[str, object] = {"status": "ok", "version": __version__}
    try:
        info = await check_database(pool, settings.health_timeout_s)
    except Exception as exc:  # any failure means "down": report it, never raise
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        log.warning("database health check failed: %r", exc)
        body.update(status="degraded", database="down", reason=f"database unreachable ({reason})")
        return JSONResponse(body, status_code=503)
    body.update(database="ok", **info)
    return JSONResponse(body)
