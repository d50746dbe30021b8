"""``/risk``: start landslide / flood / rainstorm runs, read their H3 cells and explanations.

``POST /risk/runs`` (operator) answers 202 at once; the run goes on in the background
(:mod:`emergency.runs`). Cells come back as GeoJSON hexagons (EPSG:4326) whose ``id``
is the H3 index as a hex string.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import h3
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from emergency import runs as risk_runs
from emergency.errors import InvalidLevel
from emergency.levels import parse_level
from geo_service.auth import Caller, OperatorDep, ViewerDep
from geo_service.deps import PoolDep, SettingsDep
from geo_service.errors import BadRequest
from geo_service.routers.common import actor_of, geojson
from layers.catalog import LEVEL_NAMES, role_allows

router = APIRouter(prefix="/risk", tags=["risk"])

#: Largest BIGINT: ids beyond it cannot exist (and would overflow the driver).
MAX_ID = 2**63 - 1
RunIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Risk run id")]
MAX_CELLS = risk_runs.MAX_CELLS


class RunRequest(BaseModel):
    """A model run: ``model`` landslide | flood | rainstorm, rain input, H3 res, parameters."""

    model: str = Field(..., description="landslide, flood or rainstorm", max_length=40)
    rain: dict[str, Any] = Field(
        ...,
        description='{"scenario": name}, {"gauges": true, "hours": 24} or {"raster": name}',
    )
    res: int = Field(9, description="H3 resolution of the cells (7–10)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Model parameters (see risk_models.params.PipelineParams), e.g. "
        '{"bbox": [113.3, 22.4, 113.5, 22.6], "matrix": [[0,0,1,1], …]}',
    )


def _parse_h3(value: str) -> int:
    """An H3 index given as hex string (``89…ff``) or decimal integer."""
    text = value.strip().lower()
    try:
        cell = int(text, 16) if not text.isdigit() or len(text) == 15 else int(text)
    except ValueError:
        raise BadRequest(f"{value!r} is not an H3 index", code="invalid_h3") from None
    if not h3.is_valid_cell(format(cell, "x") if cell > 0 else "0"):
        raise BadRequest(f"{value!r} is not a valid H3 cell", code="invalid_h3")
    return cell


def for_caller(run: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The run as ``caller`` may see it: who started it (``inputs.actor``, a key's name) only
    for operators and admins."""
    if role_allows(caller.role, "operator") or "actor" not in (run.get("inputs") or {}):
        return run
    inputs = {k: v for k, v in run["inputs"].items() if k != "actor"}
    return {**run, "inputs": inputs}


def parse_level_min(value: str | None) -> int:
    """A cell level 0–4 given as a number or a name (``none``, ``blue`` … ``red``)."""
    if value is None or not value.strip():
        return 0
    text = value.strip().lower()
    if text in ("0", LEVEL_NAMES[0]):
        return 0
    try:
        return parse_level(text)
    except InvalidLevel:
        raise InvalidLevel(
            f"level_min must be 0-4 or one of {', '.join(LEVEL_NAMES)}, got {value!r}"
        ) from None


@router.post("/runs", status_code=202, summary="Start a risk model run (background)")
async def create_run(
    request: Request, body: RunRequest, pool: PoolDep, settings: SettingsDep, caller: OperatorDep
) -> JSONResponse:
    """Checks the input at once (400 with a reason) and answers 202 with the pending run;
    poll ``GET /risk/runs/{id}`` until ``status`` is ``done`` or ``failed``."""
    run_id = await risk_runs.start_run(
        pool,
        settings,
        model=body.model,
        rain=body.rain,
        res=body.res,
        params=body.params,
        actor=actor_of(request, caller),
    )
    run = await risk_runs.get_run(pool, run_id)
    return JSONResponse(run, status_code=202, headers={"Location": f"/risk/runs/{run_id}"})


@router.get("/runs", summary="Risk runs, newest first")
async def list_runs(
    pool: PoolDep,
    caller: ViewerDep,
    limit: int = Query(100, ge=1, le=1000, description="How many runs"),
) -> dict[str, Any]:
    return {"runs": [for_caller(r, caller) for r in await risk_runs.list_runs(pool, limit)]}


@router.get("/runs/{run_id}", summary="One run: status, timings, parameters, inputs, summary")
async def get_run(run_id: RunIdPath, pool: PoolDep, caller: ViewerDep) -> dict[str, Any]:
    return for_caller(await risk_runs.get_run(pool, run_id), caller)


VerifyFrom = Annotated[
    datetime | None,
    Query(alias="from", description="Start of the incidents' window (default: the run's rain)"),
]
VerifyTo = Annotated[
    datetime | None,
    Query(alias="to", description="End of the window (default: 24 h after the rain)"),
]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/runs/{run_id}/verification",
    summary="After-action review: hit rate and area warned per level against real incidents",
)
async def run_verification(
    run_id: RunIdPath,
    pool: PoolDep,
    caller: ViewerDep,
    start: VerifyFrom = None,
    end: VerifyTo = None,
) -> dict[str, Any]:
    """Incidents of the run's hazard (``incidents`` layer: landslide kinds for landslide runs,
    waterlogging/flood for flood runs) reported in the run's window are placed in their cells.
    Per level threshold (≥ blue … red): ``hits``, ``pod`` (hit rate), ``area_share``,
    ``false_alarm_area_share``; ``curve`` is hit rate against area warned. 409
    ``nothing_to_verify`` when no such incident was reported."""
    return await risk_runs.verification(pool, run_id, start=_utc(start), end=_utc(end))


@router.get(
    "/runs/{run_id}/verification.png",
    summary="The run's hit-rate-vs-area-warned curve (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def run_verification_png(
    run_id: RunIdPath,
    pool: PoolDep,
    caller: ViewerDep,
    start: VerifyFrom = None,
    end: VerifyTo = None,
) -> Response:
    result = await risk_runs.verification(pool, run_id, start=_utc(start), end=_utc(end))
    title = f"run {run_id} ({result['model']}): {result['n_events_in_area']} incidents"
    png = await asyncio.to_thread(_curve_png, result, title)
    return Response(png, media_type="image/png")


def _curve_png(result: dict[str, Any], title: str) -> bytes:
    import tempfile
    from pathlib import Path as FilePath

    from risk_models.verify import plot_curve

    with tempfile.TemporaryDirectory() as tmp:
        return plot_curve(result, FilePath(tmp) / "curve.png", title).read_bytes()


@router.get("/runs/{run_id}/cells", summary="A run's H3 cells as GeoJSON hexagons")
async def run_cells(
    run_id: RunIdPath,
    pool: PoolDep,
    caller: ViewerDep,
    level_min: str | None = Query(
        None,
        description="Only cells at or above this level: 0–4 or none, blue, yellow, orange, red",
    ),
    limit: int = Query(MAX_CELLS, ge=1, le=MAX_CELLS, description="At most this many cells"),
) -> JSONResponse:
    """Features: ``id`` and ``h3`` = H3 index (hex), ``level`` 0–4, ``level_name``, ``score``;
    highest levels first. Every cell of the run is listed: the ones it did not store (no
    level, unchanged since the previous run) as level none (score: the static
    susceptibility for landslide runs, null otherwise)."""
    doc = await risk_runs.run_cells(pool, run_id, parse_level_min(level_min), limit)
    return geojson(doc)


@router.get("/cells/{cell}", summary="Why a cell got its level (explanation)")
async def cell_explanation(
    cell: str,
    pool: PoolDep,
    caller: ViewerDep,
    run: int | None = Query(
        None, ge=1, le=MAX_ID, description="Run id (default: the latest finished run)"
    ),
) -> dict[str, Any]:
    """Level, susceptibility class, rain class, the rule that fired, the top 3 static factors
    with their contributions and the rain metrics of one H3 cell (hex or decimal index).

    A cell finer than the run's answers with the run cell containing it; a coarser one (a
    rolled-up hexagon of the risk tiles) with its highest-level run cell (``requested`` and
    ``cells`` tell which and how many).
    """
    return await risk_runs.explain_cell(pool, _parse_h3(cell), run)
