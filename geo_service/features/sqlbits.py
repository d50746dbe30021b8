"""SQL expressions of features: GeoJSON and CSV columns, bound points (names and
placeholders from :mod:`layers.sql`)."""

from __future__ import annotations

from collections.abc import Iterable

from layers.catalog import Layer, Property
from layers.sql import Params, ident

#: Decimal places of coordinates in GeoJSON output (1e-7 degree ≈ 1 cm).
COORD_DECIMALS = 7


def column_json(prop: Property, alias: str = "t") -> str:
    """A column as a JSON-ready SQL value; datetimes as ISO 8601 UTC with ``Z``."""
    col = f"{alias}.{ident(prop.name)}"
    if prop.type == "datetime":
        # timestamptz renders in the session time zone; force UTC so output never
        # depends on the server's TimeZone setting.
        return f"((to_json({col} AT TIME ZONE 'UTC') #>> '{{}}') || 'Z')"
    return col


def column_text(prop: Property, alias: str = "t") -> str:
    """A column as text for CSV (datetimes ISO 8601 UTC, booleans true/false)."""
    if prop.type == "datetime":
        return column_json(prop, alias)
    return f"{alias}.{ident(prop.name)}::text"


def geometry_sql(alias: str = "t", srid: int = 4326, lat_first: bool = False) -> str:
    """The stored EPSG:4326 geometry of a row, transformed to ``srid`` and, for a CRS whose
    first axis is latitude (``lat_first``), with its coordinates swapped."""
    geom = f"{alias}.geom"
    if int(srid) != 4326:
        geom = f"ST_Transform({geom}, {int(srid)})"
    if lat_first:
        geom = f"ST_FlipCoordinates({geom})"
    return geom


def feature_json(
    layer: Layer,
    props: Iterable[Property],
    alias: str = "t",
    extra: dict[str, str] | None = None,
    geom: str | None = None,
    decimals: int = COORD_DECIMALS,
) -> str:
    """SQL building one GeoJSON Feature (as ``json``) of a row of ``layer``.

    Args:
        extra: additional property name → SQL expression (e.g. a computed distance in metres).
        geom: SQL of the geometry to write (default: the stored EPSG:4326 one, lon/lat);
            see :func:`geometry_sql`.
        decimals: decimal places of the coordinates.
    """
    args: list[str] = []
    for p in props:
        args.append("'" + p.name.replace("'", "''") + "'")
        args.append(column_json(p, alias))
    for name, expr in (extra or {}).items():
        args.append("'" + name.replace("'", "''") + "'")
        args.append(expr)
    props_sql = "json_build_object(" + ", ".join(args) + ")" if args else "'{}'::json"
    return (
        "json_build_object('type', 'Feature', 'id', "
        f"{alias}.{ident(layer.key)}, 'geometry', "
        f"ST_AsGeoJSON({geom or alias + '.geom'}, {int(decimals)})::json, "
        f"'properties', {props_sql})"
    )


def point_sql(params: Params, lon: float, lat: float) -> str:
    """A bound EPSG:4326 point (lon/lat in degrees)."""
    return (
        f"ST_SetSRID(ST_MakePoint({params.add(float(lon), 'float8')}, "
        f"{params.add(float(lat), 'float8')}), 4326)"
    )
