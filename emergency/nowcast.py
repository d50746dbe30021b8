"""Nowcast: run both risk models (landslide, flood) on the latest rain-gauge readings.

Used by ``onemap nowcast`` (once, or every N minutes) and ``POST /nowcast``.  The runs go
through :mod:`emergency.runs` with ``rain={"gauges": true, "hours": H}``: hourly
rain of every gauge over the H hours before the newest reading, interpolated to the cells.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from emergency import runs as risk_runs
from emergency.settings import RunSettings
from layers.audit import Actor, record_async

#: The models a nowcast runs.
MODELS = ("landslide", "flood")
DEFAULT_HOURS = 24


async def start_nowcast(
    pool: asyncpg.Pool,
    settings: RunSettings,
    actor: Actor,
    *,
    hours: int = DEFAULT_HOURS,
    res: int = 9,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Start one run per model; returns ``[{"id", "model"}]`` at once (runs go on in the
    background of this process).  Bad input raises the risk runner's errors."""
    rain = {"gauges": True, "hours": int(hours)}
    async with pool.acquire() as conn:  # both runs or none
        await risk_runs.check_capacity(conn, settings, n=len(MODELS))
    runs = []
    for model in MODELS:
        run_id = await risk_runs.start_run(
            pool, settings, model=model, rain=rain, res=res, params=params, actor=actor
        )
        runs.append({"id": run_id, "model": model})
    async with pool.acquire() as conn:
        await record_async(
            conn, actor, "nowcast.start", None, {"runs": runs, "rain": rain, "res": res}
        )
    return runs


async def wait_nowcast(
    pool: asyncpg.Pool, runs: list[dict[str, Any]], timeout_s: float
) -> list[dict[str, Any]]:
    """The runs once each is done or failed (TimeoutError after ``timeout_s`` each)."""
    return [await risk_runs.wait_run(pool, r["id"], timeout_s) for r in runs]
