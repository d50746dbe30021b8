"""Validate GeoDataFrames against the catalog and swap them into layer tables.

Every load goes through a staging table in the same transaction as the swap:
``COPY`` into a temporary table, then ``DELETE`` + ``INSERT … SELECT`` into the layer,
then one ``COMMIT`` (references between layers are checked there).  A failure at any
point — bad row, broken reference, killed process — rolls the whole transaction back,
so the layer keeps exactly the rows it had.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from shapely.validation import explain_validity

from layers.audit import Actor, record
from layers.catalog import CATALOG, Catalog, Layer
from layers.errors import ImportFailed
from layers.residents import protect_ids
from layers.schema import FOREIGN_KEYS

#: Called with (stage, rows done, rows total).
Progress = Callable[[str, int, int], None]

#: Layer id → a step run on the input before it is checked (residents: ID numbers are
#: masked and hashed, so a full number never reaches the database).
IMPORT_HOOKS: dict[str, Callable[[pd.DataFrame, str], pd.DataFrame]] = {
    "residents": protect_ids,
}

_MULTI = {"Polygon": "MultiPolygon", "LineString": "MultiLineString", "Point": "MultiPoint"}
_SINGLE = {v: k for k, v in _MULTI.items()}


def load_order(catalog: Catalog = CATALOG) -> list[str]:
    """Layer ids ordered so that every layer comes after the layers it references."""
    deps: dict[str, set[str]] = {lid: set() for lid in catalog}
    table_to_id = {lyr.table: lyr.id for lyr in catalog.values()}
    for (table, _col), target in FOREIGN_KEYS.items():
        ref = table_to_id.get(target.split(".")[0])
        if table in table_to_id and ref and ref != table_to_id[table]:
            deps[table_to_id[table]].add(ref)
    ordered: list[str] = []
    while deps:
        ready = [lid for lid, d in deps.items() if not (d - set(ordered))]
        if not ready:
            raise RuntimeError(f"circular layer references among {sorted(deps)}")
        for lid in ready:  # keep catalog order among equals (deterministic)
            ordered.append(lid)
            del deps[lid]
    return ordered


def _where(source: str, row: int | None, problem: str) -> ImportFailed:
    return ImportFailed(source, problem, row=row)


def _coerce_geometry(layer: Layer, geoms: np.ndarray, source: str) -> np.ndarray:
    """Promote/demote single↔multi parts to the layer's type; refuse other types."""
    want = layer.geometry_type
    types = shapely.get_type_id(geoms)
    names = np.array(
        [
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        ]
    )
    missing = np.flatnonzero(pd.isna(geoms) | shapely.is_empty(geoms))
    if missing.size:
        raise _where(source, int(missing[0]) + 1, "missing or empty geometry")
    got = names[types]
    out = geoms.copy()
    if want == "Geometry":
        return out
    if want in _SINGLE:  # a Multi* layer: promote single parts
        single = got == _SINGLE[want]
        out[single] = [
            shapely.multipolygons([g])
            if want == "MultiPolygon"
            else shapely.multilinestrings([g])
            if want == "MultiLineString"
            else shapely.multipoints([g])
            for g in geoms[single]
        ]
        got = np.where(single, want, got)
    elif want in _MULTI:  # a single-part layer: accept one-part multis
        multi = got == _MULTI[want]
        if multi.any():
            parts = shapely.get_num_geometries(geoms[multi])
            if (parts > 1).any():
                bad = np.flatnonzero(multi)[np.flatnonzero(parts > 1)[0]]
                raise _where(
                    source,
                    int(bad) + 1,
                    f"a {_MULTI[want]} with several parts does not fit layer {layer.id!r} ({want})",
                )
            out[multi] = shapely.get_geometry(geoms[multi], 0)
            got = np.where(multi, want, got)
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        i = int(wrong[0])
        raise _where(
            source, i + 1, f"geometry type {got[i]} does not match layer {layer.id!r} ({want})"
        )
    return out


def prepare_frame(layer: Layer, frame: gpd.GeoDataFrame, source: str = "<data>") -> pd.DataFrame:
    """Check ``frame`` against the catalog and return the rows ready to load.

    Args:
        layer: the target layer.
        frame: features with catalog property columns and a geometry (any CRS with a
            known definition; reprojected to EPSG:4326).
        source: name of the input, used in error messages.

    Returns:
        A DataFrame with the layer's property columns (Python values, None for nulls)
        and ``geom`` as hex EWKB in EPSG:4326.

    Raises:
        ImportFailed: naming the row (1-based) and the problem.
    """
    hook = IMPORT_HOOKS.get(layer.id)
    if hook is not None:
        frame = hook(frame, source)  # type: ignore[assignment]
    if frame.crs is None:
        raise _where(source, None, "the data has no CRS; give one (e.g. --crs EPSG:4326)")
    if frame.crs.to_epsg() != 4326:
        try:
            frame = frame.to_crs(4326)
        except Exception as exc:
            raise _where(source, None, f"cannot reproject from {frame.crs}: {exc}") from None
    geoms = _coerce_geometry(layer, np.asarray(frame.geometry.values, dtype=object), source)
    valid = shapely.is_valid(geoms)
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        raise _where(source, i + 1, f"invalid geometry: {explain_validity(geoms[i])}")
    bounds = shapely.bounds(geoms)
    out_of_range = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (
        np.abs(bounds[:, [1, 3]]) > 90
    ).any(axis=1)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise _where(source, i + 1, "coordinates outside ±180°/±90° after reprojection")

    out = pd.DataFrame(index=range(len(frame)))
    for prop in layer.properties:
        if prop.name not in frame.columns:
            if prop.required:
                raise _where(source, None, f"required field {prop.name!r} is missing")
            out[prop.name] = None
            continue
        col = frame[prop.name].reset_index(drop=True)
        if prop.value_aliases:
            col = col.map(
                lambda v, aliases=prop.value_aliases: (
                    v if v is None else aliases.get(str(v).strip(), v)
                )
            )
        out[prop.name] = _coerce_column(layer, prop.name, prop.type, col, source)
        nulls = out[prop.name].isna().to_numpy()
        if prop.required and nulls.any():
            raise _where(
                source, int(np.flatnonzero(nulls)[0]) + 1, f"required field {prop.name!r} is empty"
            )
        if prop.enum:
            bad = ~nulls & ~out[prop.name].isin(prop.enum).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise _where(
                    source,
                    i + 1,
                    f"{prop.name}={out[prop.name].iloc[i]!r} is not one of {', '.join(prop.enum)}",
                )
    dup = out["code"].duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _where(source, i + 1, f"duplicate code {out['code'].iloc[i]!r}")
    out["geom"] = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    return out.astype(object).where(out.notna(), None)


def _coerce_column(layer: Layer, name: str, type_: str, col: pd.Series, source: str) -> pd.Series:
    def fail(mask: np.ndarray, what: str) -> ImportFailed:
        i = int(np.flatnonzero(mask)[0])
        return _where(source, i + 1, f"{name}={col.iloc[i]!r} is not {what}")

    present = col.notna().to_numpy()
    if type_ == "string":
        return col.map(
            lambda v: (
                None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
            )
        )
    if type_ in ("integer", "number"):
        num = pd.to_numeric(col, errors="coerce")
        bad = present & num.isna().to_numpy()
        if bad.any():
            raise fail(bad, "a number")
        if type_ == "integer":
            frac = present & (num.fillna(0) % 1 != 0).to_numpy()
            if frac.any():
                raise fail(frac, "an integer")
            return num.astype("Int64")
        return num.astype(float)
    if type_ == "boolean":
        mapping = {
            "true": True,
            "false": False,
            "1": True,
            "0": False,
            "yes": True,
            "no": False,
            "t": True,
            "f": False,
            "是": True,
            "否": False,
        }
        conv = col.map(
            lambda v: (
                v
                if isinstance(v, bool | np.bool_) or v is None
                else mapping.get(str(v).strip().lower())
            )
        )
        bad = present & conv.isna().to_numpy()
        if bad.any():
            raise fail(bad, "true/false")
        return conv
    if type_ == "datetime":
        ts = pd.to_datetime(col, errors="coerce", utc=True)
        bad = present & ts.isna().to_numpy()
        if bad.any():
            raise fail(bad, "a date-time")
        return ts
    raise AssertionError(type_)


@dataclass
class LoadResult:
    layer: str
    rows_before: int
    rows_after: int


def _copy_rows(
    cur: psycopg.Cursor,
    stage: str,
    columns: list[str],
    rows: Iterable[tuple],
    total: int,
    label: str,
    progress: Progress | None,
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(stage), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    step = max(1, total // 50)
    with cur.copy(stmt) as copy:
        for n, row in enumerate(rows, 1):
            copy.write_row(row)
            if progress and n % step == 0:
                progress(label, n, total)
    if progress:
        progress(label, total, total)


def swap_layer(
    conn: psycopg.Connection, layer: Layer, rows: pd.DataFrame, progress: Progress | None = None
) -> LoadResult:
    """Replace every row of ``layer`` with ``rows`` inside the caller's open transaction.

    ``rows`` comes from :func:`prepare_frame`.  Nothing is committed here.
    """
    table = sql.Identifier(layer.table)
    stage = f"stage_{layer.table}"
    columns = [*layer.property_names, "geom"]
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(stage), cols, table
            )
        )
        _copy_rows(
            cur,
            stage,
            columns,
            rows[columns].itertuples(index=False, name=None),
            len(rows),
            layer.id,
            progress,
        )
        before = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        # EXCLUSIVE lock only for the swap itself: readers see the old rows until COMMIT.
        cur.execute(sql.SQL("DELETE FROM {}").format(table))
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                table, cols, cols, sql.Identifier(stage)
            )
        )
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(stage)))
    return LoadResult(layer.id, int(before[0]) if before else 0, len(rows))


def replace_layers(
    url: str,
    frames: Mapping[str, gpd.GeoDataFrame],
    *,
    readings: pd.DataFrame | None = None,
    source: str = "<data>",
    progress: Progress | None = None,
    catalog: Catalog = CATALOG,
    action: str = "layer.replace",
    actor: Actor | None = None,
) -> list[LoadResult]:
    """Validate and swap several layers (and optionally sensor readings) in ONE transaction.

    The change is written to ``audit_log`` (``action``, ``actor``) in the same transaction.

    Raises:
        ImportFailed: a row is invalid or a reference between layers is broken; the
            database is left exactly as it was.
    """
    prepared = {lid: prepare_frame(catalog[lid], frames[lid], source) for lid in frames}
    results: list[LoadResult] = []
    try:
        with psycopg.connect(url) as conn:
            for lid in load_order(catalog):
                if lid in prepared:
                    results.append(swap_layer(conn, catalog[lid], prepared[lid], progress))
            if readings is not None:
                _replace_readings(conn, readings, progress)
            record(
                conn,
                action,
                ",".join(r.layer for r in results),
                actor=actor,
                detail={
                    "source": source,
                    "rows": {r.layer: r.rows_after for r in results},
                    "replaced": {r.layer: r.rows_before for r in results},
                },
            )
            if progress:
                progress("commit", 0, 1)
            conn.commit()  # deferred foreign keys are checked here
            if progress:
                progress("commit", 1, 1)
    except psycopg.errors.ForeignKeyViolation as exc:
        raise ImportFailed(source, f"broken reference: {_pg_detail(exc)}") from None
    except psycopg.errors.IntegrityError as exc:
        raise ImportFailed(source, f"rejected by the database: {_pg_detail(exc)}") from None
    except psycopg.errors.ProgramLimitExceeded as exc:  # a value too long for its index
        raise ImportFailed(source, f"a value is too long: {_pg_detail(exc)}") from None
    return results


def _replace_readings(
    conn: psycopg.Connection, readings: pd.DataFrame, progress: Progress | None
) -> None:
    cols = ["sensor_code", "observed_at", "value", "unit"]
    frame = readings[cols].astype(object).where(readings[cols].notna(), None)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM sensor_readings")
        _copy_rows(
            cur,
            "sensor_readings",
            cols,
            frame.itertuples(index=False, name=None),
            len(frame),
            "sensor_readings",
            progress,
        )


def _pg_detail(exc: psycopg.Error) -> str:
    diag = exc.diag
    return diag.message_detail or diag.message_primary or str(exc).splitlines()[0]
