"""``/incidents``: report at a point (operator, JSON or multipart with photos) → grid,
community, grid worker, department and deadline; the loop 上报 → … → 结案; photos by role;
the dictionary of departments and kinds (admin); list."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from emergency import incidents as inc_mod
from emergency import photos as photos_mod
from emergency.incidents import (
    Attachments,
    NewIncident,
    list_incidents,
    mask_incident,
    report_incident,
    report_incident_once,
    set_status,
)
from geo_service.auth import Caller, OperatorDep, RoleDep, require_role
from geo_service.deps import PoolDep, SettingsDep
from geo_service.errors import BadRequest
from geo_service.features.params import parse_float
from geo_service.routers.common import GEOJSON, GEOJSON_200, actor_of, geojson
from geo_service.settings import Settings
from layers.catalog import CATALOG, role_allows

router = APIRouter(prefix="/incidents", tags=["incidents"])
AdminDep = Annotated[Caller, Depends(require_role("admin"))]


class PointIn(BaseModel):
    type: str = Field(..., pattern="^Point$")
    coordinates: list[float] = Field(..., min_length=2, max_length=3)


class IncidentIn(BaseModel):
    """An incident at ``lon``/``lat`` (degrees, EPSG:4326) or a GeoJSON Point ``geometry``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(..., max_length=50, description="e.g. flood, landslide, fallen_tree")
    description: str | None = Field(None, max_length=2000)
    lon: float | None = None
    lat: float | None = None
    geometry: PointIn | None = None
    reporter: str | None = Field(None, max_length=200, description="Default: the key's name")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(..., description="open, in_progress or closed")


class StepIn(BaseModel):
    """The next step of an incident's loop."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(..., description="受理, 派遣, 处置, 核查 or 结案")
    note: str | None = Field(None, max_length=1000)
    department: str | None = Field(
        None, max_length=50, description="With 派遣 (default: the kind's)"
    )


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=50)


class KindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str = Field(..., min_length=1, max_length=50)
    deadline_h: float = Field(..., gt=0, le=8760, description="Hours from report to 结案")
    title: str | None = Field(None, max_length=100)


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with its ``$defs`` references written in place."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


_FORM_SCHEMA = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "maxLength": 50},
        "description": {"type": "string", "maxLength": 2000},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "reporter": {"type": "string", "maxLength": 200},
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "JPEG, PNG or HEIC photos (ONEMAP_INCIDENT_MAX_PHOTOS, each at "
            "most ONEMAP_PHOTO_MAX_MB)",
        },
    },
}
_REPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_schema(IncidentIn)},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}
FORM_FIELDS = set(_FORM_SCHEMA["properties"]) - {"photos"}  # type: ignore[call-overload]


async def _report_body(request: Request, settings: Settings) -> tuple[IncidentIn, list[bytes]]:
    """The report from a JSON body, or from multipart form fields and ``photos`` files."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not JSON (or send multipart/form-data)",
                             "invalid_json") from None  # fmt: skip
        try:
            return IncidentIn.model_validate(raw), []
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
    form = await request.form(max_files=settings.incident_max_photos, max_fields=len(FORM_FIELDS))
    fields: dict[str, str] = {}
    files: list[bytes] = []
    limit = int(settings.photo_max_mb * 1e6)
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "photos":
                raise BadRequest(f"unknown file field {name!r}: photos go in 'photos'",
                                 "invalid_input")  # fmt: skip
            files.append(await value.read(limit + 1))
        elif name not in FORM_FIELDS or name in fields:
            raise BadRequest(f"unexpected form field {name!r}", "invalid_input")
        else:
            fields[name] = value
    try:
        return IncidentIn.model_validate(fields), files
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _attachments(settings: Settings, files: list[bytes]) -> Attachments:
    limit = int(settings.photo_max_mb * 1e6)
    checked = [
        await asyncio.to_thread(photos_mod.inspect, data, n, limit)
        for n, data in enumerate(files, start=1)
    ]
    return Attachments(checked, settings.data_dir / "photos")


@router.post(
    "",
    status_code=201,
    summary="Report an incident (operator), JSON or multipart with photos; assigned to its "
    "grid, department and deadline",
    response_class=Response,
    responses={
        201: {"content": {GEOJSON: {}}},
        200: {"description": "A replay of an Idempotency-Key: the incident reported then"},
        409: {"description": "The Idempotency-Key was used for a different report"},
        413: {"description": "A photo (or the body) is too large"},
    },
    openapi_extra=_REPORT_BODY,
)
async def report(
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    settings: SettingsDep,
    idempotency_key: str | None = Header(
        None,
        max_length=200,
        description="Any unique string (e.g. a UUID) per report: resending the same report "
        "with it (a retry after a lost answer) returns the first incident with 200 instead "
        "of creating another; for 24 h, per API key",
    ),
) -> JSONResponse:
    body, files = await _report_body(request, settings)
    if body.geometry is not None:
        lon, lat = body.geometry.coordinates[0], body.geometry.coordinates[1]
    elif body.lon is not None and body.lat is not None:
        lon, lat = body.lon, body.lat
    else:
        raise BadRequest("give lon and lat, or a GeoJSON Point geometry", "invalid_input")
    inc = NewIncident(body.kind, lon, lat, body.description, body.reporter)
    att = await _attachments(settings, files)
    actor = actor_of(request, caller)
    async with pool.acquire() as conn:
        if idempotency_key is None:
            feature, created = await report_incident(conn, inc, actor, att), True
        else:
            feature, created = await report_incident_once(conn, inc, actor, idempotency_key, att)
    return geojson(mask_incident(feature, caller.role), 201 if created else 200)


@router.get(
    "",
    summary="Incidents, newest first, with filters (GeoJSON)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def list_(
    pool: PoolDep,
    role: RoleDep,
    status: str | None = Query(None, description="open, in_progress or closed"),
    stage: str | None = Query(None, description="上报, 受理, 派遣, 处置, 核查 or 结案"),
    overdue: bool | None = Query(None, description="past the deadline (open or closed late)"),
    kind: str | None = Query(None),
    grid_code: str | None = Query(None),
    community_code: str | None = Query(None),
    since: dt.datetime | None = Query(None, description="reported at or after (ISO time)"),
    until: dt.datetime | None = Query(None, description="reported before (ISO time)"),
    bbox: str | None = Query(None, description="west,south,east,north in degrees"),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=10**9),
) -> JSONResponse:
    box = None
    if bbox:
        parts = bbox.split(",")
        if len(parts) != 4:
            raise BadRequest("bbox must be west,south,east,north", "invalid_bbox")
        w, s, e, n = (parse_float("bbox", p, -180, 180) for p in parts)
        if not (w <= e and s <= n and -90 <= s and n <= 90):
            raise BadRequest("bbox must be west,south,east,north", "invalid_bbox")
        box = (w, s, e, n)
    async with pool.acquire() as conn:
        fc = await list_incidents(
            conn,
            status=status,
            stage=stage,
            overdue=overdue,
            kind=kind,
            grid_code=grid_code,
            community_code=community_code,
            since=since,
            until=until,
            bbox=box,
            limit=limit,
            offset=offset,
        )
    fc["features"] = [mask_incident(f, role) for f in fc["features"]]
    return geojson(fc)


@router.get("/kinds", summary="Incident kinds with their department and deadline (hours)")
async def get_kinds(pool: PoolDep) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await inc_mod.kinds(conn)


@router.put("/kinds/{kind}", summary="Map a kind to its department and deadline (admin)")
async def put_kind(
    kind: str, body: KindIn, request: Request, pool: PoolDep, caller: AdminDep
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await inc_mod.put_kind(
            conn, kind, body.department, body.deadline_h, body.title, actor_of(request, caller)
        )


@router.get("/departments", summary="Departments incidents are dispatched to")
async def get_departments(pool: PoolDep) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await inc_mod.departments(conn)


@router.put("/departments/{code}", summary="Create or rename a department (admin)")
async def put_department(
    code: str, body: DepartmentIn, request: Request, pool: PoolDep, caller: AdminDep
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await inc_mod.put_department(
            conn, code, body.name, body.phone, actor_of(request, caller)
        )


@router.get(
    "/{code}",
    summary="One incident with its stage, department, deadline and photos",
    response_class=Response,
    responses=GEOJSON_200,
)
async def get_one(code: str, pool: PoolDep, role: RoleDep) -> JSONResponse:
    async with pool.acquire() as conn:
        fc = await list_incidents(conn, code=code)
    if not fc["features"]:
        raise inc_mod.IncidentNotFound(f"no incident {code!r}")
    return geojson(mask_incident(fc["features"][0], role))


@router.get("/{code}/steps", summary="The incident's steps, oldest first")
async def get_steps(code: str, pool: PoolDep, role: RoleDep) -> dict[str, Any]:
    async with pool.acquire() as conn:
        rows = await inc_mod.steps(conn, code)
    if not role_allows(role, CATALOG["incidents"].sensitive_role):
        rows = [{k: v for k, v in r.items() if k != "actor"} for r in rows]
    return {"code": code, "steps": rows}


@router.post(
    "/{code}/steps",
    summary="Take the next step of the loop (operator): 受理, 派遣, 处置, 核查 or 结案",
    response_class=Response,
    responses=GEOJSON_200,
)
async def post_step(
    code: str, body: StepIn, request: Request, pool: PoolDep, caller: OperatorDep
) -> JSONResponse:
    async with pool.acquire() as conn:
        await inc_mod.take_step(
            conn, code, body.stage, actor_of(request, caller), body.note, body.department
        )
        fc = await list_incidents(conn, code=code)
    return geojson(mask_incident(fc["features"][0], caller.role))


@router.get(
    "/{code}/photos/{n}",
    summary="Photo n of an incident: as sent (with its EXIF) for roles that may see the "
    "reporter's data, without any metadata for others; ``size=thumb`` for a 320 px thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/heic": {}}}},
)
async def photo(
    code: str,
    pool: PoolDep,
    role: RoleDep,
    settings: SettingsDep,
    n: int = Path(..., ge=1, le=100),
    size: str = Query("full", pattern="^(full|thumb)$"),
) -> Response:
    personal = role_allows(role, CATALOG["incidents"].sensitive_role)
    variant = "thumb" if size == "thumb" else "orig" if personal else "public"
    async with pool.acquire() as conn:
        data, media_type = await inc_mod.photo_file(
            conn, settings.data_dir / "photos", code, n, variant
        )
    return Response(
        data,
        media_type=media_type,
        headers={"Cache-Control": "private, max-age=3600", "Vary": "X-API-Key"},
    )


@router.post(
    "/{code}/status",
    summary="Shorthand: in_progress accepts (受理), closed takes every remaining step to 结案",
    response_class=Response,
    responses=GEOJSON_200,
)
async def status(
    code: str, request: Request, pool: PoolDep, caller: OperatorDep, body: StatusIn
) -> JSONResponse:
    async with pool.acquire() as conn:
        await set_status(conn, code, body.status, actor_of(request, caller))
        fc = await list_incidents(conn, code=code)
    return geojson(mask_incident(fc["features"][0], caller.role))
