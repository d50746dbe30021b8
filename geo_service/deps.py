"""FastAPI dependencies: the resources opened in the lifespan, reached per request."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from geo_service.settings import Settings
from layers.catalog import Catalog


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
