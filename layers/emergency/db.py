"""Small asyncpg helpers shared by the workflow modules: the actor, audit rows, JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the API key's name (or ``cli:…``/``system``), its role and the
    client address, as recorded in ``audit_log``."""

    name: str
    role: str = "operator"
    client_addr: str | None = None


SYSTEM = Actor("system", "admin")


def dumps(value: Any) -> str:
    """JSON text for a ``$n::text::jsonb`` parameter (datetimes as ISO strings)."""
    return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)


def loads(value: Any) -> Any:
    """A JSON column as Python, whether or not the connection has a JSON codec."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


async def audit(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one ``audit_log`` row in the caller's transaction (asyncpg twin of
    :func:`layers.audit.record`)."""
    await conn.execute(
        "INSERT INTO audit_log (actor, role, action, target, detail, client_addr) "
        "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
        actor.name,
        actor.role,
        action,
        target,
        dumps(detail or {}),
        actor.client_addr,
    )
