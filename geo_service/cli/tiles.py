"""``onemap tiles …`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_service.cli.console import console, fail, progress
from geo_service.settings import get_settings
from layers.errors import UnknownLayer
from tiles.errors import TilesError

tiles_app = typer.Typer(help="Vector tiles: export pyramids to PMTiles.", no_args_is_help=True)


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise typer.BadParameter("use west,south,east,north in degrees", param_hint="--bbox")
    return parts  # type: ignore[return-value]


@tiles_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="The .pmtiles archive to write.")],
    layers: Annotated[
        str, typer.Option("--layers", help="Comma-separated layer ids (and 'risk').")
    ],
    minzoom: Annotated[int, typer.Option("--minzoom", min=0, max=24)] = 0,
    maxzoom: Annotated[int, typer.Option("--maxzoom", min=0, max=24)] = 14,
    bbox: Annotated[
        str | None,
        typer.Option("--bbox", help="west,south,east,north in degrees (default: data extent)."),
    ] = None,
    run: Annotated[int | None, typer.Option("--run", help="Risk run for 'risk'.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 4,
) -> None:
    """Export a whole tile pyramid of LAYERS into one PMTiles archive."""
    from tiles.pmtiles_export import export_pmtiles

    settings = get_settings()
    box = _parse_bbox(bbox)
    with progress(remaining=True) as bar:
        task = bar.add_task(f"tiles {layers} z{minzoom}–{maxzoom}", total=None)
        try:
            result = export_pmtiles(
                settings.effective_database_url,
                layers,
                out,
                minzoom=minzoom,
                maxzoom=maxzoom,
                bbox=box,
                run=run,
                workers=workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except (TilesError, UnknownLayer) as exc:
            raise fail(str(exc)) from None
    console.print(
        f"wrote {result.path}: {result.tiles_written} tiles, zooms {result.minzoom}–"
        f"{result.maxzoom} ({result.tiles_examined} examined), "
        f"{result.bytes_written / 1e6:.1f} MB"
    )
