"""Acknowledged delivery (叫应) and transfers of vulnerable residents under a warning.

Issuing a warning writes one notification per responsible cadre (包保责任人) of the
residents inside it and per grid worker (网格员) of the grids it covers, in the warning's
own transaction (:func:`create_notifications`; the table is the outbox a messaging gateway
sends from).  A recipient acknowledges receipt (:func:`acknowledge`); each vulnerable
resident inside the area has a transfer status, 待转移 until someone sets another one
(:func:`set_transfer_status`).  Every change is audited and announced as an event
(``warning_acked``, ``resident_status``) in its transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from emergency.errors import (
    InvalidInput,
    RecipientNotFound,
    ResidentNotInWarning,
    WarningNotFound,
)
from layers.audit import Actor, record_async
from layers.catalog import CATALOG, role_allows
from layers.events import record_event
from layers.schema import TRANSFER_STATUSES

#: Transfer status of a vulnerable resident nobody has reported on yet.
PENDING = TRANSFER_STATUSES[0]


async def create_notifications(
    conn: asyncpg.Connection, warning_id: int, exposure: dict[str, Any]
) -> int:
    """Write the warning's notifications from its (unmasked) exposure; returns how many."""
    rows = [
        (
            warning_id,
            "cadre",
            c["code"],
            c.get("name"),
            c.get("phone"),
            c.get("grid_code"),
            int(c.get("residents") or 0),
            int(c.get("vulnerable") or 0),
        )
        for c in exposure.get("residents", {}).get("cadres", [])
    ]
    rows += [
        (
            warning_id,
            "worker",
            g["code"],
            g.get("worker_name"),
            g.get("worker_phone"),
            g["code"],
            int(g.get("residents") or 0),
            int(g.get("vulnerable") or 0),
        )
        for g in exposure.get("grids", [])
    ]
    await conn.executemany(
        "INSERT INTO warning_notifications (warning_id, recipient_kind, recipient_code, "
        "recipient_name, recipient_phone, grid_code, residents, vulnerable) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        rows,
    )
    return len(rows)


async def _warning(conn: asyncpg.Connection, code: str, lock: bool = False) -> asyncpg.Record:
    from emergency.warnings import STATUS_SQL

    row = await conn.fetchrow(
        f"SELECT w.id, w.created_at, {STATUS_SQL} AS status, "  # noqa: S608 (constant SQL)
        "(w.exposure -> 'summary' ->> 'vulnerable')::int AS vulnerable "
        "FROM warnings w WHERE w.code = $1" + (" FOR SHARE" if lock else ""),
        code,
    )
    if row is None:
        raise WarningNotFound(f"no warning {code!r}")
    return row


async def progress(conn: asyncpg.Connection, warning_id: int, vulnerable: int) -> dict[str, Any]:
    """Recipients acknowledged of all, and the vulnerable residents per transfer status."""
    acks = await conn.fetchrow(
        "SELECT count(*) AS total, count(acked_at) AS acked FROM warning_notifications "
        "WHERE warning_id = $1",
        warning_id,
    )
    moved = dict(
        await conn.fetch(
            "SELECT status, count(*) FROM resident_transfers WHERE warning_id = $1 GROUP BY status",
            warning_id,
        )
    )
    assert acks is not None
    by_status = {s: int(moved.get(s, 0)) for s in TRANSFER_STATUSES}
    by_status[PENDING] = max(0, vulnerable - sum(v for s, v in by_status.items() if s != PENDING))
    total, acked = int(acks["total"]), int(acks["acked"])
    return {
        "recipients": total,
        "acknowledged": acked,
        "ack_share": round(acked / total, 4) if total else None,
        "vulnerable": vulnerable,
        "to_move": by_status[PENDING],
        "transfers": by_status,
    }


async def acknowledge(
    conn: asyncpg.Connection, code: str, recipient: str, note: str | None, actor: Actor
) -> dict[str, Any]:
    """Record that ``recipient`` (a cadre or grid-worker code) received the warning.

    A second acknowledgement keeps the first time.  Returns the recipient's row and the
    warning's progress.

    Raises:
        WarningNotFound, RecipientNotFound.
    """
    _check_note(note)
    async with conn.transaction():
        w = await _warning(conn, code, lock=True)
        row = await conn.fetchrow(
            "UPDATE warning_notifications SET acked_at = coalesce(acked_at, now()), "
            "acked_by = coalesce(acked_by, $3), ack_note = coalesce($4, ack_note) "
            "WHERE warning_id = $1 AND recipient_code = $2 "
            "RETURNING recipient_kind, recipient_code, grid_code, acked_at",
            w["id"],
            recipient,
            actor.name,
            note,
        )
        if row is None:
            raise RecipientNotFound(f"warning {code} was not sent to {recipient!r}")
        done = await progress(conn, w["id"], w["vulnerable"] or 0)
        await record_async(conn, actor, "warning.ack", code, {"recipient": recipient})
        await record_event(
            conn,
            "warning_acked",
            {
                "code": code,
                "recipient_kind": row["recipient_kind"],
                "recipient_code": row["recipient_code"],
                "acknowledged": done["acknowledged"],
                "recipients": done["recipients"],
            },
        )
    return {
        "code": code,
        "recipient_kind": row["recipient_kind"],
        "recipient_code": row["recipient_code"],
        "acked_at": row["acked_at"].isoformat(),
        "seconds_after_issue": _seconds(row["acked_at"] - w["created_at"]),
        "progress": done,
    }


def _seconds(d: dt.timedelta) -> float:
    return round(d.total_seconds(), 1)


async def list_acks(conn: asyncpg.Connection, code: str, role: str) -> dict[str, Any]:
    """Who acknowledged and who has not, with the time since the warning was issued
    (names and phones only for roles that may see residents' and grids' personal fields)."""
    w = await _warning(conn, code)
    now = await conn.fetchval("SELECT now()")
    rows = await conn.fetch(
        "SELECT recipient_kind, recipient_code, recipient_name, recipient_phone, grid_code, "
        "residents, vulnerable, acked_at, acked_by, ack_note FROM warning_notifications "
        "WHERE warning_id = $1 ORDER BY acked_at IS NOT NULL, recipient_kind, recipient_code",
        w["id"],
    )
    personal = role_allows(role, CATALOG["residents"].sensitive_role) and role_allows(
        role, CATALOG["grids"].sensitive_role
    )
    items = []
    for r in rows:
        item: dict[str, Any] = {
            "kind": r["recipient_kind"],
            "code": r["recipient_code"],
            "grid_code": r["grid_code"],
            "residents": r["residents"],
            "vulnerable": r["vulnerable"],
            "acknowledged": r["acked_at"] is not None,
            "acked_at": r["acked_at"].isoformat() if r["acked_at"] else None,
            "seconds_after_issue": _seconds(r["acked_at"] - w["created_at"])
            if r["acked_at"]
            else None,
            "waiting_s": None if r["acked_at"] else _seconds(now - w["created_at"]),
        }
        if personal:
            item.update(
                name=r["recipient_name"],
                phone=r["recipient_phone"],
                acked_by=r["acked_by"],
                note=r["ack_note"],
            )
        items.append(item)
    return {
        "code": code,
        "issued_at": w["created_at"].isoformat(),
        "since_issue_s": _seconds(now - w["created_at"]),
        "progress": await progress(conn, w["id"], w["vulnerable"] or 0),
        "acknowledged": [i for i in items if i["acknowledged"]],
        "waiting": [i for i in items if not i["acknowledged"]],
    }


async def set_transfer_status(
    conn: asyncpg.Connection,
    code: str,
    resident: str,
    status: str,
    note: str | None,
    actor: Actor,
) -> dict[str, Any]:
    """Set the transfer status of a vulnerable resident inside the warning.

    Raises:
        InvalidInput: an unknown status or a note over 500 characters.
        WarningNotFound, ResidentNotInWarning.
    """
    if status not in TRANSFER_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(TRANSFER_STATUSES)}")
    _check_note(note)
    async with conn.transaction():
        w = await _warning(conn, code, lock=True)
        inside = await conn.fetchval(
            "SELECT r.grid_code FROM residents r, warnings w WHERE w.id = $1 AND r.code = $2 "
            "AND r.tags IS NOT NULL AND ST_Intersects(r.geom, w.geom)",
            w["id"],
            resident,
        )
        found = await conn.fetchval("SELECT 1 FROM residents WHERE code = $1", resident)
        if found is None or (inside is None and not await _listed(conn, w["id"], resident)):
            raise ResidentNotInWarning(
                f"{resident!r} is not a vulnerable resident inside warning {code}"
            )
        await conn.execute(
            "INSERT INTO resident_transfers (warning_id, resident_code, status, note, "
            "updated_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (warning_id, resident_code) "
            "DO UPDATE SET status = EXCLUDED.status, note = EXCLUDED.note, "
            "updated_by = EXCLUDED.updated_by, updated_at = now()",
            w["id"],
            resident,
            status,
            note,
            actor.name,
        )
        done = await progress(conn, w["id"], w["vulnerable"] or 0)
        await record_async(
            conn, actor, "warning.resident_status", code, {"resident": resident, "status": status}
        )
        await record_event(
            conn,
            "resident_status",
            {
                "code": code,
                "resident_code": resident,
                "status": status,
                "to_move": done["to_move"],
                "vulnerable": done["vulnerable"],
            },
        )
    return {"code": code, "resident_code": resident, "status": status, "progress": done}


async def _listed(conn: asyncpg.Connection, warning_id: int, resident: str) -> bool:
    """A resident already reported on (e.g. whose address moved out since) stays settable."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM resident_transfers WHERE warning_id = $1 AND resident_code = $2",
            warning_id,
            resident,
        )
    )


#: Longest note on an acknowledgement or a transfer status.
MAX_NOTE_CHARS = 500


def _check_note(note: str | None) -> None:
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"note is longer than {MAX_NOTE_CHARS} characters")
