"""``POST /nowcast`` (operator): run both risk models on the latest gauge readings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from emergency.nowcast import DEFAULT_HOURS, start_nowcast
from geo_service.auth import OperatorDep
from geo_service.deps import PoolDep, SettingsDep
from geo_service.routers.common import actor_of

router = APIRouter(tags=["nowcast"])


class NowcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: int = Field(DEFAULT_HOURS, ge=1, le=72, description="Hours of gauge rain used")
    res: int = Field(9, ge=7, le=10, description="H3 resolution of the cells")


@router.post(
    "/nowcast",
    status_code=202,
    summary="Run the landslide and flood models on the latest rain-gauge readings (operator)",
)
async def nowcast(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    caller: OperatorDep,
    body: Annotated[NowcastIn | None, Body()] = None,
) -> JSONResponse:
    """Answers 202 with the pending runs; each announces ``run_finished`` on ``/events``."""
    b = body or NowcastIn()
    runs = await start_nowcast(pool, settings, actor_of(request, caller), hours=b.hours, res=b.res)
    return JSONResponse(
        {"runs": [{**r, "status": "pending", "href": f"/risk/runs/{r['id']}"} for r in runs]},
        status_code=202,
    )
