"""Turn the generator's metric tables into typed EPSG:4326 GeoDataFrames.

Column names, order and dtypes follow :data:`layers.catalog.CATALOG`:
integer → ``int64`` (``Int64`` when values are missing), number →
``float64``, boolean → ``bool``, datetime → tz-aware UTC, string → pandas'
default string dtype (missing values are NA).
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd

from layers.catalog import CATALOG
from layers.demo import names
from layers.demo.frame import GEO_CRS, METRIC_CRS

D = names.DISTRICT_CODE


def unique_names(items: Iterable[str]) -> list[str]:
    """Make names distinct by suffixing repeats with 2号, 3号 …"""
    seen: dict[str, int] = {}
    out = []
    for s in items:
        k = seen.get(s, 0) + 1
        seen[s] = k
        out.append(s if k == 1 else f"{s}{k}号")
    return out


def to_layer(layer_id: str, columns: dict, geometry, crs: str = GEO_CRS) -> gpd.GeoDataFrame:
    """A GeoDataFrame with exactly the catalog columns of ``layer_id``, typed, in EPSG:4326.

    Args:
        layer_id: catalog layer id.
        columns: property name → values (missing optional properties become NA).
        geometry: shapely geometries in ``crs``.
        crs: CRS of ``geometry``; reprojected to EPSG:4326 when different.
    """
    layer = CATALOG[layer_id]
    geo = gpd.GeoSeries(np.asarray(geometry, dtype=object), crs=crs)
    if crs != GEO_CRS:
        geo = geo.to_crs(GEO_CRS)
    n = len(geo)
    data: dict[str, pd.Series] = {}
    for p in layer.properties:
        v = columns.get(p.name)
        if v is None:
            v = [None] * n
        v = pd.Series(np.asarray(v, dtype=object) if not isinstance(v, pd.Series) else v.to_numpy())
        if p.type == "integer":
            data[p.name] = v.astype("Int64") if v.isna().any() else v.astype("int64")
        elif p.type == "number":
            data[p.name] = v.astype("float64")
        elif p.type == "boolean":
            data[p.name] = v.astype(bool)
        elif p.type == "datetime":
            data[p.name] = pd.to_datetime(v, utc=True)
        else:
            data[p.name] = pd.Series(v.to_numpy(), dtype="str")
    out = gpd.GeoDataFrame(pd.DataFrame(data), geometry=geo.to_numpy(), crs=GEO_CRS)
    if not out["code"].is_unique:
        raise AssertionError(f"{layer_id}: codes are not unique")
    return out


def _grid_codes(admin, grid: np.ndarray) -> list[str | None]:
    return [admin.grid_code[g] if g >= 0 else None for g in grid]


def assemble_layers(
    *,
    rng,
    locate,
    admin,
    grid_4326,
    rivers,
    rivers_m,
    roads,
    bld,
    bldg_addr,
    bldg_grid,
    addr,
    venues,
    shelters,
    rescue,
    cams,
    hazards,
    sensors,
    incidents,
    residents,
) -> dict[str, gpd.GeoDataFrame]:
    """Every catalog layer but ``warnings`` as typed EPSG:4326 GeoDataFrames."""
    out: dict[str, gpd.GeoDataFrame] = {}
    n_s, n_c = admin.street_code.size, admin.comm_code.size
    out["admin_areas"] = to_layer(
        "admin_areas",
        {
            "code": [D, *admin.street_code, *admin.comm_code],
            "name": [names.DISTRICT, *admin.street_name, *admin.comm_name],
            "level": ["district"] + ["street"] * n_s + ["community"] * n_c,
            "parent_code": [None, *[D] * n_s, *admin.street_code[admin.comm_street]],
        },
        np.concatenate([[admin.district_geom], admin.street_geom, admin.comm_geom]),
        METRIC_CRS,
    )

    # Households: dwellings of the buildings whose house address lies in the grid.
    units = np.where(
        bld.bldg_no > 0,
        np.clip(bld.width_m // 8, 1, 3) * 2 * bld.floors,
        np.maximum(1, bld.floors // 2),
    )
    res = (bld.use == "residential") & (bldg_grid >= 0)
    n_g = admin.grid_code.size
    hh = np.bincount(bldg_grid[res], weights=units[res], minlength=n_g)
    hh = np.where(hh > 0, hh, rng.integers(5, 40, n_g)).astype(np.int64)
    out["grids"] = to_layer(
        "grids",
        {
            "code": admin.grid_code,
            "name": admin.grid_name,
            "community_code": admin.comm_code[admin.grid_comm],
            "worker_name": names.person_names(rng, n_g),
            "worker_phone": names.phones(rng, n_g),
            "households": hh,
            "population": np.round(hh * rng.uniform(2.4, 3.2, n_g)).astype(np.int64),
        },
        grid_4326,
    )

    a = addr
    out["addresses"] = to_layer("addresses", {c: a[c] for c in a.columns}, a["geometry"])
    out["buildings"] = to_layer(
        "buildings",
        {
            "code": [f"JZ{D}{i + 1:07d}" for i in range(bld.geom.size)],
            "address_code": bldg_addr.reindex(np.arange(bld.geom.size)).to_numpy(),
            "floors": bld.floors,
            "use": bld.use,
        },
        bld.geom,
        METRIC_CRS,
    )

    def points(df: pd.DataFrame):
        pts, grid, _ = locate(df["x"].to_numpy(), df["y"].to_numpy())
        return pts, _grid_codes(admin, grid)

    pts, gc = points(venues)
    out["venues"] = to_layer(
        "venues",
        {
            "code": [f"CS{D}{i + 1:06d}" for i in range(len(venues))],
            "name": venues["name"],
            "category": venues["category"],
            "key_site": venues["key_site"],
            "capacity": venues["capacity"],
            "address_code": bldg_addr.reindex(venues["building_idx"]).to_numpy(),
            "grid_code": gc,
        },
        pts,
    )
    pts, gc = points(shelters)
    out["shelters"] = to_layer(
        "shelters",
        {
            "code": [f"BN{D}{i + 1:04d}" for i in range(len(shelters))],
            "name": shelters["name"],
            "capacity": shelters["capacity"],
            "contact": shelters["contact"],
            "address_code": bldg_addr.reindex(shelters["building_idx"]).to_numpy(),
            "grid_code": gc,
        },
        pts,
    )
    pts, gc = points(rescue)
    out["rescue_teams"] = to_layer(
        "rescue_teams",
        {
            "code": [f"JY{D}{i + 1:03d}" for i in range(len(rescue))],
            "name": rescue["name"],
            "members": rescue["members"],
            "specialty": rescue["specialty"],
            "contact": rescue["contact"],
            "grid_code": gc,
        },
        pts,
    )
    pts, gc = points(cams)
    out["cameras"] = to_layer(
        "cameras",
        {
            "code": [f"SP{D}{i + 1:06d}" for i in range(len(cams))],
            "name": unique_names(cams["name"]),
            "kind": cams["kind"],
            "heading_deg": cams["heading_deg"],
            "fov_deg": cams["fov_deg"],
            "range_m": cams["range_m"],
            "status": cams["status"],
            "grid_code": gc,
        },
        pts,
    )
    pts, gc = points(hazards)
    out["hazard_sites"] = to_layer(
        "hazard_sites",
        {
            "code": [f"ZH{D}{i + 1:04d}" for i in range(len(hazards))],
            "name": hazards["name"],
            "kind": hazards["kind"],
            "threat_people": hazards["threat_people"],
            "threat_property": hazards["threat_property"],
            "level": hazards["level"],
            "grid_code": gc,
        },
        pts,
    )
    out["rivers"] = to_layer(
        "rivers",
        {
            "code": [f"HL{D}{i + 1:04d}" for i in range(len(rivers))],
            "name": [r["name"] for r in rivers],
            "class": [r["class"] for r in rivers],
        },
        rivers_m,
        METRIC_CRS,
    )
    out["roads"] = to_layer(
        "roads",
        {
            "code": [f"DL{D}{i + 1:05d}" for i in range(roads.geom.size)],
            "name": roads.name,
            "class": roads.cls,
        },
        roads.geom,
        METRIC_CRS,
    )
    pts, gc = points(sensors)
    out["sensors"] = to_layer(
        "sensors",
        {
            "code": sensors["code"],
            "name": sensors["name"],
            "kind": sensors["kind"],
            "unit": sensors["unit"],
            "status": sensors["status"],
            "grid_code": gc,
        },
        pts,
    )
    pts, gc = points(incidents)
    out["incidents"] = to_layer(
        "incidents",
        {
            "code": [f"SJ{D}{i + 1:06d}" for i in range(len(incidents))],
            "kind": incidents["kind"],
            "description": incidents["description"],
            "status": incidents["status"],
            "reported_at": incidents["reported_at"],
            "reporter": incidents["reporter"],
            "grid_code": gc,
        },
        pts,
    )
    people = dict(residents)
    out["residents"] = to_layer("residents", people, people.pop("geometry"))
    missing = set(CATALOG) - set(out) - {"warnings"}
    if missing:
        raise AssertionError(f"layers not generated: {sorted(missing)}")
    return {k: out[k] for k in CATALOG if k in out}  # catalog order
