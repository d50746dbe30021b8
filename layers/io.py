"""Import and export of layers: GeoJSON, GeoPackage, zipped Shapefile and CSV.

``import_file`` reads a file, renames fields (``--field-map``), reprojects to EPSG:4326,
validates every row against the catalog and swaps the layer in one transaction
(:func:`layers.load.replace_layers`).  ``export_layer`` writes a layer to GeoPackage,
GeoJSON or CSV, through a temporary file so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from pyproj import CRS
from pyproj.exceptions import CRSError

from layers.catalog import CATALOG, Catalog
from layers.errors import ExportFailed, ImportFailed
from layers.load import LoadResult, Progress, replace_layers

LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("wkt", "geometry", "geom")
VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".zip", ".shp", ".csv"}


def parse_field_map(pairs: list[str] | None) -> dict[str, str]:
    """``["src=dst", …]`` → ``{"src": "dst"}``.

    >>> parse_field_map(["名称=name", "类别=category"])
    {'名称': 'name', '类别': 'category'}
    """
    out: dict[str, str] = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"field map {pair!r} is not of the form source=destination")
        out[src.strip()] = dst.strip()
    return out


def _parse_crs(crs: str | None, source: str) -> CRS | None:
    if crs is None:
        return None
    try:
        return CRS.from_user_input(crs)
    except CRSError:
        raise ImportFailed(source, f"unknown CRS {crs!r}") from None


def _check_utf8(path: Path) -> None:
    """Fail with the byte offset when a text file is not valid UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            str(path), f"not valid UTF-8 at byte {exc.start} (line {line}); re-save it as UTF-8"
        ) from None


def read_vector(path: Path, crs: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoJSON, GeoPackage, (zipped) Shapefile or CSV into a GeoDataFrame.

    Args:
        path: the file. CSV needs lon/lat columns (``lon``/``lng``/``longitude`` and
            ``lat``/``latitude``) or a WKT column (``wkt``/``geometry``).
        crs: CRS of the coordinates (e.g. ``EPSG:4547``); overrides the file's own.
            CSV defaults to EPSG:4326.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ImportFailed(source, "no such file")
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise ImportFailed(
            source, f"unsupported file type {suffix!r}; use {sorted(VECTOR_SUFFIXES)}"
        )
    given = _parse_crs(crs, source)
    if suffix in (".csv", ".geojson", ".json"):
        _check_utf8(path)
    if suffix == ".csv":
        return _read_csv(path, given)
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio/GDAL errors: truncated, corrupt, empty
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailed(source, f"cannot read the file: {msg}") from None
    if given is not None:
        frame = frame.set_crs(given, allow_override=True)
    return frame


def _read_csv(path: Path, crs: CRS | None) -> gpd.GeoDataFrame:
    source = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ImportFailed(source, f"cannot parse the CSV: {exc}") from None
    lower = {c.lower().strip(): c for c in df.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    wkt = next((lower[n] for n in WKT_NAMES if n in lower), None)
    if lon and lat:
        xs = pd.to_numeric(df[lon], errors="coerce")
        ys = pd.to_numeric(df[lat], errors="coerce")
        bad = (xs.isna() | ys.isna()).to_numpy()
        if bad.any():
            i = int(bad.nonzero()[0][0])
            raise ImportFailed(
                source,
                f"{lon}/{lat} are not numbers: {df[lon].iloc[i]!r}, {df[lat].iloc[i]!r}",
                row=i + 1,
            )
        geometry = shapely.points(xs.to_numpy(), ys.to_numpy())
        df = df.drop(columns=[lon, lat])
    elif wkt:
        try:
            geometry = shapely.from_wkt(df[wkt].to_numpy(), on_invalid="raise")
        except shapely.errors.GEOSException as exc:
            raise ImportFailed(source, f"invalid WKT in column {wkt!r}: {exc}") from None
        df = df.drop(columns=[wkt])
    else:
        raise ImportFailed(
            source,
            "CSV needs lon/lat columns (lon, lng, longitude / lat, latitude) or a WKT column",
        )
    return gpd.GeoDataFrame(df, geometry=geometry, crs=crs or CRS.from_epsg(4326))


def import_file(
    url: str,
    path: Path,
    layer_id: str,
    *,
    field_map: Mapping[str, str] | None = None,
    crs: str | None = None,
    progress: Progress | None = None,
    catalog: Catalog = CATALOG,
) -> LoadResult:
    """Replace layer ``layer_id`` with the features of ``path``; all or nothing.

    Raises:
        UnknownLayer: no such layer in the catalog.
        ImportFailed: naming the file, row and problem; the layer is untouched.
    """
    layer = catalog[layer_id]
    frame = read_vector(Path(path), crs)
    if field_map:
        unknown = [s for s in field_map if s not in frame.columns]
        if unknown:
            raise ImportFailed(str(path), f"--field-map names fields the file lacks: {unknown}")
        frame = frame.rename(columns=dict(field_map))
    if len(frame) == 0:
        raise ImportFailed(str(path), "the file has no features")
    (result,) = replace_layers(
        url,
        {layer.id: frame},
        source=str(path),
        progress=progress,
        catalog=catalog,
        action="layer.import",
    )
    return result


def read_layer(url: str, layer_id: str, catalog: Catalog = CATALOG) -> gpd.GeoDataFrame:
    """The whole layer as a GeoDataFrame in EPSG:4326 (properties in catalog order)."""
    layer = catalog[layer_id]
    cols = sql.SQL(", ").join(map(sql.Identifier, layer.property_names))
    query = sql.SQL("SELECT {}, ST_AsBinary(geom) AS geom FROM {} ORDER BY code").format(
        cols, sql.Identifier(layer.table)
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    df = pd.DataFrame(rows, columns=[*layer.property_names, "geom"])
    wkb = df.pop("geom").to_numpy()
    geometry: np.ndarray = shapely.from_wkb(wkb) if len(wkb) else np.empty(0, dtype=object)
    return gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")


def export_layer(url: str, layer_id: str, out: Path, catalog: Catalog = CATALOG) -> int:
    """Write layer ``layer_id`` to ``out`` (.gpkg, .geojson/.json or .csv); returns the count.

    CSV carries ``lon``/``lat`` for point layers and a ``wkt`` column otherwise.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    drivers = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV"}
    if suffix not in drivers:
        raise ExportFailed(
            f"{out}: unsupported output type {suffix!r}; use .gpkg, .geojson or .csv"
        )
    frame = read_layer(url, layer_id, catalog)
    if not out.parent.exists():
        raise ExportFailed(f"{out}: the folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=out.parent, prefix=".tmp-")
    os.close(fd)
    try:
        if suffix == ".csv":
            table = pd.DataFrame(frame.drop(columns="geometry"))
            if catalog[layer_id].geometry_type == "Point":
                table["lon"] = frame.geometry.x.round(7)
                table["lat"] = frame.geometry.y.round(7)
            else:
                table["wkt"] = shapely.to_wkt(frame.geometry.values, rounding_precision=7)
            table.to_csv(tmp, index=False, encoding="utf-8")
        else:
            os.unlink(tmp)  # GDAL wants to create the file itself
            frame.to_file(
                tmp,
                driver=drivers[suffix],
                engine="pyogrio",
                layer=layer_id if suffix == ".gpkg" else None,
            )
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportFailed(f"{out}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(frame)
