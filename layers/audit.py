"""The audit log: who did what, when, from where — written in the same transaction as the change.

One :class:`Actor` and one statement serve every writer: the synchronous imports of
:mod:`layers` (psycopg) call :func:`record`, the asynchronous workflow of :mod:`emergency`
(asyncpg) awaits :func:`record_async`.  The module lives in ``layers`` because imports
write audit rows too and ``layers`` must not import ``emergency``.
"""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg

_COLUMNS = ("actor", "role", "action", "target", "detail", "client_addr")


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the API key's name (or ``cli:…``/``system``), its role and the
    client address, as recorded in ``audit_log``."""

    name: str
    role: str = "operator"
    client_addr: str | None = None

    @classmethod
    def cli(cls, role: str = "admin") -> Actor:
        """``cli:<os user>@<host>`` for changes made from the command line."""
        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry (containers)
            user = "unknown"
        return cls(f"cli:{user}@{socket.gethostname()}", role)


#: Background work of the service itself (sweepers, expiry).
SYSTEM = Actor("system", "admin")


def _row(
    actor: Actor, action: str, target: str | None, detail: dict[str, Any] | None
) -> tuple[Any, ...]:
    text = json.dumps(detail or {}, default=str, ensure_ascii=False, allow_nan=False)
    return (actor.name, actor.role, action, target, text, actor.client_addr)


def _insert(placeholders: list[str]) -> str:
    names = ", ".join(_COLUMNS)  # fixed column names; every value is a bound parameter
    return f"INSERT INTO audit_log ({names}) VALUES ({', '.join(placeholders)})"  # noqa: S608


_INSERT_PSYCOPG = _insert(["%s"] * len(_COLUMNS))
_INSERT_ASYNCPG = _insert(
    [f"${i + 1}::text::jsonb" if c == "detail" else f"${i + 1}" for i, c in enumerate(_COLUMNS)]
)


def record(
    conn: psycopg.Connection,
    action: str,
    target: str | None,
    *,
    actor: Actor | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row inside the caller's psycopg transaction (default actor: the CLI)."""
    conn.execute(_INSERT_PSYCOPG, _row(actor or Actor.cli(), action, target, detail))


async def record_async(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row inside the caller's asyncpg transaction."""
    await conn.execute(_INSERT_ASYNCPG, *_row(actor, action, target, detail))
