"""Surveillance cameras (雪亮工程) at intersections, estate gates and key sites.

Every camera looks at something: its ``heading_deg`` (clockwise from grid
north of EPSG:32649, within ~1° of true north here) points from the camera
to the intersection centre, the estate gate or the key site it watches.
Coordinates are metres (EPSG:32649).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from layers.demo.buildings import Buildings
from layers.demo.roads import Roads

_RANK = {"primary": 3, "secondary": 2, "tertiary": 1, "residential": 0}
_COMPASS = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")


def heading_deg(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bearing of vector (dx east, dy north) in degrees clockwise from north, 0..360."""
    return np.degrees(np.arctan2(dx, dy)) % 360.0


def intersections(roads: Roads) -> pd.DataFrame:
    """Crossing points of distinct roads: ``x``, ``y`` (m), ``name``, ``rank`` (0..3)."""
    tree = shapely.STRtree(roads.geom)
    a, b = tree.query(roads.geom, predicate="intersects")
    a, b = a[a < b], b[a < b]
    pts, pidx = shapely.get_parts(
        shapely.intersection(roads.geom[a], roads.geom[b]), return_index=True
    )
    ok = shapely.get_type_id(pts) == 0
    xy = shapely.get_coordinates(pts[ok])
    ia, ib = a[pidx[ok]], b[pidx[ok]]
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "a": ia, "b": ib})
    df["snap"] = (np.round(df.x / 10.0)).astype(np.int64) * 10_000_000 + np.round(df.y / 10.0)
    df = df.drop_duplicates("snap").reset_index(drop=True)
    rank = np.array([_RANK[c] for c in roads.cls])
    df["rank"] = np.maximum(rank[df.a], rank[df.b])
    df["name"] = [
        f"{roads.name[i]}与{roads.name[j]}交叉口" for i, j in zip(df.a, df.b, strict=True)
    ]
    return df


def make_cameras(
    roads: Roads, b: Buildings, venues: pd.DataFrame, rng: np.random.Generator, target: int
) -> pd.DataFrame:
    """About ``target`` cameras (never fewer if the city has enough intersections).

    Returns:
        DataFrame with ``x``, ``y`` (m), ``name``, ``kind``, ``heading_deg``,
        ``fov_deg``, ``range_m``, ``status``.
    """
    parts = []
    ix = intersections(roads)
    # Major crossings: a PTZ dome plus gun cameras; minor ones: one camera.
    n_cam = np.where(ix["rank"] >= 2, 3, 1)
    rep = np.repeat(np.arange(len(ix)), n_cam)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n_cam) - n_cam, n_cam)
    ang = rng.uniform(0, 2 * np.pi, rep.size)
    off = rng.uniform(8.0, 16.0, rep.size)
    cx, cy = ix.x.to_numpy()[rep], ix.y.to_numpy()[rep]
    x, y = cx + off * np.sin(ang), cy + off * np.cos(ang)
    corner = np.array(_COMPASS)[np.round(np.degrees(ang) / 45).astype(int) % 8]
    kind = np.where(
        (ix["rank"].to_numpy()[rep] >= 2) & (k == 0),
        "ptz",
        np.where(rng.random(rep.size) < 0.25, "dome", "gun"),
    )
    parts.append(
        pd.DataFrame(
            {
                "x": x,
                "y": y,
                "tx": cx,
                "ty": cy,
                "kind": kind,
                "prio": 0,
                "name": [f"{n}{c}角" for n, c in zip(ix.name.to_numpy()[rep], corner, strict=True)],
            }
        )
    )

    gate = np.flatnonzero(b.bldg_no == 1)  # the first tower of every estate faces its gate
    fx, fy = b.front_x[gate], b.front_y[gate]
    vx, vy = fx - b.cx[gate], fy - b.cy[gate]
    norm = np.maximum(np.hypot(vx, vy), 1e-6)
    parts.append(
        pd.DataFrame(
            {
                "x": fx + 3 * vx / norm,
                "y": fy + 3 * vy / norm,
                "tx": fx,
                "ty": fy,
                "kind": np.where(rng.random(gate.size) < 0.6, "dome", "gun"),
                "prio": 1,
                "name": [f"{e}大门" for e in b.estate[gate]],
            }
        )
    )

    key = venues[venues["key_site"]]
    bi = key["building_idx"].to_numpy()
    vx, vy = b.front_x[bi] - b.cx[bi], b.front_y[bi] - b.cy[bi]
    norm = np.maximum(np.hypot(vx, vy), 1e-6)
    d = rng.uniform(12.0, 25.0, bi.size)
    parts.append(
        pd.DataFrame(
            {
                "x": key.x.to_numpy() + vx / norm * d,
                "y": key.y.to_numpy() + vy / norm * d,
                "tx": key.x.to_numpy(),
                "ty": key.y.to_numpy(),
                "prio": 2,
                "kind": np.where(rng.random(bi.size) < 0.5, "gun", "dome"),
                "name": [f"{n}门口" for n in key.name],
            }
        )
    )
    cams = pd.concat(parts, ignore_index=True)
    if len(cams) > target * 1.2:  # thin out, keeping every key-site camera
        minor = np.flatnonzero(cams.prio < 2)
        drop = rng.choice(minor, size=min(minor.size, len(cams) - int(target * 1.2)), replace=False)
        cams = cams.drop(index=list(drop)).reset_index(drop=True)
    n = len(cams)
    dx = (cams["tx"] - cams["x"]).to_numpy()
    dy = (cams["ty"] - cams["y"]).to_numpy()
    cams["heading_deg"] = np.round((heading_deg(dx, dy) + rng.normal(0, 8, n)) % 360, 1)
    is_ptz, is_dome = cams.kind == "ptz", cams.kind == "dome"
    cams["fov_deg"] = np.where(
        is_ptz, 360.0, np.where(is_dome, rng.uniform(90, 110, n), rng.uniform(55, 75, n))
    ).round(0)
    cams["range_m"] = np.where(
        is_ptz,
        rng.uniform(80, 120, n),
        np.where(is_dome, rng.uniform(30, 60, n), rng.uniform(50, 110, n)),
    ).round(0)
    cams["status"] = np.where(rng.random(n) < 0.08, "offline", "online")
    return cams.drop(columns=["tx", "ty", "prio"])
