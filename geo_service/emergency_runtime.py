"""Per-worker resources of the emergency workflow, opened and closed in the app lifespan:
the event hub (LISTEN onemap_events → SSE clients) and the warning-expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

import asyncpg
from fastapi import FastAPI

from emergency.warnings import expire_due
from geo_service.event_hub import EventHub
from geo_service.settings import Settings

log = logging.getLogger("onemap.emergency")

#: Seconds between sweeps that mark warnings past ``valid_to`` as expired.
EXPIRY_SWEEP_S = 30.0


async def _sweep_expired(pool: asyncpg.Pool) -> None:
    while True:
        await asyncio.sleep(EXPIRY_SWEEP_S)
        try:
            async with pool.acquire() as conn:
                codes = await expire_due(conn)
            if codes:
                log.info("warnings expired", extra={"codes": codes})
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("expiry sweep skipped: %r", exc)


async def start(app: FastAPI, settings: Settings) -> None:
    """Open the event hub and start the expiry sweeper (after ``app.state.pool`` exists)."""
    app.state.event_hub = EventHub(settings.effective_database_url)
    app.state.event_hub.start()
    app.state.run_area_cache = OrderedDict()
    app.state.stats_cache = {}
    app.state.expiry_task = asyncio.create_task(
        _sweep_expired(app.state.pool), name="onemap-warning-expiry"
    )


async def stop(app: FastAPI) -> None:
    """End every event stream and stop the background tasks."""
    task = getattr(app.state, "expiry_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    hub = getattr(app.state, "event_hub", None)
    if hub is not None:
        await hub.stop()
