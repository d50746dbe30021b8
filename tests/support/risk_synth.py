"""A small synthetic DEM (hills draining to a valley) and hazard sites for pipeline tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer

#: West/north edge of the synthetic DEM, EPSG:32649 metres (near 113.4 E, 22.5 N).
X0, Y0 = 740_000.0, 2_495_000.0


def write_array_dem(
    path: Path, z: np.ndarray, res: float = 30.0, crs: str = "EPSG:32649",
    pixel_deg: float = 0.001,
) -> Path:  # fmt: skip
    """Heights ``z`` (NaN = no data, written as -9999) as a GeoTIFF: ``res`` metre pixels from
    (500 000, 2 500 000) in UTM 49N, or ``pixel_deg`` degrees from (110 E, 25 N) for
    EPSG:4326."""
    t = (
        Affine(pixel_deg, 0, 110, 0, -pixel_deg, 25)
        if crs == "EPSG:4326"
        else Affine(res, 0, 500_000.0, 0, -res, 2_500_000.0)
    )
    with rasterio.open(
        path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1,
        dtype="float32", crs=crs, transform=t, nodata=-9999,
    ) as dst:  # fmt: skip
        dst.write(np.where(np.isfinite(z), z, -9999).astype("float32"), 1)
    return path


def write_dem(path: Path, n: int = 240, res_m: float = 30.0, seed: int = 1) -> Path:
    """An ``n``×``n`` float32 DEM: a valley along the middle column, hills either side."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype("float64")
    elev = 20.0 + 0.6 * np.abs(xx - n / 2) + 0.15 * (n - yy)
    for _ in range(12):
        cx, cy = rng.uniform(0, n, 2)
        h, w = rng.uniform(40, 160), rng.uniform(8, 25)
        elev += h * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w * w))
    with rasterio.open(
        path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
        crs="EPSG:32649", transform=Affine(res_m, 0, X0, 0, -res_m, Y0), nodata=-9999.0,
    ) as dst:  # fmt: skip
        dst.write(elev.astype("float32"), 1)
    return path


def steep_sites(path: Path, n_sites: int = 40, seed: int = 2) -> np.ndarray:
    """``(n, 2)`` lon/lat of random pixels among the steepest third of the DEM."""
    with rasterio.open(path) as ds:
        z = ds.read(1).astype("float64")
        t = ds.transform
    gy, gx = np.gradient(z, 30.0)
    slope = np.hypot(gx, gy)
    rows, cols = np.nonzero(slope > np.quantile(slope, 0.66))
    pick = np.random.default_rng(seed).choice(rows.size, n_sites, replace=False)
    x, y = t @ (cols[pick] + 0.5, rows[pick] + 0.5)
    lon, lat = Transformer.from_crs(32649, 4326, always_xy=True).transform(x, y)
    return np.column_stack([lon, lat])
