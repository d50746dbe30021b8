"""``onemap nowcast``: run the landslide and flood models on the latest gauge readings, once
or every ``--every`` (e.g. ``10m``), printing each run's cells per level."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from geo_service.cli.console import console
from geo_service.settings import get_settings
from layers.audit import Actor

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    """Seconds in ``30s``, ``10m``, ``1h`` or a bare number of seconds.

    >>> parse_duration_s("10m"), parse_duration_s("90")
    (600.0, 90.0)
    """
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 30s, 10m, 1h)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


def _table(runs: list[dict[str, Any]]) -> Table:
    table = Table(
        "run", "model", "status", "blue", "yellow", "orange", "red", "stored", "seconds"
    )  # fmt: skip
    for r in runs:
        summary = r.get("summary") or {}
        levels = summary.get("by_level") or {}
        total = (r.get("timings") or {}).get("total_s")
        table.add_row(
            str(r["id"]),
            r["model"],
            r["status"] + (f": {r['error']}" if r.get("error") else ""),
            *(str(levels.get(k, "")) for k in ("blue", "yellow", "orange", "red")),
            str(summary.get("stored_cells", "")),  # rows written: above none or changed
            f"{total:.1f}" if isinstance(total, int | float) else "",
        )  # fmt: skip
    return table


async def _once(hours: int, res: int, timeout_s: float) -> bool:
    from emergency.nowcast import start_nowcast, wait_nowcast
    from geo_service.db import create_pool

    settings = get_settings()
    pool = await create_pool(settings)
    try:
        runs = await start_nowcast(pool, settings, Actor.cli(), hours=hours, res=res)
        console.print("started runs " + ", ".join(f"{r['model']} #{r['id']}" for r in runs))
        done = await wait_nowcast(pool, runs, timeout_s)
    finally:
        await pool.close()
    console.print(_table(done))
    return all(r["status"] == "done" for r in done)


def nowcast_command(
    every: Annotated[
        str | None, typer.Option(help="Repeat every this long (30s, 10m, 1h); once if omitted")
    ] = None,
    hours: Annotated[int, typer.Option(help="Hours of gauge rain used", min=1, max=72)] = 24,
    res: Annotated[int, typer.Option(help="H3 resolution of the cells", min=7, max=10)] = 9,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each run")] = 900.0,
) -> None:
    """Run both risk models (landslide, flood) on the latest rain-gauge readings."""
    from risk_models.errors import RiskModelError

    period_s = parse_duration_s(every) if every else None
    while True:
        t0 = time.monotonic()
        try:
            ok = asyncio.run(_once(hours, res, timeout))
        except (RiskModelError, TimeoutError, OSError) as exc:
            console.print(f"[bold red]nowcast failed:[/] {exc}")
            ok = False
        if period_s is None:
            raise typer.Exit(0 if ok else 1)
        wait_s = max(0.0, period_s - (time.monotonic() - t0))
        console.print(f"next nowcast in {wait_s:.0f} s (Ctrl-C stops)")
        time.sleep(wait_s)
