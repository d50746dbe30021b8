"""Incidents reported at a point, assigned to the grid that covers it, that grid's community
and its grid worker; listed with filters.

The grid is the one whose polygon covers the point (the lowest code on a shared edge);
outside every grid the community is still taken from ``admin_areas`` and the incident stays
unassigned.  Coordinates are lon/lat degrees, EPSG:4326.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import asyncpg

from emergency.errors import EmergencyError, IncidentNotFound, InvalidInput
from layers.audit import Actor, record_async
from layers.catalog import CATALOG, role_allows
from layers.events import record_event

STATUSES = ("open", "in_progress", "closed")
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


async def report_incident(
    conn: asyncpg.Connection, inc: NewIncident, actor: Actor
) -> dict[str, Any]:
    """Store an incident (status ``open``), assigned to its grid, community and grid worker;
    writes the audit row and an ``incident_reported`` event (without personal fields)."""
    _check(inc)
    async with conn.transaction():
        code = await _insert(conn, inc, actor, {})
    return (await list_incidents(conn, code=code))["features"][0]


def request_digest(inc: NewIncident) -> str:
    """A digest of what a report says, to tell a replay from a different report."""
    fields = [inc.kind.strip(), inc.lon, inc.lat, inc.description, inc.reporter]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


async def report_incident_once(
    conn: asyncpg.Connection, inc: NewIncident, actor: Actor, idempotency_key: str
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
    digest = request_digest(inc)
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
            await _insert(conn, inc, actor, {"idempotency_key": key, "request_digest": digest})
            if created
            else seen["target"]
        )
    found = (await list_incidents(conn, code=code))["features"]
    if not found:
        raise IncidentNotFound(f"the incident {code!r} of this Idempotency-Key is gone")
    return found[0], created


async def _insert(
    conn: asyncpg.Connection, inc: NewIncident, actor: Actor, audit_extra: dict[str, Any]
) -> str:
    """Insert the incident, its audit row and event (inside the caller's transaction)."""
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
        RETURNING code
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
    public = {
        "code": code,
        "kind": inc.kind.strip(),
        "grid_code": a["code"],
        "community_code": a["community"],
        "lon": inc.lon,
        "lat": inc.lat,
    }
    await record_async(conn, actor, "incident.report", code, {**public, **audit_extra})
    await record_event(conn, "incident_reported", public)
    return code


async def set_status(conn: asyncpg.Connection, code: str, status: str, actor: Actor) -> None:
    """Move an incident to ``open``, ``in_progress`` or ``closed`` (audited)."""
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    async with conn.transaction():
        old = await conn.fetchval("SELECT status FROM incidents WHERE code = $1 FOR UPDATE", code)
        if old is None:
            raise IncidentNotFound(f"no incident {code!r}")
        await conn.execute("UPDATE incidents SET status = $2 WHERE code = $1", code, status)
        await record_async(conn, actor, "incident.status", code, {"from": old, "to": status})


LIST_SQL = """
SELECT i.code, i.kind, i.description, i.status, i.reported_at, i.reporter, i.grid_code,
       i.community_code, i.assigned_worker, i.assigned_phone,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
FROM incidents i
WHERE ($1::text IS NULL OR i.code = $1)
  AND ($2::text IS NULL OR i.status = $2)
  AND ($3::text IS NULL OR i.kind = $3)
  AND ($4::text IS NULL OR i.grid_code = $4)
  AND ($5::text IS NULL OR i.community_code = $5)
  AND ($6::timestamptz IS NULL OR i.reported_at >= $6)
  AND ($7::timestamptz IS NULL OR i.reported_at < $7)
  AND ($8::float8 IS NULL OR i.geom && ST_MakeEnvelope($8, $9, $10, $11, 4326))
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
) -> dict[str, Any]:
    """Incidents (newest first) as a GeoJSON FeatureCollection, unmasked (see
    :func:`mask_incident`).  ``bbox`` is (west, south, east, north) in degrees."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    w, s, e, n = bbox if bbox is not None else (None, None, None, None)
    rows = await conn.fetch(
        LIST_SQL, code, status, kind, grid_code, community_code, since, until, w, s, e, n,
        limit, offset,
    )  # fmt: skip
    features = []
    for r in rows:
        props = {k: r[k] for k in r.keys() if k not in ("lon", "lat")}
        props["reported_at"] = r["reported_at"].isoformat() if r["reported_at"] else None
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
    if not role_allows(role, CATALOG["grids"].sensitive_role):
        props.pop("assigned_worker", None)
        props.pop("assigned_phone", None)
    return {**feature, "properties": props}
