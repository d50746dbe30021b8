"""PostgreSQL for tests: throw-away clusters, free ports, demo databases cloned from the
migrated template."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from layers.pgcluster import LocalCluster, replace_database

REPO = Path(__file__).resolve().parents[2]
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


def drop_database(admin_url: str, name: str) -> None:
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

    drop_database(admin_url, name)
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
        drop_database(admin_url, name)


def shared_data_dir() -> Path:
    """``../shared/data`` (or ``$ONEMAP_SHARED_DATA``); real public data, read in place."""
    return Path(os.environ.get("ONEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
