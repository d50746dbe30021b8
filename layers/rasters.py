"""Rasters: convert any GeoTIFF to a Cloud-Optimized GeoTIFF and register it by name."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.audit import record
from layers.errors import ImportFailed

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class RasterInfo:
    """A registered raster: ``path`` is a COG; ``bounds_4326`` is (west, south, east, north)."""

    name: str
    path: Path
    crs: str
    width: int
    height: int
    bands: int
    dtype: str
    nodata: float | None
    bounds_4326: tuple[float, float, float, float]


def to_cog(src_path: Path, dst_path: Path) -> None:
    """Write ``src_path`` (any GDAL raster) as a deflate-compressed COG at ``dst_path``.

    Written to a temporary file beside the target and renamed, so a failure never
    leaves a half-written COG under the final name.
    """
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.shutil import copy as rio_copy

    dst_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tif", dir=dst_path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        with rasterio.open(src_path) as src:
            if src.crs is None:
                raise ImportFailed(str(src_path), "the raster has no CRS")
            predictor = 3 if src.dtypes[0].startswith("float") else 2
            rio_copy(
                src,
                tmp,
                driver="COG",
                compress="DEFLATE",
                predictor=predictor,
                blocksize=512,
                overview_resampling="average",
                bigtiff="IF_SAFER",
            )
        os.replace(tmp, dst_path)
    except RasterioError as exc:
        raise ImportFailed(str(src_path), f"not a readable raster: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def describe(name: str, path: Path) -> RasterInfo:
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        return RasterInfo(
            name=name,
            path=path,
            crs=ds.crs.to_string(),
            width=ds.width,
            height=ds.height,
            bands=ds.count,
            dtype=ds.dtypes[0],
            nodata=ds.nodata,
            bounds_4326=(west, south, east, north),
        )


def import_raster(url: str, src_path: Path, name: str, data_dir: Path) -> RasterInfo:
    """Convert ``src_path`` to a COG in ``data_dir/rasters/NAME.tif`` and register it.

    Args:
        url: the OneMap database.
        src_path: any GeoTIFF (or GDAL raster) in any CRS.
        name: dataset name used in ``/raster/{name}/…`` (lower case, digits, ``_`` and ``-``).
        data_dir: the service's data directory.
    """
    if not NAME_RE.match(name):
        raise ImportFailed(str(src_path), f"raster name {name!r} must match {NAME_RE.pattern}")
    if not Path(src_path).exists():
        raise ImportFailed(str(src_path), "no such file")
    dst = Path(data_dir) / "rasters" / f"{name}.tif"
    to_cog(Path(src_path), dst)
    info = describe(name, dst)
    register(url, info, source=str(src_path))
    return info


def register(url: str, info: RasterInfo, source: str | None = None) -> None:
    """Insert or update the ``rasters`` row of ``info``."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO rasters (name, path, crs, width, height, bands, dtype, nodata,
                                 bounds_4326, source)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (name) DO UPDATE SET
                path = EXCLUDED.path, crs = EXCLUDED.crs, width = EXCLUDED.width,
                height = EXCLUDED.height, bands = EXCLUDED.bands, dtype = EXCLUDED.dtype,
                nodata = EXCLUDED.nodata, bounds_4326 = EXCLUDED.bounds_4326,
                source = EXCLUDED.source, registered_at = now()
            """,
            (
                info.name,
                str(info.path),
                info.crs,
                info.width,
                info.height,
                info.bands,
                info.dtype,
                info.nodata,
                json.dumps(list(info.bounds_4326)),
                source,
            ),
        )
        record(
            conn, "raster.register", info.name, detail={"source": source, "path": str(info.path)}
        )
