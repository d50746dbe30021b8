"""The database schema, as SQLAlchemy/GeoAlchemy2 tables.

Layer tables are *derived from the catalog* (one column per catalog property, plus
``id``, ``geom`` in EPSG:4326 and ``updated_at``), so a property is declared once.
The other tables (readings, risk runs and cells, keys, audit, events, warning areas) are
declared here.
Alembic migrations in ``layers/migrations`` are the frozen history of this schema.
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from layers.catalog import CATALOG, Catalog, Layer, PropertyType

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

SQL_TYPES: dict[PropertyType, type[TypeEngine]] = {
    "string": Text,
    "integer": BigInteger,
    "number": Float,
    "boolean": Boolean,
    "datetime": DateTime,
}

#: (table, column) → referenced "table.column".  Deferrable, so a whole layer can be
#: replaced inside one transaction and the references are checked at commit.
FOREIGN_KEYS: dict[tuple[str, str], str] = {
    ("admin_areas", "parent_code"): "admin_areas.code",
    ("grids", "community_code"): "admin_areas.code",
    ("addresses", "grid_code"): "grids.code",
    ("buildings", "address_code"): "addresses.code",
    ("venues", "grid_code"): "grids.code",
    ("cameras", "grid_code"): "grids.code",
    ("shelters", "grid_code"): "grids.code",
    ("incidents", "grid_code"): "grids.code",
    ("warnings", "run_id"): "risk_runs.id",
    ("residents", "address_code"): "addresses.code",
    ("residents", "grid_code"): "grids.code",
}


#: Generated EPSG:3857 copy of ``geom`` in every layer table, read by the vector tiles.
TILE_GEOM = "geom_3857"


def extra_columns(table: str) -> tuple[Column | CheckConstraint, ...]:
    """Columns of a layer table that are not public properties."""
    if table == "warnings":
        return (
            Column("exposure", JSONB, nullable=True),
            Column(
                "created_at", DateTime(timezone=True), server_default=func.now(), nullable=False
            ),
            Column("lifted_at", DateTime(timezone=True), nullable=True),
            Column("title", Text, nullable=True),
        )
    if table == "cameras":
        # The view sector (SQL function onemap_view_sector, migrations 0002/0003), EPSG:4326.
        return (
            Column(
                "view_sector",
                Geometry("POLYGON", srid=4326, spatial_index=False),
                Computed("onemap_view_sector(geom, heading_deg, fov_deg, range_m)", persisted=True),
                nullable=True,
            ),
        )
    if table == "incidents":
        # Assignment made when the incident is reported (grid → community and grid worker),
        # and where it stands in the loop 上报 → … → 结案 against its deadline.
        stages = ", ".join(f"'{v}'" for v in INCIDENT_STAGES)
        return (
            Column("community_code", Text, nullable=True, index=True),
            Column("assigned_worker", Text, nullable=True),
            Column("assigned_phone", Text, nullable=True),
            Column("stage", Text, nullable=False, server_default=INCIDENT_STAGES[0]),
            Column(
                "department_code",
                Text,
                ForeignKey("departments.code", ondelete="SET NULL"),
                nullable=True,
            ),
            Column("due_at", DateTime(timezone=True), nullable=True),
            Column("closed_at", DateTime(timezone=True), nullable=True),
            Column("overdue_at", DateTime(timezone=True), nullable=True),
            CheckConstraint(f"stage IN ({stages})", name="stage_enum"),
        )
    if table == "addresses":
        # The keys the geocoding cascade looks up (layers/addresses/store.py), kept by
        # PostgreSQL on every write path: the bare number/letters of the house number,
        # building and room (``3栋`` → ``3``), the place (the estate, else road#number) and
        # whether the row is a house (no room, no unit) rather than a room.
        return tuple(
            Column(name, type_, Computed(expr, persisted=True), nullable=True)
            for name, type_, expr in ADDRESS_KEYS
        )
    return ()


def _bare(column: str) -> str:
    """SQL of an address component's bare number/letters, folded as the parser folds a
    query (width, case) before ``_key`` of the cascade: ``１２a号`` → ``12A``."""
    return f"regexp_replace(upper(normalize(coalesce({column}, ''), NFKC)), '[^0-9A-Z-]', '', 'g')"


#: The levels a geocode falls back to, whose representative address is looked up by name.
ADDRESS_FALLBACKS = ("road", "community", "street", "district")

#: (column, type, generated expression) of the address lookup keys.
ADDRESS_KEYS: tuple[tuple[str, Any, str], ...] = (
    ("number_key", Text, _bare("house_number")),
    ("building_key", Text, _bare("building")),
    ("room_key", Text, _bare("room")),
    (
        "place_key",
        Text,
        f"coalesce(nullif(estate, ''), coalesce(road, '') || '#' || {_bare('house_number')})",
    ),
    ("is_house", Boolean, f"{_bare('room')} = '' AND coalesce(unit, '') = ''"),
)


def _sql_type(p_type: PropertyType, name: str) -> TypeEngine:
    if p_type == "datetime":
        return DateTime(timezone=True)
    if p_type == "number":
        return Float(precision=53)
    if p_type == "integer" and name == "run_id":
        return BigInteger()
    return SQL_TYPES[p_type]()


def layer_table(layer: Layer, meta: MetaData) -> Table:
    """The PostGIS table of a catalog layer."""
    cols: list[Any] = [Column("id", BigInteger, Identity(), primary_key=True)]
    for p in layer.properties:
        fk = FOREIGN_KEYS.get((layer.table, p.name))
        args: list[object] = [_sql_type(p.type, p.name)]
        if fk:
            args.append(
                # NO ACTION (not SET NULL): replacing a referenced layer must not silently
                # unlink rows; the check runs at commit and fails the whole import.
                ForeignKey(fk, deferrable=True, initially="DEFERRED")
                if p.name != "run_id"
                else ForeignKey(fk, ondelete="SET NULL")
            )
        cols.append(
            Column(p.name, *args, nullable=not p.required, unique=(p.name == "code"))  # type: ignore[arg-type]
        )
        if p.enum:
            allowed = ", ".join("'" + v.replace("'", "''") + "'" for v in p.enum)
            cols.append(CheckConstraint(f'"{p.name}" IN ({allowed})', name=f"{p.name}_enum"))
    geom_type = layer.geometry_type.upper()
    cols.append(Column("geom", Geometry(geom_type, srid=4326, spatial_index=False), nullable=False))
    # A Web Mercator copy kept by PostgreSQL (never written by us): vector tiles would
    # otherwise re-project every feature of every tile (a quarter of a z14 tile's SQL).
    cols.append(
        Column(
            TILE_GEOM,
            Geometry(geom_type, srid=3857, spatial_index=False),
            Computed("ST_Transform(geom, 3857)", persisted=True),
        )
    )
    cols.extend(extra_columns(layer.table))
    cols.append(
        Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False)
    )
    table = Table(layer.table, meta, *cols)
    Index(f"ix_{layer.table}_geom", table.c.geom, postgresql_using="gist")
    for p in layer.properties:
        if p.name.endswith("_code") or p.name in ("category", "kind", "level", "status"):
            Index(f"ix_{layer.table}_{p.name}", table.c[p.name])
    if layer.time_field:
        Index(f"ix_{layer.table}_{layer.time_field}", table.c[layer.time_field])
    if layer.table == "warnings":
        # Re-issuing the same warning (run, level, hazard) while it is active is idempotent.
        Index(
            "uq_warnings_active_issue",
            table.c.run_id,
            table.c.level,
            table.c.hazard,
            unique=True,
            postgresql_where=text("status = 'active'"),
        )
    if layer.table == "cameras":
        Index("ix_cameras_view_sector", table.c.view_sector, postgresql_using="gist")
    if layer.table == "addresses":
        c = table.c
        Index("ix_addresses_full_address", c.full_address)
        Index(
            "ix_addresses_rooms",
            c.place_key,
            c.building_key,
            c.room_key,
            postgresql_where=text("room_key <> ''"),
        )
        Index("ix_addresses_houses", c.place_key, c.building_key, postgresql_where=text("is_house"))
        Index(
            "ix_addresses_numbers",
            c.road,
            c.number_key,
            postgresql_where=text("is_house AND number_key <> ''"),
        )
        for name in ADDRESS_FALLBACKS:
            Index(f"ix_addresses_{name}", c[name])
    return table


def _warning_ref() -> Column:
    """The ``warning_id`` column of a table that belongs to a warning (deleted with it)."""
    return Column(
        "warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False
    )


#: Schema holding the partitions of ``risk_cells`` (one per run, plus a default one), so the
#: partitions stay out of the tables the catalog and the migrations describe.
RISK_PARTITION_SCHEMA = "risk_cells_parts"


def _risk_cell_set_tables(meta: MetaData) -> None:
    """The cells a run covers, stored once per set of cells (a static table on a district).

    A run stores only its informative cells; every other cell of its set reads as level
    none (``risk_run_cells``). ``risk_set_parents`` keeps, per coarser resolution, how many
    cells of the set each parent holds and their highest static score, so the shares of
    rolled-up tiles count every cell without reading them.
    """
    Table(
        "risk_cell_sets",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("digest", Text, nullable=False, unique=True),
        Column("res", SmallInteger, nullable=False),
        Column("cells", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )
    # No foreign key to risk_cell_sets on the two tables below: checking it row by row cost
    # three quarters of writing a province's 2.3 M cells; prune deletes a set's rows itself.
    Table(
        "risk_set_cells",
        meta,
        Column("set_id", BigInteger, nullable=False),
        Column("h3", BigInteger, nullable=False),
        Column("score", REAL, nullable=True),
        PrimaryKeyConstraint("set_id", "h3"),
    )
    Table(
        "risk_set_parents",
        meta,
        Column("set_id", BigInteger, nullable=False),
        Column("res", SmallInteger, nullable=False),
        Column("h3", BigInteger, nullable=False),
        Column("cells", Integer, nullable=False),
        Column("score_max", REAL, nullable=True),
        PrimaryKeyConstraint("set_id", "res", "h3"),
    )


def build_metadata(catalog: Catalog = CATALOG) -> MetaData:
    """All tables: every catalog layer plus the non-layer tables."""
    meta = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "risk_runs",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("model", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="pending"),
        Column("scenario", Text, nullable=True),
        Column("inputs", JSONB, nullable=False, server_default="{}"),
        Column("params", JSONB, nullable=False, server_default="{}"),
        Column("timings", JSONB, nullable=False, server_default="{}"),
        Column("summary", JSONB, nullable=False, server_default="{}"),
        Column("error", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=True),
        Column("cell_set_id", BigInteger, ForeignKey("risk_cell_sets.id"), nullable=True),
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status_enum"),
    )
    _risk_cell_set_tables(meta)
    for layer in catalog.values():
        layer_table(layer, meta)
    Table(
        "sensor_readings",
        meta,
        Column(
            "sensor_code",
            Text,
            ForeignKey("sensors.code", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
            nullable=False,
        ),
        Column("observed_at", DateTime(timezone=True), nullable=False),
        Column("value", Float(precision=53), nullable=False),
        Column("unit", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        PrimaryKeyConstraint("sensor_code", "observed_at"),
        Index("ix_sensor_readings_observed_at", "observed_at"),
    )
    # The informative cells of each run (level above none, or changed since the previous run
    # of the model on the same cells), one partition per run in the schema
    # RISK_PARTITION_SCHEMA, so pruning a run drops its partition (emergency.cellstore).
    Table(
        "risk_cells",
        meta,
        Column(
            "run_id", BigInteger, ForeignKey("risk_runs.id", ondelete="CASCADE"), nullable=False
        ),
        Column("h3", BigInteger, nullable=False),
        Column("res", SmallInteger, nullable=False),
        Column("level", SmallInteger, nullable=False),
        Column("score", REAL, nullable=True),
        Column("factors", JSONB, nullable=True),
        PrimaryKeyConstraint("run_id", "h3"),
        CheckConstraint("level BETWEEN 0 AND 4", name="level_range"),
        postgresql_partition_by="LIST (run_id)",
    )
    Table(
        "api_keys",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("name", Text, nullable=False),
        Column("role", Text, nullable=False),
        Column("prefix", Text, nullable=False, unique=True),
        Column("salt", Text, nullable=False),
        Column("key_hash", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
        Column("last_used_at", DateTime(timezone=True), nullable=True),
        CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role_enum"),
    )
    Table(
        "audit_log",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("actor", Text, nullable=False),
        Column("role", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("target", Text, nullable=True),
        Column("detail", JSONB, nullable=True),
        Column("client_addr", Text, nullable=True),
        Index("ix_audit_log_at", "at"),
    )
    Table(
        "layer_versions",
        meta,
        Column("layer", Text, primary_key=True),
        Column("version", BigInteger, nullable=False, server_default="1"),
        Column("changed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )
    Table(
        "events",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("type", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Index("ix_events_at", "at"),
    )
    Table(
        "warning_areas",
        meta,
        _warning_ref(),
        Column("level", Text, nullable=False),
        Column("cells", Integer, nullable=False),
        Column("area_km2", Float(precision=53), nullable=False),
        Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        PrimaryKeyConstraint("warning_id", "level"),
        CheckConstraint("level IN ('blue', 'yellow', 'orange', 'red')", name="level_enum"),
    )
    _last_mile_tables(meta)
    _field_work_tables(meta)
    Table(
        "rasters",
        meta,
        Column("name", Text, primary_key=True),
        Column("path", Text, nullable=False),
        Column("crs", Text, nullable=False),
        Column("width", Integer, nullable=False),
        Column("height", Integer, nullable=False),
        Column("bands", Integer, nullable=False),
        Column("dtype", Text, nullable=False),
        Column("nodata", Float(precision=53), nullable=True),
        Column("bounds_4326", JSONB, nullable=False),
        Column("source", Text, nullable=True),
        Column("registered_at", DateTime(timezone=True), server_default=func.now()),
    )
    return meta


#: The loop of an incident (闭环): reported, accepted, dispatched, handled, verified, closed.
INCIDENT_STAGES = ("上报", "受理", "派遣", "处置", "核查", "结案")
#: Photo types an incident accepts (checked by content).
PHOTO_TYPES = ("image/jpeg", "image/png", "image/heic")


def _field_work_tables(meta: MetaData) -> None:
    """Departments and the kinds they answer for (with deadlines), an incident's steps and
    its photos."""
    Table(
        "departments",
        meta,
        Column("code", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("phone", Text, nullable=True),
        Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )
    Table(
        "incident_kinds",
        meta,
        Column("kind", Text, primary_key=True),
        Column("title", Text, nullable=True),
        Column(
            "department_code",
            Text,
            ForeignKey("departments.code", ondelete="RESTRICT"),
            nullable=False,
        ),
        Column("deadline_h", Float(precision=53), nullable=False),
        Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        CheckConstraint("deadline_h > 0", name="deadline_positive"),
    )
    stages = ", ".join(f"'{v}'" for v in INCIDENT_STAGES)
    Table(
        "incident_steps",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column(
            "incident_id",
            BigInteger,
            ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("stage", Text, nullable=False),
        Column("at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("actor", Text, nullable=False),
        Column("role", Text, nullable=False),
        Column("department_code", Text, nullable=True),
        Column("note", Text, nullable=True),
        CheckConstraint(f"stage IN ({stages})", name="stage_enum"),
    )
    types = ", ".join(f"'{v}'" for v in PHOTO_TYPES)
    Table(
        "incident_photos",
        meta,
        Column(
            "incident_id",
            BigInteger,
            ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("n", Integer, nullable=False),
        Column("sha256", Text, nullable=False, index=True),
        Column("media_type", Text, nullable=False),
        Column("bytes", Integer, nullable=False),
        Column("width", Integer, nullable=False),
        Column("height", Integer, nullable=False),
        Column("exif_lon", Float(precision=53), nullable=True),
        Column("exif_lat", Float(precision=53), nullable=True),
        Column("taken_at", DateTime(timezone=True), nullable=True),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        PrimaryKeyConstraint("incident_id", "n"),
        CheckConstraint(f"media_type IN ({types})", name="media_type_enum"),
    )


#: Transfer states of a vulnerable resident under a warning (转移状态).
TRANSFER_STATUSES = ("待转移", "已转移", "拒绝", "已返回")
#: CAP message types a warning produces.
CAP_MSG_TYPES = ("Alert", "Update", "Cancel")


def _last_mile_tables(meta: MetaData) -> None:
    """Notifications and acknowledgements (叫应), transfers, CAP messages and their push."""
    Table(
        "warning_notifications",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        _warning_ref(),
        Column("recipient_kind", Text, nullable=False),
        Column("recipient_code", Text, nullable=False),
        Column("recipient_name", Text, nullable=True),
        Column("recipient_phone", Text, nullable=True),
        Column("grid_code", Text, nullable=True),
        Column("residents", Integer, nullable=False, server_default="0"),
        Column("vulnerable", Integer, nullable=False, server_default="0"),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("acked_at", DateTime(timezone=True), nullable=True),
        Column("acked_by", Text, nullable=True),
        Column("ack_note", Text, nullable=True),
        CheckConstraint("recipient_kind IN ('cadre', 'worker')", name="kind_enum"),
        Index(
            "uq_warning_notifications_recipient",
            "warning_id",
            "recipient_kind",
            "recipient_code",
            unique=True,
        ),
    )
    statuses = ", ".join(f"'{v}'" for v in TRANSFER_STATUSES)
    Table(
        "resident_transfers",
        meta,
        _warning_ref(),
        Column("resident_code", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="待转移"),
        Column("note", Text, nullable=True),
        Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("updated_by", Text, nullable=True),
        PrimaryKeyConstraint("warning_id", "resident_code"),
        CheckConstraint(f"status IN ({statuses})", name="status_enum"),
    )
    msg_types = ", ".join(f"'{v}'" for v in CAP_MSG_TYPES)
    Table(
        "cap_messages",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        _warning_ref(),
        Column("identifier", Text, nullable=False, unique=True),
        Column("msg_type", Text, nullable=False),
        Column("sent", DateTime(timezone=True), nullable=False),
        Column("references", Text, nullable=True),
        Column("xml", Text, nullable=False),
        Index("ix_cap_messages_warning_id", "warning_id"),
        CheckConstraint(f"msg_type IN ({msg_types})", name="msg_type_enum"),
    )
    Table(
        "subscriptions",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("url", Text, nullable=False),
        Column("secret", Text, nullable=False),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )
    Table(
        "push_outbox",
        meta,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column(
            "subscription_id",
            BigInteger,
            ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column(
            "cap_message_id",
            BigInteger,
            ForeignKey("cap_messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column(
            "next_attempt_at",
            DateTime(timezone=True),
            server_default=func.now(),
            nullable=False,
        ),
        Column("delivered_at", DateTime(timezone=True), nullable=True),
        Column("last_error", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Index(
            "ix_push_outbox_due",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )


metadata = build_metadata()

#: Names of layer tables, for triggers and checks.
LAYER_TABLES: tuple[str, ...] = tuple(layer.table for layer in CATALOG.values())
