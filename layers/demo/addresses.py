"""Standard addresses (标准地址): one per building plus room-level addresses.

Every building gets a house-number address (road + 号 [+ estate + 栋]); that
address is the building's ``address_code``.  Estate towers and office
towers are then enumerated room by room (单元 / 层 / 室) until the target
count is reached.  Room addresses sit at a random spot inside their
footprint.  Admin components (street, community, grid) are filled in later
from the grid that contains each point (see :mod:`layers.demo.city`).
Coordinates are metres (EPSG:32649).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers.demo.buildings import Buildings


def make_addresses(
    b: Buildings, road_names: np.ndarray, rng: np.random.Generator, target: int
) -> pd.DataFrame:
    """Address rows (without admin names or codes).

    Args:
        b: the buildings.
        road_names: name of every road (indexed by ``b.road``).
        rng: random generator.
        target: wanted total number of addresses (≥ number of buildings).

    Returns:
        DataFrame with ``x``, ``y`` (m, EPSG:32649), ``building_idx``,
        ``road``, ``house_number``, ``estate``, ``building``, ``unit``,
        ``floor``, ``room`` and ``dwelling`` (a home, for household counts).
    """
    n = b.geom.size
    bld = np.full(n, None, dtype=object)
    bld[b.bldg_no > 0] = [f"{k}栋" for k in b.bldg_no[b.bldg_no > 0]]
    house = pd.DataFrame(
        {
            "x": b.cx,
            "y": b.cy,
            "building_idx": np.arange(n),
            "road": road_names[b.road],
            "house_number": b.house_number,
            "estate": b.estate,
            "building": bld,
            "unit": None,
            "floor": None,
            "room": None,
            "dwelling": (b.use == "residential") & (b.bldg_no == 0),
        }
    )

    estate_tower = b.bldg_no > 0
    office_tower = (b.use == "commercial") & (b.estate != None)  # noqa: E711
    units = np.where(estate_tower, np.clip(b.width_m // 8, 1, 3), 1).astype(np.int64)
    per_floor = np.where(estate_tower, 2, rng.integers(4, 9, n))
    rooms = np.where(estate_tower | office_tower, units * per_floor * b.floors, 0)
    budget = max(0, target - n)
    cand = np.flatnonzero(rooms > 0)
    cand = cand[rng.permutation(cand.size)]
    take = cand[np.cumsum(rooms[cand]) <= budget]
    if take.size < cand.size and budget - rooms[take].sum() > 0:
        take = np.append(take, cand[take.size])  # overshoot the target by one building
    take.sort()
    cnt = rooms[take]
    rep = np.repeat(take, cnt)
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    fl_n, pf = b.floors[rep], per_floor[rep]
    unit_i = k // (fl_n * pf)
    floor_i = (k // pf) % fl_n + 1
    room_i = unit_i * pf + k % pf + 1
    # A random spot inside the rotated footprint.
    a = rng.uniform(-0.35, 0.35, rep.size) * b.width_m[rep]
    c = rng.uniform(-0.35, 0.35, rep.size) * b.depth_m[rep]
    th = b.angle_rad[rep]
    x = b.cx[rep] + a * np.cos(th) - c * np.sin(th)
    y = b.cy[rep] + a * np.sin(th) + c * np.cos(th)
    est = estate_tower[rep]
    room = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "building_idx": rep,
            "road": road_names[b.road[rep]],
            "house_number": b.house_number[rep],
            "estate": b.estate[rep],
            "building": bld[rep],
            "unit": pd.Series(np.char.add((unit_i + 1).astype(str), "单元")).where(est, None),
            "floor": np.char.add(floor_i.astype(str), "层"),
            "room": np.char.add(
                np.char.add(floor_i.astype(str), np.char.zfill(room_i.astype(str), 2)), "室"
            ),
            "dwelling": est,
        }
    )
    return pd.concat([house, room], ignore_index=True)


def full_address(df: pd.DataFrame) -> pd.Series:
    """Concatenate 省市区 街道 社区 路 号 小区 栋 单元 室 into one normalised string."""
    parts = [
        "province",
        "city",
        "district",
        "street",
        "community",
        "road",
        "house_number",
        "estate",
        "building",
        "unit",
        "room",
    ]
    out = df[parts[0]].fillna("").astype(str)
    for p in parts[1:]:
        out = out + df[p].fillna("").astype(str)
    return out
