"""Generate the whole demo city: terrain, hydrology, admin units, streets, buildings, …

:func:`generate_city` runs every stage with its own random stream derived
from ``seed`` (so stages do not disturb each other), writes the DEM as a
Cloud-Optimized GeoTIFF and returns the layers as EPSG:4326 GeoDataFrames
typed after :data:`layers.catalog.CATALOG`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely

from layers.demo import names
from layers.demo.addresses import full_address, make_addresses
from layers.demo.admin import make_admin
from layers.demo.assemble import assemble_layers, unique_names
from layers.demo.buildings import make_buildings
from layers.demo.cameras import make_cameras
from layers.demo.facilities import make_rescue_teams, make_shelters, make_venues
from layers.demo.frame import GEO_CRS, METRIC_CRS, Frame, to_geo
from layers.demo.hazards import hazard_name, make_hazards
from layers.demo.hydro import burn_channels, river_lines, route
from layers.demo.incidents import make_incidents
from layers.demo.residents import make_residents
from layers.demo.roads import make_roads
from layers.demo.sensors import READINGS_END, place_sensors, readings
from layers.demo.terrain import slope_deg, synth_dem, write_cog

Progress = Callable[[str, float], None]
D = names.DISTRICT_CODE
#: Stage name → cumulative fraction of the work done when the stage starts.
STAGES = {
    "terrain": 0.0,
    "rivers": 0.06,
    "admin": 0.14,
    "roads": 0.18,
    "buildings": 0.26,
    "addresses": 0.40,
    "venues": 0.55,
    "cameras": 0.62,
    "hazards": 0.68,
    "sensors": 0.76,
    "incidents": 0.84,
    "layers": 0.88,
}


@dataclass
class DemoCity:
    """The generated city.

    Attributes:
        layers: catalog layer id → GeoDataFrame in EPSG:4326 (every layer but ``warnings``).
        sensor_readings: ``sensor_code``, ``observed_at`` (UTC), ``value`` (mm of rain
            per interval or water level in m), ``unit``.
        dem_path: the DEM, a float32 COG in EPSG:32649 (30 m, nodata -9999).
        meta: centre, scale, seed, per-layer counts, bbox (lon/lat) and more.
    """

    layers: dict[str, gpd.GeoDataFrame]
    sensor_readings: pd.DataFrame
    dem_path: Path
    meta: dict = field(default_factory=dict)


class _Locator:
    """Finds the grid containing metric points, in the EPSG:4326 geometry of the layers."""

    def __init__(self, grid_geom_4326: np.ndarray):
        self.tree = shapely.STRtree(grid_geom_4326)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lon, lat = to_geo(x, y)
        pts = np.asarray(shapely.points(lon, lat), dtype=object)
        inp, hit = self.tree.query(pts, predicate="intersects")
        first = np.unique(inp, return_index=True)
        grid = np.full(len(pts), -1, dtype=np.int64)
        grid[first[0]] = hit[first[1]]
        return pts, grid, np.asarray(lon)


def nearest_index(geoms: Any, points: Any) -> np.ndarray:
    """For each point the index of the nearest of ``geoms`` — one each, even where two are
    exactly as near (a site between two parallel roads)."""
    tree = shapely.STRtree(geoms)
    return tree.query_nearest(points, return_distance=False, all_matches=False)[1]


def generate_city(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    center_lon: float = 113.4,
    center_lat: float = 22.5,
    progress: Progress | None = None,
) -> DemoCity:
    """Generate the deterministic demo city.

    Args:
        out_dir: directory for the DEM (``dem.tif``, overwritten).
        scale: size factor; 1 gives ~11k buildings / ~25k addresses, counts grow linearly.
        seed: random seed; the same seed and arguments give identical output.
        center_lon, center_lat: centre of the district (WGS 84 degrees).
        progress: called as ``progress(stage, fraction)`` with the overall fraction done.

    Returns:
        The :class:`DemoCity`.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda stage, frac: None)
    stage_ids = {s: i for i, s in enumerate(STAGES)}

    def start(stage: str) -> np.random.Generator:
        say(stage, STAGES[stage])
        return np.random.default_rng([seed, stage_ids[stage]])

    n_bldg, n_addr = round(11_000 * scale), round(25_000 * scale)
    frame = Frame.around(center_lon, center_lat, scale)
    dem_raw, _ = synth_dem(frame, start("terrain"))
    hydro = route(frame, dem_raw, start("rivers"))
    dem = burn_channels(dem_raw, hydro)
    slope = slope_deg(dem, frame.res_m)
    dem_path = write_cog(out_dir / "dem.tif", dem, frame)
    rivers_m = river_lines(hydro)

    admin = make_admin(frame, dem, slope, start("admin"), scale)
    grid_4326 = gpd.GeoSeries(admin.grid_geom, crs=METRIC_CRS).to_crs(GEO_CRS).to_numpy()
    locate = _Locator(grid_4326)
    roads = make_roads(frame, dem, slope, hydro, admin, start("roads"), n_bldg)
    bld = make_buildings(frame, slope, admin, roads, rivers_m, start("buildings"), n_bldg)

    rng = start("addresses")
    addr = make_addresses(bld, roads.name, rng, n_addr)
    pts, g, _ = locate(addr["x"].to_numpy(), addr["y"].to_numpy())
    addr["geometry"], addr["grid"] = pts, g
    addr = addr[g >= 0].reset_index(drop=True)
    _admin_names(addr, admin)
    addr["code"] = [f"{D}{i + 1:09d}" for i in range(len(addr))]
    addr["full_address"] = full_address(addr)
    house = addr[addr["unit"].isna() & addr["room"].isna()].drop_duplicates("building_idx")
    bldg_addr = pd.Series(house["code"].to_numpy(), index=house["building_idx"].to_numpy())
    bldg_grid = np.full(bld.geom.size, -1, dtype=np.int64)
    bldg_grid[house["building_idx"].to_numpy()] = house["grid"].to_numpy()
    comm_of_bldg = np.where(bldg_grid >= 0, admin.grid_comm[np.maximum(bldg_grid, 0)], -1)

    rng = start("venues")
    venues = make_venues(bld, comm_of_bldg, admin, roads.name, rng, round(3_200 * scale))
    elev_b = frame.sample(dem, bld.cx, bld.cy)
    shelters = make_shelters(venues, bld, elev_b, rng, max(30, round(36 * scale**0.5)))
    mirror = shelters.assign(category="shelter", key_site=True)
    venues = pd.concat([venues, mirror[venues.columns]], ignore_index=True)
    rescue = make_rescue_teams(venues, admin, rng, max(10, round(12 * scale**0.5)))

    cams = make_cameras(roads, bld, venues, start("cameras"), round(1_100 * scale))

    rng = start("hazards")
    in_district = rasterio.features.rasterize(
        [(admin.district_geom, 1)], out_shape=frame.shape, transform=frame.transform
    ).astype(bool)
    hz = make_hazards(
        frame,
        dem,
        slope,
        hydro.upa_km2,
        hydro.sink_depth_m,
        in_district,
        np.column_stack([bld.cx, bld.cy]),
        bld.floors,
        roads.geom,
        rng,
        max(60, round(80 * scale**0.5)),
    )
    _, hz_grid, _ = locate(hz["x"].to_numpy(), hz["y"].to_numpy())
    hz = hz[hz_grid >= 0].reset_index(drop=True)
    near_road = nearest_index(roads.geom, shapely.points(hz.x, hz.y))
    hz_comm = admin.comm_name[admin.grid_comm[hz_grid[hz_grid >= 0]]]
    serial = pd.Series(hz_comm).groupby(hz_comm).cumcount().to_numpy() + 1
    hz["name"] = unique_names(
        [
            hazard_name(k, c, roads.name[r], int(i))
            for k, c, r, i in zip(hz.kind, hz_comm, near_road, serial, strict=True)
        ]
    )

    rng = start("sensors")
    n_rain = max(30, round(34 * scale**0.5))
    sens = place_sensors(
        frame,
        in_district,
        [r["cells"] for r in hydro.rivers],
        hydro.upa_km2,
        dem,
        rng,
        n_rain,
        max(8, round(10 * scale**0.5)),
    )
    sens["name"] = _sensor_names(sens, hydro, frame, locate, admin)
    sens["status"] = np.where(rng.random(len(sens)) < 0.05, "offline", "online")
    is_rain = sens["kind"] == "rain_gauge"
    sens["code"] = np.where(
        is_rain,
        [f"YL{D}{i + 1:04d}" for i in range(len(sens))],
        [f"SW{D}{i + 1:04d}" for i in range(len(sens))],
    )
    obs = readings(sens, sens["code"].to_numpy(), rng)

    inc = make_incidents(addr, hz, start("incidents"), max(200, round(320 * scale**0.5)))

    say("layers", STAGES["layers"])
    residents = make_residents(addr, np.random.default_rng([seed, len(STAGES) + 1]))
    layers = assemble_layers(
        rng=np.random.default_rng([seed, len(STAGES)]),
        locate=locate,
        admin=admin,
        grid_4326=grid_4326,
        rivers=hydro.rivers,
        rivers_m=rivers_m,
        roads=roads,
        bld=bld,
        bldg_addr=bldg_addr,
        bldg_grid=bldg_grid,
        addr=addr,
        venues=venues,
        shelters=shelters,
        rescue=rescue,
        cams=cams,
        hazards=hz,
        sensors=sens,
        incidents=inc,
        residents=residents,
    )
    say("done", 1.0)
    meta = _meta(layers, frame, scale, seed, center_lon, center_lat, hydro, dem)
    return DemoCity(layers=layers, sensor_readings=obs, dem_path=dem_path, meta=meta)


def _admin_names(df: pd.DataFrame, admin) -> None:
    comm = admin.grid_comm[df["grid"].to_numpy()]
    df["grid_code"] = admin.grid_code[df["grid"].to_numpy()]
    df["community"] = admin.comm_name[comm]
    df["street"] = admin.street_name[admin.comm_street[comm]]
    df["province"], df["city"], df["district"] = names.PROVINCE, names.CITY, names.DISTRICT


def _sensor_names(sens, hydro, frame: Frame, locate, admin) -> list[str]:
    _, g, _ = locate(sens["x"].to_numpy(), sens["y"].to_numpy())
    comm = np.where(g >= 0, admin.comm_name[admin.grid_comm[np.maximum(g, 0)]], names.DISTRICT)
    river_of = np.full(frame.width * frame.height, -1, dtype=np.int64)
    for i in range(len(hydro.rivers) - 1, -1, -1):  # main river wins at confluences
        river_of[hydro.rivers[i]["cells"]] = i
    cell = np.ravel_multi_index(
        frame.rowcol(sens["x"].to_numpy(), sens["y"].to_numpy()), frame.shape
    )
    out = []
    for kind, c, rv in zip(sens["kind"], comm, river_of[cell], strict=True):
        if kind == "rain_gauge":
            out.append(f"{c}雨量站")
        else:
            river = hydro.rivers[rv]["name"] if rv >= 0 else "河道"
            out.append(f"{river}{c.removesuffix('社区').removesuffix('村')}水位站")
    return unique_names(out)


def _meta(layers, frame: Frame, scale, seed, lon, lat, hydro, dem) -> dict:
    district = layers["admin_areas"]
    bbox = district[district["level"] == "district"].total_bounds
    return {
        "center": {"lon": lon, "lat": lat},
        "scale": scale,
        "seed": seed,
        "counts": {k: int(len(v)) for k, v in layers.items()},
        "bbox": [float(b) for b in bbox],
        "crs": GEO_CRS,
        "dem": {
            "crs": METRIC_CRS,
            "res_m": frame.res_m,
            "width": frame.width,
            "height": frame.height,
            "bounds": list(frame.bounds),
            "min_m": float(dem.min()),
            "max_m": float(dem.max()),
        },
        "main_river": hydro.rivers[0]["name"],
        "readings_end": READINGS_END.isoformat(),
        "names": {
            "province": names.PROVINCE,
            "city": names.CITY,
            "district": names.DISTRICT,
            "district_code": names.DISTRICT_CODE,
        },
    }


__all__ = ["DemoCity", "generate_city"]
