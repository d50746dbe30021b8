"""Administrative hierarchy: district → streets/towns → communities/villages → grids.

Grids are made first, as Voronoi cells of density-weighted seed points
clipped to the district outline, so they tile it exactly.  Communities are
k-means groups of grids (their union), streets are k-means groups of
communities, and the district is the union of the streets; every level
therefore nests and tiles exactly.  Geometry is in metres (EPSG:32649).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.cluster.vq import kmeans2

from layers.demo import names
from layers.demo.frame import Frame, farthest_points

#: Stride (cells) of the coarse density raster; 4 × 30 m = 120 m.
DENSITY_STRIDE = 4


@dataclass
class Admin:
    """The admin units of the demo district (metres, EPSG:32649).

    ``*_geom`` arrays hold shapely MultiPolygons; ``grid_comm`` and
    ``comm_street`` index the parent level.  ``towns_xy`` is the town
    centre (m) of each street; ``density`` is a relative population
    potential on a coarse raster (``DENSITY_STRIDE`` cells per side).
    """

    district_geom: shapely.Geometry
    street_geom: np.ndarray
    street_code: np.ndarray
    street_name: np.ndarray
    street_rural: np.ndarray
    comm_geom: np.ndarray
    comm_code: np.ndarray
    comm_name: np.ndarray
    comm_street: np.ndarray
    comm_rural: np.ndarray
    grid_geom: np.ndarray
    grid_code: np.ndarray
    grid_name: np.ndarray
    grid_comm: np.ndarray
    grid_density: np.ndarray
    towns_xy: np.ndarray
    town_weight: np.ndarray
    density: np.ndarray

    def density_at(self, frame: Frame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Relative population potential at points (m)."""
        rows, cols = frame.rowcol(x, y)
        d = self.density
        return d[
            np.minimum(rows // DENSITY_STRIDE, d.shape[0] - 1),
            np.minimum(cols // DENSITY_STRIDE, d.shape[1] - 1),
        ]


def district_outline(frame: Frame, rng: np.random.Generator) -> shapely.Geometry:
    """A smooth irregular district outline around the frame centre (m)."""
    cx, cy = frame.center
    r0 = 0.36 * frame.side_m
    theta = np.linspace(0, 2 * np.pi, 361)[:-1]
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.35, 1.0) * 0.16 / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    xy = np.column_stack([cx + r0 * r * np.cos(theta), cy + r0 * r * np.sin(theta)])
    inner = shapely.box(*frame.bounds).buffer(-0.03 * frame.side_m)
    return shapely.intersection(shapely.Polygon(xy), inner)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _to_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons/MultiPolygons → MultiPolygons (vectorised)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    return shapely.multipolygons(parts[keep], indices=idx[keep])


def make_admin(
    frame: Frame, dem_m: np.ndarray, slope: np.ndarray, rng: np.random.Generator, scale: float
) -> Admin:
    """Build towns, the density field and the nested admin units.

    Args:
        frame: raster frame (EPSG:32649).
        dem_m: elevation (m).
        slope: slope (degrees).
        rng: random generator.
        scale: size factor; ≥300 grids / ≥30 communities / ≥5 streets at 1.
    """
    n_streets = max(4, round(7 * scale**0.25))
    n_comm = max(8, round(38 * scale**0.5))
    n_grids = max(3 * n_comm, round(340 * scale))
    outline = district_outline(frame, rng)

    s = DENSITY_STRIDE
    elev_c, slope_c = dem_m[::s, ::s], slope[::s, ::s]
    rows, cols = np.mgrid[0 : elev_c.shape[0], 0 : elev_c.shape[1]]
    xs, ys = frame.cell_xy(rows * s + s // 2, cols * s + s // 2)
    inside = shapely.contains_xy(outline, xs, ys)

    core = shapely.buffer(outline, -0.1 * frame.side_m)
    lowland = shapely.contains_xy(core, xs, ys) & (elev_c < 30) & (slope_c < 5)
    cand = np.flatnonzero(lowland.ravel())
    if cand.size < n_streets * 20:
        cand = np.flatnonzero((inside & (slope_c < 10)).ravel())
    cxy = np.column_stack([xs.ravel()[cand], ys.ravel()[cand]])
    first = int(np.argmin(np.hypot(*(cxy - np.array(frame.center)).T)))
    towns = cxy[farthest_points(cxy, n_streets, first)]
    weight = np.concatenate([[1.0], rng.uniform(0.35, 0.7, n_streets - 1)])
    sigma = np.concatenate([[0.07], np.full(n_streets - 1, 0.045)]) * frame.side_m

    urban = np.zeros_like(xs, dtype=np.float64)
    for (tx, ty), w, sg in zip(towns, weight, sigma, strict=True):  # a handful of towns
        urban += w * np.exp(-((xs - tx) ** 2 + (ys - ty) ** 2) / (2 * sg**2))
    soft_low = _sigmoid((40.0 - elev_c) / 8.0) * _sigmoid((8.0 - slope_c) / 2.0)
    gentle = _sigmoid((12.0 - slope_c) / 3.0)
    density = (urban * soft_low + 0.05 * gentle + 0.006) * inside

    seeds = _grid_seeds(rng, density, xs, ys, n_grids, frame.res_m * s)
    cells = _voronoi_cells(seeds, outline, frame, lloyd=2)
    centroids = shapely.get_coordinates(shapely.point_on_surface(cells))
    dens_c = _sample_coarse(density, frame, centroids)

    comm_lab, _ = _kmeans_labels(centroids, n_comm, rng)
    comm_xy = np.array([centroids[comm_lab == c].mean(axis=0) for c in range(comm_lab.max() + 1)])
    street_lab, used = _kmeans_labels(comm_xy, n_streets, rng, init=towns)
    towns, weight = towns[used], weight[used]
    n_streets = used.size

    # Order streets by distance from the main town, communities/grids north-west first.
    street_xy = np.array([comm_xy[street_lab == k].mean(axis=0) for k in range(n_streets)])
    street_order = np.argsort(np.hypot(*(street_xy - towns[0]).T), kind="stable")
    street_rank = np.empty_like(street_order)
    street_rank[street_order] = np.arange(street_order.size)
    street_lab = street_rank[street_lab]
    comm_key = street_lab * 1e9 + np.round(-comm_xy[:, 1] / 500) * 1e5 + comm_xy[:, 0] / 500
    comm_order = np.argsort(comm_key, kind="stable")
    comm_rank = np.empty_like(comm_order)
    comm_rank[comm_order] = np.arange(comm_order.size)
    comm_lab, comm_street = comm_rank[comm_lab], street_lab[comm_order]
    grid_key = comm_lab * 1e9 + np.round(-centroids[:, 1] / 200) * 1e5 + centroids[:, 0] / 200
    g_order = np.argsort(grid_key, kind="stable")
    cells, comm_lab, dens_c = cells[g_order], comm_lab[g_order], dens_c[g_order]

    comm_geom = _to_multi(
        np.array(
            [shapely.union_all(cells[comm_lab == c]) for c in range(comm_street.size)], dtype=object
        )
    )
    street_geom = _to_multi(
        np.array(
            [shapely.union_all(comm_geom[comm_street == k]) for k in range(n_streets)], dtype=object
        )
    )
    district = _to_multi(np.array([shapely.union_all(street_geom)], dtype=object))[0]

    comm_dens = np.array([np.median(dens_c[comm_lab == c]) for c in range(comm_street.size)])
    street_dens = np.array([np.median(comm_dens[comm_street == k]) for k in range(n_streets)])
    thr = 0.12
    comm_rural = comm_dens < thr
    street_rural = street_dens < thr * 0.7
    street_rural[0] = False

    street_code = np.array([f"{names.DISTRICT_CODE}{k + 1:03d}" for k in range(n_streets)])
    street_name = _street_names(rng, street_rural)
    comm_code = np.empty(comm_street.size, dtype=object)
    for k in range(n_streets):
        members = np.flatnonzero(comm_street == k)
        comm_code[members] = [f"{street_code[k]}{j + 1:03d}" for j in range(members.size)]
    comm_name = np.array(
        [
            p + ("村" if r else "社区")
            for p, r in zip(names.unique_places(rng, comm_street.size), comm_rural, strict=True)
        ]
    )
    grid_code = np.empty(cells.size, dtype=object)
    grid_name = np.empty(cells.size, dtype=object)
    for c in range(comm_street.size):  # a few dozen to a few hundred communities
        members = np.flatnonzero(comm_lab == c)
        grid_code[members] = [f"{comm_code[c]}-G{j + 1:02d}" for j in range(members.size)]
        grid_name[members] = [f"{comm_name[c]}第{j + 1}网格" for j in range(members.size)]

    return Admin(
        district,
        street_geom,
        street_code,
        street_name,
        street_rural,
        comm_geom,
        comm_code.astype(str),
        comm_name,
        comm_street,
        comm_rural,
        _to_multi(cells),
        grid_code.astype(str),
        grid_name.astype(str),
        comm_lab,
        dens_c,
        towns[street_order],
        weight[street_order],
        density.astype(np.float32),
    )


def _street_names(rng: np.random.Generator, rural: np.ndarray) -> np.ndarray:
    urban = list(names.URBAN_STREETS[:1]) + list(rng.permutation(np.array(names.URBAN_STREETS[1:])))
    towns = list(rng.permutation(np.array(names.RURAL_TOWNS)))
    out, iu, it = [], 0, 0
    for r in rural:
        if r and it < len(towns):
            out.append(str(towns[it]))
            it += 1
        elif iu < len(urban):
            out.append(str(urban[iu]))
            iu += 1
        else:
            out.append(f"{names.unique_places(rng, 1, set())[0]}街道")
    return np.array(out)


def _grid_seeds(
    rng: np.random.Generator,
    density: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    n: int,
    cell_m: float,
) -> np.ndarray:
    p = density.ravel() ** 0.85
    p = p / p.sum()
    pick = rng.choice(p.size, size=n, replace=False, p=p)
    jitter = rng.uniform(-0.45, 0.45, (n, 2)) * cell_m
    return np.column_stack([xs.ravel()[pick], ys.ravel()[pick]]) + jitter


def _voronoi_cells(
    seeds: np.ndarray, outline: shapely.Geometry, frame: Frame, lloyd: int
) -> np.ndarray:
    """Voronoi cells of ``seeds`` clipped to ``outline``, after ``lloyd`` relaxations."""
    env = shapely.box(*frame.bounds).buffer(frame.side_m)
    for it in range(lloyd + 1):
        vor = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, ordered=True)
        cells = shapely.intersection(shapely.get_parts(vor), outline)
        if it == lloyd:
            break
        cen = shapely.centroid(cells)
        bad = ~shapely.contains(outline, cen)
        cen[bad] = shapely.point_on_surface(cells[bad])
        seeds = shapely.get_coordinates(cen)
    return cells[shapely.area(cells) > 0.0]


def _sample_coarse(density: np.ndarray, frame: Frame, xy: np.ndarray) -> np.ndarray:
    rows, cols = frame.rowcol(xy[:, 0], xy[:, 1])
    s = DENSITY_STRIDE
    return density[
        np.minimum(rows // s, density.shape[0] - 1), np.minimum(cols // s, density.shape[1] - 1)
    ]


def _kmeans_labels(
    xy: np.ndarray, k: int, rng: np.random.Generator, init: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """k-means labels of points, renumbered 0..k'-1 with empty clusters dropped.

    Returns:
        (labels, the original cluster ids still used, in label order).
    """
    if init is None:
        _, lab = kmeans2(xy, k, iter=30, minit="++", seed=rng)
    else:
        _, lab = kmeans2(xy, init.astype(np.float64), iter=30, minit="matrix")
    used, lab = np.unique(lab, return_inverse=True)
    return lab, used
