"""Risk pipeline speed: terrain chain and raster → H3 on a 9-million-pixel DEM, a nowcast
refresh for 1 M cells, peak memory, Dask 1 vs 2 workers.

The measurements run in a child process (``python -m bench.bench_risk --child``) so its peak
resident memory (``ru_maxrss``) is the pipeline's alone. The DEM is synthetic: 3000 × 3000
pixels of 30 m (EPSG:32649) with hills and valleys, so no data download is needed. Goals
(spec): terrain ≤ 20 s, raster → H3 ≤ 3 s, nowcast refresh ≤ 2 s, peak memory ≤ 4 GB.
Peers: raster → H3 against h3-py's per-pixel ``latlng_to_cell`` (timed on 1 M pixels and
scaled), the 2-worker Dask nowcast against a 1-worker cluster. Short steps report the best of
2–3 repeats (the machine is shared; the load average goes into the report header).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import numpy as np

SIDE_PX = 3000
RES_M = 30.0
N_CELLS = 1_000_000


def synth_dem(side: int = SIDE_PX, seed: int = 7) -> np.ndarray:
    """Hills and valleys (metres): smooth noise from a few hundred Gaussian bumps."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(side // 10, side // 10))
    base = ndimage.zoom(ndimage.gaussian_filter(noise, 3.0), 10, order=1)[:side, :side]
    yy, xx = np.mgrid[0:side, 0:side]
    elev = 200.0 + 400.0 * base / np.abs(base).max() + 0.02 * (side - yy) + 0.01 * xx
    return np.asarray(elev, dtype="float32")


def _child() -> dict[str, Any]:
    from affine import Affine
    from rasterio.crs import CRS

    from risk_models import pipeline, terrain
    from risk_models.h3agg import pixel_cells
    from risk_models.h3raster import cell_index, raster_cells
    from risk_models.rainsource import gauge_source

    out: dict[str, Any] = {}
    elev = synth_dem()
    transform = Affine(RES_M, 0, 700_000.0, 0, -RES_M, 2_540_000.0)
    dem = terrain.Dem(elev, transform, CRS.from_epsg(32649))
    t0 = time.perf_counter()
    arrays = terrain.terrain_arrays(dem)
    out["terrain_s"] = time.perf_counter() - t0

    best = float("inf")
    for _ in range(2):  # best of 2: the machine is shared
        t0 = time.perf_counter()
        cells = raster_cells(transform, dem.crs, dem.shape, 9)
        _, idx = cell_index(cells)
        slope = arrays["slope_deg"].ravel().astype("float64")
        means = np.bincount(idx, weights=slope) / np.bincount(idx)
        best = min(best, time.perf_counter() - t0)
    out["h3_s"] = best
    out["h3_cells"] = int(means.size)
    del arrays
    sub = (1000, SIDE_PX)
    t0 = time.perf_counter()
    pixel_cells(transform, dem.crs, sub, 9)
    out["h3_naive_s"] = (time.perf_counter() - t0) * SIDE_PX / sub[0]

    static = synthetic_static(N_CELLS)
    rng = np.random.default_rng(3)
    gauges = gauge_source(
        rng.uniform(113.0, 114.0, 44), rng.uniform(22.0, 23.0, 44), rng.gamma(0.5, 10, (44, 24))
    )
    scen = pipeline.scenario_source("data/scenarios/typhoon_300mm_24h.json", static)
    for name, src in (("scenario", scen), ("gauges", pipeline.rain_for(gauges, static))):
        times = []
        for _ in range(3):  # best of 3
            t0 = time.perf_counter()
            cells_df = pipeline.nowcast(static, src, "landslide", explain=False)
            times.append(time.perf_counter() - t0)
        out[f"nowcast_{name}_s"] = min(times)
        out[f"nowcast_{name}_red"] = int((cells_df["level"] == 4).sum())
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(_dask(static, pipeline.rain_for(gauges, static)))
    return out


def synthetic_static(n: int, seed: int = 11, centre: tuple[float, float] = (22.5, 113.5)) -> Any:
    """A static table of ``n`` res-9 cells on a disk around ``centre`` (lat, lon) with
    random factors and a susceptibility in four classes (no DEM needed)."""
    import h3
    import pandas as pd
    from h3.api import numpy_int as h3n

    from risk_models.static import TERRAIN_FACTORS

    rng = np.random.default_rng(seed)
    k = int(np.ceil((np.sqrt(12 * n - 3) - 3) / 6)) + 1  # a disk of radius k holds 3k²+3k+1
    centre = h3.str_to_int(h3.latlng_to_cell(*centre, 9))
    ints = np.sort(np.asarray(h3n.grid_disk(centre, k), dtype="int64"))[:n]
    lat_lng = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in ints])
    df = pd.DataFrame(index=pd.Index(ints, name="h3"))
    df["lon"], df["lat"] = lat_lng[:, 1], lat_lng[:, 0]
    for name in TERRAIN_FACTORS:
        df[name] = rng.gamma(2.0, 5.0, ints.size)
        df[f"iv_{name}"] = rng.normal(0, 0.5, ints.size)
    df["score"] = rng.uniform(0, 1, ints.size)
    df["susceptibility_class"] = np.searchsorted([0.4, 0.7, 0.9], df["score"]).astype("int8")
    df["density_ratio"] = np.exp(3 * (df["score"] - 0.5))
    df["p_event"] = np.clip(df["score"] * 0.01, 0, 1)
    df["below_slope_floor"] = df["slope_deg"] < 5.0
    df.attrs["res"] = 9
    return df


def _dask(static: Any, rain: Any) -> dict[str, float]:
    """Best-of-2 nowcast refresh on 1 and 2 local workers, the static chunks resident on the
    workers (scattered once, as a nowcast loop keeps them); the first scatter is timed too."""
    from risk_models.dask_runner import dask_client, nowcast_dask, scatter_static

    out = {}
    for workers in (1, 2):
        with dask_client("local", n_workers=workers) as client:
            t0 = time.perf_counter()
            resident = scatter_static(static, "landslide", client=client, explain=False)
            out[f"dask_{workers}w_scatter_s"] = time.perf_counter() - t0
            times = []
            for _ in range(3):  # the first refresh warms the workers; best of the rest
                t0 = time.perf_counter()
                nowcast_dask(
                    static, rain, "landslide", client=client, explain=False, resident=resident
                )
                times.append(time.perf_counter() - t0)
            out[f"dask_{workers}w_s"] = min(times[1:])
    return out


def run(ctx: Any) -> list[dict[str, Any]]:
    from bench.common import row, run_child

    m = run_child("bench_risk")
    peak_mb = max(m["maxrss_mb"], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    px = f"{SIDE_PX}×{SIDE_PX} px"
    return [
        row("risk terrain chain (9 Mpx)", m["terrain_s"], "s", notes=f"{px}; goal ≤ 20 s"),
        row(
            "risk raster → H3 res 9 (9 Mpx)",
            m["h3_s"],
            "s",
            peer="h3-py per pixel",
            peer_value=m["h3_naive_s"],
            notes=f"{m['h3_cells']:,} cells, cell + mean slope; goal ≤ 3 s",
        ),
        row(
            "risk nowcast 1 M cells (scenario)",
            m["nowcast_scenario_s"],
            "s",
            notes="rain metrics + I–D class + matrix; goal ≤ 2 s",
        ),
        row(
            "risk nowcast 1 M cells (44 gauges IDW)",
            m["nowcast_gauges_s"],
            "s",
            notes="IDW of 24 h series + metrics + matrix; goal ≤ 2 s",
        ),
        row("risk peak memory", peak_mb, "MB", notes="max RSS of the child; goal ≤ 4096 MB"),
        row(
            "risk Dask nowcast 1 M cells, 2 workers",
            m["dask_2w_s"],
            "s",
            peer="1 worker",
            peer_value=m["dask_1w_s"],
            notes="LocalCluster, gauges IDW, parent-cell chunks resident on the workers "
            f"(first scatter {m['dask_1w_scatter_s']:.1f} / {m['dask_2w_scatter_s']:.1f} s)",
        ),
    ]


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(_child()))
    else:
        from bench.common import BenchContext

        for r in run(BenchContext.from_env()):
            print(r)
