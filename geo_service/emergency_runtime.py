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


#: Seconds between retention sweeps (old risk runs and events, see ``onemap db prune``).
PRUNE_SWEEP_S = 3600.0


async def _sweep_retention(state: AppState) -> None:
    from emergency.runs import prune

    while True:
        await asyncio.sleep(PRUNE_SWEEP_S)
        try:
            async with state.open_pool().acquire() as conn:
                out = await prune(
                    conn,
                    runs_keep_days=state.settings.risk_runs_keep_days,
                    events_keep_days=state.settings.events_keep_days,
                    dry_run=False,
                )
            if any(out.values()):
                log.info("retention: pruned", extra=out)
        except (OSError, RuntimeError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("retention sweep skipped: %r", exc)


async def start(state: AppState) -> None:
    """Open the event hub and start the expiry and retention sweepers (after the pool is open)."""
    state.event_hub = EventHub(state.settings.effective_database_url)
    state.event_hub.start()
    state.expiry_task = asyncio.create_task(
        _sweep_expired(state.open_pool()), name="onemap-warning-expiry"
    )
    state.retention_task = asyncio.create_task(_sweep_retention(state), name="onemap-retention")


async def stop(state: AppState) -> None:
    """End every event stream and stop the background tasks."""
    tasks = [state.expiry_task, state.retention_task]
    state.expiry_task = state.retention_task = None
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    hub, state.event_hub = state.event_hub, None
    if hub is not None:
        await hub.stop()
