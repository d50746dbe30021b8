"""Venues (场所), emergency shelters (避难场所) and rescue teams (救援队伍).

Venues sit inside host buildings chosen by use (shops in commercial
buildings, schools in public ones, factories in industrial sheds …); their
``building_idx`` links them to the building's house-number address.
Shelters are hosted by schools, parks and public buildings above the
floodplain and are mirrored as venues of category ``shelter``.
Coordinates are metres (EPSG:32649).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers.demo import names
from layers.demo.admin import Admin
from layers.demo.buildings import Buildings

#: Categories flagged as key sites (重点场所).
KEY_CATEGORIES = frozenset(
    "school kindergarten hospital elderly_care religious_site hazardous_chemicals market "
    "shelter gas_station government police fire_station".split()
)
#: Share of the venue total, preferred host use, capacity range (persons).
SHARES = {
    "shop": (0.36, "commercial", (5, 60)),
    "restaurant": (0.15, "commercial", (20, 300)),
    "office": (0.07, "commercial", (10, 400)),
    "factory": (0.06, "industrial", (30, 800)),
    "hotel": (0.025, "commercial", (40, 600)),
    "clinic": (0.03, "public", (10, 80)),
    "school": (0.015, "public", (400, 2500)),
    "kindergarten": (0.02, "public", (90, 400)),
    "hospital": (0.004, "public", (150, 1500)),
    "elderly_care": (0.01, "public", (30, 300)),
    "religious_site": (0.008, "public", (30, 500)),
    "notice_board": (0.02, "residential", (0, 0)),
    "market": (0.012, "commercial", (200, 2000)),
    "hazardous_chemicals": (0.01, "industrial", (5, 60)),
    "government": (0.008, "public", (20, 300)),
    "police": (0.005, "public", (20, 150)),
    "fire_station": (0.002, "public", (20, 80)),
    "gas_station": (0.008, "commercial", (5, 30)),
    "park": (0.012, "public", (200, 5000)),
}
_SHOP = (
    "便利店 超市 五金店 药店 理发店 水果店 服装店 手机店 烟酒店 面包店 眼镜店 文具店 茶叶店 "
    "电器行 粮油店"
).split()
_FOOD = "酒家 茶餐厅 粥铺 面馆 烧腊店 甜品店 大排档 火锅店 农家菜 肠粉店".split()
_CO = (
    "科技有限公司 贸易有限公司 物业管理有限公司 建筑工程有限公司 电子商务有限公司 投资有限公司"
).split()
_FAC = "五金制品厂 灯饰有限公司 家具厂 服装厂 电器有限公司 印刷厂 塑料制品厂 食品厂".split()
_SPEC_ZH = {"flood": "防汛", "fire": "消防", "mountain": "山地", "medical": "医疗"}
_TEMPLE = "天后宫 北帝庙 观音庙 洪圣庙 基督教堂 天主堂 康公庙".split()


def _pick(rng, arr):
    return arr[rng.integers(len(arr), size=None)]


def venue_name(
    cat: str, rng: np.random.Generator, place: str, street: str, comm: str, road: str
) -> str:
    """A Chinese name for a venue of category ``cat``."""
    brand = _pick(rng, names.BRANDS)
    return {
        "shop": lambda: brand + _pick(rng, _SHOP),
        "restaurant": lambda: brand + _pick(rng, _FOOD),
        "office": lambda: f"中山市{brand}{_pick(rng, _CO)}",
        "factory": lambda: f"中山市{brand}{_pick(rng, _FAC)}",
        "hotel": lambda: place + _pick(rng, ["酒店", "宾馆", "大酒店", "商务酒店"]),
        "clinic": lambda: _pick(
            rng, [f"{comm}卫生服务站", f"{place}门诊部", f"{_pick(rng, names.SURNAMES)}氏诊所"]
        ),
        "school": lambda: place + _pick(rng, ["小学", "中学", "实验小学", "初级中学"]),
        "kindergarten": lambda: place + "幼儿园",
        "hospital": lambda: place + _pick(rng, ["医院", "人民医院分院", "中医院分院"]),
        "elderly_care": lambda: place + _pick(rng, ["敬老院", "颐养院", "长者服务中心"]),
        "religious_site": lambda: _pick(
            rng, [place + _pick(rng, _TEMPLE), f"{_pick(rng, names.SURNAMES)}氏宗祠"]
        ),
        "notice_board": lambda: f"{comm}公告栏",
        "market": lambda: place + _pick(rng, ["市场", "农贸市场", "肉菜市场"]),
        "hazardous_chemicals": lambda: brand + _pick(rng, ["化工仓库", "液化气站", "油库"]),
        "government": lambda: comm + ("村委会" if comm.endswith("村") else "居委会"),
        "police": lambda: place + "警务室",
        "fire_station": lambda: f"{street}消防救援站",
        "gas_station": lambda: f"{road}加油站",
        "park": lambda: place + "公园",
    }[cat]()


def make_venues(
    b: Buildings,
    comm_of_bldg: np.ndarray,
    admin: Admin,
    road_names: np.ndarray,
    rng: np.random.Generator,
    total: int,
) -> pd.DataFrame:
    """Venues (without codes and grids).

    Args:
        b: buildings; comm_of_bldg: community index of every building (-1 outside).
        admin: admin units; road_names: names indexed by ``b.road``.
        rng: random generator; total: approximate number of venues.

    Returns:
        DataFrame with ``x``, ``y`` (m), ``name``, ``category``, ``key_site``,
        ``capacity``, ``building_idx``.
    """
    rows = []
    places = names.unique_places(rng, 400)
    street_of_bldg = np.where(comm_of_bldg >= 0, admin.comm_street[comm_of_bldg], -1)
    fixed = []  # one government office per community, one police/fire station per street
    for c in range(admin.comm_name.size):
        fixed.append(("government", np.flatnonzero(comm_of_bldg == c)))
        fixed.append(("notice_board", np.flatnonzero(comm_of_bldg == c)))
    for k in range(admin.street_name.size):
        fixed.append(("police", np.flatnonzero(street_of_bldg == k)))
        fixed.append(("fire_station", np.flatnonzero(street_of_bldg == k)))
    share_sum = sum(v[0] for v in SHARES.values())
    wanted = [(cat, max(1, round(sh / share_sum * total))) for cat, (sh, _, _) in SHARES.items()]
    for cat, n in wanted:
        n -= sum(1 for f in fixed if f[0] == cat)
        if n <= 0:
            continue
        pref = SHARES[cat][1]
        pool = np.flatnonzero(b.use == pref)
        if cat == "gas_station":
            pool = np.flatnonzero(np.isin(b.road_cls, ["secondary", "tertiary"]))
        if pool.size == 0:
            pool = np.arange(b.geom.size)
        pick = rng.choice(pool, size=n, replace=n > pool.size)
        fixed.extend((cat, np.array([p])) for p in pick)
    for cat, pool in fixed:  # a few thousand venues; names are per-venue strings
        if pool.size == 0:
            continue
        if cat in ("police", "fire_station"):
            pub = pool[b.use[pool] == "public"]
            pool = pub if pub.size else pool
        i = int(pool[rng.integers(pool.size)])
        c = comm_of_bldg[i]
        comm = admin.comm_name[c] if c >= 0 else admin.comm_name[0]
        street = admin.street_name[admin.comm_street[c]] if c >= 0 else admin.street_name[0]
        lo, hi = SHARES[cat][2]
        rows.append(
            (
                i,
                cat,
                venue_name(
                    cat, rng, places[rng.integers(len(places))], street, comm, road_names[b.road[i]]
                ),
                int(rng.integers(lo, hi + 1)) if hi else None,
            )
        )
    df = pd.DataFrame(rows, columns=["building_idx", "category", "name", "capacity"])
    jx, jy = _inside(b, df["building_idx"].to_numpy(), rng)
    df["x"], df["y"] = jx, jy
    df["key_site"] = df["category"].isin(KEY_CATEGORIES)
    return df


def _inside(b: Buildings, idx: np.ndarray, rng: np.random.Generator, f: float = 0.3):
    a = rng.uniform(-f, f, idx.size) * b.width_m[idx]
    c = rng.uniform(-f, f, idx.size) * b.depth_m[idx]
    th = b.angle_rad[idx]
    return b.cx[idx] + a * np.cos(th) - c * np.sin(th), b.cy[idx] + a * np.sin(th) + c * np.cos(th)


def make_shelters(
    venues: pd.DataFrame,
    b: Buildings,
    elev_at_bldg: np.ndarray,
    rng: np.random.Generator,
    n: int,
) -> pd.DataFrame:
    """Emergency shelters at schools, parks and public buildings above the floodplain."""
    hosts = venues[venues["category"].isin(["school", "park"])]
    hosts = hosts[elev_at_bldg[hosts["building_idx"].to_numpy()] > 3.5]
    rows = [
        (r.building_idx, f"{r.name}应急避难场所", r.x, r.y, int(rng.integers(800, 5000)))
        for r in hosts.itertuples()
    ]
    rows = rows[:n]
    public = np.flatnonzero((b.use == "public") & (elev_at_bldg > 3.5))
    public = public[~np.isin(public, [r[0] for r in rows])]
    more = rng.choice(public, size=min(public.size, n - len(rows)), replace=False)
    for i, nm in zip(more, names.unique_places(rng, len(more)), strict=True):
        rows.append((int(i), f"{nm}应急避难点", b.cx[i], b.cy[i], int(rng.integers(150, 900))))
    df = pd.DataFrame(rows, columns=["building_idx", "name", "x", "y", "capacity"])
    df["contact"] = names.contacts(rng, len(df))
    return df


def make_rescue_teams(
    venues: pd.DataFrame, admin: Admin, rng: np.random.Generator, n: int
) -> pd.DataFrame:
    """Rescue teams based at fire stations, police stations, hospitals and offices."""
    bases = venues[venues["category"].isin(["fire_station", "police", "hospital", "government"])]
    bases = bases.iloc[rng.permutation(len(bases))].sort_values("category", kind="stable")
    dist = names.DISTRICT
    templates = [
        (f"{dist}防汛抢险突击队", "flood"),
        (f"{dist}山地搜救队", "mountain"),
        (f"{dist}消防救援大队", "fire"),
        (f"{dist}医疗救护队", "medical"),
        (f"蓝天救援队{dist[:2]}分队", "flood"),
        (f"{dist}民兵应急连", "flood"),
    ]
    rows = []
    for i, r in enumerate(bases.head(n).itertuples()):
        if i < len(templates):
            name, spec = templates[i]
        else:
            j = i - len(templates)
            street = admin.street_name[(j // 4) % admin.street_name.size]
            spec = ("flood", "fire", "mountain", "medical")[j % 4]
            name = f"{street}{_SPEC_ZH[spec]}应急分队"
        rows.append((name, spec, int(rng.integers(12, 90)), r.x + 8.0, r.y + 8.0))  # type: ignore[operator]
    df = pd.DataFrame(rows, columns=["name", "specialty", "members", "x", "y"])
    df["contact"] = names.contacts(rng, len(df))
    return df
