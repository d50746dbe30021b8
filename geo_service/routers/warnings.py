"""``/warnings``: issue from a risk run, list, inspect (with exposure), lift.

Issuing and lifting need the ``operator`` role and are written to ``audit_log`` with the
caller's key name and address.  Exposure fields that are personal (grid workers, per-grid
population, shelter contacts) are omitted for roles the catalog does not allow.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from emergency import acks as acks_mod
from emergency import cap as cap_mod
from emergency import warnings as wmod
from emergency.exposure import EVACUATION_CSV_COLUMNS, iter_evacuation, mask_exposure
from geo_service.auth import OperatorDep, RoleDep
from geo_service.deps import PoolDep
from geo_service.routers.common import (
    GEOJSON_200,
    GEOJSON_201,
    actor_of,
    base_url,
    geojson,
)
from geo_service.routers.exports import addresses_csv, streamed_csv
from geo_service.state import app_state

router = APIRouter(prefix="/warnings", tags=["warnings"])


class WarningIn(BaseModel):
    """A warning to issue: the run's cells at or above ``level_min``."""

    model_config = ConfigDict(extra="forbid")

    run_id: int = Field(..., ge=1, le=2**63 - 1, description="Risk run the warning is issued from")
    level_min: str | int = Field(..., description="blue, yellow, orange or red (or 1-4)")
    hazard: str | None = Field(
        None, description="landslide, flood or rainstorm (default: the run's model)"
    )
    valid_hours: float | None = Field(None, description="Hours in force (default 6)")
    valid_from: dt.datetime | None = Field(None, description="Start (default now), with zone")
    valid_to: dt.datetime | None = Field(None, description="End (instead of valid_hours)")
    title: str | None = Field(None, max_length=200, description="Headline shown on the screen")
    replaces: str | None = Field(
        None,
        max_length=40,
        description="Code of an active warning this one replaces: it is lifted, and the CAP "
        "message is an Update referencing its messages",
    )


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500)


class AckIn(BaseModel):
    """A cadre's or grid worker's acknowledgement of receipt (叫应)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1, max_length=100, description="Cadre or grid code")
    note: str | None = Field(None, max_length=500)


class StatusIn(BaseModel):
    """A vulnerable resident's transfer status."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(..., description="待转移, 已转移, 拒绝 or 已返回")
    note: str | None = Field(None, max_length=500)


def cap_profile(request: Request) -> cap_mod.CapProfile:
    """Who the service's CAP messages come from (settings ``ONEMAP_CAP_*``)."""
    settings = app_state(request).settings
    return cap_mod.CapProfile(
        sender_code=settings.cap_sender_code,
        sender=settings.cap_sender,
        sender_name=settings.cap_sender_name,
        web=base_url(request),
    )


CAP_200: dict[int | str, dict[str, Any]] = {
    200: {"content": {cap_mod.CAP_MEDIA_TYPE: {}}, "description": "A CAP 1.2 alert"}
}
ATOM_200: dict[int | str, dict[str, Any]] = {
    200: {"content": {cap_mod.ATOM_MEDIA_TYPE: {}}, "description": "An Atom feed"}
}


def _masked(feature: dict[str, Any], role: str) -> dict[str, Any]:
    props = dict(feature["properties"])
    props["exposure"] = mask_exposure(props.get("exposure") or {}, role)
    return {**feature, "properties": props}


@router.post(
    "",
    status_code=201,
    summary="Issue a warning from a risk run (operator); 200 when it was already issued",
    response_class=Response,
    responses=GEOJSON_201,
)
async def issue(
    request: Request, pool: PoolDep, caller: OperatorDep, body: WarningIn
) -> JSONResponse:
    req = wmod.IssueRequest(**body.model_dump())
    async with pool.acquire() as conn:
        result = await wmod.issue_warning_retrying(
            conn, req, actor_of(request, caller), cap_profile(request)
        )
    return geojson(_masked(result.warning, caller.role), 201 if result.created else 200)


@router.get(
    "",
    summary="Warnings as GeoJSON (exposure summary in the properties)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def list_(
    pool: PoolDep,
    status: str = Query("active", description="active, lifted, expired or all"),
    limit: int = Query(500, ge=1, le=5000),
) -> JSONResponse:
    async with pool.acquire() as conn:
        return geojson(await wmod.list_warnings(conn, status, limit))


@router.get(
    "/feed.atom",
    summary="Atom index of current CAP messages (warnings in force, recent cancels)",
    response_class=Response,
    responses=ATOM_200,
)
async def feed(request: Request, pool: PoolDep) -> Response:
    async with pool.acquire() as conn:
        text = await cap_mod.atom_feed(conn, base_url(request), cap_profile(request))
    return Response(text, media_type=cap_mod.ATOM_MEDIA_TYPE + "; charset=utf-8")


@router.get(
    "/{code}.cap",
    summary="The warning's latest CAP 1.2 message (or the one with ``identifier``)",
    response_class=Response,
    responses=CAP_200,
)
async def cap(
    code: str,
    pool: PoolDep,
    identifier: str | None = Query(None, max_length=64, description="A message identifier"),
) -> Response:
    async with pool.acquire() as conn:
        xml = await cap_mod.message_xml(conn, code, identifier)
    return Response(xml, media_type=cap_mod.CAP_MEDIA_TYPE + "; charset=utf-8")


@router.get("/{code}/messages", summary="The warning's CAP messages, oldest first")
async def messages(code: str, pool: PoolDep) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"warning": code, "messages": await cap_mod.list_messages(conn, code)}


@router.get(
    "/{code}",
    summary="One warning with its full exposure",
    response_class=Response,
    responses=GEOJSON_200,
)
async def get(code: str, pool: PoolDep, role: RoleDep) -> JSONResponse:
    async with pool.acquire() as conn:
        return geojson(_masked(await wmod.get_warning(conn, code), role))


@router.get(
    "/{code}/areas",
    summary="The warning's area per level (one MultiPolygon each)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def areas(code: str, pool: PoolDep) -> JSONResponse:
    async with pool.acquire() as conn:
        return geojson(await wmod.warning_areas(conn, code))


@router.get(
    "/{code}/addresses.csv",
    summary="Every standard address inside the warning (CSV, e.g. for SMS lists)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def addresses(code: str, pool: PoolDep) -> StreamingResponse:
    async with pool.acquire() as conn:
        wkb = await wmod.warning_area_wkb(conn, code)
    return addresses_csv(pool, wkb, f"{code}-addresses.csv")


@router.get(
    "/{code}/evacuation.csv",
    summary="The vulnerable residents inside the warning with address, tags, cadre, "
    "transfer status and nearest shelter (operator; every read is audited)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def evacuation(
    code: str, request: Request, pool: PoolDep, caller: OperatorDep
) -> StreamingResponse:
    async with pool.acquire() as conn:
        wid = await wmod.open_evacuation_list(conn, code, actor_of(request, caller))
    return streamed_csv(
        pool,
        EVACUATION_CSV_COLUMNS,
        lambda conn: iter_evacuation(conn, wid),
        f"{code}-evacuation.csv",
    )


@router.post(
    "/{code}/lift",
    summary="Lift an active warning (operator)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def lift(
    code: str,
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    body: Annotated[LiftIn | None, Body()] = None,
) -> JSONResponse:
    async with pool.acquire() as conn:
        feature = await wmod.lift_warning(
            conn,
            code,
            actor_of(request, caller),
            body.reason if body else None,
            cap_profile(request),
        )
    return geojson(_masked(feature, caller.role))


@router.post("/{code}/acks", summary="Record a cadre's or grid worker's receipt (operator)")
async def ack(
    code: str, request: Request, pool: PoolDep, caller: OperatorDep, body: AckIn
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await acks_mod.acknowledge(
            conn, code, body.code, body.note, actor_of(request, caller)
        )


@router.get("/{code}/acks", summary="Who acknowledged the warning and who has not")
async def acks(code: str, pool: PoolDep, role: RoleDep) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await acks_mod.list_acks(conn, code, role)


@router.post(
    "/{code}/residents/{resident}/status",
    summary="Set a vulnerable resident's transfer status (operator)",
)
async def resident_status(
    code: str, resident: str, request: Request, pool: PoolDep, caller: OperatorDep, body: StatusIn
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await acks_mod.set_transfer_status(
            conn, code, resident, body.status, body.note, actor_of(request, caller)
        )
