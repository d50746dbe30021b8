"""Live events: stored in ``events`` (serial id for ``Last-Event-ID``) and announced on the
PostgreSQL channel ``onemap_events``.

:func:`record_event` inserts one row inside the caller's transaction; a trigger
(migration 0002) sends ``pg_notify('onemap_events', {"id","type","at","payload"})`` which
PostgreSQL delivers at commit — so a rolled-back change announces nothing.  Every server
worker listens on the channel and fans the event out to its ``GET /events`` clients.

Event types in use: ``warning_issued``, ``warning_lifted``, ``warning_expired``,
``run_finished`` (trigger on ``risk_runs``), ``incident_reported``, ``readings_received``,
``layer_changed`` (trigger on every layer table, payload ``{"layer","version"}``).

Examples:
    With psycopg (synchronous)::

        with psycopg.connect(url) as conn:
            event_id = record_event(conn, "incident_reported", {"code": "INC-1"})

    With asyncpg::

        async with conn.transaction():
            event_id = await record_event(conn, "warning_issued", {"code": "W-1"})
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, overload

from layers.errors import LayersError

if TYPE_CHECKING:  # pragma: no cover
    import asyncpg
    import psycopg

CHANNEL = "onemap_events"
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

INSERT_SQL = "INSERT INTO events (type, payload) VALUES ($1, $2::jsonb) RETURNING id"


class InvalidEvent(LayersError):
    """An event type that is not a short snake_case word, or a payload that is not JSON."""


def _encode(type_: str, payload: dict[str, Any]) -> str:
    if not _TYPE.match(type_):
        raise InvalidEvent(f"event type must be snake_case, at most 40 characters: {type_!r}")
    try:
        return json.dumps(payload, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"event payload is not JSON: {exc}") from None


@overload
def record_event(conn: psycopg.Connection[Any], type_: str, payload: dict[str, Any]) -> int: ...


@overload
def record_event(
    conn: asyncpg.Connection, type_: str, payload: dict[str, Any]
) -> Awaitable[int]: ...


def record_event(conn: Any, type_: str, payload: dict[str, Any]) -> int | Awaitable[int]:
    """Store an event and notify listeners when the caller's transaction commits.

    Args:
        conn: a psycopg connection (the id is returned) or an asyncpg connection (an
            awaitable of the id is returned).  Use it inside the transaction that makes
            the change, so the event exists exactly when the change does.
        type_: snake_case event type, e.g. ``warning_issued``.
        payload: JSON-serialisable dict (datetimes become ISO strings).

    Returns:
        The event id (the SSE ``id:`` field), or an awaitable of it.
    """
    body = _encode(type_, payload)
    if hasattr(conn, "cursor") and not hasattr(conn, "fetchval"):  # psycopg
        row = conn.execute(INSERT_SQL.replace("$1", "%s").replace("$2", "%s"), (type_, body))
        fetched = row.fetchone()
        assert fetched is not None
        return int(fetched[0])
    return _record_async(conn, type_, body)


async def _record_async(conn: asyncpg.Connection, type_: str, body: str) -> int:
    # The pool's JSONB codec would encode a str again; cast from text instead.
    value = await conn.fetchval(
        "INSERT INTO events (type, payload) VALUES ($1, $2::text::jsonb) RETURNING id",
        type_,
        body,
    )
    return int(value)
