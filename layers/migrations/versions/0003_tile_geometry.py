"""Generated Web Mercator geometry (geom_3857) on every layer table, for vector tiles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 05:35:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Layer tables and their geometry types when this revision was written (frozen).
TABLES = {
    "admin_areas": "MULTIPOLYGON",
    "grids": "MULTIPOLYGON",
    "addresses": "POINT",
    "buildings": "POLYGON",
    "venues": "POINT",
    "cameras": "POINT",
    "hazard_sites": "GEOMETRY",
    "rivers": "MULTILINESTRING",
    "roads": "MULTILINESTRING",
    "shelters": "POINT",
    "rescue_teams": "POINT",
    "sensors": "POINT",
    "incidents": "POINT",
    "warnings": "MULTIPOLYGON",
}


def upgrade() -> None:
    for table, geom_type in TABLES.items():
        op.execute(
            f'ALTER TABLE public."{table}" ADD COLUMN geom_3857 geometry({geom_type}, 3857) '
            "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE public."{table}" DROP COLUMN geom_3857')
