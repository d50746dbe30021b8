"""``onemap db start|stop|status|url`` on a real project-local cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from layers.migrate import head_revision
from tests.support.pg import free_port, make_tempdir

ONEMAP = str(Path(sys.executable).parent / "onemap")


def _onemap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "ONEMAP_DATABASE_URL"}
    return subprocess.run(
        [ONEMAP, *args], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cluster_env() -> dict[str, str]:
    root = make_tempdir("onemap-cli-")
    env = {"ONEMAP_PGDATA": str(root / "pg"), "ONEMAP_PGPORT": str(free_port())}
    yield env
    _onemap(env, "db", "stop")
    subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.mark.slow
def test_db_start_twice_is_harmless(cluster_env: dict[str, str]) -> None:
    first = _onemap(cluster_env, "db", "start")
    assert first.returncode == 0, first.stderr
    assert "started" in first.stderr
    second = _onemap(cluster_env, "db", "start")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr

    status = _onemap(cluster_env, "db", "status")
    assert status.returncode == 0 and "database up" in status.stderr

    url = _onemap(cluster_env, "db", "url")
    assert url.stdout.strip().endswith(f":{cluster_env['ONEMAP_PGPORT']}/onemap")

    migrate = _onemap(cluster_env, "db", "migrate")
    head = head_revision()
    assert head is not None and head != "0001"
    assert migrate.returncode == 0 and f"revision {head}" in migrate.stderr

    stop = _onemap(cluster_env, "db", "stop")
    assert stop.returncode == 0 and "stopped" in stop.stderr
    down = _onemap(cluster_env, "db", "status")
    assert down.returncode == 1 and "database down" in down.stderr


def test_db_start_refuses_taken_port(cluster_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(cluster_env["ONEMAP_PGPORT"])))
        squatter.listen()
        result = _onemap(cluster_env, "db", "start")
    assert result.returncode == 1
    assert "taken by another program" in result.stderr
    # Nothing was initialised for a cluster that could not start.
    assert not (Path(cluster_env["ONEMAP_PGDATA"]) / "PG_VERSION").exists()
