"""Historic incidents (事件) reported by grid workers and residents.

Waterlogging and landslide reports cluster around the hazard sites of the
same kind and in the rainy season; everything else (fallen trees, fires,
neighbour disputes, broken street lights …) happens at random addresses.
Times are UTC over the ``HISTORY_DAYS`` before
:data:`layers.demo.sensors.READINGS_END`; coordinates are metres (EPSG:32649).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers.demo import names
from layers.demo.sensors import READINGS_END

HISTORY_DAYS = 180
KINDS = ("waterlogging", "landslide", "fallen_tree", "fire", "dispute", "other")
_WEIGHTS = np.array([0.14, 0.05, 0.14, 0.07, 0.25, 0.35])
_TEXT = {
    "waterlogging": [
        "{road}路段积水约{n}厘米，车辆涉水通行困难",
        "{estate}地下车库入口积水，请求抽排",
        "{road}低洼处积水{n}厘米，行人无法通行",
    ],
    "landslide": [
        "{comm}后山边坡出现裂缝并有少量土石滑落",
        "{road}旁山体小规模滑坡，约{n}方土石堵塞路面",
    ],
    "fallen_tree": ["{road}一棵大树倒伏，阻断半幅车道", "{estate}门口树枝折断压住电动车"],
    "fire": ["{estate}{n}栋楼道电动车起火，已扑灭", "{road}沿街商铺冒烟，疑似电线短路"],
    "dispute": [
        "{estate}邻里因噪音发生纠纷，需调解",
        "{road}商户与顾客发生口角",
        "{comm}宅基地边界纠纷",
    ],
    "other": [
        "{road}路灯损坏{n}盏",
        "{road}占道经营",
        "{estate}垃圾堆放未及时清运",
        "{road}井盖缺失，存在安全隐患",
        "{comm}流浪犬伤人隐患",
    ],
}


def make_incidents(
    addresses: pd.DataFrame, hazards: pd.DataFrame, rng: np.random.Generator, n: int
) -> pd.DataFrame:
    """``n`` historic incidents.

    Args:
        addresses: address rows with ``x``, ``y``, ``road``, ``estate`` and ``community``.
        hazards: hazard sites with ``x``, ``y``, ``kind``.
        rng: random generator; n: number of incidents.

    Returns:
        DataFrame with ``x``, ``y`` (m), ``kind``, ``description``, ``status``,
        ``reported_at`` (UTC), ``reporter``.
    """
    kind = rng.choice(np.array(KINDS), size=n, p=_WEIGHTS / _WEIGHTS.sum())
    at = rng.integers(0, len(addresses), n)
    x = addresses["x"].to_numpy()[at] + rng.normal(0, 6, n)
    y = addresses["y"].to_numpy()[at] + rng.normal(0, 6, n)
    for hk, ik in (
        ("waterlogging", "waterlogging"),
        ("landslide", "landslide"),
        ("collapse", "landslide"),
    ):
        sites = hazards[hazards["kind"] == hk]
        sel = np.flatnonzero((kind == ik) & (rng.random(n) < 0.8))
        if len(sites) and sel.size:
            j = rng.integers(0, len(sites), sel.size)
            x[sel] = sites["x"].to_numpy()[j] + rng.normal(0, 25, sel.size)
            y[sel] = sites["y"].to_numpy()[j] + rng.normal(0, 25, sel.size)

    # Rain-driven incidents fall in the wet season (the last ~60 days), others uniformly.
    wet = np.isin(kind, ["waterlogging", "landslide", "fallen_tree"])
    age_days = np.where(wet, rng.gamma(2.0, 18.0, n), rng.uniform(0, HISTORY_DAYS, n))
    age_days = np.clip(age_days, 0.05, HISTORY_DAYS)
    reported = READINGS_END - pd.to_timedelta(np.round(age_days * 86400), unit="s")
    status = np.where(
        age_days > 10,
        np.where(rng.random(n) < 0.97, "closed", "in_progress"),
        rng.choice(np.array(["open", "in_progress", "closed"]), size=n, p=[0.4, 0.35, 0.25]),
    )
    road = addresses["road"].to_numpy()[at]
    estate = addresses["estate"].to_numpy()[at]
    comm = addresses["community"].to_numpy()[at]
    desc = []
    for k, r, e, c in zip(kind, road, estate, comm, strict=True):  # a few hundred incidents
        tpl = _TEXT[k][int(rng.integers(len(_TEXT[k])))]
        desc.append(
            tpl.format(
                road=r,
                estate=e if isinstance(e, str) and e else r,
                comm=c,
                n=int(rng.integers(2, 40)),
            )
        )
    who = np.where(rng.random(n) < 0.55, "网格员", "居民")
    reporter = [f"{w} {c}" for w, c in zip(who, names.contacts(rng, n), strict=True)]
    df = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "kind": kind,
            "description": desc,
            "status": status,
            "reported_at": pd.DatetimeIndex(reported),
            "reporter": reporter,
        }
    )
    return df.sort_values("reported_at", kind="stable").reset_index(drop=True)
