"""Planner's bulk read: 100,000 features into a GeoDataFrame, OneMap's client vs GDAL.

Both read the first 100,000 ``buildings`` of the demo city (polygons, scale 10: 112,200)
from the same OneMap server (2 workers) and the same endpoint, ``/collections/buildings/items``:

- OneMap: ``OneMap(url).read("buildings", limit=100_000)`` — pages of 10,000 fetched 4 at a
  time in the endpoint's CSV form, parsed with pandas + ``shapely.from_wkt``, typed from the
  queryables;
- peer: ``geopandas.read_file("OAPIF:<url>", layer="buildings", max_features=100_000)``
  through GDAL's OGC API Features driver (pyogrio) with ``PAGE_SIZE=10000``, the largest page
  the server gives (GDAL's default page is smaller and slower).

Rounds alternate; the best of each is reported.  Goals: ≤ 5 s, and ≥ 2× faster than the peer.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import BenchContext, BenchError, load_average, row

LAYER = "buildings"
N_FEATURES = 100_000
PAGE_SIZE = 10_000
WORKERS = 2
GOAL_S = 5.0
GOAL_SPEEDUP = 2.0


def read_onemap(base_url: str) -> tuple[float, Any]:
    from geo_service.client import OneMap

    t0 = time.perf_counter()
    with OneMap(base_url, progress=False) as om:
        gdf = om.read(LAYER, limit=N_FEATURES)
    return time.perf_counter() - t0, gdf


def read_gdal(base_url: str) -> tuple[float, Any]:
    import geopandas as gpd

    t0 = time.perf_counter()
    gdf = gpd.read_file(
        f"OAPIF:{base_url}",
        layer=LAYER,
        max_features=N_FEATURES,
        PAGE_SIZE=str(PAGE_SIZE),
    )
    return time.perf_counter() - t0, gdf


def _check_same(ours: Any, theirs: Any) -> str:
    if len(ours) != N_FEATURES or len(theirs) != N_FEATURES:
        raise BenchError(f"read {len(ours)} (OneMap) and {len(theirs)} (GDAL), not {N_FEATURES}")
    if list(ours["code"]) != list(theirs["code"]):
        raise BenchError("OneMap's client and GDAL read different features")
    if not ours.geometry.geom_equals_exact(theirs.geometry.set_crs(ours.crs, allow_override=True),
                                           tolerance=1e-7).all():  # fmt: skip
        raise BenchError("OneMap's client and GDAL read different geometries")
    return f"same {N_FEATURES:,} codes in the same order, geometries equal within 1e-7°"


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    import pyogrio

    server = ctx.start_onemap(WORKERS)
    read_onemap(server.base_url)  # warm-up: connections, catalog, page cache
    om_times: list[float] = []
    gd_times: list[float] = []
    loads: list[str] = []
    ours = theirs = None
    for _ in range(ctx.rounds):
        loads.append(load_average())
        t, ours = read_onemap(server.base_url)
        om_times.append(t)
        t, theirs = read_gdal(server.base_url)
        gd_times.append(t)
    note_same = _check_same(ours, theirs)
    om, gd = min(om_times), min(gd_times)
    speedup = gd / om
    peer = f"GDAL {pyogrio.__gdal_version_string__} OAPIF (geopandas.read_file)"
    goals = (
        f"goal ≤ {GOAL_S:g} s {'met' if om <= GOAL_S else 'NOT met'}; "
        f"goal ≥ {GOAL_SPEEDUP:g}× faster {'met' if speedup >= GOAL_SPEEDUP else 'NOT met'} "
        f"({speedup:.1f}× faster)"
    )
    setup = (
        f"first {N_FEATURES:,} {LAYER} (polygons) of /collections/{LAYER}/items, "
        f"{WORKERS} server workers, pages of {PAGE_SIZE:,} for both, best of {ctx.rounds}"
    )
    runs = (
        "s per round OneMap "
        + "/".join(f"{t:.2f}" for t in om_times)
        + ", GDAL "
        + "/".join(f"{t:.2f}" for t in gd_times)
        + f"; load avg before rounds {', '.join(loads)}"
    )
    return [
        row(
            f"client read {N_FEATURES:,} features → GeoDataFrame: time",
            om,
            "s",
            peer=peer,
            peer_value=gd,
            notes="; ".join(["lower is better", goals, setup, note_same, runs]),
        ),
        row(
            f"client read {N_FEATURES:,} features → GeoDataFrame: throughput",
            N_FEATURES / om,
            "features/s",
            peer=peer,
            peer_value=N_FEATURES / gd,
            notes="higher is better",
        ),
    ]
