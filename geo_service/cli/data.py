"""Data commands: the demo city, imports, raster imports, exports and the layer list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from geo_service.cli.console import Bars, console, fail, progress
from geo_service.settings import get_settings
from layers.errors import LayersError

data_app = typer.Typer()


@data_app.command("demo")
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
        with progress() as bar:
            bars = Bars(bar)
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
        raise fail(str(exc)) from None
    if result.skipped:
        console.print("The database already holds data: demo city not reloaded.")
        return
    table = Table("layer", "rows", title="Demo city loaded")
    for layer_id, n in result.counts.items():
        table.add_row(layer_id, f"{n:,}")
    table.add_row("sensor_readings", f"{result.readings:,}")
    console.print(table)
    console.print(f"DEM: {result.dem_path}")


@data_app.command("import")
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
        with progress() as bar:
            result = import_file(
                settings.effective_database_url,
                path,
                layer,
                field_map=mapping,
                crs=crs,
                progress=Bars(bar).rows,
            )
    except (LayersError, ValueError) as exc:
        raise fail(f"{exc}; layer {layer!r} left unchanged") from None
    console.print(
        f"{result.layer}: {result.rows_after:,} rows loaded (replacing {result.rows_before:,})"
    )


@data_app.command("import-raster")
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
        raise fail(str(exc)) from None
    console.print(
        f"raster {info.name!r}: {info.width}×{info.height}, {info.bands} band(s), {info.dtype}, "
        f"{info.crs} → {info.path}"
    )


@data_app.command("export")
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
        raise fail(str(exc)) from None
    console.print(f"{layer}: {n:,} features written to {out}")


@data_app.command("layers")
def layers_list() -> None:
    """List the layers of the catalog."""
    from layers.catalog import CATALOG

    table = Table("id", "title", "geometry", "properties (* sensitive)")
    for lyr in CATALOG.values():
        props = ", ".join(p.name + ("*" if p.sensitive else "") for p in lyr.properties)
        table.add_row(lyr.id, f"{lyr.title_zh} {lyr.title_en}", lyr.geometry_type, props)
    console.print(table)
