"""Health: ``/health/live`` (the process answers) and ``/health/ready`` = ``/health`` (the
database answers, through a connection of the check's own, so a busy pool is not "down")."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from geo_service import __version__
from geo_service.deps import SettingsDep, StateDep

router = APIRouter(tags=["health"])
log = logging.getLogger("onemap.health")

_READY_RESPONSES: dict[int | str, dict[str, str]] = {
    503: {"description": "The database is unreachable (status degraded)"}
}


@router.get("/health/live", summary="Liveness: the process answers (no database)")
async def live() -> JSONResponse:
    """Always 200 while the worker runs its event loop; restart the process when it is not."""
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/health/ready", summary="Readiness: the database answers", responses=_READY_RESPONSES)
async def ready(state: StateDep, settings: SettingsDep) -> JSONResponse:
    """200 with ``database: ok`` when PostGIS answers within ``ONEMAP_HEALTH_TIMEOUT_S`` on
    the check's own connection; 503 with ``database: down`` and the reason otherwise (never
    hangs, and never waits for a connection of the request pool)."""
    body: dict[str, object] = {"status": "ok", "version": __version__}
    try:
        if state.health is None:
            raise RuntimeError("the application is not started")
        info = await state.health.check(settings.health_timeout_s)
    except Exception as exc:  # any failure means "down": report it, never raise
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        log.warning("database health check failed: %r", exc)
        body.update(status="degraded", database="down", reason=f"database unreachable ({reason})")
        return JSONResponse(body, status_code=503)
    body.update(database="ok", **info)
    return JSONResponse(body)


@router.get("/health", summary="Service and database health", responses=_READY_RESPONSES)
async def health(state: StateDep, settings: SettingsDep) -> JSONResponse:
    """The same as ``/health/ready``."""
    return await ready(state, settings)
