"""``onemap geocode IN.csv --column COL OUT.csv``: batch geocoding with a progress bar."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from geo_service.cli.console import progress


def geocode_command(
    src: Path = typer.Argument(..., help="Input CSV (UTF-8)"),
    dst: Path = typer.Argument(..., help="Output CSV: the input plus geo_* columns"),
    column: str = typer.Option(..., "--column", help="Column holding the address"),
) -> None:
    """Geocode the addresses of one CSV column against the standard-address table."""
    import psycopg

    from geo_service.settings import get_settings
    from layers.addresses import AddressIndex
    from layers.addresses.batch import geocode_csv

    url = get_settings().effective_database_url
    with src.open(encoding="utf-8-sig", newline="") as f:
        total = sum(1 for _ in csv.reader(f)) - 1
    with psycopg.connect(url) as conn, progress() as bar:
        index = AddressIndex.load(conn)
        task = bar.add_task("geocoding", total=max(total, 0))
        n = geocode_csv(index, conn, src, column, dst, lambda k: bar.advance(task, k))
    typer.echo(f"{n} addresses geocoded → {dst}")
