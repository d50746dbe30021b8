"""``/sensors``: rain and water-level readings in (operator), latest values and rain totals out."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from emergency.errors import InvalidReadings
from emergency.readings import MAX_BATCH, Reading, ingest_readings, sensors_status
from geo_service.auth import OperatorDep
from geo_service.deps import PoolDep
from geo_service.errors import ApiError, BadRequest
from geo_service.routers.common import GEOJSON_200, actor_of, geojson

router = APIRouter(prefix="/sensors", tags=["sensors"])


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sensor_code: str = Field(..., min_length=1, max_length=100)
    observed_at: dt.datetime = Field(..., description="End of the interval, with a time zone")
    value: float = Field(..., description="mm of rain in the interval, or metres of water")
    unit: str | None = Field(None, description="mm or m; must match the sensor's unit")


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[ReadingIn] = Field(..., max_length=MAX_BATCH)


@router.post("/readings", summary="Store a batch of readings (operator); all or nothing")
async def post_readings(
    request: Request, pool: PoolDep, caller: OperatorDep, body: ReadingsIn
) -> JSONResponse:
    """Idempotent on (sensor, observed_at): re-sending a batch changes nothing; a new value
    for a stored time replaces it.  Any bad reading refuses the batch with a 422 listing
    every problem (``errors``: index, sensor_code, reason)."""
    readings = [Reading(**r.model_dump()) for r in body.readings]
    try:
        async with pool.acquire() as conn:
            result = await ingest_readings(conn, readings, actor_of(request, caller))
    except InvalidReadings as exc:
        raise ApiError(422, "invalid_readings", str(exc), errors=exc.errors) from None
    return JSONResponse(result.as_dict())


@router.get(
    "",
    summary="Sensors with their latest value and rolling rain totals (GeoJSON)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def get_sensors(
    pool: PoolDep,
    at: str | None = Query(
        None, description="Window end: ISO time, 'latest' (newest reading) or now (default)"
    ),
    kind: str | None = Query(None, description="rain_gauge or water_level"),
) -> JSONResponse:
    if kind is not None and kind not in ("rain_gauge", "water_level"):
        raise BadRequest("kind must be rain_gauge or water_level", "invalid_kind")
    async with pool.acquire() as conn:
        end: dt.datetime | None = None
        if at == "latest":
            end = await conn.fetchval("SELECT max(observed_at) FROM sensor_readings")
        elif at:
            try:
                end = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(f"at must be an ISO time or 'latest', got {at!r}") from None
            if end.tzinfo is None:
                end = end.replace(tzinfo=dt.UTC)
        return geojson(await sensors_status(conn, end, kind))
