"""``/risk``: start landslide / flood / rainstorm runs, read their H3 cells and explanations.

``POST /risk/runs`` (operator) answers 202 at once; the run goes on in the background
(:mod:`geo_service.risk_runs`). Cells come back as GeoJSON hexagons (EPSG:4326) whose ``id``
is the H3 index as a hex string.
"""

from __future__ import annotations

from typing import Annotated, Any

import h3
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from geo_service import risk_runs
from geo_service.auth import OperatorDep, ViewerDep
from geo_service.deps import PoolDep, SettingsDep
from geo_service.errors import BadRequest, NotFound
from geo_service.routers.emergency_common import actor_of
from tiles.risk import parent_bits

router = APIRouter(prefix="/risk", tags=["risk"])

LEVEL_NAMES = ("none", "blue", "yellow", "orange", "red")
#: Largest BIGINT: ids beyond it cannot exist (and would overflow the driver).
MAX_ID = 2**63 - 1
RunIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Risk run id")]
MAX_CELLS = 1_000_000


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


async def _run_or_404(pool: PoolDep, run_id: int) -> dict[str, Any]:
    try:
        return await risk_runs.get_run(pool, run_id)
    except risk_runs.RunNotFound:
        raise NotFound(f"no risk run {run_id}", code="unknown_run") from None


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
    run = await _run_or_404(pool, run_id)
    return JSONResponse(run, status_code=202, headers={"Location": f"/risk/runs/{run_id}"})


@router.get("/runs", summary="Risk runs, newest first")
async def list_runs(
    pool: PoolDep,
    caller: ViewerDep,
    limit: int = Query(100, ge=1, le=1000, description="How many runs"),
) -> dict[str, Any]:
    return {"runs": await risk_runs.list_runs(pool, limit)}


@router.get("/runs/{run_id}", summary="One run: status, timings, parameters, inputs, summary")
async def get_run(run_id: RunIdPath, pool: PoolDep, caller: ViewerDep) -> dict[str, Any]:
    return await _run_or_404(pool, run_id)


@router.get("/runs/{run_id}/cells", summary="A run's H3 cells as GeoJSON hexagons")
async def run_cells(
    run_id: RunIdPath,
    pool: PoolDep,
    caller: ViewerDep,
    level_min: int = Query(0, ge=0, le=4, description="Only cells at or above this level"),
    limit: int = Query(MAX_CELLS, ge=1, le=MAX_CELLS, description="At most this many cells"),
) -> JSONResponse:
    """Features: ``id`` and ``h3`` = H3 index (hex), ``level`` 0–4, ``level_name``, ``score``;
    highest levels first."""
    run = await _run_or_404(pool, run_id)
    rows = await pool.fetch(
        "SELECT h3, res, level, score FROM risk_cells WHERE run_id = $1 AND level >= $2 "
        "ORDER BY level DESC, h3 LIMIT $3",
        run_id,
        level_min,
        limit,
    )
    features = []
    for r in rows:
        cell = format(r["h3"], "x")
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "id": cell,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "h3": cell,
                    "res": r["res"],
                    "level": r["level"],
                    "level_name": LEVEL_NAMES[r["level"]],
                    "score": None if r["score"] != r["score"] else r["score"],
                },
            }
        )
    doc = {
        "type": "FeatureCollection",
        "run_id": run_id,
        "model": run["model"],
        "status": run["status"],
        "numberReturned": len(features),
        "features": features,
    }
    return JSONResponse(doc, media_type="application/geo+json")


async def _latest_done_run(pool: PoolDep) -> int | None:
    return await pool.fetchval(
        "SELECT id FROM risk_runs WHERE status = 'done' "
        "ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1"
    )


async def _nearest_resolution_row(pool: PoolDep, run_id: int, cell: int) -> Any:
    """The run's cell covering ``cell`` (a finer cell inside a run cell), or the highest-level
    run cell inside it (a coarser cell, e.g. a hexagon of the rolled-up risk tiles)."""
    run_res = await pool.fetchval("SELECT max(res) FROM risk_cells WHERE run_id = $1", run_id)
    if run_res is None:
        return None
    cell_res = h3.get_resolution(format(cell, "x"))
    cols = "run_id, h3, res, level, score, factors"
    if cell_res > run_res:
        parent = h3.str_to_int(h3.cell_to_parent(format(cell, "x"), run_res))
        return await pool.fetchrow(
            f"SELECT {cols} FROM risk_cells WHERE run_id = $1 AND h3 = $2",  # noqa: S608
            run_id,
            parent,
        )
    and_mask, or_bits = parent_bits(cell_res)
    return await pool.fetchrow(
        f"SELECT {cols}, count(*) OVER () AS cells FROM risk_cells "  # noqa: S608
        "WHERE run_id = $1 AND (h3 & $2::bigint) | $3::bigint = $4 "
        "ORDER BY level DESC, score DESC NULLS LAST, h3 LIMIT 1",
        run_id,
        and_mask,
        or_bits,
        cell,
    )


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
    h3_int = _parse_h3(cell)
    cols = "c.run_id, c.h3, c.res, c.level, c.score, c.factors"
    if run is None:
        row = await pool.fetchrow(
            f"SELECT {cols} FROM risk_cells AS c "  # noqa: S608
            "JOIN risk_runs AS r ON r.id = c.run_id WHERE c.h3 = $1 AND r.status = 'done' "
            "ORDER BY r.finished_at DESC NULLS LAST, r.id DESC LIMIT 1",
            h3_int,
        )
        run_id = await _latest_done_run(pool) if row is None else None
    else:
        await _run_or_404(pool, run)
        row = await pool.fetchrow(
            f"SELECT {cols} FROM risk_cells AS c WHERE c.run_id = $1 AND c.h3 = $2",  # noqa: S608
            run,
            h3_int,
        )
        run_id = run
    if row is None and run_id is not None:
        row = await _nearest_resolution_row(pool, run_id, h3_int)
    if row is None:
        where = f"run {run}" if run is not None else "any finished run"
        raise NotFound(f"cell {format(h3_int, 'x')} is not in {where}", code="unknown_cell")
    out = {
        "h3": format(row["h3"], "x"),
        "run_id": row["run_id"],
        "res": row["res"],
        "level": row["level"],
        "level_name": LEVEL_NAMES[row["level"]],
        "score": None if row["score"] != row["score"] else row["score"],
        "explanation": row["factors"],
    }
    if row["h3"] != h3_int:
        out["requested"] = format(h3_int, "x")
        out["cells"] = row["cells"] if "cells" in row else 1
    return out
