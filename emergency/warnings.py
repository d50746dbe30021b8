"""Warnings: issue from a risk run and a minimum level, lift, expire, read.

A warning's area is the run's cells at or above ``level_min`` dissolved into one
MultiPolygon (``warnings.geom``) and one MultiPolygon per level (``warning_areas``).
The warning row, its areas, its exposure, its audit row and its ``warning_issued`` event are
written in one transaction: a failure or a killed process leaves none of them.
History is kept: lifting or expiring changes ``status``, rows are never deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from emergency import areas as areas_mod
from emergency import cap as cap_mod
from emergency.acks import create_notifications
from emergency.errors import (
    InvalidInput,
    NothingToWarn,
    RunNotFound,
    RunNotReady,
    WarningNotActive,
    WarningNotFound,
)
from emergency.exposure import compute_exposure
from emergency.jsonb import dumps, loads
from emergency.levels import LEVEL_NAME, parse_level
from layers.audit import SYSTEM, Actor, record_async
from layers.events import record_event

HAZARDS = ("landslide", "flood", "rainstorm")
DEFAULT_VALID_HOURS = 6.0
MAX_VALID_HOURS = 24.0 * 14
STATUSES = ("active", "lifted", "expired")

#: The status a reader sees: an active warning past its ``valid_to`` is expired even before
#: the sweeper (:func:`expire_due`) has written it.
STATUS_SQL = (
    "CASE WHEN w.status = 'active' AND w.valid_to <= now() THEN 'expired' "
    "ELSE coalesce(w.status, 'active') END"
)

_COLUMNS = f"""
w.id, w.code, w.hazard, w.level, {STATUS_SQL} AS status, w.valid_from, w.valid_to,
w.issued_by, w.run_id, w.title, w.created_at, w.lifted_at
"""

_GET_SQL = f"""
SELECT {_COLUMNS}, ST_AsGeoJSON(w.geom, 6) AS geometry, w.exposure::text AS exposure
FROM warnings w WHERE w.code = $1
"""  # noqa: S608 (constant SQL, bound values)
_LIFT_SQL = f"""
SELECT w.id, {STATUS_SQL} AS status, w.level, w.hazard, w.run_id
FROM warnings w WHERE w.code = $1 FOR UPDATE
"""  # noqa: S608 (constant SQL, bound values)


@dataclass(frozen=True)
class IssueRequest:
    """What an operator asks for (times are aware datetimes, UTC or with an offset)."""

    run_id: int
    level_min: str | int
    hazard: str | None = None
    valid_hours: float | None = None
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None
    title: str | None = None
    #: The code of an active warning this one replaces (its CAP message is an ``Update``).
    replaces: str | None = None


@dataclass(frozen=True)
class Issued:
    """The warning (as :func:`get_warning` returns it) and whether this call created it."""

    warning: dict[str, Any]
    created: bool


def _validity(req: IssueRequest, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    for name, t in (("valid_from", req.valid_from), ("valid_to", req.valid_to)):
        if t is not None and t.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-06-01T08:00:00Z)")
    try:
        return _window(req, now)
    except OverflowError:
        raise InvalidInput("valid_from/valid_to/valid_hours lie outside the calendar") from None


def _window(req: IssueRequest, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = req.valid_from or now
    if req.valid_to is not None:
        if req.valid_hours is not None:
            raise InvalidInput("give either valid_hours or valid_to, not both")
        end = req.valid_to
    else:
        hours = DEFAULT_VALID_HOURS if req.valid_hours is None else float(req.valid_hours)
        if not 0 < hours <= MAX_VALID_HOURS:
            raise InvalidInput(f"valid_hours must be in (0, {MAX_VALID_HOURS:g}]")
        end = start + dt.timedelta(hours=hours)
    if end <= start:
        raise InvalidInput("valid_to must be after valid_from")
    if end <= now:
        raise InvalidInput("valid_to is in the past: the warning would never be in force")
    if end - start > dt.timedelta(hours=MAX_VALID_HOURS):
        raise InvalidInput(f"a warning lasts at most {MAX_VALID_HOURS:g} hours")
    return start, end


async def issue_warning(
    conn: asyncpg.Connection,
    req: IssueRequest,
    actor: Actor,
    profile: cap_mod.CapProfile | None = None,
) -> Issued:
    """Issue a warning from a finished run: cells with level ≥ ``level_min``.

    Re-issuing the same (run, level, hazard) while that warning is active returns it
    unchanged (``created=False``).  With ``req.replaces`` the named active warning is lifted
    in the same transaction and the new one's CAP message is an ``Update`` referencing its
    messages; otherwise it is an ``Alert``.  The CAP message and its push rows are written
    in the warning's transaction (:func:`emergency.cap.record_message`).

    Raises:
        InvalidLevel, InvalidInput: bad level, hazard or validity.
        RunNotFound, RunNotReady: no such run, or it is not ``done``.
        NothingToWarn: no cell of the run reaches ``level_min``.
        WarningNotFound, WarningNotActive: ``replaces`` names no active warning.
    """
    profile = profile or cap_mod.CapProfile()
    level_n = parse_level(req.level_min)
    level = LEVEL_NAME[level_n]
    if req.hazard is not None and req.hazard not in HAZARDS:
        raise InvalidInput(f"hazard must be one of {', '.join(HAZARDS)}, got {req.hazard!r}")
    if req.title is not None and len(req.title) > 200:
        raise InvalidInput("title is longer than 200 characters")
    now = await conn.fetchval("SELECT now()")
    valid_from, valid_to = _validity(req, now)
    async with conn.transaction():
        await expire_due(conn)
        run = await conn.fetchrow(
            "SELECT id, model, status FROM risk_runs WHERE id = $1 FOR SHARE", int(req.run_id)
        )
        if run is None:
            raise RunNotFound(f"risk run {req.run_id} does not exist")
        if run["status"] != "done":
            raise RunNotReady(f"risk run {req.run_id} is {run['status']}, not done")
        hazard = req.hazard or (run["model"] if run["model"] in HAZARDS else None)
        if hazard is None:
            raise InvalidInput(f"run {req.run_id} has model {run['model']!r}: give a hazard")
        existing = await conn.fetchval(
            "SELECT code FROM warnings WHERE run_id = $1 AND level = $2 AND hazard = $3 "
            "AND status = 'active'",
            run["id"],
            level,
            hazard,
        )
        replaced = None
        if req.replaces is not None:
            if existing is not None and existing != req.replaces:
                raise InvalidInput(
                    f"warning {existing} already covers run {run['id']} at {level}: "
                    f"lift it or replace it instead"
                )
            replaced = await _retire(conn, req.replaces, hazard, actor)
        elif existing is not None:
            return Issued(await get_warning(conn, existing), created=False)
        cells = await conn.fetch(
            "SELECT h3, level FROM risk_cells WHERE run_id = $1 AND level >= $2",
            run["id"],
            level_n,
        )
        if not cells:
            raise NothingToWarn(f"risk run {req.run_id} has no cell at level {level} or above")
        pairs = [(int(r["h3"]), int(r["level"])) for r in cells]
        whole, per_level = await asyncio.to_thread(_dissolve, pairs)
        exposure = await compute_exposure(conn, whole.wkb)
        exposure["area"] = areas_mod.area_summary(whole, per_level)
        exposure["summary"]["area_km2"] = round(whole.area_km2, 4)
        exposure["summary"]["cells"] = whole.cells
        exposure["summary"]["notified"] = len(exposure["residents"]["cadres"]) + len(
            exposure["grids"]
        )
        inserted = await conn.fetchrow(
            """
            INSERT INTO warnings (code, hazard, level, status, valid_from, valid_to, issued_by,
                                  run_id, title, geom, exposure)
            SELECT 'W' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || '-'
                       || lpad(n.id::text, 5, '0'),
                   $1, $2, 'active', $3, $4, $5, $6, $7,
                   ST_Multi(ST_SetSRID(ST_GeomFromWKB($8::bytea), 4326)), $9::text::jsonb
            FROM (SELECT nextval(pg_get_serial_sequence('warnings', 'id')) AS id) n
            ON CONFLICT (run_id, level, hazard) WHERE status = 'active' DO NOTHING
            RETURNING id, code
            """,
            hazard,
            level,
            valid_from,
            valid_to,
            actor.name,
            run["id"],
            req.title,
            whole.wkb,
            dumps(exposure),
        )
        if inserted is None:  # issued concurrently by another request: that one stands
            raise _ConcurrentIssue()
        wid, code = inserted["id"], inserted["code"]
        await conn.executemany(
            "INSERT INTO warning_areas (warning_id, level, cells, area_km2, geom) "
            "VALUES ($1, $2, $3, $4, ST_Multi(ST_SetSRID(ST_GeomFromWKB($5::bytea), 4326)))",
            [
                (wid, LEVEL_NAME[n], a.cells, a.area_km2, a.wkb)
                for n, a in per_level.items()
                if a.cells
            ],
        )
        summary = exposure["summary"]
        await create_notifications(conn, wid, exposure)
        message = await cap_mod.record_message(
            conn,
            wid,
            "Update" if replaced else "Alert",
            profile,
            geom=whole.geom,
            follows=[replaced["id"]] if replaced else [],
        )
        await record_async(
            conn,
            actor,
            "warning.issue",
            code,
            {
                "run_id": run["id"],
                "level": level,
                "hazard": hazard,
                "summary": summary,
                "cap": message["identifier"],
                "replaces": req.replaces,
            },
        )
        await record_event(
            conn,
            "warning_issued",
            {
                "code": code,
                "hazard": hazard,
                "level": level,
                "run_id": run["id"],
                "valid_from": valid_from.isoformat(),
                "valid_to": valid_to.isoformat(),
                "summary": summary,
                "cap": message["identifier"],
                "msg_type": message["msg_type"],
                "replaces": req.replaces,
            },
        )
        return Issued(await get_warning(conn, code), created=True)


async def _retire(conn: asyncpg.Connection, code: str, hazard: str, actor: Actor) -> dict[str, Any]:
    """Lift the active warning ``code`` because a new one replaces it (no Cancel: the new
    warning's Update supersedes its messages)."""
    row = await conn.fetchrow(_LIFT_SQL, code)
    if row is None:
        raise WarningNotFound(f"no warning {code!r} to replace")
    if row["status"] != "active":
        raise WarningNotActive(f"warning {code} is {row['status']}: only an active one is replaced")
    if row["hazard"] != hazard:
        raise InvalidInput(f"warning {code} is a {row['hazard']} warning, not {hazard}")
    await conn.execute(
        "UPDATE warnings SET status = 'lifted', lifted_at = now() WHERE id = $1", row["id"]
    )
    await record_async(conn, actor, "warning.replace", code, {})
    await record_event(
        conn,
        "warning_lifted",
        {"code": code, "level": row["level"], "hazard": row["hazard"], "reason": "replaced"},
    )
    return {"id": int(row["id"]), "code": code}


class _ConcurrentIssue(Exception):
    pass


async def issue_warning_retrying(
    conn: asyncpg.Connection,
    req: IssueRequest,
    actor: Actor,
    profile: cap_mod.CapProfile | None = None,
) -> Issued:
    """:func:`issue_warning`, returning the other one when two identical issues race."""
    try:
        return await issue_warning(conn, req, actor, profile)
    except (_ConcurrentIssue, asyncpg.UniqueViolationError):
        return await issue_warning(conn, req, actor, profile)


def _dissolve(
    pairs: list[tuple[int, int]],
) -> tuple[areas_mod.Area, dict[int, areas_mod.Area]]:
    per_level = areas_mod.dissolve_levels(pairs)
    whole = areas_mod.dissolve(c for c, _ in pairs)
    return whole, per_level


async def lift_warning(
    conn: asyncpg.Connection,
    code: str,
    actor: Actor,
    reason: str | None = None,
    profile: cap_mod.CapProfile | None = None,
) -> dict[str, Any]:
    """Lift an active warning (status ``lifted``, ``lifted_at`` now) and send its CAP
    ``Cancel`` (referencing every earlier message of it); returns it.

    Raises:
        WarningNotFound: no such code.
        WarningNotActive: it is already lifted or has expired.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            _LIFT_SQL,
            code,
        )
        if row is None:
            raise WarningNotFound(f"no warning {code!r}")
        if row["status"] != "active":
            raise WarningNotActive(f"warning {code} is already {row['status']}")
        await conn.execute(
            "UPDATE warnings SET status = 'lifted', lifted_at = now() WHERE id = $1", row["id"]
        )
        message = await cap_mod.record_message(
            conn,
            int(row["id"]),
            "Cancel",
            profile or cap_mod.CapProfile(),
            follows=[int(row["id"])],
            reason=reason,
        )
        await record_async(
            conn, actor, "warning.lift", code, {"reason": reason, "cap": message["identifier"]}
        )
        await record_event(
            conn,
            "warning_lifted",
            {
                "code": code,
                "level": row["level"],
                "hazard": row["hazard"],
                "reason": reason,
                "cap": message["identifier"],
            },
        )
        return await get_warning(conn, code)


async def expire_due(conn: asyncpg.Connection, actor: Actor = SYSTEM) -> list[str]:
    """Mark active warnings past ``valid_to`` as expired (audit row + ``warning_expired``
    event each); returns their codes.  Safe to run from several workers at once."""
    async with conn.transaction():
        rows = await conn.fetch(
            "UPDATE warnings SET status = 'expired' "
            "WHERE status = 'active' AND valid_to <= now() RETURNING code, level, hazard"
        )
        for r in rows:
            await record_async(conn, actor, "warning.expire", r["code"], {})
            await record_event(
                conn,
                "warning_expired",
                {"code": r["code"], "level": r["level"], "hazard": r["hazard"]},
            )
    return [r["code"] for r in rows]


def _properties(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": r["code"],
        "hazard": r["hazard"],
        "level": r["level"],
        "status": r["status"],
        "valid_from": _iso(r["valid_from"]),
        "valid_to": _iso(r["valid_to"]),
        "issued_by": r["issued_by"],
        "run_id": r["run_id"],
        "title": r["title"],
        "created_at": _iso(r["created_at"]),
        "lifted_at": _iso(r["lifted_at"]),
    }


def _last_mile(summary: dict[str, Any], r: asyncpg.Record) -> dict[str, Any]:
    """Recipients acknowledged (叫应) and vulnerable residents still to move."""
    total, acked = int(r["recipients"]), int(r["acknowledged"])
    vulnerable = int(summary.get("vulnerable") or 0)
    return {
        "recipients": total,
        "acknowledged": acked,
        "ack_share": round(acked / total, 4) if total else None,
        "vulnerable": vulnerable,
        "to_move": max(0, vulnerable - int(r["settled"])),
    }


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


async def get_warning(conn: asyncpg.Connection, code: str) -> dict[str, Any]:
    """A warning as a GeoJSON Feature (``id`` = code) with its full exposure (unmasked)."""
    r = await conn.fetchrow(
        _GET_SQL,
        code,
    )
    if r is None:
        raise WarningNotFound(f"no warning {code!r}")
    props = _properties(r)
    props["exposure"] = loads(r["exposure"]) if r["exposure"] else {}
    return {
        "type": "Feature",
        "id": r["code"],
        "geometry": loads(r["geometry"]),
        "properties": props,
    }


async def list_warnings(
    conn: asyncpg.Connection, status: str = "active", limit: int = 500
) -> dict[str, Any]:
    """Warnings as a GeoJSON FeatureCollection, newest first; ``exposure`` holds only the
    summary.  ``status``: active, lifted, expired or all."""
    if status not in (*STATUSES, "all"):
        raise InvalidInput(f"status must be one of {', '.join((*STATUSES, 'all'))}")
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}, ST_AsGeoJSON(w.geom, 6) AS geometry,
               (w.exposure -> 'summary')::text AS summary,
               (w.exposure -> 'area' -> 'levels')::text AS levels,
               (SELECT count(*) FROM warning_notifications n WHERE n.warning_id = w.id)
                   AS recipients,
               (SELECT count(acked_at) FROM warning_notifications n WHERE n.warning_id = w.id)
                   AS acknowledged,
               (SELECT count(*) FROM resident_transfers t
                 WHERE t.warning_id = w.id AND t.status <> '待转移') AS settled
        FROM warnings w
        WHERE $1 = 'all' OR {STATUS_SQL} = $1
        ORDER BY w.created_at DESC, w.id DESC
        LIMIT $2
        """,  # noqa: S608 (constant SQL, bound values)
        status,
        limit,
    )
    features = []
    for r in rows:
        props = _properties(r)
        props["exposure"] = loads(r["summary"]) if r["summary"] else {}
        props["levels"] = loads(r["levels"]) if r["levels"] else []
        props["last_mile"] = _last_mile(props["exposure"], r)
        features.append(
            {
                "type": "Feature",
                "id": r["code"],
                "geometry": loads(r["geometry"]),
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}


async def warning_areas(conn: asyncpg.Connection, code: str) -> dict[str, Any]:
    """The warning's area per level as a FeatureCollection (one MultiPolygon per level)."""
    wid = await conn.fetchval("SELECT id FROM warnings WHERE code = $1", code)
    if wid is None:
        raise WarningNotFound(f"no warning {code!r}")
    rows = await conn.fetch(
        "SELECT level, cells, area_km2, ST_AsGeoJSON(geom, 6) AS geometry FROM warning_areas "
        "WHERE warning_id = $1 ORDER BY array_position(ARRAY['red','orange','yellow','blue'], "
        "level)",
        wid,
    )
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"{code}:{r['level']}",
                "geometry": loads(r["geometry"]),
                "properties": {
                    "warning": code,
                    "level": r["level"],
                    "cells": r["cells"],
                    "area_km2": r["area_km2"],
                },
            }
            for r in rows
        ],
    }


async def warning_area_wkb(conn: asyncpg.Connection, code: str) -> bytes:
    """WKB (EPSG:4326) of a warning's whole area."""
    wkb = await conn.fetchval("SELECT ST_AsBinary(geom) FROM warnings WHERE code = $1", code)
    if wkb is None:
        raise WarningNotFound(f"no warning {code!r}")
    return bytes(wkb)


async def run_area(
    conn: asyncpg.Connection, run_id: int, level_min: str | int
) -> tuple[areas_mod.Area, dict[int, areas_mod.Area]]:
    """The dissolved area of a run's cells at or above ``level_min`` (and per level).

    Raises:
        RunNotFound, RunNotReady, NothingToWarn, InvalidLevel.
    """
    level_n = parse_level(level_min)
    status = await conn.fetchval("SELECT status FROM risk_runs WHERE id = $1", int(run_id))
    if status is None:
        raise RunNotFound(f"risk run {run_id} does not exist")
    if status != "done":
        raise RunNotReady(f"risk run {run_id} is {status}, not done")
    cells = await conn.fetch(
        "SELECT h3, level FROM risk_cells WHERE run_id = $1 AND level >= $2", int(run_id), level_n
    )
    if not cells:
        raise NothingToWarn(
            f"risk run {run_id} has no cell at level {LEVEL_NAME[level_n]} or above"
        )
    return await asyncio.to_thread(_dissolve, [(int(r["h3"]), int(r["level"])) for r in cells])


async def open_evacuation_list(conn: asyncpg.Connection, code: str, actor: Actor) -> int:
    """Audit a read of a warning's evacuation list (``warning.evacuation_list``, committed
    before any row is sent) and return the warning's id.

    Raises:
        WarningNotFound: no such code.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, (exposure -> 'summary' ->> 'vulnerable')::int AS vulnerable "
            "FROM warnings WHERE code = $1",
            code,
        )
        if row is None:
            raise WarningNotFound(f"no warning {code!r}")
        await record_async(
            conn, actor, "warning.evacuation_list", code, {"vulnerable": row["vulnerable"]}
        )
    return int(row["id"])
