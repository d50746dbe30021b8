"""``onemap tiles …`` commands."""

from __future__ import annotations

import typer

tiles_app = typer.Typer(help="Vector tiles: export pyramids to PMTiles.", no_args_is_help=True)
