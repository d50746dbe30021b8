"""Alembic migrations: one head, up/down/up round trips, and the generated tile geometry."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import MetaData, create_engine, pool

from layers.catalog import CATALOG, Catalog, Property
from layers.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    sqlalchemy_url,
    upgrade,
)
from layers.schema import build_metadata


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


def schema_drift(db_url: str, metadata: MetaData) -> list[Any]:
    """Alembic's differences between a migrated database and a metadata (PostGIS's own
    tables, e.g. ``spatial_ref_sys``, left out as in the migration environment)."""
    engine = create_engine(sqlalchemy_url(db_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={"include_object": alembic_helpers.include_object, "compare_type": True},
            )
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_catalog_schema(db_url: str) -> None:
    """The tables the catalog describes are exactly what the migrations build."""
    assert schema_drift(db_url, build_metadata()) == []


def test_drift_test_sees_a_catalog_column_without_migration(db_url: str) -> None:
    """A property added to a layer of the catalog, with no migration, is reported."""
    venues = CATALOG["venues"]
    extra = Property("opening_hours", "string", "Opening hours, e.g. 08:00-18:00")
    changed = Catalog(
        tuple(
            dataclasses.replace(lyr, properties=(*lyr.properties, extra))
            if lyr.id == venues.id
            else lyr
            for lyr in CATALOG.values()
        )
    )
    diffs = schema_drift(db_url, build_metadata(changed))
    added = [d for d in diffs if d[0] == "add_column"]
    assert [(d[2], d[3].name) for d in added] == [(venues.table, "opening_hours")], diffs
