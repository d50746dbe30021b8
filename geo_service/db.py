"""The async PostgreSQL pool (asyncpg), opened in the app's lifespan."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from geo_service.settings import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON/JSONB come back as Python objects, not strings.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A pool that opens connections lazily, so the app starts even with the database down.

    Every connection attempt gives up after ``database_connect_timeout_s`` and every
    statement after ``database_statement_timeout_s``: a dead database yields an error
    quickly instead of a hung request.
    """
    pool = await asyncpg.create_pool(
        settings.effective_database_url,
        min_size=0,
        max_size=settings.database_pool_max,
        timeout=settings.database_connect_timeout_s,
        command_timeout=settings.database_statement_timeout_s,
        max_inactive_connection_lifetime=60.0,
        init=_init_connection,
        # Short OLTP queries: JIT compilation and parallel workers cost more than they save.
        server_settings={
            "application_name": "onemap",
            "jit": "off",
            "max_parallel_workers_per_gather": "0",
        },
    )
    assert pool is not None
    return pool


async def check_database(pool: asyncpg.Pool, timeout_s: float) -> dict[str, Any]:
    """Ask the database for its PostGIS version; raises on failure or after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        async with pool.acquire(timeout=timeout_s) as conn:
            postgis = await conn.fetchval("SELECT postgis_lib_version()")
            revision = await conn.fetchval(
                "SELECT version_num FROM alembic_version LIMIT 1"
                if await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
                else "SELECT NULL"
            )
    return {"postgis": postgis, "schema_revision": revision}
