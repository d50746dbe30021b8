"""The worker's typed state: every resource the lifespan opens, in one object.

``create_app`` builds an :class:`AppState` with what exists before start-up (settings,
catalog, caches); the lifespan fills in the connection pool, the layer-version listener and
the event hub, and stores it as ``app.state.onemap``. Routers reach it through
:func:`app_state` (or the dependencies in :mod:`geo_service.deps`), never by ``getattr``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from geo_service.settings import Settings
from layers.catalog import Catalog

if TYPE_CHECKING:
    import asyncpg

    from geo_service.db import HealthConnection
    from geo_service.event_hub import EventHub
    from geo_service.layer_events import LayerVersions
    from geo_service.web.assets import WebAssets
    from layers.addresses import AddressIndex
    from tiles.cache import TileCache
    from tiles.raster import RasterRenderer


@dataclass
class TileState:
    """Per-worker tile state: the LRU cache, the raster renderer, memoised extents."""

    cache: TileCache
    raster: RasterRenderer
    extents: dict[Any, tuple[float, float, float, float] | None] = field(default_factory=dict)


@dataclass
class AppState:
    """Resources of one worker (see the module docstring)."""

    settings: Settings
    catalog: Catalog
    tiles: TileState
    #: API key → (expiry, caller), a short-lived cache of key look-ups
    key_cache: dict[str, Any] = field(default_factory=dict)
    #: (layer id, layer version) → extent document of /collections
    collection_extents: dict[tuple[str, int], dict[str, Any] | None] = field(default_factory=dict)
    #: (run id, area id) → area and its summary, for /analysis
    run_area_cache: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    #: version key → /stats document
    stats_cache: dict[str, Any] = field(default_factory=dict)
    #: (layer versions, index) of the geocoder, rebuilt when the versions move
    address_index: tuple[tuple[int, int], AddressIndex] | None = None
    address_index_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    address_reload: asyncio.Task[None] | None = None
    web_assets: WebAssets | None = None
    # set in the lifespan
    pool: asyncpg.Pool | None = None
    #: the readiness check's own connection (never waits on the pool)
    health: HealthConnection | None = None
    layer_versions: LayerVersions | None = None
    event_hub: EventHub | None = None
    expiry_task: asyncio.Task[None] | None = None
    retention_task: asyncio.Task[None] | None = None
    push_task: asyncio.Task[None] | None = None
    address_warmup: asyncio.Task[None] | None = None

    def open_pool(self) -> asyncpg.Pool:
        """The connection pool (only during the lifespan)."""
        if self.pool is None:
            raise RuntimeError("the application is not started: no database pool")
        return self.pool

    def listening_versions(self) -> LayerVersions | None:
        """The layer-version listener when it is connected (else nothing may be cached)."""
        lv = self.layer_versions
        return lv if lv is not None and lv.connected.is_set() else None


def new_state(settings: Settings, catalog: Catalog) -> AppState:
    from tiles.cache import TileCache
    from tiles.raster import RasterRenderer

    cache = TileCache(int(float(settings.tiles_cache_mb) * 1024 * 1024))
    return AppState(settings=settings, catalog=catalog, tiles=TileState(cache, RasterRenderer()))


def app_state(conn: HTTPConnection) -> AppState:
    """The :class:`AppState` of the app serving ``conn`` (a request or a websocket)."""
    state: AppState = conn.app.state.onemap
    return state
