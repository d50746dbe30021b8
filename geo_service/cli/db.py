"""``onemap db …``: the project-local PostGIS cluster (or ONEMAP_DATABASE_URL), its schema."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_service.cli.console import console, fail
from geo_service.settings import Settings, get_settings
from layers.errors import ClusterError, LayersError
from layers.pgcluster import LocalCluster, ensure_database, replace_database

db_app = typer.Typer(help="The PostGIS database: a project-local cluster or ONEMAP_DATABASE_URL.")


def _cluster(settings: Settings) -> LocalCluster:
    return LocalCluster(settings.pgdata, port=settings.pgport, host=settings.pghost)


@db_app.command("start")
def db_start() -> None:
    """Start the project-local PostGIS cluster (initialising it on first use)."""
    settings = get_settings()
    try:
        if not settings.uses_local_cluster:
            ensure_database(
                replace_database(settings.effective_database_url, "postgres"),
                _dbname(settings.effective_database_url),
            )
            console.print("ONEMAP_DATABASE_URL is set: using that database, nothing to start.")
            return
        cluster = _cluster(settings)
        started = cluster.start()
        cluster.ensure_database(settings.pgdatabase)
    except LayersError as exc:
        raise fail(str(exc)) from None
    state = "started" if started else "already running"
    console.print(f"PostGIS {state}: {cluster.url(settings.pgdatabase)} (data in {cluster.pgdata})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the project-local cluster."""
    settings = get_settings()
    if not settings.uses_local_cluster:
        console.print("ONEMAP_DATABASE_URL is set: that database is not ours to stop.")
        return
    try:
        stopped = _cluster(settings).stop()
    except ClusterError as exc:
        raise fail(str(exc)) from None
    console.print("PostGIS stopped." if stopped else "PostGIS was not running.")


@db_app.command("status")
def db_status() -> None:
    """Say whether the database is reachable (exit 1 when not)."""
    import psycopg

    settings = get_settings()
    url = settings.effective_database_url
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            version = conn.execute("SELECT postgis_lib_version()").fetchone()
    except psycopg.Error as exc:
        console.print(f"database down: {url} ({str(exc).strip().splitlines()[0]})")
        raise typer.Exit(1) from None
    console.print(f"database up: {url} (PostGIS {version[0] if version else '?'})")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL every OneMap command uses."""
    typer.echo(get_settings().effective_database_url)


@db_app.command("migrate")
def db_migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply the schema migrations (Alembic)."""
    from layers.migrate import current_revision, upgrade

    url = get_settings().effective_database_url
    try:
        upgrade(url, revision)
        console.print(f"schema at revision {current_revision(url)}")
    except Exception as exc:  # show the reason, not a traceback
        raise fail(f"migration failed: {exc}") from None


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only, delete nothing")] = False,
    runs_days: Annotated[
        float | None,
        typer.Option(help="Keep finished runs this many days (ONEMAP_RISK_RUNS_KEEP_DAYS)"),
    ] = None,
    events_days: Annotated[
        float | None, typer.Option(help="Keep live events this many days (ONEMAP_EVENTS_KEEP_DAYS)")
    ] = None,
) -> None:
    """Delete old risk runs (with their cells) and live events by the retention settings.

    Runs a warning was issued from and the latest run of each model are always kept; the audit
    log is never pruned. The server also prunes once an hour.
    """
    import asyncio

    import asyncpg

    from emergency.runs import prune

    settings = get_settings()
    keep_runs = settings.risk_runs_keep_days if runs_days is None else runs_days
    keep_events = settings.events_keep_days if events_days is None else events_days
    if keep_runs < 0 or keep_events < 0:
        raise fail("--runs-days and --events-days must be ≥ 0 (0 keeps everything)")

    async def go() -> dict[str, int]:
        conn = await asyncpg.connect(settings.effective_database_url)
        try:
            return await prune(
                conn, runs_keep_days=keep_runs, events_keep_days=keep_events, dry_run=dry_run
            )
        finally:
            await conn.close()

    try:
        out = asyncio.run(go())
    except (OSError, asyncpg.PostgresError) as exc:
        raise fail(f"cannot prune: {exc}") from None
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {out['runs']:,} risk runs ({out['cells']:,} cells) older than {keep_runs:g} "
        f"days and {out['events']:,} events older than {keep_events:g} days"
    )


def _dbname(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/") or "postgres"
