"""The ``onemap`` command line (Typer + Rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from geo_service.geocode_cli import geocode_command
from geo_service.nowcast_cli import nowcast_command
from geo_service.risk_cli import risk_app
from geo_service.settings import Settings, get_settings
from geo_service.tiles_cli import tiles_app
from layers.errors import ClusterError, LayersError
from layers.pgcluster import LocalCluster, ensure_database, replace_database

app = typer.Typer(
    name="onemap",
    help="OneMap (一张图): spatial analytics server for community and emergency command centres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The PostGIS database: a project-local cluster or ONEMAP_DATABASE_URL.")
app.add_typer(db_app, name="db")
app.add_typer(tiles_app, name="tiles")
app.add_typer(risk_app, name="risk")
app.command("geocode")(geocode_command)
app.command("nowcast")(nowcast_command)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


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
        raise _fail(str(exc)) from None
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
        raise _fail(str(exc)) from None
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
        raise _fail(f"migration failed: {exc}") from None


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the HTTP API (and the big-screen page)."""
    import uvicorn

    uvicorn.run(
        "geo_service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # geo_service.logs.AccessLog writes the structured access log
        proxy_headers=True,
    )


class _Bars:
    """Rich progress bars keyed by stage name (for ``layers.load`` progress callbacks)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def rows(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(f"load {stage}", total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))

    def fraction(self, stage: str, frac: float) -> None:
        if "generate" not in self.tasks:
            self.tasks["generate"] = self.progress.add_task("generate", total=1.0)
        self.progress.update(
            self.tasks["generate"], completed=frac, description=f"generate: {stage}"
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command("demo")
def demo(
    scale: Annotated[float, typer.Option(help="Size factor: 10 gives 200,000+ addresses")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city)")] = 42,
    center_lon: Annotated[float, typer.Option(help="Centre longitude, degrees")] = 113.4,
    center_lat: Annotated[float, typer.Option(help="Centre latitude, degrees")] = 22.5,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the database already has data")
    ] = False,
) -> None:
    """Generate the synthetic demo district and load it (replaces every layer)."""
    from layers.seed import load_demo

    settings = get_settings()
    try:
        with _progress() as progress:
            bars = _Bars(progress)
            result = load_demo(
                settings.effective_database_url,
                settings.data_dir,
                scale=scale,
                seed=seed,
                center_lon=center_lon,
                center_lat=center_lat,
                if_empty=if_empty,
                generate_progress=bars.fraction,
                load_progress=bars.rows,
            )
    except LayersError as exc:
        raise _fail(str(exc)) from None
    if result.skipped:
        console.print("The database already holds data: demo city not reloaded.")
        return
    table = Table("layer", "rows", title="Demo city loaded")
    for layer_id, n in result.counts.items():
        table.add_row(layer_id, f"{n:,}")
    table.add_row("sensor_readings", f"{result.readings:,}")
    console.print(table)
    console.print(f"DEM: {result.dem_path}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile or CSV")],
    layer: Annotated[str, typer.Option("--layer", help="Target layer id")],
    field_map: Annotated[
        list[str] | None, typer.Option("--field-map", help="Rename a field: source=destination")
    ] = None,
    crs: Annotated[
        str | None, typer.Option(help="CRS of the input coordinates, e.g. EPSG:4547")
    ] = None,
) -> None:
    """Replace a layer with a file's features: all rows or none."""
    from layers.io import import_file, parse_field_map

    settings = get_settings()
    try:
        mapping = parse_field_map(field_map)
        with _progress() as progress:
            result = import_file(
                settings.effective_database_url,
                path,
                layer,
                field_map=mapping,
                crs=crs,
                progress=_Bars(progress).rows,
            )
    except (LayersError, ValueError) as exc:
        raise _fail(f"{exc}; layer {layer!r} left unchanged") from None
    console.print(
        f"{result.layer}: {result.rows_after:,} rows loaded (replacing {result.rows_before:,})"
    )


@app.command("import-raster")
def import_raster(
    path: Annotated[Path, typer.Argument(help="A GeoTIFF in any CRS")],
    name: Annotated[str, typer.Option("--name", help="Dataset name, e.g. dem or rainfall")],
) -> None:
    """Convert a GeoTIFF to a Cloud-Optimized GeoTIFF in the data directory and register it."""
    from layers.rasters import import_raster as do_import

    settings = get_settings()
    try:
        with console.status(f"converting {path} to a COG"):
            info = do_import(settings.effective_database_url, path, name, settings.data_dir)
    except LayersError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"raster {info.name!r}: {info.width}×{info.height}, {info.bands} band(s), {info.dtype}, "
        f"{info.crs} → {info.path}"
    )


@app.command("export")
def export(
    layer: Annotated[str, typer.Argument(help="Layer id")],
    out: Annotated[Path, typer.Argument(help="Output: .gpkg, .geojson or .csv")],
) -> None:
    """Export a layer to GeoPackage, GeoJSON or CSV."""
    from layers.io import export_layer

    settings = get_settings()
    try:
        n = export_layer(settings.effective_database_url, layer, out)
    except LayersError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{layer}: {n:,} features written to {out}")


@app.command("layers")
def layers_list() -> None:
    """List the layers of the catalog."""
    from layers.catalog import CATALOG

    table = Table("id", "title", "geometry", "properties (* sensitive)")
    for lyr in CATALOG.values():
        props = ", ".join(p.name + ("*" if p.sensitive else "") for p in lyr.properties)
        table.add_row(lyr.id, f"{lyr.title_zh} {lyr.title_en}", lyr.geometry_type, props)
    console.print(table)


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
        raise _fail(str(exc)) from None
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
        raise _fail(str(exc)) from None
    console.print(f"revoked: {', '.join(revoked)}")


def _dbname(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/") or "postgres"


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
