"""API keys end to end: CLI creates, the API honours the role, revocation bites."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

import geo_service.auth as auth
from layers.keys import create_key, list_keys, revoke_key

ONEMAP = str(Path(sys.executable).parent / "onemap")


def _grid(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO admin_areas (code, name, level, geom) "
            "VALUES ('C1', '岐头社区', 'community', "
            "ST_Multi(ST_MakeEnvelope(113.3, 22.4, 113.5, 22.6, 4326)))"
        )
        conn.execute(
            "INSERT INTO grids (code, name, community_code, worker_name, worker_phone, population, "
            "geom) VALUES ('G1', '第1网格', 'C1', '王芳', '138 0000 0001', 1200, "
            "ST_Multi(ST_MakeEnvelope(113.3, 22.4, 113.5, 22.6, 4326)))"
        )


async def _grid_props(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/collections/grids/items/G1", headers=headers)


def test_cli_creates_lists_and_revokes(db_url: str) -> None:
    env = {**os.environ, "ONEMAP_DATABASE_URL": db_url}
    r = subprocess.run(
        [ONEMAP, "keys", "create", "--role", "operator", "--name", "值班员"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("om_")
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT prefix, key_hash, salt FROM api_keys").fetchall()
        audit = conn.execute("SELECT action FROM audit_log").fetchall()
    assert len(stored) == 1
    secret = key.split("_", 2)[2]
    assert secret not in "".join(stored[0])  # only the hash is stored
    assert ("key.create",) in audit
    listed = subprocess.run([ONEMAP, "keys", "list"], env=env, capture_output=True, text=True)
    assert stored[0][0] in listed.stderr and secret not in listed.stderr + listed.stdout
    bad = subprocess.run(
        [ONEMAP, "keys", "create", "--role", "root", "--name", "x"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "role must be one of" in bad.stderr
    rv = subprocess.run(
        [ONEMAP, "keys", "revoke", stored[0][0]], env=env, capture_output=True, text=True
    )
    assert rv.returncode == 0
    assert list_keys(db_url)[0].revoked_at is not None


async def test_roles_from_keys(client: httpx.AsyncClient, db_url: str) -> None:
    _grid(db_url)
    anonymous = await _grid_props(client, {})
    assert anonymous.status_code == 200
    assert "worker_phone" not in anonymous.json()["properties"]

    viewer_key, _ = create_key(db_url, "大屏", "viewer")
    operator_key, _ = create_key(db_url, "应急值班", "operator")
    viewer = await _grid_props(client, {"Authorization": f"Bearer {viewer_key}"})
    assert "worker_phone" not in viewer.json()["properties"]
    operator = await _grid_props(client, {"X-API-Key": operator_key})
    assert operator.status_code == 200
    assert operator.json()["properties"]["worker_phone"] == "138 0000 0001"
    bearer = await _grid_props(client, {"Authorization": f"Bearer {operator_key}"})
    assert bearer.json()["properties"]["worker_name"] == "王芳"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer om_deadbeef_" + "x" * 32},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "om_deadbeef_' OR 1=1 --"},
    ],
)
async def test_bad_keys_are_401(
    client: httpx.AsyncClient, db_url: str, headers: dict[str, str]
) -> None:
    r = await _grid_props(client, headers)
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_api_key"


async def test_revoked_key_stops_working(
    client: httpx.AsyncClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "KEY_CACHE_S", 0.2)
    _grid(db_url)
    key, record = create_key(db_url, "临时", "operator")
    assert (await _grid_props(client, {"X-API-Key": key})).status_code == 200
    revoke_key(db_url, record.prefix)
    await asyncio.sleep(0.3)
    assert (await _grid_props(client, {"X-API-Key": key})).status_code == 401
