"""Alembic migrations: one head, up/down/up round trips, and the generated tile geometry."""

from __future__ import annotations

import math

import psycopg
from alembic import command
from alembic.script import ScriptDirectory

from layers.migrate import alembic_config, current_revision, head_revision, upgrade


def test_single_head_and_round_trip(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(db_url))
    assert len(script.get_heads()) == 1, f"several migration heads: {script.get_heads()}"
    head = head_revision()
    assert current_revision(db_url) == head  # the template is migrated to head
    command.downgrade(alembic_config(db_url), "0001")
    assert current_revision(db_url) == "0001"
    with psycopg.connect(db_url) as conn:
        n = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'geom_3857'"
        ).fetchone()
    assert n is not None and n[0] == 0
    upgrade(db_url)
    assert current_revision(db_url) == head


def test_tile_geometry_follows_geom(db_url: str) -> None:
    """``geom_3857`` is computed by PostgreSQL on insert and update, never written by us."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO roads (code, name, class, geom) VALUES ('R1', 'x', 'primary', "
            "ST_GeomFromText('MULTILINESTRING((113.4 22.5, 113.41 22.51))', 4326))"
        )
        x0 = conn.execute("SELECT ST_XMin(geom_3857) FROM roads WHERE code = 'R1'").fetchone()
        conn.execute(
            "UPDATE roads SET geom = ST_GeomFromText('MULTILINESTRING((0 0, 1 1))', 4326) "
            "WHERE code = 'R1'"
        )
        row = conn.execute(
            "SELECT ST_SRID(geom_3857), ST_XMin(geom_3857), ST_YMax(geom_3857) FROM roads"
        ).fetchone()
    r_m = 6378137.0  # Web Mercator sphere radius
    assert x0 is not None and abs(x0[0] - r_m * math.radians(113.4)) < 1e-3
    assert row is not None and row[0] == 3857 and row[1] == 0.0
    y_1n = r_m * math.log(math.tan(math.pi / 4 + math.radians(1.0) / 2))
    assert abs(row[2] - y_1n) < 1e-3
