"""Layers schema: every layer table, readings, risk runs/cells, keys, audit, versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:30:51.946972
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Layer tables as of this revision (a migration is history: this list stays frozen).
LAYER_TABLES = (
    "admin_areas",
    "grids",
    "addresses",
    "buildings",
    "venues",
    "cameras",
    "hazard_sites",
    "rivers",
    "roads",
    "shelters",
    "rescue_teams",
    "sensors",
    "incidents",
    "warnings",
)

TRIGGER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION onemap_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- One row per layer whose version moves on every write; tile caches key on it and
-- LISTEN onemap_layers tells every server worker at once.
CREATE OR REPLACE FUNCTION onemap_layer_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO layer_versions (layer, version, changed_at) VALUES (TG_TABLE_NAME, 1, now())
    ON CONFLICT (layer) DO UPDATE
        SET version = layer_versions.version + 1, changed_at = now();
    PERFORM pg_notify('onemap_layers', TG_TABLE_NAME);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "admin_areas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"level\" IN ('district', 'street', 'community')",
            name=op.f("ck_admin_areas_level_enum"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["admin_areas.code"],
            name=op.f("fk_admin_areas_parent_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_areas")),
        sa.UniqueConstraint("code", name=op.f("uq_admin_areas_code")),
    )
    op.create_geospatial_index(
        "ix_admin_areas_geom",
        "admin_areas",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_admin_areas_level", "admin_areas", ["level"], unique=False)
    op.create_index("ix_admin_areas_parent_code", "admin_areas", ["parent_code"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("salt", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'operator', 'admin')", name=op.f("ck_api_keys_role_enum")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("client_addr", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_geospatial_table(
        "hazard_sites",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("threat_people", sa.BigInteger(), nullable=True),
        sa.Column("threat_property", sa.Float(precision=53), nullable=True),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"kind\" IN ('landslide', 'collapse', 'debris_flow', 'subsidence', 'waterlogging')",
            name=op.f("ck_hazard_sites_kind_enum"),
        ),
        sa.CheckConstraint(
            "\"level\" IN ('small', 'medium', 'large', 'huge')",
            name=op.f("ck_hazard_sites_level_enum"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_sites")),
        sa.UniqueConstraint("code", name=op.f("uq_hazard_sites_code")),
    )
    op.create_geospatial_index(
        "ix_hazard_sites_geom",
        "hazard_sites",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_hazard_sites_grid_code", "hazard_sites", ["grid_code"], unique=False)
    op.create_index("ix_hazard_sites_kind", "hazard_sites", ["kind"], unique=False)
    op.create_index("ix_hazard_sites_level", "hazard_sites", ["level"], unique=False)
    op.create_table(
        "layer_versions",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_layer_versions")),
    )
    op.create_table(
        "rasters",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bands", sa.Integer(), nullable=False),
        sa.Column("dtype", sa.Text(), nullable=False),
        sa.Column("nodata", sa.Float(precision=53), nullable=True),
        sa.Column("bounds_4326", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rasters")),
    )
    op.create_geospatial_table(
        "rescue_teams",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=True),
        sa.Column("specialty", sa.Text(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rescue_teams")),
        sa.UniqueConstraint("code", name=op.f("uq_rescue_teams_code")),
    )
    op.create_geospatial_index(
        "ix_rescue_teams_geom",
        "rescue_teams",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_rescue_teams_grid_code", "rescue_teams", ["grid_code"], unique=False)
    op.create_table(
        "risk_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("scenario", sa.Text(), nullable=True),
        sa.Column(
            "inputs", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "timings", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "summary", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')",
            name=op.f("ck_risk_runs_status_enum"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_runs")),
    )
    op.create_geospatial_table(
        "rivers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("class", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTILINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rivers")),
        sa.UniqueConstraint("code", name=op.f("uq_rivers_code")),
    )
    op.create_geospatial_index(
        "ix_rivers_geom",
        "rivers",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "roads",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("class", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTILINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roads")),
        sa.UniqueConstraint("code", name=op.f("uq_roads_code")),
    )
    op.create_geospatial_index(
        "ix_roads_geom", "roads", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_table(
        "sensors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"kind\" IN ('rain_gauge', 'water_level')", name=op.f("ck_sensors_kind_enum")
        ),
        sa.CheckConstraint(
            "\"status\" IN ('online', 'offline')", name=op.f("ck_sensors_status_enum")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensors")),
        sa.UniqueConstraint("code", name=op.f("uq_sensors_code")),
    )
    op.create_geospatial_index(
        "ix_sensors_geom",
        "sensors",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_sensors_grid_code", "sensors", ["grid_code"], unique=False)
    op.create_index("ix_sensors_kind", "sensors", ["kind"], unique=False)
    op.create_index("ix_sensors_status", "sensors", ["status"], unique=False)
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("community_code", sa.Text(), nullable=True),
        sa.Column("worker_name", sa.Text(), nullable=True),
        sa.Column("worker_phone", sa.Text(), nullable=True),
        sa.Column("households", sa.BigInteger(), nullable=True),
        sa.Column("population", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["admin_areas.code"],
            name=op.f("fk_grids_community_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
        sa.UniqueConstraint("code", name=op.f("uq_grids_code")),
    )
    op.create_index("ix_grids_community_code", "grids", ["community_code"], unique=False)
    op.create_geospatial_index(
        "ix_grids_geom", "grids", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_table(
        "risk_cells",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("h3", sa.BigInteger(), nullable=False),
        sa.Column("res", sa.SmallInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.REAL(), nullable=True),
        sa.Column("factors", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("level BETWEEN 0 AND 4", name=op.f("ck_risk_cells_level_range")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["risk_runs.id"], name=op.f("fk_risk_cells_run_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "h3", name=op.f("pk_risk_cells")),
    )
    op.create_index("ix_risk_cells_h3", "risk_cells", ["h3"], unique=False)
    op.create_table(
        "sensor_readings",
        sa.Column("sensor_code", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["sensor_code"],
            ["sensors.code"],
            name=op.f("fk_sensor_readings_sensor_code"),
            ondelete="CASCADE",
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("sensor_code", "observed_at", name=op.f("pk_sensor_readings")),
    )
    op.create_index(
        "ix_sensor_readings_observed_at", "sensor_readings", ["observed_at"], unique=False
    )
    op.create_geospatial_table(
        "warnings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("hazard", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_by", sa.Text(), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("exposure", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"hazard\" IN ('flood', 'landslide')", name=op.f("ck_warnings_hazard_enum")
        ),
        sa.CheckConstraint(
            "\"level\" IN ('blue', 'yellow', 'orange', 'red')", name=op.f("ck_warnings_level_enum")
        ),
        sa.CheckConstraint(
            "\"status\" IN ('active', 'lifted', 'expired')", name=op.f("ck_warnings_status_enum")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["risk_runs.id"], name=op.f("fk_warnings_run_id"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
        sa.UniqueConstraint("code", name=op.f("uq_warnings_code")),
    )
    op.create_geospatial_index(
        "ix_warnings_geom",
        "warnings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_warnings_level", "warnings", ["level"], unique=False)
    op.create_index("ix_warnings_status", "warnings", ["status"], unique=False)
    op.create_index("ix_warnings_valid_from", "warnings", ["valid_from"], unique=False)
    op.create_geospatial_table(
        "addresses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("full_address", sa.Text(), nullable=False),
        sa.Column("province", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("street", sa.Text(), nullable=True),
        sa.Column("community", sa.Text(), nullable=True),
        sa.Column("road", sa.Text(), nullable=True),
        sa.Column("house_number", sa.Text(), nullable=True),
        sa.Column("estate", sa.Text(), nullable=True),
        sa.Column("building", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("floor", sa.Text(), nullable=True),
        sa.Column("room", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"],
            ["grids.code"],
            name=op.f("fk_addresses_grid_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
        sa.UniqueConstraint("code", name=op.f("uq_addresses_code")),
    )
    op.create_geospatial_index(
        "ix_addresses_geom",
        "addresses",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_addresses_grid_code", "addresses", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "cameras",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("heading_deg", sa.Float(precision=53), nullable=True),
        sa.Column("fov_deg", sa.Float(precision=53), nullable=True),
        sa.Column("range_m", sa.Float(precision=53), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("\"kind\" IN ('gun', 'dome', 'ptz')", name=op.f("ck_cameras_kind_enum")),
        sa.CheckConstraint(
            "\"status\" IN ('online', 'offline')", name=op.f("ck_cameras_status_enum")
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"],
            ["grids.code"],
            name=op.f("fk_cameras_grid_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("code", name=op.f("uq_cameras_code")),
    )
    op.create_geospatial_index(
        "ix_cameras_geom",
        "cameras",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_cameras_grid_code", "cameras", ["grid_code"], unique=False)
    op.create_index("ix_cameras_kind", "cameras", ["kind"], unique=False)
    op.create_index("ix_cameras_status", "cameras", ["status"], unique=False)
    op.create_geospatial_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reporter", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"status\" IN ('open', 'in_progress', 'closed')", name=op.f("ck_incidents_status_enum")
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"],
            ["grids.code"],
            name=op.f("fk_incidents_grid_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("code", name=op.f("uq_incidents_code")),
    )
    op.create_geospatial_index(
        "ix_incidents_geom",
        "incidents",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_incidents_grid_code", "incidents", ["grid_code"], unique=False)
    op.create_index("ix_incidents_kind", "incidents", ["kind"], unique=False)
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"], unique=False)
    op.create_index("ix_incidents_status", "incidents", ["status"], unique=False)
    op.create_geospatial_table(
        "shelters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("capacity", sa.BigInteger(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("address_code", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"],
            ["grids.code"],
            name=op.f("fk_shelters_grid_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shelters")),
        sa.UniqueConstraint("code", name=op.f("uq_shelters_code")),
    )
    op.create_index("ix_shelters_address_code", "shelters", ["address_code"], unique=False)
    op.create_geospatial_index(
        "ix_shelters_geom",
        "shelters",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_shelters_grid_code", "shelters", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "venues",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("key_site", sa.Boolean(), nullable=True),
        sa.Column("capacity", sa.BigInteger(), nullable=True),
        sa.Column("address_code", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "\"category\" IN ('shop', 'school', 'kindergarten', 'hospital', 'clinic', 'elderly_care', 'religious_site', 'notice_board', 'market', 'shelter', 'hazardous_chemicals', 'restaurant', 'hotel', 'office', 'factory', 'government', 'police', 'fire_station', 'gas_station', 'park')",
            name=op.f("ck_venues_category_enum"),
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"],
            ["grids.code"],
            name=op.f("fk_venues_grid_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
        sa.UniqueConstraint("code", name=op.f("uq_venues_code")),
    )
    op.create_index("ix_venues_address_code", "venues", ["address_code"], unique=False)
    op.create_index("ix_venues_category", "venues", ["category"], unique=False)
    op.create_geospatial_index(
        "ix_venues_geom",
        "venues",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_venues_grid_code", "venues", ["grid_code"], unique=False)
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("address_code", sa.Text(), nullable=True),
        sa.Column("floors", sa.BigInteger(), nullable=True),
        sa.Column("use", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["address_code"],
            ["addresses.code"],
            name=op.f("fk_buildings_address_code"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buildings")),
        sa.UniqueConstraint("code", name=op.f("uq_buildings_code")),
    )
    op.create_index("ix_buildings_address_code", "buildings", ["address_code"], unique=False)
    op.create_geospatial_index(
        "ix_buildings_geom",
        "buildings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.execute(TRIGGER_FUNCTIONS)
    for t in LAYER_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{t}_updated_at BEFORE UPDATE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION onemap_touch_updated_at()"
        )
        op.execute(
            f"CREATE TRIGGER trg_{t}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {t} FOR EACH STATEMENT EXECUTE FUNCTION onemap_layer_changed()"
        )
        op.execute(f"INSERT INTO layer_versions (layer) VALUES ('{t}')")


def downgrade() -> None:
    op.drop_geospatial_index(
        "ix_buildings_geom", table_name="buildings", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_buildings_address_code", table_name="buildings")
    op.drop_geospatial_table("buildings")
    op.drop_index("ix_venues_grid_code", table_name="venues")
    op.drop_geospatial_index(
        "ix_venues_geom", table_name="venues", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_venues_category", table_name="venues")
    op.drop_index("ix_venues_address_code", table_name="venues")
    op.drop_geospatial_table("venues")
    op.drop_index("ix_shelters_grid_code", table_name="shelters")
    op.drop_geospatial_index(
        "ix_shelters_geom", table_name="shelters", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_shelters_address_code", table_name="shelters")
    op.drop_geospatial_table("shelters")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_index("ix_incidents_reported_at", table_name="incidents")
    op.drop_index("ix_incidents_kind", table_name="incidents")
    op.drop_index("ix_incidents_grid_code", table_name="incidents")
    op.drop_geospatial_index(
        "ix_incidents_geom", table_name="incidents", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("incidents")
    op.drop_index("ix_cameras_status", table_name="cameras")
    op.drop_index("ix_cameras_kind", table_name="cameras")
    op.drop_index("ix_cameras_grid_code", table_name="cameras")
    op.drop_geospatial_index(
        "ix_cameras_geom", table_name="cameras", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("cameras")
    op.drop_index("ix_addresses_grid_code", table_name="addresses")
    op.drop_geospatial_index(
        "ix_addresses_geom", table_name="addresses", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("addresses")
    op.drop_index("ix_warnings_valid_from", table_name="warnings")
    op.drop_index("ix_warnings_status", table_name="warnings")
    op.drop_index("ix_warnings_level", table_name="warnings")
    op.drop_geospatial_index(
        "ix_warnings_geom", table_name="warnings", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("warnings")
    op.drop_index("ix_sensor_readings_observed_at", table_name="sensor_readings")
    op.drop_table("sensor_readings")
    op.drop_index("ix_risk_cells_h3", table_name="risk_cells")
    op.drop_table("risk_cells")
    op.drop_geospatial_index(
        "ix_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_grids_community_code", table_name="grids")
    op.drop_geospatial_table("grids")
    op.drop_index("ix_sensors_status", table_name="sensors")
    op.drop_index("ix_sensors_kind", table_name="sensors")
    op.drop_index("ix_sensors_grid_code", table_name="sensors")
    op.drop_geospatial_index(
        "ix_sensors_geom", table_name="sensors", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("sensors")
    op.drop_geospatial_index(
        "ix_roads_geom", table_name="roads", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("roads")
    op.drop_geospatial_index(
        "ix_rivers_geom", table_name="rivers", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("rivers")
    op.drop_table("risk_runs")
    op.drop_index("ix_rescue_teams_grid_code", table_name="rescue_teams")
    op.drop_geospatial_index(
        "ix_rescue_teams_geom",
        table_name="rescue_teams",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("rescue_teams")
    op.drop_table("rasters")
    op.drop_table("layer_versions")
    op.drop_index("ix_hazard_sites_level", table_name="hazard_sites")
    op.drop_index("ix_hazard_sites_kind", table_name="hazard_sites")
    op.drop_index("ix_hazard_sites_grid_code", table_name="hazard_sites")
    op.drop_geospatial_index(
        "ix_hazard_sites_geom",
        table_name="hazard_sites",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("hazard_sites")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_index("ix_admin_areas_parent_code", table_name="admin_areas")
    op.drop_index("ix_admin_areas_level", table_name="admin_areas")
    op.drop_geospatial_index(
        "ix_admin_areas_geom", table_name="admin_areas", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("admin_areas")
    op.execute("DROP FUNCTION IF EXISTS onemap_layer_changed()")
    op.execute("DROP FUNCTION IF EXISTS onemap_touch_updated_at()")
