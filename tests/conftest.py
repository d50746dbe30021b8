"""Shared fixtures: a throw-away PostGIS cluster per test session, a migrated template
database, and a fresh database per test (or ``ONEMAP_TEST_DATABASE_URL``). Helpers live in
``tests/support``."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.migrate import upgrade
from layers.pgcluster import ensure_database, replace_database
from tests.support.pg import (
    destroy_cluster,
    drop_database,
    free_port,
    shared_data_dir,
    throwaway_cluster,
)
from tests.support.servers import LiveServer


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of the ``postgres`` database on the test server."""
    external = os.environ.get("ONEMAP_TEST_DATABASE_URL")
    if external:
        yield replace_database(external, "postgres")
        return
    cluster = throwaway_cluster()
    try:
        yield cluster.url("postgres")
    finally:
        destroy_cluster(cluster)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> str:
    """A database with PostGIS and the OneMap schema, used as the template of each test's."""
    name = f"onemap_tpl_{os.getpid()}"
    drop_database(pg_admin_url, name)
    ensure_database(pg_admin_url, name, postgis=True)
    upgrade(replace_database(pg_admin_url, name))
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield replace_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, env="test", log_json=True, data_dir=tmp_path / "data")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app (lifespan run, real database)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
def live_server_factory() -> Iterator[type[LiveServer]]:
    started: list[LiveServer] = []

    class _Factory(LiveServer):
        def __init__(self, env: dict[str, str]):
            super().__init__(env, free_port())
            started.append(self)

    yield _Factory
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    # realdata tests run in CI: a missing folder is a failure, not a skip.
    assert (path / "MANIFEST.md").exists(), f"real data folder not found at {path}"
    return path
