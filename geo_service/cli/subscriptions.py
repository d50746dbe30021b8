"""``onemap subscriptions …``: systems that receive every CAP message by signed HTTP POST."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from geo_service.cli.console import console, fail
from geo_service.settings import get_settings

subscriptions_app = typer.Typer(
    help="Push subscriptions of CAP messages (HMAC-signed POSTs, retried from the outbox).",
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg

    from emergency.errors import EmergencyError

    async def go() -> T:
        conn = await asyncpg.connect(get_settings().effective_database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except EmergencyError as exc:
        raise fail(str(exc)) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise fail(f"database: {exc}") from None


@subscriptions_app.command("add")
def subscriptions_add(
    url: Annotated[str, typer.Argument(help="http(s) URL the messages are POSTed to")],
    secret: Annotated[
        str | None,
        typer.Option(
            help="HMAC-SHA256 key shared with the receiver (≥ 16 characters; "
            "default: a new random one, printed once)"
        ),  # fmt: skip
    ] = None,
    backfill: Annotated[
        bool, typer.Option(help="Also queue the latest message of each warning in force")
    ] = False,
) -> None:
    """Add a subscription: every CAP message from now on is POSTed to URL, signed."""
    from emergency.push import add_subscription

    shown = secret is None
    key = secret if secret is not None else secrets.token_urlsafe(32)
    out = _run(lambda conn: add_subscription(conn, url, key, backfill=backfill))
    console.print(f"subscription {out['id']} → {out['url']} (queued now: {out['queued']})")
    if shown:
        console.print("secret, shown only now:")
        typer.echo(key)


@subscriptions_app.command("list")
def subscriptions_list() -> None:
    """Subscriptions with delivered and pending messages and the last error (no secrets)."""
    from emergency.push import list_subscriptions

    rows = _run(list_subscriptions)
    table = Table("id", "url", "delivered", "pending", "attempts", "last error")
    for s in rows:
        table.add_row(
            str(s["id"]),
            s["url"],
            str(s["delivered"]),
            str(s["pending"]),
            str(s["max_attempts"]),
            s["last_error"] or "",
        )
    console.print(table)


@subscriptions_app.command("remove")
def subscriptions_remove(
    subscription: Annotated[int, typer.Argument(help="Subscription id (see list)")],
) -> None:
    """Remove a subscription and drop its undelivered messages."""
    from emergency.push import remove_subscription

    _run(lambda conn: remove_subscription(conn, subscription))
    console.print(f"removed subscription {subscription}")
