"""Incidents reported at a point, assigned to the grid that covers it, that grid's community
and its grid worker; taken through the loop 上报 → 受理 → 派遣 → 处置 → 核查 → 结案 (闭环)
against the deadline of their kind; listed with filters.

The grid is the one whose polygon covers the point (the lowest code on a shared edge);
outside every grid the community is still taken from ``admin_areas`` and the incident stays
unassigned.  Coordinates are lon/lat degrees, EPSG:4326.

Each kind answers to a department with a deadline in hours (``incident_kinds``, edited by
administrators; 48 h for a kind not in it), set on the incident when it is reported (a
trigger does it for every insert path).  Each step is one row of ``incident_steps`` (who,
which role, when, a note), an audit row and an ``incident_step`` event, in one transaction;
``status`` (open, in_progress, closed) follows the stage.  An incident not closed by its
deadline is marked overdue once, with an ``incident_overdue`` event (:func:`mark_overdue`).
Photos (:mod:`emergency.photos`) are stored before the incident's transaction and removed
again when it fails, so a failed report leaves neither a half incident nor its files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from emergency import photos as photos_mod
from emergency.errors import (
    DepartmentNotFound,
    EmergencyError,
    IncidentNotFound,
    InvalidInput,
    PhotoNotFound,
    StepRefused,
)
from layers.audit import Actor, record_async
from layers.catalog import CATALOG, role_allows
from layers.events import record_event
from layers.schema import INCIDENT_STAGES

STATUSES = ("open", "in_progress", "closed")
STAGES = INCIDENT_STAGES
#: The coarse status each stage reads as.
STATUS_OF_STAGE = {
    "上报": "open",
    "受理": "in_progress",
    "派遣": "in_progress",
    "处置": "in_progress",
    "核查": "in_progress",
    "结案": "closed",
}
#: The steps allowed from each stage (核查 may send it back to 处置 when the work fails it).
NEXT_STAGES = {
    "上报": ("受理",),
    "受理": ("派遣",),
    "派遣": ("处置",),
    "处置": ("核查",),
    "核查": ("结案", "处置"),
    "结案": (),
}
#: The least role that may take each step (admins may take every step).
STEP_ROLE = {"受理": "operator", "派遣": "operator", "处置": "operator", "核查": "operator",
             "结案": "operator"}  # fmt: skip
MAX_NOTE = 1000

#: How long an Idempotency-Key is remembered (its report is found through the audit log).
IDEMPOTENCY_WINDOW_H = 24
MAX_IDEMPOTENCY_KEY = 200


class IdempotencyConflict(EmergencyError):
    """The Idempotency-Key was used before for a different report."""


ASSIGN_SQL = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326) AS g)
SELECT g.code, g.community_code, g.worker_name, g.worker_phone,
       coalesce(g.community_code,
                (SELECT a.code FROM admin_areas a, pt
                 WHERE a.level = 'community' AND ST_Covers(a.geom, pt.g)
                 ORDER BY a.code LIMIT 1)) AS community
FROM pt LEFT JOIN LATERAL (
    SELECT * FROM grids g WHERE ST_Covers(g.geom, pt.g) ORDER BY g.code LIMIT 1
) g ON true
"""


@dataclass(frozen=True)
class NewIncident:
    kind: str
    lon: float
    lat: float
    description: str | None = None
    reporter: str | None = None


def _check(inc: NewIncident) -> None:
    if not inc.kind or not inc.kind.strip() or len(inc.kind) > 50:
        raise InvalidInput("kind must be a word of 1-50 characters (e.g. flood, landslide)")
    if not (math.isfinite(inc.lon) and -180 <= inc.lon <= 180):
        raise InvalidInput("lon must be a longitude in degrees (-180..180)")
    if not (math.isfinite(inc.lat) and -90 <= inc.lat <= 90):
        raise InvalidInput("lat must be a latitude in degrees (-90..90)")
    if inc.description is not None and len(inc.description) > 2000:
        raise InvalidInput("description is longer than 2000 characters")


@dataclass(frozen=True)
class Attachments:
    """Checked photos of a report and where their files go."""

    photos: Sequence[photos_mod.Photo] = ()
    root: Path | None = None


NO_PHOTOS = Attachments()


async def _store_photos(att: Attachments) -> list[Path]:
    if not att.photos:
        return []
    if att.root is None:
        raise InvalidInput("this server stores no photos")
    root = att.root
    written: list[Path] = []
    try:
        for photo in att.photos:
            written += await asyncio.to_thread(photos_mod.store, root, photo)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


async def _discard_unreferenced(conn: asyncpg.Connection, written: list[Path]) -> None:
    """Remove files of this request whose photo no incident refers to (after a failure)."""
    for path in written:
        sha = path.name.split(".", 1)[0]
        try:
            used = await conn.fetchval("SELECT 1 FROM incident_photos WHERE sha256 = $1", sha)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            used = True  # cannot tell: keep the file (an orphan is safer than a lost photo)
        if not used:
            path.unlink(missing_ok=True)


async def report_incident(
    conn: asyncpg.Connection, inc: NewIncident, actor: Actor, att: Attachments = NO_PHOTOS
) -> dict[str, Any]:
    """Store an incident (stage 上报, status ``open``) with its photos, assigned to its grid,
    community and grid worker; writes the first step, the audit row and an
    ``incident_reported`` event (without personal fields)."""
    _check(inc)
    written = await _store_photos(att)
    try:
        async with conn.transaction():
            code = await _insert(conn, inc, actor, {}, att)
    except BaseException:
        await _discard_unreferenced(conn, written)
        raise
    return (await list_incidents(conn, code=code))["features"][0]


def request_digest(inc: NewIncident, att: Attachments = NO_PHOTOS) -> str:
    """A digest of what a report says (photos included), to tell a replay from a different
    report."""
    fields = [inc.kind.strip(), inc.lon, inc.lat, inc.description, inc.reporter]
    fields += [p.sha256 for p in att.photos]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


async def report_incident_once(
    conn: asyncpg.Connection,
    inc: NewIncident,
    actor: Actor,
    idempotency_key: str,
    att: Attachments = NO_PHOTOS,
) -> tuple[dict[str, Any], bool]:
    """Report an incident at most once per ``idempotency_key`` of ``actor`` (a key's name)
    within :data:`IDEMPOTENCY_WINDOW_H` hours: (the incident, whether it was created now).

    A replay with the same report returns the incident created first; the same key with a
    different report raises :class:`IdempotencyConflict`.  Concurrent requests with one key
    are serialised by a transaction-scoped advisory lock, and the key is stored in the
    report's audit row (written in the same transaction as the incident).
    """
    _check(inc)
    key = idempotency_key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(f"Idempotency-Key must have 1-{MAX_IDEMPOTENCY_KEY} characters")
    digest = request_digest(inc, att)
    written = await _store_photos(att)
    try:
        code, created = await _insert_once(conn, inc, actor, key, digest, att)
    except BaseException:
        await _discard_unreferenced(conn, written)
        raise
    if not created:
        await _discard_unreferenced(conn, written)
    found = (await list_incidents(conn, code=code))["features"]
    if not found:
        raise IncidentNotFound(f"the incident {code!r} of this Idempotency-Key is gone")
    return found[0], created


async def _insert_once(
    conn: asyncpg.Connection,
    inc: NewIncident,
    actor: Actor,
    key: str,
    digest: str,
    att: Attachments,
) -> tuple[str, bool]:
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"incident.report\x1f{actor.name}\x1f{key}",
        )
        seen = await conn.fetchrow(
            """
            SELECT target, detail->>'request_digest' AS digest FROM audit_log
            WHERE at > now() - make_interval(hours => $3) AND action = 'incident.report'
              AND actor = $1 AND detail->>'idempotency_key' = $2
            ORDER BY id DESC LIMIT 1
            """,
            actor.name,
            key,
            IDEMPOTENCY_WINDOW_H,
        )
        if seen is not None and seen["digest"] != digest:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different incident report"
            )
        created = seen is None
        code = (
            await _insert(conn, inc, actor, {"idempotency_key": key, "request_digest": digest}, att)
            if created
            else seen["target"]
        )
    return str(code), created


async def _insert(
    conn: asyncpg.Connection,
    inc: NewIncident,
    actor: Actor,
    audit_extra: dict[str, Any],
    att: Attachments = NO_PHOTOS,
) -> str:
    """Insert the incident, its photos, first step, audit row and event (inside the caller's
    transaction)."""
    a = await conn.fetchrow(ASSIGN_SQL, inc.lon, inc.lat)
    assert a is not None
    row = await conn.fetchrow(
        """
        WITH n AS (SELECT nextval(pg_get_serial_sequence('incidents', 'id')) AS id)
        INSERT INTO incidents (id, code, kind, description, status, reported_at, reporter,
                               grid_code, community_code, assigned_worker, assigned_phone,
                               geom)
        SELECT n.id,
               'INC' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || '-'
                   || lpad(n.id::text, 6, '0'),
               $1, $2, 'open', now(), $3, $4, $5, $6, $7,
               ST_SetSRID(ST_MakePoint($8, $9), 4326)
        FROM n
        RETURNING id, code
        """,
        inc.kind.strip(),
        inc.description,
        inc.reporter or actor.name,
        a["code"],
        a["community"],
        a["worker_name"],
        a["worker_phone"],
        inc.lon,
        inc.lat,
    )
    assert row is not None
    code: str = row["code"]
    await conn.executemany(
        "INSERT INTO incident_photos (incident_id, n, sha256, media_type, bytes, width, "
        "height, exif_lon, exif_lat, taken_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (row["id"], n, p.sha256, p.media_type, len(p.data), p.width, p.height, p.exif_lon,
             p.exif_lat, p.taken_at)
            for n, p in enumerate(att.photos, start=1)
        ],
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO incident_steps (incident_id, stage, actor, role, note) "
        "VALUES ($1, '上报', $2, $3, $4)",
        row["id"],
        actor.name,
        actor.role,
        inc.description,
    )
    public = {
        "code": code,
        "kind": inc.kind.strip(),
        "grid_code": a["code"],
        "community_code": a["community"],
        "lon": inc.lon,
        "lat": inc.lat,
    }
    audit = {**public, **audit_extra, "photos": len(att.photos)}
    await record_async(conn, actor, "incident.report", code, audit)
    await record_event(conn, "incident_reported", public)
    return code


async def take_step(
    conn: asyncpg.Connection,
    code: str,
    stage: str,
    actor: Actor,
    note: str | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    """Move an incident to its next stage (see :data:`NEXT_STAGES`), by ``actor`` with a
    note; 派遣 assigns the department (``department``, else the kind's).  Returns the step.

    Raises:
        IncidentNotFound, DepartmentNotFound; StepRefused when the stage does not follow or
        the actor's role may not take it; InvalidInput for an unknown stage or a long note.
    """
    if stage not in STAGES[1:]:
        raise InvalidInput(f"stage must be one of {', '.join(STAGES[1:])}")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"note is longer than {MAX_NOTE} characters")
    if not role_allows(actor.role, STEP_ROLE[stage]):
        raise StepRefused(f"{stage} needs the {STEP_ROLE[stage]} role")
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, stage, kind, department_code, grid_code, community_code, due_at "
            "FROM incidents WHERE code = $1 FOR UPDATE",
            code,
        )
        if row is None:
            raise IncidentNotFound(f"no incident {code!r}")
        if stage not in NEXT_STAGES[row["stage"]]:
            allowed = " or ".join(NEXT_STAGES[row["stage"]]) or "nothing (it is closed)"
            raise StepRefused(f"incident {code} is at {row['stage']}: next is {allowed}")
        dept = row["department_code"]
        if stage == "派遣":
            dept = department or dept
            if dept is None:
                raise InvalidInput(f"kind {row['kind']!r} has no department: give one")
            if not await conn.fetchval("SELECT 1 FROM departments WHERE code = $1", dept):
                raise DepartmentNotFound(f"no department {dept!r}")
        elif department is not None:
            raise InvalidInput("a department is given only with 派遣")
        done = await conn.fetchrow(
            """
            UPDATE incidents SET stage = $2, status = $3, department_code = $4,
                   closed_at = CASE WHEN $2 = '结案' THEN now() END
            WHERE id = $1
            RETURNING closed_at, (closed_at IS NOT NULL AND closed_at > due_at) AS late
            """,
            row["id"],
            stage,
            STATUS_OF_STAGE[stage],
            dept,
        )
        step = await conn.fetchrow(
            "INSERT INTO incident_steps (incident_id, stage, actor, role, department_code, "
            "note) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, at",
            row["id"],
            stage,
            actor.name,
            actor.role,
            dept,
            note,
        )
        assert done is not None and step is not None
        detail = {"from": row["stage"], "to": stage, "department": dept, "note": note}
        await record_async(conn, actor, "incident.step", code, detail)
        await record_event(
            conn,
            "incident_step",
            {
                "code": code,
                "stage": stage,
                "department": dept,
                "grid_code": row["grid_code"],
                "community_code": row["community_code"],
                "late": bool(done["late"]) if stage == "结案" else None,
            },
        )
    return {"code": code, "stage": stage, "department": dept, "at": step["at"].isoformat()}


async def set_status(conn: asyncpg.Connection, code: str, status: str, actor: Actor) -> None:
    """The coarse shorthand: ``in_progress`` accepts (受理) a reported incident, ``closed``
    takes every remaining step to 结案; each step is recorded as if taken one by one.

    Raises:
        StepRefused: going back (``open`` after it was accepted, anything after 结案).
    """
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    current = await conn.fetchval("SELECT stage FROM incidents WHERE code = $1", code)
    if current is None:
        raise IncidentNotFound(f"no incident {code!r}")
    if STATUS_OF_STAGE[current] == status:
        return
    if status == "open" or current == "结案":
        raise StepRefused(f"incident {code} is at {current}: it cannot go back to {status}")
    path = STAGES[STAGES.index(current) + 1 : (2 if status == "in_progress" else len(STAGES))]
    for stage in path:
        await take_step(conn, code, stage, actor, note=f"status → {status}")


async def steps(conn: asyncpg.Connection, code: str) -> list[dict[str, Any]]:
    """An incident's steps, oldest first, with the hours each took."""
    rows = await conn.fetch(
        "SELECT s.stage, s.at, s.actor, s.role, s.department_code, s.note FROM incident_steps s "
        "JOIN incidents i ON i.id = s.incident_id WHERE i.code = $1 ORDER BY s.at, s.id",
        code,
    )
    if not rows and not await conn.fetchval("SELECT 1 FROM incidents WHERE code = $1", code):
        raise IncidentNotFound(f"no incident {code!r}")
    out = []
    for i, r in enumerate(rows):
        prev = rows[i - 1]["at"] if i else None
        out.append(
            {
                "stage": r["stage"],
                "at": r["at"].isoformat(),
                "actor": r["actor"],
                "role": r["role"],
                "department": r["department_code"],
                "note": r["note"],
                "hours": round((r["at"] - prev).total_seconds() / 3600, 3) if prev else None,
            }
        )
    return out


async def mark_overdue(conn: asyncpg.Connection) -> list[str]:
    """Mark open incidents past their deadline as overdue (once each, with an
    ``incident_overdue`` event); returns their codes.  Safe from several workers at once."""
    async with conn.transaction():
        rows = await conn.fetch(
            "UPDATE incidents SET overdue_at = now() "
            "WHERE stage <> '结案' AND due_at <= now() AND overdue_at IS NULL "
            "RETURNING code, kind, stage, grid_code, community_code, department_code, due_at"
        )
        for r in rows:
            await record_event(
                conn,
                "incident_overdue",
                {
                    "code": r["code"],
                    "kind": r["kind"],
                    "stage": r["stage"],
                    "grid_code": r["grid_code"],
                    "community_code": r["community_code"],
                    "department": r["department_code"],
                    "due_at": r["due_at"].isoformat(),
                },
            )
    return [r["code"] for r in rows]


_KPI_SQL = """
SELECT {key} AS key,
       count(*) AS reported,
       count(*) FILTER (WHERE stage = '结案') AS closed,
       count(*) FILTER (WHERE stage = '结案' AND closed_at <= due_at) AS on_time,
       count(*) FILTER (WHERE stage <> '结案' AND due_at <= now()) AS overdue_open,
       count(*) FILTER (WHERE stage <> '结案') AS open,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM closed_at - reported_at) / 3600.0)
           FILTER (WHERE stage = '结案') AS median_close_h
FROM incidents
WHERE ($1::timestamptz IS NULL OR reported_at >= $1)
  AND ($2::timestamptz IS NULL OR reported_at < $2)
GROUP BY 1 ORDER BY 1 NULLS LAST
"""
KPI_KEYS = {"grid": "grid_code", "community": "community_code", "kind": "kind",
            "department": "department_code", "all": "'all'"}  # fmt: skip


def _kpi_row(r: asyncpg.Record) -> dict[str, Any]:
    closed = int(r["closed"])
    return {
        "key": r["key"],
        "reported": int(r["reported"]),
        "open": int(r["open"]),
        "closed": closed,
        "on_time": int(r["on_time"]),
        "on_time_rate": round(int(r["on_time"]) / closed, 4) if closed else None,
        "overdue_open": int(r["overdue_open"]),
        "median_close_h": round(float(r["median_close_h"]), 3)
        if r["median_close_h"] is not None
        else None,
    }


async def kpis(
    conn: asyncpg.Connection,
    by: str = "grid",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """智慧报表: per grid, community, kind or department (or ``all``) — reported, open,
    closed, closed on time and the on-time rate, open past the deadline, median hours to
    close — of the incidents reported in [since, until)."""
    if by not in KPI_KEYS:
        raise InvalidInput(f"by must be one of {', '.join(KPI_KEYS)}")
    rows = await conn.fetch(_KPI_SQL.format(key=KPI_KEYS[by]), since, until)
    return {"by": by, "rows": [_kpi_row(r) for r in rows]}


# --- the dictionary of departments and kinds (admin) ----------------------------------------


async def departments(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT code, name, phone FROM departments ORDER BY code")
    return [dict(r) for r in rows]


async def put_department(
    conn: asyncpg.Connection, code: str, name: str, phone: str | None, actor: Actor
) -> dict[str, Any]:
    """Create or rename a department (audited)."""
    if not code.strip() or len(code) > 50 or not name.strip() or len(name) > 100:
        raise InvalidInput("a department needs a code (≤ 50) and a name (≤ 100 characters)")
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO departments (code, name, phone) VALUES ($1, $2, $3) "
            "ON CONFLICT (code) DO UPDATE SET name = $2, phone = $3, updated_at = now()",
            code,
            name,
            phone,
        )
        await record_async(conn, actor, "department.put", code, {"name": name})
    return {"code": code, "name": name, "phone": phone}


async def kinds(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT k.kind, k.title, k.department_code, d.name AS department_name, k.deadline_h "
        "FROM incident_kinds k JOIN departments d ON d.code = k.department_code ORDER BY k.kind"
    )
    return [dict(r) for r in rows]


async def put_kind(
    conn: asyncpg.Connection,
    kind: str,
    department: str,
    deadline_h: float,
    title: str | None,
    actor: Actor,
) -> dict[str, Any]:
    """Map an incident kind to its department and deadline (applies to new reports)."""
    if not kind.strip() or len(kind) > 50:
        raise InvalidInput("kind must be a word of 1-50 characters")
    if not (math.isfinite(deadline_h) and 0 < deadline_h <= 24 * 365):
        raise InvalidInput("deadline_h must be in (0, 8760] hours")
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM departments WHERE code = $1", department):
            raise DepartmentNotFound(f"no department {department!r}")
        await conn.execute(
            "INSERT INTO incident_kinds (kind, title, department_code, deadline_h) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (kind) DO UPDATE SET title = $2, "
            "department_code = $3, deadline_h = $4, updated_at = now()",
            kind,
            title,
            department,
            deadline_h,
        )
        await record_async(
            conn, actor, "incident_kind.put", kind, {"department": department,
                                                     "deadline_h": deadline_h}
        )  # fmt: skip
    return {"kind": kind, "title": title, "department_code": department, "deadline_h": deadline_h}


# --- photos -----------------------------------------------------------------------------------


async def photo_file(
    conn: asyncpg.Connection, root: Path, code: str, n: int, variant: str
) -> tuple[bytes, str]:
    """Photo ``n`` of an incident: ``orig`` (as sent, with its EXIF), ``public`` (no
    metadata) or ``thumb``; returns (bytes, media type)."""
    row = await conn.fetchrow(
        "SELECT p.sha256, p.media_type FROM incident_photos p JOIN incidents i "
        "ON i.id = p.incident_id WHERE i.code = $1 AND p.n = $2",
        code,
        n,
    )
    if row is None:
        if not await conn.fetchval("SELECT 1 FROM incidents WHERE code = $1", code):
            raise IncidentNotFound(f"no incident {code!r}")
        raise PhotoNotFound(f"incident {code} has no photo {n}")
    try:
        return await asyncio.to_thread(
            photos_mod.read, root, row["sha256"], row["media_type"], variant
        )
    except FileNotFoundError:
        raise PhotoNotFound(f"the file of photo {n} of incident {code} is missing") from None


LIST_SQL = """
SELECT i.code, i.kind, i.description, i.status, i.stage, i.reported_at, i.reporter,
       i.grid_code, i.community_code, i.assigned_worker, i.assigned_phone,
       i.department_code, d.name AS department_name, i.due_at, i.closed_at,
       (i.stage <> '结案' AND i.due_at <= now()) OR (i.closed_at > i.due_at) AS overdue,
       (SELECT coalesce(json_agg(json_build_object(
                'n', p.n, 'media_type', p.media_type, 'width', p.width, 'height', p.height,
                'taken_at', p.taken_at, 'exif_lon', p.exif_lon, 'exif_lat', p.exif_lat)
                ORDER BY p.n), '[]')::text
          FROM incident_photos p WHERE p.incident_id = i.id) AS photos,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
FROM incidents i LEFT JOIN departments d ON d.code = i.department_code
WHERE ($1::text IS NULL OR i.code = $1)
  AND ($2::text IS NULL OR i.status = $2)
  AND ($3::text IS NULL OR i.kind = $3)
  AND ($4::text IS NULL OR i.grid_code = $4)
  AND ($5::text IS NULL OR i.community_code = $5)
  AND ($6::timestamptz IS NULL OR i.reported_at >= $6)
  AND ($7::timestamptz IS NULL OR i.reported_at < $7)
  AND ($8::float8 IS NULL OR i.geom && ST_MakeEnvelope($8, $9, $10, $11, 4326))
  AND ($14::text IS NULL OR i.stage = $14)
  AND ($15::bool IS NULL OR ((i.stage <> '结案' AND i.due_at <= now())
                             OR coalesce(i.closed_at > i.due_at, false)) = $15)
ORDER BY i.reported_at DESC NULLS LAST, i.id DESC
LIMIT $12 OFFSET $13
"""


async def list_incidents(
    conn: asyncpg.Connection,
    *,
    code: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    grid_code: str | None = None,
    community_code: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = 100,
    offset: int = 0,
    stage: str | None = None,
    overdue: bool | None = None,
) -> dict[str, Any]:
    """Incidents (newest first) as a GeoJSON FeatureCollection, unmasked (see
    :func:`mask_incident`).  ``bbox`` is (west, south, east, north) in degrees."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    if stage is not None and stage not in STAGES:
        raise InvalidInput(f"stage must be one of {', '.join(STAGES)}")
    w, s, e, n = bbox if bbox is not None else (None, None, None, None)
    rows = await conn.fetch(
        LIST_SQL, code, status, kind, grid_code, community_code, since, until, w, s, e, n,
        limit, offset, stage, overdue,
    )  # fmt: skip
    features = []
    for r in rows:
        props = {k: r[k] for k in r.keys() if k not in ("lon", "lat", "photos")}
        for t in ("reported_at", "due_at", "closed_at"):
            props[t] = r[t].isoformat() if r[t] else None
        props["overdue"] = bool(r["overdue"])
        props["photos"] = [
            {**p, "href": f"/incidents/{r['code']}/photos/{p['n']}",
             "thumb_href": f"/incidents/{r['code']}/photos/{p['n']}?size=thumb"}
            for p in json.loads(r["photos"])
        ]  # fmt: skip
        features.append(
            {
                "type": "Feature",
                "id": r["code"],
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}


def mask_incident(feature: dict[str, Any], role: str) -> dict[str, Any]:
    """The feature without the reporter (incidents' sensitive field) and the assigned
    worker's name/phone (grids' sensitive fields) unless ``role`` may see them."""
    props = dict(feature["properties"])
    if not role_allows(role, CATALOG["incidents"].sensitive_role):
        for p in CATALOG["incidents"].sensitive_properties:
            props.pop(p.name, None)
        # where a photo was taken may be the reporter's home: with the reporter's data
        props["photos"] = [
            {k: v for k, v in p.items() if k not in ("exif_lon", "exif_lat")}
            for p in props.get("photos", [])
        ]
    if not role_allows(role, CATALOG["grids"].sensitive_role):
        props.pop("assigned_worker", None)
        props.pop("assigned_phone", None)
    return {**feature, "properties": props}
