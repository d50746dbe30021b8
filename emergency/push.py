"""Push of CAP messages to other systems: subscriptions, a transactional outbox, signed
delivery with retries.

Every CAP message (:func:`emergency.cap.record_message`) gets one ``push_outbox`` row per
active subscription in the transaction that creates it, so a message that exists is a message
that will be delivered, whatever crashes after the commit.  A deliverer (one per server
worker, :func:`deliver_due`) claims due rows with ``FOR UPDATE SKIP LOCKED`` and a lease,
POSTs the message and marks it delivered on a 2xx; on anything else the row is due again
after an exponential back-off.  A worker killed mid-delivery leaves its claimed rows to be
taken again when the lease ends.  Delivery is at least once: receivers deduplicate on the
``X-OneMap-Delivery`` header (or the CAP identifier).

Each POST carries ``X-OneMap-Timestamp`` (Unix seconds) and ``X-OneMap-Signature:
sha256=<hex>``, the HMAC-SHA256 with the subscription's secret of the timestamp, a dot and
the body — a receiver recomputes it (:func:`signature`) and refuses stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from emergency.errors import InvalidInput, SubscriptionNotFound

SIGNATURE_HEADER = "X-OneMap-Signature"
TIMESTAMP_HEADER = "X-OneMap-Timestamp"
DELIVERY_HEADER = "X-OneMap-Delivery"
IDENTIFIER_HEADER = "X-OneMap-CAP-Identifier"
MIN_SECRET_LEN = 16


@dataclass(frozen=True)
class PushSettings:
    """How the deliverer retries: back-off ``base_s × 2^(attempt-1)`` up to ``max_backoff_s``;
    a claimed row is taken again after ``lease_s``; each POST waits ``timeout_s``."""

    base_s: float = 5.0
    max_backoff_s: float = 3600.0
    lease_s: float = 60.0
    timeout_s: float = 10.0
    batch: int = 20


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, tolerance_s: float = 300) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), header)


def backoff_s(attempts: int, settings: PushSettings) -> float:
    """Seconds before attempt ``attempts + 1`` after ``attempts`` failed ones.

    >>> [backoff_s(n, PushSettings(base_s=5, max_backoff_s=60)) for n in (1, 2, 3, 4, 5)]
    [5.0, 10.0, 20.0, 40.0, 60.0]
    """
    return float(min(settings.max_backoff_s, settings.base_s * 2 ** max(0, attempts - 1)))


# --- subscriptions ---------------------------------------------------------------------------


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"a subscription URL must be http(s)://host/…, got {url!r}")
    return url


async def add_subscription(
    conn: asyncpg.Connection, url: str, secret: str, *, backfill: bool = False
) -> dict[str, Any]:
    """A new active subscription; with ``backfill`` the latest message of each warning in
    force is queued for it too."""
    check_url(url)
    if len(secret) < MIN_SECRET_LEN:
        raise InvalidInput(f"the secret must have at least {MIN_SECRET_LEN} characters")
    async with conn.transaction():
        sid = await conn.fetchval(
            "INSERT INTO subscriptions (url, secret) VALUES ($1, $2) RETURNING id", url, secret
        )
        queued = 0
        if backfill:
            queued = len(
                await conn.fetch(
                    """
                    INSERT INTO push_outbox (subscription_id, cap_message_id)
                    SELECT $1, m.id FROM (
                        SELECT DISTINCT ON (m.warning_id) m.id
                        FROM cap_messages m JOIN warnings w ON w.id = m.warning_id
                        WHERE w.status = 'active' AND w.valid_to > now()
                        ORDER BY m.warning_id, m.sent DESC, m.id DESC) m
                    RETURNING id
                    """,
                    sid,
                )
            )
    return {"id": int(sid), "url": url, "active": True, "queued": queued}


async def remove_subscription(conn: asyncpg.Connection, sid: int) -> None:
    """Delete a subscription and its undelivered messages."""
    done = await conn.fetchval("DELETE FROM subscriptions WHERE id = $1 RETURNING id", sid)
    if done is None:
        raise SubscriptionNotFound(f"no subscription {sid}")


async def list_subscriptions(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Subscriptions with their delivery counts (secrets are never returned)."""
    rows = await conn.fetch(
        """
        SELECT s.id, s.url, s.active, s.created_at,
               count(o.delivered_at) AS delivered,
               count(o.id) FILTER (WHERE o.delivered_at IS NULL) AS pending,
               max(o.attempts) FILTER (WHERE o.delivered_at IS NULL) AS max_attempts,
               (array_agg(o.last_error ORDER BY o.id DESC)
                    FILTER (WHERE o.delivered_at IS NULL AND o.last_error IS NOT NULL))[1]
                   AS last_error
        FROM subscriptions s LEFT JOIN push_outbox o ON o.subscription_id = s.id
        GROUP BY s.id ORDER BY s.id
        """
    )
    return [
        {
            "id": int(r["id"]),
            "url": r["url"],
            "active": r["active"],
            "created_at": r["created_at"].isoformat(),
            "delivered": int(r["delivered"]),
            "pending": int(r["pending"]),
            "max_attempts": int(r["max_attempts"] or 0),
            "last_error": r["last_error"],
        }
        for r in rows
    ]


# --- the outbox -----------------------------------------------------------------------------


async def enqueue(conn: asyncpg.Connection, cap_message_id: int) -> int:
    """Queue a message for every active subscription (in the caller's transaction)."""
    rows = await conn.fetch(
        "INSERT INTO push_outbox (subscription_id, cap_message_id) "
        "SELECT id, $1 FROM subscriptions WHERE active RETURNING id",
        cap_message_id,
    )
    return len(rows)


_CLAIM_SQL = """
UPDATE push_outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $1)
FROM subscriptions s, cap_messages m
WHERE o.id IN (
        SELECT id FROM push_outbox
        WHERE delivered_at IS NULL AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED)
  AND s.id = o.subscription_id AND s.active AND m.id = o.cap_message_id
RETURNING o.id, o.attempts, s.url, s.secret, m.identifier, m.xml
"""


async def deliver_due(
    pool: asyncpg.Pool, client: httpx.AsyncClient, settings: PushSettings
) -> dict[str, int]:
    """Claim and POST the due messages once; returns counts ``{delivered, failed}``."""
    async with pool.acquire() as conn:
        claimed = await conn.fetch(_CLAIM_SQL, settings.lease_s, settings.batch)
    out = {"delivered": 0, "failed": 0}
    for row in claimed:
        error = await _post(client, row, settings)
        async with pool.acquire() as conn:
            if error is None:
                await conn.execute(
                    "UPDATE push_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1",
                    row["id"],
                )
                out["delivered"] += 1
            else:
                await conn.execute(
                    "UPDATE push_outbox SET last_error = $2, "
                    "next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                    row["id"],
                    error[:500],
                    backoff_s(int(row["attempts"]), settings),
                )
                out["failed"] += 1
    return out


async def _post(
    client: httpx.AsyncClient, row: asyncpg.Record, settings: PushSettings
) -> str | None:
    body = str(row["xml"]).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/cap+xml; charset=utf-8",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature(str(row["secret"]), ts, body),
        DELIVERY_HEADER: str(row["id"]),
        IDENTIFIER_HEADER: str(row["identifier"]),
        "User-Agent": "OneMap-CAP-push/1",
    }
    try:
        r = await client.post(str(row["url"]), content=body, headers=headers,
                              timeout=settings.timeout_s)  # fmt: skip
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= r.status_code < 300:
        return None
    return f"HTTP {r.status_code}: {r.text[:200]}"
