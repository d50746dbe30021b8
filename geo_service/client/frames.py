"""Server answers → pandas / GeoPandas objects with proper dtypes, in EPSG:4326 (lon/lat).

Bulk reads use the CSV form of ``/collections/{id}/items`` (``f=csv``): PostgreSQL writes it
with COPY and pandas' C parser plus :func:`shapely.from_wkt` read it several times faster
than GeoJSON.  The column types come from the collection's queryables (JSON Schema), so the
frame has nullable integers, floats, booleans and UTC datetimes rather than text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

#: CRS of every geometry the server returns: WGS 84 longitude/latitude in degrees.
CRS = "EPSG:4326"

#: JSON Schema type of a queryable → the pandas dtype of its column.
_DTYPES = {"integer": "Int64", "number": "float64", "boolean": "boolean", "string": "str"}
DATETIME = "datetime64[ns, UTC]"


def dtypes_from_queryables(doc: Mapping[str, Any]) -> dict[str, str]:
    """Column dtypes from a ``/collections/{id}/queryables`` document.

    >>> dtypes_from_queryables({"properties": {"geometry": {}, "n": {"type": "integer"},
    ...     "t": {"type": "string", "format": "date-time"}, "s": {"type": "string"}}})
    {'n': 'Int64', 't': 'datetime64[ns, UTC]', 's': 'str'}
    """
    out: dict[str, str] = {}
    for name, schema in (doc.get("properties") or {}).items():
        if name == "geometry" or not isinstance(schema, dict):
            continue
        if schema.get("format") == "date-time":
            out[name] = DATETIME
        else:
            out[name] = _DTYPES.get(str(schema.get("type")), "object")
    return out


def cast_columns(df: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with each column named in ``dtypes`` cast to its dtype (in place; returned)."""
    for name, dtype in dtypes.items():
        if name not in df.columns:
            continue
        col = df[name]
        if dtype == DATETIME:
            df[name] = pd.to_datetime(col, utc=True, format="ISO8601")
        elif dtype == "boolean" and col.dtype == object:
            df[name] = col.map({True: True, False: False, "true": True, "false": False}).astype(
                "boolean"
            )
        elif str(col.dtype) != dtype:
            df[name] = col.astype(dtype)  # type: ignore[call-overload]
    return df


def parse_csv_page(content: bytes, dtypes: Mapping[str, str]) -> tuple[pd.DataFrame, np.ndarray]:
    """One ``f=csv`` page → (properties frame, geometry array).

    The server ends each row with ``lon,lat`` (degrees) for point layers, or ``wkt`` for the
    others.  An empty cell is a null (CSV cannot tell an empty string from a missing value).
    """
    csv_types: dict[str, Any] = {}
    later: dict[str, str] = {}
    for name, dtype in dtypes.items():
        if dtype == DATETIME:
            csv_types[name], later[name] = "str", dtype
        else:
            csv_types[name] = dtype
    csv_types.update(wkt="str", lon="float64", lat="float64")
    df = pd.read_csv(
        io.BytesIO(content),
        dtype=csv_types,
        keep_default_na=False,
        na_values=[""],
        true_values=["true"],
        false_values=["false"],
    )
    if "wkt" in df.columns:
        wkt = df.pop("wkt").astype(object)
        geoms = np.asarray(shapely.from_wkt(np.asarray(wkt.where(wkt.notna(), None))), object)
    elif "lon" in df.columns and "lat" in df.columns:
        lon, lat = df.pop("lon").to_numpy("float64"), df.pop("lat").to_numpy("float64")
        geoms = np.asarray(shapely.points(lon, lat), object)
        geoms[np.isnan(lon) | np.isnan(lat)] = None
    else:
        geoms = np.full(len(df), None, dtype=object)
    return cast_columns(df, later), geoms


def assemble(
    parts: Sequence[tuple[pd.DataFrame, np.ndarray]], dtypes: Mapping[str, str]
) -> gpd.GeoDataFrame:
    """Pages (in order) → one GeoDataFrame in EPSG:4326 with a fresh 0…n-1 index."""
    if not parts:
        empty = pd.DataFrame({n: pd.Series(dtype=d) for n, d in dtypes.items()})  # type: ignore[call-overload]
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    frames = [p[0] for p in parts]
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    geoms = np.concatenate([p[1] for p in parts]) if parts else np.array([], dtype=object)
    df = df.reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)


def features_to_gdf(
    features: Iterable[Mapping[str, Any]],
    dtypes: Mapping[str, str] | None = None,
    id_column: str | None = "id",
) -> gpd.GeoDataFrame:
    """GeoJSON features (lon/lat) → a GeoDataFrame in EPSG:4326.

    The feature ``id`` becomes column ``id_column`` when the properties do not already hold
    one; ``dtypes`` casts known columns (e.g. ISO 8601 strings to UTC datetimes).

    >>> gdf = features_to_gdf([{"type": "Feature", "id": "a", "properties": {"n": 1},
    ...                         "geometry": {"type": "Point", "coordinates": [113.4, 22.5]}}])
    >>> list(gdf.columns), gdf.crs.to_epsg(), gdf.geometry.iloc[0].x
    (['id', 'n', 'geometry'], 4326, 113.4)
    """
    feats = list(features)
    records = []
    for f in feats:
        props = dict(f.get("properties") or {})
        if id_column and "id" in f and id_column not in props:
            props = {id_column: f["id"], **props}
        records.append(props)
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    geoms = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    if dtypes:
        cast_columns(df, dtypes)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
