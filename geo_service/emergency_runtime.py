"""Per-worker resources of the emergency workflow, opened and closed in the app lifespan:
the event hub (LISTEN onemap_events → SSE clients) and the warning-expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from emergency.warnings import expire_due
from geo_service.event_hub import EventHub
from geo_service.state import AppState

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


async def start(state: AppState) -> None:
    """Open the event hub and start the expiry sweeper (after the pool is open)."""
    state.event_hub = EventHub(state.settings.effective_database_url)
    state.event_hub.start()
    state.expiry_task = asyncio.create_task(
        _sweep_expired(state.open_pool()), name="onemap-warning-expiry"
    )


async def stop(state: AppState) -> None:
    """End every event stream and stop the background tasks."""
    task, state.expiry_task = state.expiry_task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    hub, state.event_hub = state.event_hub, None
    if hub is not None:
        await hub.stop()
