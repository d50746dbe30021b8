"""The async PostgreSQL pool (asyncpg), opened in the app's lifespan."""

from __future__ import annotations

import asyncio
import json
import time
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


class DeadlineExceeded(TimeoutError):
    """The time allowed for a whole request's statements has run out."""


class Deadline:
    """A time budget shared by the statements of one request.

    PostgreSQL's ``statement_timeout`` bounds each statement on its own, so a request that
    runs two slow statements (a page and its count) could hold a connection for twice the
    limit; :meth:`arm` sets the timeout of the next statement to what is left of the budget.
    Use it inside a transaction: the setting is ``SET LOCAL`` and ends with it.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining_s(self) -> float:
        return self.end - time.monotonic()

    async def arm(self, conn: asyncpg.Connection) -> None:
        """Give the next statement on ``conn`` (in a transaction) at most the time left."""
        left_ms = int(self.remaining_s() * 1000)
        if left_ms <= 0:
            raise DeadlineExceeded(f"the request used up its {self.seconds:g} s")
        await conn.execute("SELECT set_config('statement_timeout', $1, true)", f"{left_ms}ms")


async def _server_info(conn: asyncpg.Connection) -> dict[str, Any]:
    postgis = await conn.fetchval("SELECT postgis_lib_version()")
    revision = await conn.fetchval(
        "SELECT version_num FROM alembic_version LIMIT 1"
        if await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        else "SELECT NULL"
    )
    return {"postgis": postgis, "schema_revision": revision}


class HealthConnection:
    """One connection of its own for the readiness check, outside the pool.

    A pool saturated by slow reads must not make ``/health`` report the database down: the
    check asks the database through this connection, opened in the lifespan (or at the first
    check when the database was down then) and opened again after it is lost.  Checks are
    serialised; each gives up after ``timeout_s``.
    """

    def __init__(self, settings: Settings):
        self.url = settings.effective_database_url
        self.conn: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()

    async def open(self, timeout_s: float) -> None:
        """Connect now if the database answers; a failure is left for :meth:`check`."""
        try:
            async with self.lock, asyncio.timeout(timeout_s):
                await self._connect(timeout_s)
        except Exception:  # noqa: S110 - down at start-up: the first check reconnects
            pass

    async def _connect(self, timeout_s: float) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(
                self.url,
                timeout=timeout_s,
                command_timeout=timeout_s,
                server_settings={"application_name": "onemap-health"},
            )
        return self.conn

    async def check(self, timeout_s: float) -> dict[str, Any]:
        """PostGIS version and schema revision; raises on failure or after ``timeout_s``."""
        async with asyncio.timeout(timeout_s), self.lock:
            while True:
                reused = self.conn is not None and not self.conn.is_closed()
                try:
                    conn = await self._connect(timeout_s)
                    return await _server_info(conn)
                except Exception:
                    await self._drop()
                    if not reused:
                        raise
                    # The kept connection was lost (a database restart, an idle timeout):
                    # one new connection decides, within the same time budget.
                except BaseException:  # cancelled or timed out mid-query: state unknown
                    await self._drop()
                    raise

    async def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()  # never waits on a dead or busy server

    async def close(self) -> None:
        async with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception:
                conn.terminate()
