"""Synthetic terrain: a Pearl-River-Delta style DEM with hills, valleys and a floodplain.

The DEM is built on a :class:`~layers.demo.frame.Frame` (EPSG:32649, 30 m cells)
from vectorised numpy operations only:

* spectral (1/f) noise and ridged noise make hills up to ~550 m;
* a sinuous valley trough holds a flat floodplain 2.5–10 m above datum, tilted
  gently downstream and towards the valley axis;
* a few shallow Gaussian pits in the floodplain make closed sinks (the
  waterlogging black spots of :mod:`layers.demo.hazards`).

Elevations are metres above datum; slopes are degrees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile

from layers.demo.frame import METRIC_CRS, Frame

NODATA = -9999.0
MAX_RELIEF_M = 540.0


@dataclass(frozen=True)
class Valley:
    """The main valley in frame-centred km coordinates.

    Attributes:
        axis_deg: direction the valley runs downstream, degrees counter-clockwise
            from east.
        dist_km: per-cell distance from the valley axis (km).
        along_km: per-cell coordinate along the axis (km, increasing downstream).
        half_width_km: per-cell floodplain half-width (km).
    """

    axis_deg: float
    dist_km: np.ndarray
    along_km: np.ndarray
    half_width_km: np.ndarray


def spectral_noise(
    rng: np.random.Generator, shape: tuple[int, int], res_km: float, beta: float, k0_per_km: float
) -> np.ndarray:
    """Zero-mean, unit-variance 1/f noise (float32).

    Args:
        rng: random generator.
        shape: (rows, cols).
        res_km: cell size in km.
        beta: spectral exponent of the power spectrum (larger = smoother).
        k0_per_km: roll-off wavenumber (cycles/km); wavelengths longer than
            ``1/k0`` are damped.
    """
    pad = (shape[0] + shape[0] // 4, shape[1] + shape[1] // 4)  # avoid wrap-around seams
    white = rng.standard_normal(pad).astype(np.float32)
    spec = np.fft.rfft2(white)
    ky = np.fft.fftfreq(pad[0], d=res_km)[:, None]
    kx = np.fft.rfftfreq(pad[1], d=res_km)[None, :]
    spec *= ((kx**2 + ky**2 + k0_per_km**2) ** (-beta / 4)).astype(np.float32)
    out = np.fft.irfft2(spec, s=pad)[: shape[0], : shape[1]].astype(np.float32)
    out -= out.mean()
    out /= out.std() + 1e-12
    return out


def _unit(a: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.5) -> np.ndarray:
    lo, hi = np.percentile(a[::4, ::4], [lo_pct, hi_pct])
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def valley_geometry(frame: Frame, rng: np.random.Generator) -> Valley:
    """Lay out the sinuous main valley across the frame."""
    X, Y = frame.km_coords()
    side_km = frame.side_m / 1000.0
    axis = float(rng.uniform(-30.0, 30.0) + rng.choice([0.0, 180.0]))
    th = np.deg2rad(axis)
    s = X * np.cos(th) + Y * np.sin(th)
    t = -X * np.sin(th) + Y * np.cos(th)
    ph = rng.uniform(0, 2 * np.pi, 3)
    centre = 0.07 * side_km * np.sin(2 * np.pi * s / (0.65 * side_km) + ph[0]) + (
        0.025 * side_km * np.sin(2 * np.pi * s / (0.23 * side_km) + ph[1])
    )
    half_w = 0.085 * side_km * (1.0 + 0.3 * np.sin(2 * np.pi * s / (0.4 * side_km) + ph[2]))
    return Valley(axis, np.abs(t - centre).astype(np.float32), s.astype(np.float32), half_w)


def synth_dem(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, Valley]:
    """Synthesize the DEM.

    Args:
        frame: the raster frame (EPSG:32649, ``frame.res_m`` cells).
        rng: random generator (the only source of randomness).

    Returns:
        (elevation in metres as float32 (rows, cols), the valley layout).
    """
    side_km = frame.side_m / 1000.0
    res_km = frame.res_m / 1000.0
    valley = valley_geometry(frame, rng)
    base = _unit(spectral_noise(rng, frame.shape, res_km, 4.0, 1.0 / (0.35 * side_km)))
    ridged = 1.0 - np.abs(spectral_noise(rng, frame.shape, res_km, 3.6, 1.0 / (0.15 * side_km)))
    ridged = _unit(ridged, 0.0, 100.0) ** 2
    detail = spectral_noise(rng, frame.shape, res_km, 3.2, 1.0 / (0.03 * side_km))
    hills = np.clip(0.7 * base + 0.3 * ridged * (0.2 + base) + 0.03 * detail, 0.0, 1.0)
    # Large-scale mask: hill massifs separated by low terraces and basins.
    massif = _smoothstep(
        (_unit(spectral_noise(rng, frame.shape, res_km, 5.0, 1.0 / (0.4 * side_km))) - 0.25) / 0.45
    )
    relief = MAX_RELIEF_M * (hills**1.4) * (0.15 + 0.85 * massif) + 10.0

    d, w = valley.dist_km, valley.half_width_km
    ramp_km = 0.06 * side_km
    rise = _smoothstep((d - w) / ramp_km)
    envelope = rise * (0.3 + 0.7 * np.clip((d - w) / (0.25 * side_km), 0.0, 1.0) ** 0.8)

    along01 = np.clip(valley.along_km / side_km + 0.5, 0.0, 1.0)
    floor = 2.5 + 5.0 * (1.0 - along01) + 2.5 * np.clip(d / w, 0.0, 1.0)
    micro = 0.15 * spectral_noise(rng, frame.shape, res_km, 2.0, 1.0 / 2.0)
    dem = floor + micro * (1.0 - rise) + envelope * relief
    dem -= _floodplain_pits(frame, rng, valley)
    return dem.astype(np.float32), valley


def _floodplain_pits(frame: Frame, rng: np.random.Generator, valley: Valley) -> np.ndarray:
    """Shallow Gaussian depressions (m, positive = deeper) scattered on the floodplain."""
    area_km2 = (frame.side_m / 1000.0) ** 2
    n = max(12, int(round(70 * area_km2 / 900.0)))
    inner = np.flatnonzero((valley.dist_km < 0.9 * valley.half_width_km)[::3, ::3].ravel())
    pick = rng.choice(inner, size=min(n, inner.size), replace=False)
    sub_w = (frame.width + 2) // 3
    rows, cols = (pick // sub_w) * 3, (pick % sub_w) * 3
    depth = rng.uniform(1.0, 2.2, rows.size)
    sigma_px = rng.uniform(2.0, 4.5, rows.size)
    out = np.zeros(frame.shape, dtype=np.float32)
    rad = 14
    yy, xx = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    for r, c, dep, sg in zip(rows, cols, depth, sigma_px, strict=True):  # a few dozen pits
        r0, r1 = max(r - rad, 0), min(r + rad + 1, frame.height)
        c0, c1 = max(c - rad, 0), min(c + rad + 1, frame.width)
        kern = dep * np.exp(-(xx**2 + yy**2) / (2 * sg**2))
        out[r0:r1, c0:c1] = np.maximum(
            out[r0:r1, c0:c1], kern[r0 - r + rad : r1 - r + rad, c0 - c + rad : c1 - c + rad]
        )
    return out


def slope_deg(dem_m: np.ndarray, res_m: float) -> np.ndarray:
    """Terrain slope in degrees from central differences of a DEM (m) with cells of ``res_m``."""
    gy, gx = np.gradient(dem_m.astype(np.float32), res_m)
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def write_cog(path: Path, dem_m: np.ndarray, frame: Frame) -> Path:
    """Write a float32 Cloud-Optimized GeoTIFF (EPSG:32649, nodata -9999, overviews).

    The file is written next to ``path`` and atomically renamed, so re-running
    overwrites it cleanly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.tif")
    profile = {
        "driver": "GTiff",
        "width": frame.width,
        "height": frame.height,
        "count": 1,
        "dtype": "float32",
        "crs": METRIC_CRS,
        "transform": frame.transform,
        "nodata": NODATA,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(dem_m.astype(np.float32), 1)
            ds.update_tags(1, units="metre", description="Synthetic elevation above datum")
        with mem.open() as src:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE="512",
                OVERVIEW_RESAMPLING="AVERAGE",
                RESAMPLING="BILINEAR",
                NUM_THREADS="2",
            )
    os.replace(tmp, path)
    return path
