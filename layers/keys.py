"""API keys: created once, stored only as a salted hash, looked up by their prefix.

A key reads ``om_<prefix>_<secret>``: the 8-hex-digit prefix finds the row, the secret
is checked against ``sha256(salt ‖ secret)``.  Keys are 192-bit random tokens, so a fast
salted hash is enough (no dictionary to attack) and verification stays cheap per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from layers.errors import LayersError

KEY_RE = re.compile(r"^om_([0-9a-f]{8})_([A-Za-z0-9_-]{20,64})$")
KEY_ROLES = ("viewer", "operator", "admin")


class KeyError_(LayersError):
    """An API key operation was refused (bad role, unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret)."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(salt: str, secret: str) -> str:
    """Hex SHA-256 of ``salt ‖ secret``."""
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else None.

    >>> split_key("om_0123abcd_" + "x" * 32)[0]
    '0123abcd'
    >>> split_key("nonsense") is None
    True
    """
    m = KEY_RE.match(key.strip())
    return (m.group(1), m.group(2)) if m else None


def secret_matches(salt: str, key_hash: str, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, secret), key_hash)


def create_key(url: str, name: str, role: str, actor: str = "cli") -> tuple[str, ApiKey]:
    """Create a key; returns ``(the key, shown once; its record)``."""
    if role not in KEY_ROLES:
        raise KeyError_(f"role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    if not name.strip():
        raise KeyError_("a key needs a name")
    prefix, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(24), secrets.token_hex(16)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO api_keys (name, role, prefix, salt, key_hash) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id, name, role, prefix, created_at, revoked_at",
            (name.strip(), role, prefix, salt, hash_secret(salt, secret)),
        ).fetchone()
        conn.execute(
            "INSERT INTO audit_log (actor, role, action, target) VALUES (%s, 'admin', %s, %s)",
            (actor, "key.create", f"{prefix} ({name.strip()}, {role})"),
        )
    assert row is not None
    return f"om_{prefix}_{secret}", ApiKey(*row)


def list_keys(url: str) -> list[ApiKey]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY id"
        ).fetchall()
    return [ApiKey(*r) for r in rows]


def revoke_key(url: str, prefix_or_name: str, actor: str = "cli") -> list[str]:
    """Revoke the key with this prefix (or every active key with this name); returns prefixes."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL "
            "AND (prefix = %s OR name = %s) RETURNING prefix",
            (prefix_or_name, prefix_or_name),
        ).fetchall()
        for (prefix,) in rows:
            conn.execute(
                "INSERT INTO audit_log (actor, role, action, target) VALUES (%s, 'admin', %s, %s)",
                (actor, "key.revoke", prefix),
            )
    if not rows:
        raise KeyError_(f"no active key with prefix or name {prefix_or_name!r}")
    return [r[0] for r in rows]
