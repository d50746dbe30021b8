"""The geocoder's lookup keys on standard addresses, kept by PostgreSQL.

Generated columns (bare house number, building and room; the place, i.e. the estate or
road#number; whether the row is a house) with B-tree indexes, so geocoding looks rows up
in the database instead of holding every address in each server worker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _bare(column: str) -> str:
    return f"regexp_replace(upper(normalize(coalesce({column}, ''), NFKC)), '[^0-9A-Z-]', '', 'g')"


#: The levels a geocode falls back to (their representative address is looked up by name).
FALLBACKS = ("road", "community", "street", "district")

#: The statements as of this revision (frozen).
CREATE = (
    f"""
ALTER TABLE addresses
    ADD COLUMN number_key TEXT GENERATED ALWAYS AS ({_bare("house_number")}) STORED,
    ADD COLUMN building_key TEXT GENERATED ALWAYS AS ({_bare("building")}) STORED,
    ADD COLUMN room_key TEXT GENERATED ALWAYS AS ({_bare("room")}) STORED,
    ADD COLUMN place_key TEXT GENERATED ALWAYS AS
        (coalesce(nullif(estate, ''), coalesce(road, '') || '#' || {_bare("house_number")})) STORED,
    ADD COLUMN is_house BOOLEAN GENERATED ALWAYS AS
        ({_bare("room")} = '' AND coalesce(unit, '') = '') STORED
    """,
    "CREATE INDEX ix_addresses_full_address ON addresses (full_address)",
    "CREATE INDEX ix_addresses_rooms ON addresses (place_key, building_key, room_key) "
    "WHERE room_key <> ''",
    "CREATE INDEX ix_addresses_houses ON addresses (place_key, building_key) WHERE is_house",
    "CREATE INDEX ix_addresses_numbers ON addresses (road, number_key) "
    "WHERE is_house AND number_key <> ''",
    *(f"CREATE INDEX ix_addresses_{c} ON addresses ({c})" for c in FALLBACKS),
)


def upgrade() -> None:
    for statement in CREATE:
        op.execute(statement)


def downgrade() -> None:
    for name in ("numbers", "houses", "rooms", "full_address", *FALLBACKS):
        op.execute(f"DROP INDEX IF EXISTS ix_addresses_{name}")
    op.execute(
        "ALTER TABLE addresses DROP COLUMN is_house, DROP COLUMN place_key, "
        "DROP COLUMN room_key, DROP COLUMN building_key, DROP COLUMN number_key"
    )
