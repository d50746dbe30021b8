"""Emergency workflow: events (Last-Event-ID), warning areas per level, incident assignment,
camera view sectors, one active warning per run/level/hazard.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 05:30:00
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENT_FUNCTIONS = """
-- Every stored event is announced on onemap_events.  The payload goes along when it fits
-- in a notification (8000 bytes); otherwise listeners read the row by id.
CREATE OR REPLACE FUNCTION onemap_event_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    msg := json_build_object(
        'id', NEW.id, 'type', NEW.type, 'at', NEW.at, 'payload', NEW.payload)::text;
    IF octet_length(msg) > 7900 THEN
        msg := json_build_object('id', NEW.id, 'type', NEW.type, 'at', NEW.at)::text;
    END IF;
    PERFORM pg_notify('onemap_events', msg);
    RETURN NULL;
END $$;

-- As in 0001, plus a stored layer_changed event (so clients can resume past it).
CREATE OR REPLACE FUNCTION onemap_layer_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    INSERT INTO layer_versions (layer, version, changed_at) VALUES (TG_TABLE_NAME, 1, now())
    ON CONFLICT (layer) DO UPDATE
        SET version = layer_versions.version + 1, changed_at = now()
    RETURNING version INTO v;
    PERFORM pg_notify('onemap_layers', TG_TABLE_NAME);
    INSERT INTO events (type, payload)
    VALUES ('layer_changed', json_build_object('layer', TG_TABLE_NAME, 'version', v)::jsonb);
    RETURN NULL;
END $$;

-- A risk run that reaches done/failed is announced once, however its code notifies.
CREATE OR REPLACE FUNCTION onemap_run_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, payload)
    VALUES ('run_finished', json_build_object(
        'run_id', NEW.id, 'model', NEW.model, 'status', NEW.status,
        'summary', NEW.summary)::jsonb);
    RETURN NULL;
END $$;

-- The view sector of a camera: the camera point plus an arc of radius range_m (metres) from
-- heading_deg - fov_deg/2 to heading_deg + fov_deg/2 (degrees clockwise from north), one
-- vertex every <= 5 degrees; a full circle when fov >= 360 or no heading.  EPSG:4326.
CREATE OR REPLACE FUNCTION onemap_view_sector(
    pt geometry, heading_deg double precision, fov_deg double precision,
    range_m double precision
) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN pt IS NULL OR range_m IS NULL OR range_m <= 0 THEN NULL
        WHEN heading_deg IS NULL OR fov_deg IS NULL OR fov_deg >= 360 THEN
            ST_Buffer(pt::geography, range_m, 'quad_segs=16')::geometry
        WHEN fov_deg <= 0 THEN NULL
        ELSE ST_MakePolygon(ST_MakeLine(
            ARRAY[pt]
            || ARRAY(
                SELECT ST_Project(
                    pt::geography, range_m,
                    radians(heading_deg - fov_deg / 2 + fov_deg * i / n)
                )::geometry
                FROM (SELECT greatest(2, ceil(fov_deg / 5)::int) AS n) k,
                     generate_series(0, k.n) AS i
                ORDER BY i
            )
            || ARRAY[pt]))
    END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_at", "events", ["at"], unique=False)
    op.create_geospatial_table(
        "warning_areas",
        sa.Column("warning_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("cells", sa.Integer(), nullable=False),
        sa.Column("area_km2", sa.Float(precision=53), nullable=False),
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
        sa.CheckConstraint(
            "level IN ('blue', 'yellow', 'orange', 'red')",
            name=op.f("ck_warning_areas_level_enum"),
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_areas_warning_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("warning_id", "level", name=op.f("pk_warning_areas")),
    )
    op.add_column("warnings", sa.Column("title", sa.Text(), nullable=True))
    op.execute(
        "ALTER TABLE warnings DROP CONSTRAINT ck_warnings_hazard_enum, ADD CONSTRAINT "
        "ck_warnings_hazard_enum CHECK (hazard IN ('flood', 'landslide', 'rainstorm'))"
    )
    # Re-issuing the same warning (run, level, hazard) while it is active is idempotent.
    op.create_index(
        "uq_warnings_active_issue",
        "warnings",
        ["run_id", "level", "hazard"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.add_column("incidents", sa.Column("community_code", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("assigned_worker", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("assigned_phone", sa.Text(), nullable=True))
    op.create_index("ix_incidents_community_code", "incidents", ["community_code"])
    op.execute(EVENT_FUNCTIONS)
    op.execute(
        "CREATE TRIGGER trg_events_notify AFTER INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION onemap_event_notify()"
    )
    op.execute(
        "CREATE TRIGGER trg_risk_runs_finished_ins AFTER INSERT ON risk_runs FOR EACH ROW "
        "WHEN (NEW.status IN ('done', 'failed')) EXECUTE FUNCTION onemap_run_finished()"
    )
    op.execute(
        "CREATE TRIGGER trg_risk_runs_finished_upd AFTER UPDATE OF status ON risk_runs "
        "FOR EACH ROW WHEN (NEW.status IN ('done', 'failed') "
        "AND OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION onemap_run_finished()"
    )
    op.execute(
        "CREATE INDEX ix_cameras_view_sector ON cameras USING gist "
        "(onemap_view_sector(geom, heading_deg, fov_deg, range_m))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_cameras_view_sector")
    op.execute("DROP TRIGGER IF EXISTS trg_risk_runs_finished_upd ON risk_runs")
    op.execute("DROP TRIGGER IF EXISTS trg_risk_runs_finished_ins ON risk_runs")
    op.execute("DROP TRIGGER IF EXISTS trg_events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS onemap_run_finished()")
    op.execute("DROP FUNCTION IF EXISTS onemap_event_notify()")
    op.execute("DROP FUNCTION IF EXISTS onemap_view_sector(geometry, float8, float8, float8)")
    op.execute(
        """
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
    )
    op.drop_index("ix_incidents_community_code", table_name="incidents")
    op.drop_column("incidents", "assigned_phone")
    op.drop_column("incidents", "assigned_worker")
    op.drop_column("incidents", "community_code")
    op.drop_index("uq_warnings_active_issue", table_name="warnings")
    op.execute(
        "ALTER TABLE warnings DROP CONSTRAINT ck_warnings_hazard_enum, ADD CONSTRAINT "
        "ck_warnings_hazard_enum CHECK (hazard IN ('flood', 'landslide'))"
    )
    op.drop_column("warnings", "title")
    op.drop_table("warning_areas")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
