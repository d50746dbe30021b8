"""``onemap keys …``: API keys (create, list, revoke)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from geo_service.cli.console import console, fail
from geo_service.settings import get_settings
from layers.errors import LayersError

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin")],
    name: Annotated[str, typer.Option(help="Who or what the key is for")],
) -> None:
    """Create an API key and print it once (only a salted hash is stored)."""
    from layers.keys import create_key

    try:
        key, record = create_key(get_settings().effective_database_url, name, role)
    except LayersError as exc:
        raise fail(str(exc)) from None
    console.print(f"key for {record.name!r} ({record.role}), shown only now:")
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, name, role, state); secrets are never shown."""
    from layers.keys import list_keys

    table = Table("prefix", "name", "role", "created", "state")
    for k in list_keys(get_settings().effective_database_url):
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        table.add_row(k.prefix, k.name, k.role, f"{k.created_at:%Y-%m-%d %H:%M}", state)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key prefix (8 hex digits) or name")],
) -> None:
    """Revoke a key (by prefix) or every active key of a name."""
    from layers.keys import revoke_key

    try:
        revoked = revoke_key(get_settings().effective_database_url, key)
    except LayersError as exc:
        raise fail(str(exc)) from None
    console.print(f"revoked: {', '.join(revoked)}")
