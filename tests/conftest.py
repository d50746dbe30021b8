"""Shared fixtures: a throw-away PostGIS cluster per test session, a migrated template
database, and a fresh database per test (or ``ONEMAP_TEST_DATABASE_URL``)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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
from layers.pgcluster import LocalCluster, ensure_database, replace_database

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tempdir(prefix: str) -> Path:
    """A short temp dir the ``postgres`` user can use (socket paths must stay short)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o755)
    return path


def throwaway_cluster(prefix: str = "onemap-t-", tcp: bool = False) -> LocalCluster:
    """A new, started, fsync-off cluster (unix socket only unless ``tcp``)."""
    root = make_tempdir(prefix)
    cluster = LocalCluster(
        root / "data",
        port=free_port(),
        host="127.0.0.1" if tcp else None,
        socket_dir=root / "s",
        fsync=False,
    )
    cluster.start()
    return cluster


def destroy_cluster(cluster: LocalCluster) -> None:
    cluster.destroy()
    shutil.rmtree(cluster.pgdata.parent, ignore_errors=True)


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
    _drop(pg_admin_url, name)
    ensure_database(pg_admin_url, name, postgis=True)
    upgrade(replace_database(pg_admin_url, name))
    yield name
    _drop(pg_admin_url, name)


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def demo_database(
    admin_url: str, template: str, name: str, data_dir: Path, scale: float | None, seed: int
) -> Iterator[str]:
    """A database ``name`` cloned from the template and filled with a demo city; dropped after.

    For module-scoped fixtures that share one (read-mostly) demo city across tests;
    ``scale=None`` leaves it empty.
    """
    from layers.seed import load_demo

    _drop(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    url = replace_database(admin_url, name)
    try:
        if scale is not None:
            load_demo(url, data_dir, scale=scale, seed=seed)
        yield url
    finally:
        _drop(admin_url, name)


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
    _drop(pg_admin_url, name)


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


class LiveServer:
    """``onemap serve`` in a real process on a free port."""

    def __init__(self, env: dict[str, str], port: int):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(BIN / "onemap"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(self.base_url + "/openapi.json", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start in 30 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def demo_server(
    admin_url: str,
    template: str,
    name: str,
    data_dir: Path,
    scale: float,
    seed: int,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, LiveServer]]:
    """A demo city (see :func:`demo_database`) behind ``onemap serve``: (database URL,
    server); the server is stopped and the database dropped afterwards."""
    with demo_database(admin_url, template, name, data_dir, scale, seed) as url:
        base_env = {
            "ONEMAP_DATABASE_URL": url,
            "ONEMAP_DATA_DIR": str(data_dir),
            "ONEMAP_LOG_LEVEL": "ERROR",
        }
        server = LiveServer({**base_env, **(env or {})}, free_port())
        try:
            yield url, server
        finally:
            server.stop()


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


def shared_data_dir() -> Path:
    """``../shared/data`` (or ``$ONEMAP_SHARED_DATA``); real public data, read in place."""
    return Path(os.environ.get("ONEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    # realdata tests run in CI: a missing folder is a failure, not a skip.
    assert (path / "MANIFEST.md").exists(), f"real data folder not found at {path}"
    return path
