"""Camera view sectors stored (a generated column with its own GiST index) instead of an
expression index: the index recheck then reads the polygon instead of rebuilding it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 05:50:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_cameras_view_sector")
    op.execute(
        "ALTER TABLE cameras ADD COLUMN view_sector geometry(Polygon, 4326) GENERATED ALWAYS AS "
        "(onemap_view_sector(geom, heading_deg, fov_deg, range_m)) STORED"
    )
    op.execute("CREATE INDEX ix_cameras_view_sector ON cameras USING gist (view_sector)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_cameras_view_sector")
    op.execute("ALTER TABLE cameras DROP COLUMN IF EXISTS view_sector")
    op.execute(
        "CREATE INDEX ix_cameras_view_sector ON cameras USING gist "
        "(onemap_view_sector(geom, heading_deg, fov_deg, range_m))"
    )
