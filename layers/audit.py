"""The audit log: who did what, when, from where — written in the same transaction as the change."""

from __future__ import annotations

import getpass
import json
import socket
from typing import Any

import psycopg


def cli_actor() -> str:
    """``cli:<os user>@<host>`` for changes made from the command line."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def record(
    conn: psycopg.Connection,
    action: str,
    target: str | None,
    *,
    actor: str | None = None,
    role: str = "admin",
    detail: dict[str, Any] | None = None,
    client_addr: str | None = None,
) -> None:
    """Append one audit row inside the caller's transaction (so it commits with the change)."""
    conn.execute(
        "INSERT INTO audit_log (actor, role, action, target, detail, client_addr) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (actor or cli_actor(), role, action, target, json.dumps(detail or {}), client_addr),
    )
