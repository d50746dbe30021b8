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


def _dbname(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/") or "postgres"
