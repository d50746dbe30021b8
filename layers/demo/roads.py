"""Road network: least-cost primary roads plus town street grids and village lanes.

* Primary roads link the town centres and a few district gateways along a
  minimum spanning tree of least-cost paths on a 120 m cost raster that
  penalises slope, height and large-river crossings (so they follow the
  lowlands).
* Each town gets a gently curving street grid (secondary / tertiary /
  residential) clipped to its street (街道) and to the buildable lowland.
* Rural villages (村) get a few short lanes.

All geometry is in metres (EPSG:32649); roads are MultiLineStrings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree

from layers.demo import names
from layers.demo.admin import Admin
from layers.demo.frame import Frame
from layers.demo.hydro import Hydrology, chaikin

COST_STRIDE = 4
#: Street spacing (m) of the town grids; every 3rd line is tertiary, every 6th secondary.
STREET_SPACING_M = 125.0


@dataclass
class Roads:
    """Roads in metres (EPSG:32649).

    Attributes:
        geom: MultiLineStrings.
        name, cls: road name and class (primary/secondary/tertiary/residential).
        town: street/town index the road belongs to (-1 for primary roads).
        village: community index for village lanes, else -1.
        town_radius_m: urban radius of every town (m).
        buildable: the buildable lowland (MultiPolygon, m).
    """

    geom: np.ndarray
    name: np.ndarray
    cls: np.ndarray
    town: np.ndarray
    village: np.ndarray
    town_radius_m: np.ndarray
    buildable: shapely.Geometry


def buildable_land(
    frame: Frame, dem_m: np.ndarray, slope: np.ndarray, district
) -> shapely.Geometry:
    """Gentle lowland inside the district (MultiPolygon, m): slope < 9°, elevation < 45 m."""
    s = 2
    mask = ((slope[::s, ::s] < 9.0) & (dem_m[::s, ::s] < 45.0)).astype(np.uint8)
    tr = frame.transform @ Affine.scale(s)
    shapes = [
        shapely.geometry.shape(g)
        for g, v in rasterio.features.shapes(mask, mask=mask > 0, transform=tr)
        if v == 1
    ]
    land = shapely.union_all(shapely.simplify(np.array(shapes, dtype=object), 45.0))
    land = shapely.intersection(shapely.buffer(land, 0.0), district)
    return shapely.make_valid(land)


def make_roads(
    frame: Frame,
    dem_m: np.ndarray,
    slope: np.ndarray,
    hydro: Hydrology,
    admin: Admin,
    rng: np.random.Generator,
    target_buildings: int,
) -> Roads:
    """Generate the road network.

    Args:
        frame, dem_m, slope, hydro, admin: the terrain and admin units.
        rng: random generator.
        target_buildings: building count the urban grids must have room for.
    """
    land = buildable_land(frame, dem_m, slope, admin.district_geom)
    prim = _primary_roads(frame, dem_m, slope, hydro, admin)
    prim_cls = ["primary"] * len(prim)
    # Grow the towns until their streets have room for the buildings (≈ 60 % survive overlaps).
    angles = rng.uniform(0.0, 90.0, len(admin.towns_xy))
    phases = rng.uniform(0, 2 * np.pi, (len(admin.towns_xy), 2))
    radius_m = np.sqrt(admin.town_weight) * 0.03 * frame.side_m
    for _ in range(25):
        urban, ucls, utown = _town_grids(admin, land, radius_m, angles, phases)
        length = shapely.length(urban)
        per_m = np.where(ucls == "residential", 2 / 22.0, 2 / 26.0)
        if (length * per_m).sum() * 0.55 >= target_buildings:
            break
        radius_m = radius_m * 1.1
    vil, vcls, vcomm = _village_lanes(frame, admin, urban, rng)
    geoms = np.concatenate([prim, urban, vil])
    cls = np.array(prim_cls + list(ucls) + list(vcls))
    town = np.concatenate([np.full(len(prim), -1), utown, np.full(len(vil), -1)])
    village = np.concatenate([np.full(len(prim) + len(urban), -1), vcomm])
    nm = np.array(
        names.road_names(rng, list(cls[: len(prim) + len(urban)])) + _village_names(admin, vcomm),
        dtype=object,
    )
    keep = ~shapely.is_empty(geoms) & (shapely.length(geoms) > 60.0)
    multi = _to_multiline(geoms[keep])
    return Roads(multi, nm[keep].astype(str), cls[keep], town[keep], village[keep], radius_m, land)


def _to_multiline(geoms: np.ndarray) -> np.ndarray:
    parts, idx = shapely.get_parts(geoms, return_index=True)
    ok = shapely.get_type_id(parts) == 1
    out = shapely.multilinestrings(parts[ok], indices=idx[ok])
    return out


def _primary_roads(
    frame: Frame, dem_m: np.ndarray, slope: np.ndarray, hydro: Hydrology, admin: Admin
) -> np.ndarray:
    s = COST_STRIDE
    elev, slp = dem_m[::s, ::s], slope[::s, ::s]
    h, w = elev.shape
    rows, cols = np.mgrid[0:h, 0:w]
    xs, ys = frame.cell_xy(rows * s + s // 2, cols * s + s // 2)
    inside = shapely.contains_xy(admin.district_geom, xs, ys)
    big_river = hydro.upa_km2[::s, ::s] > 25.0
    cost = 1 + (slp / 6.0) ** 2 + 0.02 * np.maximum(elev - 20, 0) + 6 * big_river + 3 * ~inside
    cost = cost.ravel()
    idx = np.arange(h * w).reshape(h, w)
    src, dst, wt = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = idx[: h - dr, max(0, -dc) : w - max(0, dc)]
        b = a + dr * w + dc
        step = np.hypot(dr, dc) * frame.res_m * s
        src.append(a.ravel())
        dst.append(b.ravel())
        wt.append(step * (cost[a.ravel()] + cost[b.ravel()]) / 2)
    graph = coo_matrix(
        (np.concatenate(wt), (np.concatenate(src), np.concatenate(dst))), shape=(h * w, h * w)
    ).tocsr()

    def node(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r, c = frame.rowcol(x, y)
        return np.minimum(r // s, h - 1) * w + np.minimum(c // s, w - 1)

    boundary = shapely.segmentize(shapely.boundary(admin.district_geom), 150.0)
    bxy = shapely.get_coordinates(boundary)
    bnode = node(bxy[:, 0], bxy[:, 1])
    cx, cy = admin.towns_xy[0]
    ang = np.degrees(np.arctan2(bxy[:, 1] - cy, bxy[:, 0] - cx)) % 360
    gates = [
        bnode[q][np.argmin(cost[bnode[q]])]
        for k in range(4)
        if (q := np.flatnonzero((ang >= k * 90) & (ang < (k + 1) * 90))).size
    ]
    terms = np.unique(np.concatenate([node(*admin.towns_xy.T), gates]))
    dist, pred = dijkstra(graph, directed=False, indices=terms, return_predecessors=True)
    mst = minimum_spanning_tree(dist[:, terms]).tocoo()
    edges = sorted(zip(mst.row, mst.col, mst.data, strict=True), key=lambda e: -e[2])
    used = np.zeros(h * w, dtype=bool)
    lines = []
    for i, j, _ in edges:  # one least-cost path per tree edge (a dozen or so)
        steps = [terms[j]]
        while steps[-1] != terms[i]:
            steps.append(pred[i, steps[-1]])
        path = np.array(steps)
        new = ~used[path]
        keep = new | np.r_[new[1:], False] | np.r_[False, new[:-1]]
        used[path] = True
        runs = np.split(path, np.flatnonzero(np.diff(keep.astype(int)) != 0) + 1)
        flags = np.split(keep, np.flatnonzero(np.diff(keep.astype(int)) != 0) + 1)
        parts = []
        for run, f in zip(runs, flags, strict=True):
            if f[0] and run.size >= 2:
                r, c = np.divmod(run, w)
                xy = np.column_stack(frame.cell_xy(r * s + s // 2, c * s + s // 2))
                parts.append(shapely.LineString(chaikin(xy, 3)))
        if parts:
            lines.append(shapely.intersection(shapely.MultiLineString(parts), admin.district_geom))
    return np.array(lines, dtype=object)


def _town_grids(
    admin: Admin, land, radius_m: np.ndarray, angles: np.ndarray, phases: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    geoms, cls, town = [], [], []
    u = np.arange(-1.0, 1.0001, 0.01)
    for k, ((tx, ty), r) in enumerate(zip(admin.towns_xy, radius_m, strict=True)):
        area = shapely.intersection(admin.street_geom[k], land)
        disk = shapely.Point(tx, ty).buffer(r, 32)
        inner = shapely.Point(tx, ty).buffer(0.8 * r, 32)
        clip_outer = shapely.intersection(area, disk)
        clip_inner = shapely.intersection(area, inner)
        n = int(np.ceil(r / STREET_SPACING_M))
        j = np.arange(-n, n + 1)
        for fam in range(2):  # two orthogonal street families
            th = np.deg2rad(angles[k] + 90 * fam)
            along = np.array([np.cos(th), np.sin(th)])
            across = np.array([-np.sin(th), np.cos(th)])
            off = j[:, None] * STREET_SPACING_M + 9.0 * np.sin(
                u[None, :] * r / 450.0 + phases[k, fam] + j[:, None]
            )
            pts = (
                np.array([tx, ty])[None, None, :]
                + (u[None, :, None] * r) * along
                + off[:, :, None] * across
            )
            lines = shapely.linestrings(pts)
            c = np.where(j % 6 == 0, "secondary", np.where(j % 3 == 0, "tertiary", "residential"))
            res = c == "residential"
            clipped = np.where(
                res,
                shapely.intersection(lines, clip_inner),
                shapely.intersection(lines, clip_outer),
            )
            geoms.append(clipped)
            cls.append(c)
            town.append(np.full(j.size, k))
    return np.concatenate(geoms), np.concatenate(cls), np.concatenate(town)


def _stations(lines: np.ndarray, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(line repeated, distance) pairs every ``step_m`` along each line."""
    n = np.floor(shapely.length(lines) / step_m).astype(np.int64)
    rep = np.repeat(lines, n)
    start = np.repeat(np.cumsum(n) - n, n)
    dist = (np.arange(n.sum()) - start + 0.5) * step_m
    return rep, dist


def _village_lanes(
    frame: Frame, admin: Admin, urban: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[str], np.ndarray]:
    geoms, cls, comm = [], [], []
    s = 4
    d = admin.density
    rows, cols = np.mgrid[0 : d.shape[0], 0 : d.shape[1]]
    xs, ys = frame.cell_xy(rows * s + s // 2, cols * s + s // 2)
    # Communities with hardly any town street get a village: a few short lanes.
    pts = (
        shapely.line_interpolate_point(*_stations(urban, 100.0))
        if len(urban)
        else np.empty(0, dtype=object)
    )
    tree = shapely.STRtree(admin.comm_geom)
    hit = tree.query(pts, predicate="within")[1]
    urban_m = np.bincount(hit, minlength=len(admin.comm_geom)) * 100.0
    for c in np.flatnonzero(urban_m < 400.0):  # villages: a few dozen
        g = admin.comm_geom[c]
        x0, y0, x1, y1 = shapely.bounds(g)
        win = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        inside = np.zeros_like(win)
        inside[win] = shapely.contains_xy(g, xs[win], ys[win])
        if not inside.any():
            continue
        best = np.argmax(np.where(inside, d, -1).ravel())
        cx, cy = xs.ravel()[best], ys.ravel()[best]
        n = int(rng.integers(2, 5))
        for a in rng.uniform(0, 180, n):
            half = rng.uniform(150, 350)
            v = np.array([np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))]) * half
            t = np.linspace(-1, 1, 12)[:, None]
            bend = np.array([-v[1], v[0]]) * 0.08 * np.sin(t * 3 + a)
            line = shapely.LineString(np.array([cx, cy]) + t * v + bend)
            geoms.append(shapely.intersection(line, g))
            cls.append("residential")
            comm.append(c)
    return np.array(geoms, dtype=object), cls, np.array(comm, dtype=np.int64)


def _village_names(admin: Admin, comm: np.ndarray) -> list[str]:
    out: list[str] = []
    seen: dict[int, int] = {}
    suffix = ["大街", "一巷", "二巷", "三巷", "四巷", "新街"]
    for c in comm:
        k = seen.get(c, 0)
        seen[c] = k + 1
        name = admin.comm_name[c]
        stem = name.removesuffix("社区") if name.endswith("社区") else name
        out.append(stem + suffix[k % len(suffix)])
    return out


def road_segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split lines into 2-point segments (for tight spatial-index envelopes).

    Returns:
        (segments as LineStrings, index of the source geometry of each segment).
    """
    parts, pidx = shapely.get_parts(geoms, return_index=True)
    coords, cidx = shapely.get_coordinates(parts, return_index=True)
    same = cidx[1:] == cidx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    segs = np.asarray(shapely.linestrings(np.stack([a, b], axis=1)), dtype=object)
    return segs, pidx[cidx[:-1][same]]
