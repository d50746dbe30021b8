"""Layer versions kept current in every worker through PostgreSQL LISTEN/NOTIFY.

Triggers on every layer table bump ``layer_versions`` and ``NOTIFY onemap_layers``
with the table name.  Each server worker keeps one listening connection; on a
notification it re-reads the versions, so caches keyed on ``(layer, version)`` go stale
within milliseconds in every worker.  If the listening connection dies (database
restart), it is re-opened in the background and the versions are re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from geo_service.pg_listen import listen_forever

log = logging.getLogger("onemap.layer_events")
CHANNEL = "onemap_layers"


class LayerVersions:
    """The current version of every layer, and callbacks run when one changes."""

    def __init__(self, dsn: str, reconnect_s: float = 1.0):
        self.dsn = dsn
        self.reconnect_s = reconnect_s
        self.versions: dict[str, int] = {}
        self._listeners: list[Callable[[str, int], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def version(self, table: str) -> int:
        """The version of ``table`` (0 when unknown, e.g. while the database is down)."""
        return self.versions.get(table, 0)

    def subscribe(self, callback: Callable[[str, int], None]) -> None:
        """Call ``callback(table, new_version)`` whenever a layer changes."""
        self._listeners.append(callback)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT layer, version FROM layer_versions")
        new = {r["layer"]: int(r["version"]) for r in rows}
        changed = [t for t, v in new.items() if self.versions.get(t) != v]
        self.versions = new
        for table in changed:
            for cb in self._listeners:
                try:
                    cb(table, new[table])
                except Exception:  # a broken subscriber must not stop the others
                    log.exception("layer change subscriber failed")

    async def _run(self) -> None:
        async def on_payloads(conn: asyncpg.Connection, _burst: list[str]) -> None:
            await self.refresh(conn)  # a burst of changes costs one read

        await listen_forever(
            self.dsn,
            CHANNEL,
            on_connect=self.refresh,
            on_payloads=on_payloads,
            connected=self.connected,
            reconnect_s=self.reconnect_s,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="onemap-layer-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
