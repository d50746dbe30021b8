"""Per-worker resources of the emergency workflow, opened and closed in the app lifespan:
the event hub (LISTEN onemap_events → SSE clients), the warning-expiry and retention
sweepers and the CAP push deliverer."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import httpx

from emergency import push
from emergency.incidents import mark_overdue
from emergency.warnings import expire_due
from geo_service.event_hub import EventHub
from geo_service.state import AppState

log = logging.getLogger("onemap.emergency")

#: Seconds between sweeps that mark warnings past ``valid_to`` as expired and incidents
#: past their deadline as overdue.
EXPIRY_SWEEP_S = 30.0


async def _sweep_expired(pool: asyncpg.Pool) -> None:
    while True:
        await asyncio.sleep(EXPIRY_SWEEP_S)
        try:
            async with pool.acquire() as conn:
                codes = await expire_due(conn)
                late = await mark_overdue(conn)
            if codes:
                log.info("warnings expired", extra={"codes": codes})
            if late:
                log.info("incidents overdue", extra={"codes": late})
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


def push_settings(state: AppState) -> push.PushSettings:
    s = state.settings
    return push.PushSettings(
        base_s=s.push_backoff_s,
        max_backoff_s=s.push_max_backoff_s,
        lease_s=s.push_lease_s,
        timeout_s=s.push_timeout_s,
    )


async def _deliver_pushes(state: AppState) -> None:
    """Deliver due CAP pushes, polling the outbox every ``push_poll_s``."""
    settings = push_settings(state)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        while True:
            try:
                while True:
                    done = await push.deliver_due(state.open_pool(), client, settings)
                    if done["delivered"]:
                        log.info("cap pushed", extra=done)
                    if not any(done.values()):
                        break
            except (OSError, RuntimeError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("push round skipped: %r", exc)
            await asyncio.sleep(state.settings.push_poll_s)


async def start(state: AppState) -> None:
    """Open the event hub and start the expiry and retention sweepers (after the pool is open)."""
    state.event_hub = EventHub(state.settings.effective_database_url)
    state.event_hub.start()
    state.expiry_task = asyncio.create_task(
        _sweep_expired(state.open_pool()), name="onemap-warning-expiry"
    )
    state.retention_task = asyncio.create_task(_sweep_retention(state), name="onemap-retention")
    if state.settings.push_enabled:
        state.push_task = asyncio.create_task(_deliver_pushes(state), name="onemap-cap-push")


async def stop(state: AppState) -> None:
    """End every event stream and stop the background tasks."""
    tasks = [state.expiry_task, state.retention_task, state.push_task]
    state.expiry_task = state.retention_task = state.push_task = None
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    hub, state.event_hub = state.event_hub, None
    if hub is not None:
        await hub.stop()
