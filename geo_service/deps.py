"""FastAPI dependencies: the resources opened in the lifespan, reached per request."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from geo_service.settings import Settings
from geo_service.state import AppState, app_state
from layers.catalog import Catalog


async def get_state(request: Request) -> AppState:
    return app_state(request)


async def get_pool(request: Request) -> asyncpg.Pool:
    return app_state(request).open_pool()


async def get_app_settings(request: Request) -> Settings:
    return app_state(request).settings


async def get_catalog(request: Request) -> Catalog:
    return app_state(request).catalog


StateDep = Annotated[AppState, Depends(get_state)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
