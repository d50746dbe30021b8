"""The ``onemap`` command line (Typer + Rich): one module per command group.

The groups: :mod:`~geo_service.cli.db`, :mod:`~geo_service.cli.data` (demo, import,
export, layers), :mod:`~geo_service.cli.keys`, :mod:`~geo_service.cli.risk`,
:mod:`~geo_service.cli.tiles`, :mod:`~geo_service.cli.geocode`,
:mod:`~geo_service.cli.nowcast`, :mod:`~geo_service.cli.subscriptions`; their console
and ``fail``/``progress`` helpers are in :mod:`~geo_service.cli.console`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from geo_service.cli.data import data_app
from geo_service.cli.db import db_app
from geo_service.cli.geocode import geocode_command
from geo_service.cli.keys import keys_app
from geo_service.cli.nowcast import nowcast_command
from geo_service.cli.risk import risk_app
from geo_service.cli.subscriptions import subscriptions_app
from geo_service.cli.tiles import tiles_app

app = typer.Typer(
    name="onemap",
    help="OneMap (一张图): spatial analytics server for community and emergency command centres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(tiles_app, name="tiles")
app.add_typer(risk_app, name="risk")
app.command("geocode")(geocode_command)
app.command("nowcast")(nowcast_command)
app.add_typer(keys_app, name="keys")
app.add_typer(subscriptions_app, name="subscriptions")
app.registered_commands.extend(data_app.registered_commands)


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
        # the client address behind a proxy comes from ONEMAP_TRUSTED_PROXIES (geo_service
        # .security.ClientAddress), never from uvicorn's loopback default
        proxy_headers=False,
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
