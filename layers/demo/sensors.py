"""Rain gauges, river water-level sensors and one week of their readings.

Rain comes from a few moving convective cells (Gaussian footprints drifting
across the district) on top of mostly dry weather, read by tipping buckets
at 0.1 mm resolution every ``STEP_MIN`` minutes.  Water levels (水位, m
above datum) are the channel bed plus a base depth plus the district rain
routed through a gamma unit hydrograph whose lag grows with upstream area.
Coordinates are metres (EPSG:32649); times are UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

from layers.demo.frame import Frame, farthest_points

#: End of the reading week (exclusive), UTC; fixed so output is deterministic.
READINGS_END = pd.Timestamp("2026-06-07T00:00:00Z")
STEP_MIN = 10
DAYS = 7


def place_sensors(
    frame: Frame,
    in_district: np.ndarray,
    river_cells: list[np.ndarray],
    upa_km2: np.ndarray,
    bed_m: np.ndarray,
    rng: np.random.Generator,
    n_rain: int,
    n_level: int,
) -> pd.DataFrame:
    """Spread rain gauges over the district and water-level gauges along rivers.

    Args:
        frame: raster frame; in_district: boolean raster of district cells.
        river_cells: flat cell indices (source→mouth) of each river, main river first.
        upa_km2: upstream area raster; bed_m: burned DEM (channel beds).
        rng: random generator; n_rain, n_level: wanted gauge counts.

    Returns:
        DataFrame with ``x``, ``y`` (m), ``kind``, ``unit``, ``upa_km2``, ``bed_m``.
    """
    # Evenly spread: k-means centres of the district cells, snapped to a cell well inside.
    inner = ndimage.binary_erosion(in_district, iterations=10)
    cells = np.flatnonzero(inner[::5, ::5].ravel())
    r, c = np.divmod(cells, (frame.width + 4) // 5)
    xy = np.column_stack(frame.cell_xy(r * 5, c * 5))
    centres, _ = kmeans2(xy, xy[farthest_points(xy, n_rain, 0)], iter=20, minit="matrix")
    rain = xy[cKDTree(xy).query(centres)[1]] + rng.uniform(-40, 40, (len(centres), 2))

    on_river = np.concatenate(river_cells[: max(1, len(river_cells) // 3)])
    ok = in_district.ravel()[on_river] & (upa_km2.ravel()[on_river] > 5.0)
    on_river = on_river[ok & (bed_m.ravel()[on_river] < 30.0)]  # lowland reaches
    rr, rc = np.divmod(on_river, frame.width)
    lxy = np.column_stack(frame.cell_xy(rr, rc))
    pick = on_river[farthest_points(lxy, n_level, int(np.argmax(upa_km2.ravel()[on_river])))]
    pr, pc = np.divmod(pick, frame.width)
    lx, ly = frame.cell_xy(pr, pc)
    return pd.DataFrame(
        {
            "x": np.concatenate([rain[:, 0], lx]),
            "y": np.concatenate([rain[:, 1], ly]),
            "kind": ["rain_gauge"] * len(rain) + ["water_level"] * len(pick),
            "unit": ["mm"] * len(rain) + ["m"] * len(pick),
            "upa_km2": np.concatenate([np.zeros(len(rain)), upa_km2.ravel()[pick]]),
            "bed_m": np.concatenate([np.zeros(len(rain)), bed_m.ravel()[pick]]),
        }
    )


def readings(sensors: pd.DataFrame, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """One week of readings for every sensor.

    Returns:
        DataFrame ``sensor_code``, ``observed_at`` (UTC), ``value`` (mm of rain
        in the interval, or water level in m), ``unit``.
    """
    n_t = DAYS * 24 * 60 // STEP_MIN
    times = READINGS_END - pd.to_timedelta(np.arange(n_t, 0, -1) * STEP_MIN, unit="min")
    t_h = np.arange(n_t) * STEP_MIN / 60.0
    xy = sensors[["x", "y"]].to_numpy()
    cx, cy = xy.mean(axis=0)
    span = max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1.0)

    rain_rate = np.zeros((len(sensors), n_t))  # mm/h
    n_cells = int(rng.integers(3, 6))
    for _ in range(n_cells):  # a handful of showers during the week
        t0 = rng.uniform(6, DAYS * 24 - 12)
        dur = rng.uniform(1.5, 6.0)
        peak = rng.uniform(8, 45)
        sigma = rng.uniform(0.25, 0.6) * span
        ang = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.15, 0.4) * span / dur  # m/h
        x0 = cx - np.cos(ang) * speed * dur / 2 + rng.normal(0, 0.2 * span)
        y0 = cy - np.sin(ang) * speed * dur / 2 + rng.normal(0, 0.2 * span)
        tt = np.clip((t_h - t0) / dur, 0, 1)
        active = (t_h >= t0) & (t_h <= t0 + dur)
        shape = np.sin(np.pi * tt) ** 2 * active
        px = x0 + np.cos(ang) * speed * (t_h - t0)
        py = y0 + np.sin(ang) * speed * (t_h - t0)
        d2 = (xy[:, :1] - px[None]) ** 2 + (xy[:, 1:] - py[None]) ** 2
        rain_rate += peak * shape[None] * np.exp(-d2 / (2 * sigma**2))
    noise = rng.lognormal(0.0, 0.35, rain_rate.shape)
    rain_mm = np.floor(rain_rate * noise * STEP_MIN / 60.0 * 10) / 10  # 0.1 mm buckets

    is_rain = (sensors["kind"] == "rain_gauge").to_numpy()
    value = np.where(is_rain[:, None], rain_mm, 0.0)
    basin_mm = rain_mm[is_rain].mean(axis=0) if is_rain.any() else np.zeros(n_t)
    upa_all = sensors["upa_km2"].to_numpy(dtype=np.float64)
    bed_all = sensors["bed_m"].to_numpy(dtype=np.float64)
    for i in np.flatnonzero(~is_rain):  # tens of water-level gauges
        upa = max(upa_all[i], 1.0)
        lag_h = 1.0 + 1.2 * np.log10(upa)
        k = np.arange(0, 48 * 60 // STEP_MIN) * STEP_MIN / 60.0
        uh = (k / lag_h) ** 2 * np.exp(-2 * k / lag_h)
        uh /= uh.sum()
        rise = np.convolve(basin_mm, uh)[:n_t] * (0.03 + 0.02 * np.sqrt(upa))
        base = bed_all[i] + 1.2 + 0.5 * np.log10(upa)
        tide = 0.08 * np.sin(2 * np.pi * t_h / 12.42 + rng.uniform(0, 2 * np.pi))
        value[i] = np.round(base + rise + tide + rng.normal(0, 0.005, n_t), 2)

    return pd.DataFrame(
        {
            "sensor_code": np.repeat(codes, n_t),
            "observed_at": pd.DatetimeIndex(
                np.tile(times.tz_convert(None).to_numpy(), len(codes))
            ).tz_localize("UTC"),
            "value": value.ravel().astype(np.float64),
            "unit": np.repeat(sensors["unit"].to_numpy(), n_t),
        }
    )
