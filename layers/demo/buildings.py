"""Building footprints along the streets, with use, floors, estates and house numbers.

Footprints are rotated rectangles set back from both sides of every
non-primary road at a class-dependent spacing.  Candidates that leave the
district, touch another road or a river, stand on steep ground or overlap
an earlier candidate are dropped, then a density-weighted sample keeps the
target count (dense town cores, sparse outskirts).  Buildings along the same
stretch of street are grouped into estates (小区) that share a house number.

Geometry is metres (EPSG:32649).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from layers.demo import names
from layers.demo.admin import Admin
from layers.demo.frame import Frame
from layers.demo.roads import Roads, road_segments

#: Per road class: spacing along the road, setback of the front wall, width, depth (m).
SLOTS = {
    "secondary": (27.0, 13.0, (16.0, 22.0), (14.0, 20.0)),
    "tertiary": (24.0, 10.0, (13.0, 18.0), (12.0, 16.0)),
    "residential": (21.0, 8.0, (11.0, 16.0), (10.0, 14.0)),
    "village": (15.0, 6.0, (8.0, 11.0), (8.0, 11.0)),
}
ESTATE_LEN_M = 240.0


@dataclass
class Buildings:
    """Building footprints and their addressing attributes (metres, EPSG:32649).

    ``estate`` is None for stand-alone buildings; ``bldg_no`` (栋) is 0 for
    buildings that are not numbered within an estate.  ``width_m`` /
    ``depth_m`` / ``angle_rad`` describe the rotated rectangle.
    """

    geom: np.ndarray
    floors: np.ndarray
    use: np.ndarray
    road: np.ndarray
    road_cls: np.ndarray
    house_number: np.ndarray
    estate: np.ndarray
    bldg_no: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    front_x: np.ndarray
    front_y: np.ndarray
    angle_rad: np.ndarray
    width_m: np.ndarray
    depth_m: np.ndarray
    density: np.ndarray
    village: np.ndarray


def _slots(roads: Roads, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Candidate footprints on both sides of every non-primary road part."""
    kind = np.where(roads.village >= 0, "village", roads.cls)
    ok = kind != "primary"
    parts, pidx = shapely.get_parts(roads.geom[ok], return_index=True)
    road = np.flatnonzero(ok)[pidx]
    spacing = np.array([SLOTS[k][0] for k in kind[road]])
    length = shapely.length(parts)
    n = np.maximum(np.floor((length - 10.0) / spacing), 0).astype(np.int64)
    rep = np.repeat(np.arange(parts.size), n)
    d = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) * spacing[rep] + 5.0
    line = parts[rep]
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(line, d - 2.0))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(line, d + 2.0))
    pm = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    t = p1 - p0
    t /= np.maximum(np.hypot(*t.T), 1e-9)[:, None]
    nrm = np.column_stack([-t[:, 1], t[:, 0]])
    m = rep.size
    side = np.concatenate([np.ones(m), -np.ones(m)])
    two = np.concatenate([np.arange(m), np.arange(m)])
    k = kind[road[rep]][two]
    setback = np.array([SLOTS[x][1] for x in k])
    wlo, whi = np.array([SLOTS[x][2] for x in k]).T
    dlo, dhi = np.array([SLOTS[x][3] for x in k]).T
    width = rng.uniform(wlo, whi)
    depth = rng.uniform(dlo, dhi)
    front = pm[two] + side[:, None] * nrm[two] * setback[:, None]
    centre = front + side[:, None] * nrm[two] * (depth / 2)[:, None]
    return {
        "road": road[rep][two],
        "part": rep[two],
        "along": d[two],
        "side": side,
        "kind": k,
        "centre": centre,
        "front": front,
        "t": t[two],
        "width": width,
        "depth": depth,
    }


def _rectangles(c: np.ndarray, t: np.ndarray, w: np.ndarray, d: np.ndarray) -> np.ndarray:
    nrm = np.column_stack([-t[:, 1], t[:, 0]])
    a, b = t * (w / 2)[:, None], nrm * (d / 2)[:, None]
    ring = np.stack([c - a - b, c + a - b, c + a + b, c - a + b, c - a - b], axis=1)
    return np.asarray(shapely.polygons(ring), dtype=object)


def make_buildings(
    frame: Frame,
    slope: np.ndarray,
    admin: Admin,
    roads: Roads,
    rivers: np.ndarray,
    rng: np.random.Generator,
    target: int,
) -> Buildings:
    """Place about ``target`` buildings (fewer only if the streets are full).

    Args:
        frame: raster frame; slope: slope raster (degrees).
        admin: admin units (district outline, density).
        roads: the road network.
        rivers: river MultiLineStrings (m).
        rng: random generator.
        target: wanted number of buildings.
    """
    s = _slots(roads, rng)
    dens = admin.density_at(frame, s["centre"][:, 0], s["centre"][:, 1])
    # Industrial estates: one outer sector of every town has big sheds.
    ang = rng.uniform(0, 2 * np.pi, len(admin.towns_xy))
    town = roads.town[s["road"]]
    rel = s["centre"] - admin.towns_xy[np.maximum(town, 0)]
    dist = np.hypot(*rel.T)
    sector = np.cos(np.arctan2(rel[:, 1], rel[:, 0]) - ang[np.maximum(town, 0)]) > 0.8
    industrial = (town >= 0) & sector & (dist > 0.5 * roads.town_radius_m[np.maximum(town, 0)])
    s["width"][industrial] *= 2.2
    s["depth"][industrial] *= 1.6
    s["centre"][industrial] += (s["centre"][industrial] - s["front"][industrial]) * 0.6
    poly = _rectangles(s["centre"], s["t"], s["width"], s["depth"])

    shapely.prepare(admin.district_geom)
    keep = shapely.within(poly, admin.district_geom)
    keep &= frame.sample(slope, *s["centre"].T) < 20.0
    segs, seg_road = road_segments(roads.geom)
    bi, si = shapely.STRtree(segs).query(poly, predicate="dwithin", distance=6.0)
    keep[bi[seg_road[si] != s["road"][bi]]] = False
    rsegs, _ = road_segments(rivers)
    keep[shapely.STRtree(rsegs).query(poly, predicate="dwithin", distance=20.0)[0]] = False

    idx = np.flatnonzero(keep)
    idx = idx[rng.permutation(idx.size)]  # random priority for overlap resolution
    a, b = shapely.STRtree(poly[idx]).query(poly[idx], predicate="intersects")
    clash = np.zeros(idx.size, dtype=bool)
    clash[np.maximum(a, b)[a != b]] = True
    idx = idx[~clash]
    # Density-weighted sample without replacement (Efraimidis–Spirakis keys).
    w = np.maximum(dens[idx], 1e-3) ** 0.7
    key = np.log(rng.random(idx.size)) / w
    idx = np.sort(idx[np.argsort(-key)[: min(idx.size, int(round(target * 1.02)))]])
    return _attributes(s, idx, poly, dens, industrial, roads, rng)


def _attributes(s, idx, poly, dens, industrial, roads: Roads, rng) -> Buildings:
    n = idx.size
    kind, dn, ind = s["kind"][idx], dens[idx], industrial[idx]
    u = rng.random(n)
    use = np.full(n, "residential", dtype=object)
    com_p = np.select(
        [kind == "secondary", kind == "tertiary", kind == "village"], [0.5, 0.18, 0.03], 0.08
    )
    use[u < com_p] = "commercial"
    use[(u >= com_p) & (u < com_p + 0.06)] = "public"
    use[ind & (u < 0.9)] = "industrial"
    r = rng.random(n)
    floors = np.select(
        [use == "industrial", use == "public", kind == "village", use == "commercial"],
        [1 + r * 4, 2 + r * 6, 2 + r * 4, 3 + r * 24 * np.clip(dn, 0.2, 1)],
        4 + r * 30 * np.clip(dn, 0.1, 1.0) ** 0.8,
    ).astype(np.int64)

    road, side, along = s["road"][idx], s["side"][idx], s["along"][idx] + s["part"][idx] * 1e7
    # Estate zones: a stretch of street side; residential zones in town become estates (小区)
    # of towers of similar height.
    zone = pd.DataFrame({"r": road, "s": side, "b": np.floor(along / ESTATE_LEN_M)})
    zone_id = zone.groupby(["r", "s", "b"], sort=False).ngroup().to_numpy()
    zone_size = np.bincount(zone_id, weights=(use == "residential"))[zone_id]
    zone_floors = (6 + rng.random(zone_id.max() + 1) * 28)[zone_id] * np.clip(dn, 0.25, 1) ** 0.5
    in_estate = (use == "residential") & (kind != "village") & (zone_size >= 2) & (dn > 0.12)
    floors[in_estate] = np.maximum(
        6, zone_floors[in_estate] + rng.integers(-1, 2, int(in_estate.sum()))
    ).astype(np.int64)
    unit_key = np.where(in_estate, -1 - zone_id, np.arange(n))  # singles are their own unit
    df = pd.DataFrame({"road": road, "side": side, "unit": unit_key, "along": along})
    grp = df.groupby(["road", "side", "unit"], sort=False)
    df["unit_along"] = grp["along"].transform("min")
    df["unit_of"] = grp.ngroup()
    units = df.drop_duplicates("unit_of").sort_values(["road", "side", "unit_along"])
    rank = units.groupby(["road", "side"], sort=False).cumcount().to_numpy()
    number = np.where(units["side"].to_numpy() < 0, 2 * rank + 1, 2 * rank + 2)
    num_of_unit = pd.Series(number, index=units["unit_of"].to_numpy())
    unit_of = df["unit_of"].to_numpy()
    house = np.array([f"{x}号" for x in num_of_unit.loc[unit_of].to_numpy()], dtype=object)
    bno = df.sort_values("along").groupby("unit_of").cumcount().reindex(df.index).to_numpy() + 1
    bno[~in_estate] = 0

    estate = np.full(n, None, dtype=object)
    est_units = np.unique(unit_of[in_estate])
    est_names = np.array(names.estate_names(rng, est_units.size, np.zeros(est_units.size, bool)))
    estate[in_estate] = est_names[np.searchsorted(est_units, unit_of[in_estate])]
    tower = (use == "commercial") & (floors >= 10)
    estate[tower] = names.estate_names(rng, int(tower.sum()), np.ones(int(tower.sum()), bool))

    c = s["centre"][idx]
    return Buildings(
        poly[idx],
        floors,
        use.astype(str),
        road,
        roads.cls[road],
        house,
        estate,
        bno,
        c[:, 0],
        c[:, 1],
        s["front"][idx][:, 0],
        s["front"][idx][:, 1],
        np.arctan2(s["t"][idx][:, 1], s["t"][idx][:, 0]),
        s["width"][idx],
        s["depth"][idx],
        dn,
        roads.village[road],
    )
