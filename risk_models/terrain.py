"""Terrain derivatives of a DEM: filling, D8 flow, streams, slope, relief, curvature, HAND, TWI.

Every array function takes and returns ``float32`` NumPy arrays in the DEM's projected CRS with
``NaN`` for no data; horizontal units are metres (a geographic DEM is reprojected to its local UTM
zone by :func:`read_dem`). :func:`derive_terrain` runs the whole chain on a GeoTIFF and writes one
Cloud-Optimized GeoTIFF per derivative.

Hydrology: exact priority-flood depression filling (:mod:`risk_models.fill`), steepest-descent
D8 with flats routed after Barnes et al. (2014), accumulation and up-path filling with pyflwdir
(MIT); HAND after Rennó et al. (2008); TWI after Beven & Kirkby (1979); curvature after
Zevenbergen & Thorne (1987); slope by Horn (1981).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyflwdir
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject
from scipy import ndimage

from risk_models import fill
from risk_models.errors import DemError, RasterError
from risk_models.flats import flat_directions

log = logging.getLogger(__name__)

#: Share of a DEM in one connected area of exactly 0 m above which it is likely an untagged
#: no-data value (a sea or a fill) rather than land at datum.
ZERO_AREA_WARN_SHARE = 0.05


class ZeroNodataWarning(UserWarning):
    """A DEM's most common value is exactly 0 over a large connected area (untagged no-data?)."""


def zero_plateau_share(elev_m: np.ndarray) -> float:
    """Share of the pixels in the largest connected area of exactly 0 when 0 is the DEM's
    most common value; 0.0 otherwise."""
    zero = elev_m == 0
    n0 = int(zero.sum())
    if n0 == 0:
        return 0.0
    finite = elev_m[np.isfinite(elev_m) & ~zero]
    if finite.size:
        _, counts = np.unique(finite, return_counts=True)
        if counts.max() > n0:
            return 0.0
    labels, n = ndimage.label(zero)
    largest = int(np.bincount(labels.ravel())[1:].max()) if n else 0
    return largest / elev_m.size


def warn_if_zero_nodata(elev_m: np.ndarray, source: str) -> str | None:
    """Warn (Python warning + log) when 0 looks like an untagged no-data value; the message."""
    share = zero_plateau_share(elev_m)
    if share < ZERO_AREA_WARN_SHARE:
        return None
    msg = (
        f"{source}: {share:.0%} of the DEM is one connected area of exactly 0 m, its most "
        "common value and not tagged as no-data; if that is sea or fill, pass --nodata 0 "
        '(params {"nodata": 0}), else it is modelled as land at datum'
    )
    log.warning(msg)
    warnings.warn(msg, ZeroNodataWarning, stacklevel=3)
    return msg


#: Heights outside this range (metres) mean a wrong unit or an undeclared no-data value.
MIN_PLAUSIBLE_ELEV_M = -500.0
MAX_PLAUSIBLE_ELEV_M = 9000.0
#: pyflwdir's no-data sentinel for elevation arrays.
_PFD_NODATA = -9999.0
#: tan(β) floor for TWI so flat cells get a large but finite index (≈ 0.06°).
_MIN_TAN_BETA = 1e-3


@dataclass(frozen=True)
class Dem:
    """A DEM in a projected CRS: heights in metres (float32, NaN = no data)."""

    elev_m: np.ndarray
    transform: Affine
    crs: CRS

    @property
    def res_m(self) -> tuple[float, float]:
        """Pixel size (x, y) in metres (both positive)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.elev_m.shape[0]), int(self.elev_m.shape[1]))


def utm_crs_for(lon_deg: float, lat_deg: float) -> CRS:
    """The WGS 84 / UTM zone CRS (EPSG:326xx north, 327xx south) containing a lon/lat point."""
    zone = int(math.floor((lon_deg + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat_deg >= 0 else 32700) + zone)


def check_elevations(elev_m: np.ndarray, source: str = "DEM") -> None:
    """Raise :class:`DemError` if a DEM is all no-data or holds implausible heights (metres)."""
    valid = np.isfinite(elev_m)
    if not valid.any():
        raise DemError(f"{source}: every pixel is no-data")
    lo = float(np.nanmin(elev_m))
    hi = float(np.nanmax(elev_m))
    if lo < MIN_PLAUSIBLE_ELEV_M or hi > MAX_PLAUSIBLE_ELEV_M:
        raise DemError(
            f"{source}: heights range {lo:.1f}..{hi:.1f} m, outside the plausible "
            f"{MIN_PLAUSIBLE_ELEV_M:.0f}..{MAX_PLAUSIBLE_ELEV_M:.0f} m; is the unit metres and "
            "is the no-data value declared (pass nodata=...)?"
        )


def read_dem(path: str | Path, *, nodata: float | None = None, band: int = 1) -> Dem:
    """Read a DEM GeoTIFF as float32 metres with NaN no-data, in a projected CRS.

    Args:
        path: any GDAL-readable raster with a CRS.
        nodata: value to treat as no data in addition to the file's own (e.g. ``0`` for the
            Hong Kong DTM, whose sea is 0).
        band: 1-based band number.

    A geographic DEM (degrees) is reprojected (bilinear) to its local UTM zone so that slope and
    areas are in metres.

    Raises:
        DemError: no CRS, all no-data, or heights outside −500..9000 m.
    """
    path = Path(path)
    try:
        src_ctx = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DemError(f"{path}: cannot be read as a raster ({exc})") from exc
    with src_ctx as src:
        if src.crs is None:
            raise DemError(f"{path}: the DEM has no CRS; assign one (e.g. gdal_edit -a_srs)")
        data = src.read(band, out_dtype="float32")
        crs = src.crs
        transform = src.transform
        if src.nodata is not None:
            data[data == np.float32(src.nodata)] = np.nan
    if nodata is not None:
        data[data == np.float32(nodata)] = np.nan
    else:
        warn_if_zero_nodata(data, str(path))
    check_elevations(data, str(path))
    if crs.is_geographic:
        data, transform, crs = _to_utm(data, transform, crs)
        check_elevations(data, str(path))
    return Dem(data, transform, crs)


def utm_grid(transform: Affine, crs: CRS, cols: int, rows: int) -> tuple[CRS, Affine, int, int]:
    """The square-pixel grid in the local UTM zone that a geographic DEM is reprojected to:
    ``(crs, transform, width, height)``."""
    cx, cy = transform @ (cols / 2.0, rows / 2.0)
    dst_crs = utm_crs_for(cx, cy)
    left, top = transform @ (0, 0)
    right, bottom = transform @ (cols, rows)
    dst_transform, width, height = calculate_default_transform(
        crs, dst_crs, cols, rows, left=left, bottom=bottom, right=right, top=top
    )
    # square pixels: the geographic grid maps to slightly different x/y sizes
    res = min(abs(dst_transform.a), abs(dst_transform.e))
    dst_transform, width, height = calculate_default_transform(
        crs, dst_crs, cols, rows, left=left, bottom=bottom, right=right, top=top, resolution=res
    )
    return dst_crs, dst_transform, int(width), int(height)


def _to_utm(data: np.ndarray, transform: Affine, crs: CRS) -> tuple[np.ndarray, Affine, CRS]:
    """Reproject a geographic float32 DEM (NaN no-data) to its local UTM zone (bilinear)."""
    rows, cols = data.shape
    dst_crs, dst_transform, width, height = utm_grid(transform, crs, cols, rows)
    out = np.full((int(height), int(width)), np.nan, dtype="float32")
    reproject(
        data,
        out,
        src_transform=transform,
        src_crs=crs,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out, dst_transform, dst_crs


# --- hydrology -------------------------------------------------------------------------------


def fill_depressions(
    elev_m: np.ndarray, res_m: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Fill depressions (exact priority flood, outlets at the raster/no-data edge,
    :mod:`risk_models.fill`) and derive D8.

    ``res_m`` (x, y pixel size) weighs diagonal drops in the steepest-descent directions.

    Returns:
        ``(filled_m, d8)``: filled heights (float32, NaN no-data) and pyflwdir D8 codes
        (uint8; 1..128 directions, 0 pit, 247 no-data).
    """
    filled = fill.fill(elev_m)
    return filled, steepest_d8(filled, res_m)


#: (row offset, col offset, pyflwdir D8 code) of the eight neighbours.
_D8_NEIGHBOURS = (
    (0, 1, 1), (1, 1, 2), (1, 0, 4), (1, -1, 8),
    (0, -1, 16), (-1, -1, 32), (-1, 0, 64), (-1, 1, 128),
)  # fmt: skip


def steepest_d8(filled_m: np.ndarray, res_m: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Steepest-descent D8 (O'Callaghan & Mark 1984) on a filled DEM.

    Priority-flood directions (each cell to the cell it was reached from) are often a
    diagonal instead of the fall line on planar slopes, which biases HAND. Here cells with a
    strictly lower valid neighbour get the direction of the largest drop per distance; cells
    on flats are routed towards the flat's outlet and away from its higher rim
    (:func:`risk_models.flats.flat_directions`, Barnes et al. 2014). On an exactly filled DEM
    every flat has an outlet; one at the DEM's edge is a pit (code 0).
    """
    rows, cols = filled_m.shape
    pad = np.pad(filled_m.astype("float64"), 1, constant_values=np.nan)
    best = np.zeros(filled_m.shape, dtype="float64")
    code = np.zeros(filled_m.shape, dtype="uint8")
    for dr, dc, c in _D8_NEIGHBOURS:
        dist = math.hypot(dr * res_m[1], dc * res_m[0])
        nb = pad[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        with np.errstate(invalid="ignore"):
            drop = (filled_m - nb) / dist
            better = drop > best  # NaN neighbours compare False
        best = np.where(better, drop, best)
        code = np.where(better, np.uint8(c), code)
    flat = flat_directions(filled_m)
    flat = np.where(flat == 255, 0, flat)
    out = np.where(best > 0, code, flat).astype("uint8")
    out[~np.isfinite(filled_m)] = 247
    return out


def flow_raster(d8: np.ndarray, transform: Affine) -> pyflwdir.FlwdirRaster:
    """A pyflwdir flow-direction object for a projected (metre) grid."""
    return pyflwdir.from_array(d8, ftype="d8", transform=transform, latlon=False, check_ftype=False)


def upstream_area_km2(flw: pyflwdir.FlwdirRaster) -> np.ndarray:
    """Flow accumulation as upstream area in km² including the cell itself (float32, NaN).

    Cells are counted exactly (integers) and then scaled by the pixel area, so the windowed
    chain (:mod:`risk_models.terrain_tiles`), which adds counts across tiles, gives the same
    values bit for bit; pyflwdir's own km² sum rounds in float32 along long paths.
    """
    cells = flw.upstream_area(unit="cell")
    pixel_m2 = abs(flw.transform.a * flw.transform.e)
    upa = (cells.astype("float64") * pixel_m2 / 1e6).astype("float32")
    upa[cells < 0] = np.nan
    return upa


def stream_mask(uparea_km2: np.ndarray, stream_area_km2: float) -> np.ndarray:
    """Stream cells: upstream area ≥ ``stream_area_km2`` (km²)."""
    if stream_area_km2 <= 0:
        raise RasterError("stream_area_km2 must be > 0")
    with np.errstate(invalid="ignore"):
        return np.asarray(uparea_km2 >= stream_area_km2)


def hand_m(flw: pyflwdir.FlwdirRaster, streams: np.ndarray, filled_m: np.ndarray) -> np.ndarray:
    """Height Above Nearest Drainage (m): height above the stream cell each cell drains to.

    Computed on the filled DEM along D8 paths (Rennó et al. 2008); a path that ends in a pit
    without reaching a stream is measured from the pit; NaN where no data. The drain's height
    is carried up the flow paths with pyflwdir's compiled ``fillnodata`` (its own ``hand``
    is a pure-Python loop, ~1 µs per pixel).
    """
    elev = np.where(np.isfinite(filled_m), filled_m, _PFD_NODATA).astype("float64")
    seed = np.full(elev.size, _PFD_NODATA, dtype="float64")
    drains = np.flatnonzero(streams.astype(bool).ravel())
    seed[drains] = elev.ravel()[drains]
    pits = np.asarray(flw.idxs_pit, dtype="int64")
    seed[pits] = elev.ravel()[pits]
    drain_elev = np.asarray(
        flw.fillnodata(seed.reshape(elev.shape), nodata=_PFD_NODATA, direction="up")
    )
    hand = (elev - drain_elev).astype("float32")
    hand[~np.isfinite(filled_m) | (drain_elev == _PFD_NODATA)] = np.nan
    return hand


def sink_depth_m(filled_m: np.ndarray, elev_m: np.ndarray) -> np.ndarray:
    """Depression depth (m) = filled − original; 0 outside depressions, NaN no-data."""
    return np.maximum(filled_m - elev_m, 0.0).astype("float32")


def distance_to_stream_m(streams: np.ndarray, res_m: tuple[float, float]) -> np.ndarray:
    """Euclidean distance (m) from each pixel centre to the nearest stream pixel centre.

    All-NaN if there is no stream cell.
    """
    if not streams.any():
        return np.full(streams.shape, np.nan, dtype="float32")
    dist = ndimage.distance_transform_edt(~streams.astype(bool), sampling=(res_m[1], res_m[0]))
    return np.asarray(dist, dtype="float32")


# --- local surface derivatives ---------------------------------------------------------------


def _window(elev_m: np.ndarray) -> list[np.ndarray]:
    """The 3×3 neighbourhood z1..z9 (row-major, z1 = NW) as shifted arrays.

    A missing neighbour (outside the grid or NaN) is extrapolated linearly through the centre
    from the opposite neighbour (``2·z5 − z_opposite``); a diagonal whose opposite is missing
    too takes the plane through its two orthogonal neighbours; an orthogonal one the centre.
    Edge cells thus keep exact gradients on planes instead of becoming NaN.
    """
    z5 = elev_m
    pad = np.pad(elev_m, 1, mode="constant", constant_values=np.nan)
    rows, cols = elev_m.shape
    raw = [pad[dr : dr + rows, dc : dc + cols] for dr in (0, 1, 2) for dc in (0, 1, 2)]
    out = list(raw)
    out[4] = z5
    for k in (1, 3, 5, 7):  # N, W, E, S
        opposite = raw[8 - k]
        fill = np.where(np.isfinite(opposite), 2 * z5 - opposite, z5)
        out[k] = np.where(np.isfinite(raw[k]), raw[k], fill)
    # diagonals: opposite extrapolation, else the plane through the two orthogonal neighbours
    for k, vert, horiz in ((0, 1, 3), (2, 1, 5), (6, 7, 3), (8, 7, 5)):
        opposite = raw[8 - k]
        plane = out[vert] + out[horiz] - z5
        fill = np.where(np.isfinite(opposite), 2 * z5 - opposite, plane)
        out[k] = np.where(np.isfinite(raw[k]), raw[k], fill)
    return out


def slope_deg(elev_m: np.ndarray, res_m: tuple[float, float]) -> np.ndarray:
    """Slope in degrees by Horn's (1981) 3×3 finite difference; ``res_m`` = (x, y) pixel size."""
    z1, z2, z3, z4, _z5, z6, z7, z8, z9 = _window(elev_m)
    dzdx = ((z3 + 2 * z6 + z9) - (z1 + 2 * z4 + z7)) / (8.0 * res_m[0])
    dzdy = ((z7 + 2 * z8 + z9) - (z1 + 2 * z2 + z3)) / (8.0 * res_m[1])
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy))).astype("float32")


def relief_m(elev_m: np.ndarray, window_px: int = 5) -> np.ndarray:
    """Local relief (m): max − min height in a square window of ``window_px`` pixels (odd)."""
    if window_px < 3 or window_px % 2 == 0:
        raise RasterError("relief window must be an odd number of pixels ≥ 3")
    valid = np.isfinite(elev_m)
    hi = ndimage.maximum_filter(np.where(valid, elev_m, -np.inf), size=window_px, mode="nearest")
    lo = ndimage.minimum_filter(np.where(valid, elev_m, np.inf), size=window_px, mode="nearest")
    out = (hi - lo).astype("float32")
    out[~valid] = np.nan
    return out


def curvature_per_m(
    elev_m: np.ndarray, res_m: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profile, plan and total curvature (1/m) after Zevenbergen & Thorne (1987).

    Sign convention as in ArcGIS (without its ×100 factor): total curvature > 0 is upwardly
    convex (ridges), < 0 concave (hollows, channels); profile curvature < 0 is convex in the
    slope direction (flow accelerates); plan curvature > 0 diverges flow laterally.
    """
    length = 0.5 * (res_m[0] + res_m[1])
    z1, z2, z3, z4, z5, z6, z7, z8, z9 = _window(elev_m)
    d = ((z4 + z6) / 2 - z5) / length**2
    e = ((z2 + z8) / 2 - z5) / length**2
    f = (-z1 + z3 + z7 - z9) / (4 * length**2)
    g = (-z4 + z6) / (2 * length)
    h = (z2 - z8) / (2 * length)
    gh2 = g * g + h * h
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(gh2 > 0, -2 * (d * g * g + e * h * h + f * g * h) / gh2, 0.0)
        plan = np.where(gh2 > 0, 2 * (d * h * h + e * g * g - f * g * h) / gh2, 0.0)
    total = -2 * (d + e)
    nan = ~np.isfinite(elev_m)
    outs = []
    for a in (profile, plan, total):
        a = a.astype("float32")
        a[nan] = np.nan
        outs.append(a)
    return outs[0], outs[1], outs[2]


def twi(uparea_km2: np.ndarray, slope: np.ndarray, res_m: tuple[float, float]) -> np.ndarray:
    """Topographic wetness index ln(a / tan β) (Beven & Kirkby 1979).

    ``a`` is the specific catchment area (m² per metre of contour width = upstream area / pixel
    width); ``slope`` in degrees, ``tan β`` floored at 1e-3 so flats stay finite.
    """
    width = 0.5 * (res_m[0] + res_m[1])
    a = uparea_km2.astype("float64") * 1e6 / width
    tan_b = np.maximum(np.tan(np.radians(slope.astype("float64"))), _MIN_TAN_BETA)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(a / tan_b).astype("float32")


# --- the whole chain -------------------------------------------------------------------------


def terrain_arrays(
    dem: Dem, *, stream_area_km2: float = 1.0, relief_window_m: float = 300.0
) -> dict[str, np.ndarray]:
    """All derivatives of a DEM as float32/uint8 arrays on the DEM grid.

    Args:
        dem: from :func:`read_dem` (projected, metres).
        stream_area_km2: upstream area (km²) from which a cell is a stream.
        relief_window_m: side of the relief window (m), rounded to an odd pixel count ≥ 3.

    Returns:
        ``elev_m, filled_m, sink_depth_m, flowdir_d8, uparea_km2, streams, slope_deg, relief_m,
        curv_profile_per_m, curv_plan_per_m, curv_total_per_m, hand_m, twi, dist_stream_m``.
    """
    res = dem.res_m
    filled, d8 = fill_depressions(dem.elev_m, dem.res_m)
    flw = flow_raster(d8, dem.transform)
    upa = upstream_area_km2(flw)
    streams = stream_mask(upa, stream_area_km2)
    slope = slope_deg(dem.elev_m, res)
    win = max(3, int(round(relief_window_m / res[0])) | 1)
    prof, plan, total = curvature_per_m(dem.elev_m, res)
    out = {
        "elev_m": dem.elev_m,
        "filled_m": filled,
        "sink_depth_m": sink_depth_m(filled, dem.elev_m),
        "flowdir_d8": d8,
        "uparea_km2": upa,
        "streams": streams.astype("uint8"),
        "slope_deg": slope,
        "relief_m": relief_m(dem.elev_m, win),
        "curv_profile_per_m": prof,
        "curv_plan_per_m": plan,
        "curv_total_per_m": total,
        "hand_m": hand_m(flw, streams, filled),
        "twi": twi(upa, slope, res),
        "dist_stream_m": distance_to_stream_m(streams, res),
    }
    nodata = ~np.isfinite(dem.elev_m)
    out["streams"][nodata] = 255
    out["dist_stream_m"][nodata] = np.nan
    out["twi"][nodata] = np.nan
    return out


def write_cog(path: Path, array: np.ndarray, transform: Affine, crs: CRS) -> Path:
    """Write one band as a deflate-compressed Cloud-Optimized GeoTIFF (NaN / 255 no-data)."""
    nodata: float = 255 if array.dtype == np.uint8 else float("nan")
    if array.dtype == np.uint8 and path.stem == "flowdir_d8":
        nodata = 247  # pyflwdir's D8 no-data code
    profile: dict[str, Any] = {
        "driver": "COG",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "compress": "DEFLATE",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


def derive_terrain(
    dem_path: str | Path,
    out_dir: str | Path,
    *,
    stream_area_km2: float = 1.0,
    relief_window_m: float = 300.0,
    nodata: float | None = None,
) -> dict[str, Path]:
    """Derive every terrain layer of a DEM GeoTIFF and write them as COGs in ``out_dir``.

    Args:
        dem_path: DEM in any CRS (geographic DEMs are reprojected to local UTM).
        out_dir: created if missing; files are ``<name>.tif``.
        stream_area_km2: stream threshold, upstream area in km².
        relief_window_m: relief window side in metres.
        nodata: extra no-data value (e.g. 0 for sea in the Hong Kong DTM).

    Returns:
        layer name → COG path (names as in :func:`terrain_arrays`).

    Raises:
        DemError: the DEM has no CRS, is all no-data or has implausible heights.
    """
    dem = read_dem(dem_path, nodata=nodata)
    arrays = terrain_arrays(dem, stream_area_km2=stream_area_km2, relief_window_m=relief_window_m)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        name: write_cog(out / f"{name}.tif", arr, dem.transform, dem.crs)
        for name, arr in arrays.items()
    }
