"""Hazard sites (地质灾害隐患点 and 易涝点) placed where the terrain makes them plausible.

* landslide / collapse: steep cells (slope > 25°, > 35° for collapse) within
  a few hundred metres of buildings;
* debris_flow: steep small channels (upstream area 0.05–1.2 km²) above buildings;
* waterlogging: the deepest cell of closed floodplain depressions near roads;
* subsidence: a few soft-ground floodplain spots among buildings.

Threat figures follow the Chinese scale grades (small/medium/large/huge by
people threatened and property in 万元).  Coordinates are metres (EPSG:32649).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import rasterio.features
from scipy import ndimage

from layers.demo.frame import Frame

_KIND_ZH = {
    "landslide": "滑坡",
    "collapse": "崩塌",
    "debris_flow": "泥石流",
    "subsidence": "地面沉降",
    "waterlogging": "易涝点",
}


def _distance_m(frame: Frame, mask: np.ndarray) -> np.ndarray:
    """Distance (m) from every cell to the nearest True cell of ``mask``."""
    return ndimage.distance_transform_edt(~mask).astype(np.float32) * frame.res_m


def _one_per_bin(frame: Frame, cells: np.ndarray, score: np.ndarray, bin_m: float) -> np.ndarray:
    """Best-scoring cell of each ``bin_m`` square (thins clusters of candidates)."""
    rows, cols = np.divmod(cells, frame.width)
    b = int(bin_m // frame.res_m)
    df = pd.DataFrame({"cell": cells, "score": score, "bin": (rows // b) * 100_000 + cols // b})
    best = df.sort_values(["bin", "score"], ascending=[True, False], kind="stable")
    return best.drop_duplicates("bin")["cell"].to_numpy()


def make_hazards(
    frame: Frame,
    dem_m: np.ndarray,
    slope: np.ndarray,
    upa_km2: np.ndarray,
    sink_depth_m: np.ndarray,
    in_district: np.ndarray,
    bldg_xy: np.ndarray,
    bldg_floors: np.ndarray,
    road_geoms: np.ndarray,
    rng: np.random.Generator,
    target: int,
) -> pd.DataFrame:
    """About ``target`` hazard sites (at least 50 at scale 1).

    Args:
        frame: raster frame; dem_m, slope, upa_km2, sink_depth_m: terrain rasters.
        in_district: boolean raster of cells inside the district.
        bldg_xy: (n, 2) building centres (m); bldg_floors: their floors.
        road_geoms: road MultiLineStrings (m).
        rng: random generator; target: wanted number of sites.

    Returns:
        DataFrame with ``x``, ``y`` (m), ``kind``, ``threat_people``,
        ``threat_property`` (万元), ``level``.
    """
    rows, cols = frame.rowcol(bldg_xy[:, 0], bldg_xy[:, 1])
    has_bldg = np.zeros(frame.shape, dtype=bool)
    has_bldg[rows, cols] = True
    d_bldg = _distance_m(frame, has_bldg)
    road_mask = rasterio.features.rasterize(
        [(g, 1) for g in road_geoms], out_shape=frame.shape, transform=frame.transform
    ).astype(bool)
    d_road = _distance_m(frame, road_mask)

    picks: list[tuple[np.ndarray, str | np.ndarray]] = []
    n_slope, n_debris, n_water = round(target * 0.5), round(target * 0.15), round(target * 0.3)
    for slope_min, near_m in ((25.0, 300.0), (22.0, 600.0), (18.0, 1200.0)):
        cand = np.flatnonzero((in_district & (slope > slope_min) & (d_bldg < near_m)).ravel())
        best = _one_per_bin(frame, cand, slope.ravel()[cand], 450.0)
        if best.size >= n_slope:
            break
    best = rng.permutation(best)[:n_slope]
    kinds = np.where(slope.ravel()[best] > 35.0, "collapse", "landslide")
    picks.append((best, kinds))

    channel = (upa_km2 > 0.05) & (upa_km2 < 1.2) & (slope > 15.0)
    cand = np.flatnonzero((in_district & channel & (d_bldg < 500.0)).ravel())
    best = _one_per_bin(frame, cand, upa_km2.ravel()[cand], 600.0)
    picks.append((rng.permutation(best)[:n_debris], "debris_flow"))

    low = in_district & (dem_m < 15.0)
    lab, n_lab = ndimage.label(low & (sink_depth_m > 0.3) & (d_road < 150.0))
    if n_lab:
        pos = ndimage.maximum_position(sink_depth_m, lab, index=np.arange(1, n_lab + 1))
        sinks = np.array([r * frame.width + c for r, c in pos], dtype=np.int64)
    else:
        sinks = np.empty(0, dtype=np.int64)
    if sinks.size < n_water:  # low points along floodplain roads (underpasses, dips)
        local_low = dem_m <= ndimage.minimum_filter(dem_m, size=11) + 0.05
        cand = np.flatnonzero((low & road_mask & local_low).ravel())
        extra = _one_per_bin(frame, cand, -dem_m.ravel()[cand], 500.0)
        extra = rng.permutation(extra[~np.isin(extra, sinks)])[: n_water - sinks.size]
        sinks = np.concatenate([sinks, extra])
    picks.append((rng.permutation(sinks)[:n_water], "waterlogging"))

    soft = np.flatnonzero((low & (d_bldg < 60.0)).ravel())
    picks.append(
        (rng.choice(soft, size=min(soft.size, max(2, target // 20)), replace=False), "subsidence")
    )

    cells = np.concatenate([p[0] for p in picks])
    kind = np.concatenate([np.broadcast_to(np.asarray(p[1]), p[0].shape) for p in picks])
    r, c = np.divmod(cells, frame.width)
    x, y = frame.cell_xy(r, c)
    jit = rng.uniform(-10, 10, (cells.size, 2))
    df = pd.DataFrame({"x": x + jit[:, 0], "y": y + jit[:, 1], "kind": kind})
    return _threats(df, bldg_xy, bldg_floors, rng)


def _threats(df: pd.DataFrame, bldg_xy, bldg_floors, rng) -> pd.DataFrame:
    from scipy.spatial import cKDTree

    radius = np.where(df.kind == "waterlogging", 120.0, 200.0)
    tree = cKDTree(bldg_xy)
    near = tree.query_ball_point(df[["x", "y"]].to_numpy(), r=radius)
    floors = np.array([bldg_floors[i].sum() for i in near], dtype=np.float64)
    per_floor = np.where(df.kind == "waterlogging", 0.6, 1.2)
    people = np.round(floors * per_floor * rng.uniform(0.6, 1.4, len(df))).astype(np.int64)
    people = np.maximum(people, rng.integers(3, 30, len(df)))
    prop = np.round(people * rng.uniform(6.0, 15.0, len(df)) + rng.uniform(20, 200, len(df)), 1)
    grade = np.maximum(
        np.searchsorted([100, 500, 1000], people, side="right"),
        np.searchsorted([500.0, 5000.0, 10000.0], prop, side="right"),
    )
    df["threat_people"] = people
    df["threat_property"] = prop
    df["level"] = np.array(["small", "medium", "large", "huge"])[grade]
    return df


def hazard_name(kind: str, community: str, road: str, serial: int) -> str:
    """A Chinese site name, e.g. 凤鸣社区3号滑坡隐患点 or 中山路低洼易涝点."""
    if kind == "waterlogging":
        return f"{road}低洼易涝点"
    return f"{community}{serial}号{_KIND_ZH[kind]}隐患点"
