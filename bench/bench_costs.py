"""Cost curves of the risk pipeline against DEM size: terrain chain, static table and a
nowcast, time and peak memory of each step, at several sizes of one synthetic DEM.

Each size is a square synthetic DEM of 30 m pixels (:func:`bench.bench_risk.synth_dem`, the
hills and valleys of the ``risk`` bench) written as a tiled GeoTIFF; every step runs in its
own child process (``python -m bench.bench_costs --child STEP DIR``), so its peak resident
memory (``ru_maxrss``) is the step's alone:

- ``terrain``: :func:`risk_models.terrain.terrain_arrays` (fill, D8, accumulation, streams,
  HAND, slope, relief, curvature, TWI) on the whole DEM in memory;
- ``static``: :func:`risk_models.pipeline.build_static` at H3 res 9 with 200 synthetic
  sites (terrain again, the H3 aggregation and the susceptibility fit);
- ``nowcast``: the landslide and flood nowcast of the typhoon scenario on that table.

Sizes (Mpx) come from ``ONEMAP_BENCH_COST_MPX`` (default ``1,4,9``; the issue's curve is
``9,36,144,260``). Reported per size: seconds and peak MB per step, and seconds per Mpx, so
the growth can be read off (linear when the per-Mpx figures stay flat).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RES_M = 30.0
STEPS = ("terrain", "static", "nowcast")
SCENARIO = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "typhoon_300mm_24h.json"


def sizes_mpx() -> list[float]:
    raw = os.environ.get("ONEMAP_BENCH_COST_MPX", "1,4,9")
    return [float(x) for x in raw.split(",") if x.strip()]


def write_dem(folder: Path, mpx: float) -> Path:
    """A square synthetic DEM of about ``mpx`` million 30 m pixels (EPSG:32649)."""
    import rasterio
    from affine import Affine

    from bench.bench_risk import synth_dem

    side = int(round(np.sqrt(mpx * 1e6) / 10) * 10)
    elev = synth_dem(side)
    path = folder / "dem.tif"
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32",
        "crs": "EPSG:32649", "transform": Affine(RES_M, 0, 700_000.0, 0, -RES_M, 2_540_000.0),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
        "nodata": -9999.0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(elev, 1)
    return path


def _sites(path: Path, n: int = 200, seed: int = 5) -> np.ndarray:
    """``n`` lon/lat points on the steeper half of the DEM (synthetic landslide sites)."""
    import rasterio
    from pyproj import Transformer

    with rasterio.open(path) as src:
        w, s, e, n_ = src.bounds
    rng = np.random.default_rng(seed)
    x = rng.uniform(w + 0.1 * (e - w), e - 0.1 * (e - w), n)
    y = rng.uniform(s + 0.1 * (n_ - s), n_ - 0.1 * (n_ - s), n)
    lon, lat = Transformer.from_crs(32649, 4326, always_xy=True).transform(x, y)
    return np.column_stack([lon, lat])


def _child(step: str, folder: Path) -> dict[str, Any]:
    from risk_models import pipeline, terrain

    dem = folder / "dem.tif"
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    if step == "terrain":
        arrays = terrain.terrain_arrays(terrain.read_dem(dem))
        out["pixels"] = int(arrays["slope_deg"].size)
    elif step == "static":
        static = pipeline.build_static(dem, res=9, sites_lonlat=_sites(dem))
        static.to_pickle(folder / "static.pkl")
        out["cells"] = len(static)
    elif step == "nowcast":
        import pandas as pd

        static = pd.read_pickle(folder / "static.pkl")
        t0 = time.perf_counter()  # the table's read is not the refresh
        rain = pipeline.scenario_source(SCENARIO, static)
        for model in ("landslide", "flood"):
            pipeline.nowcast(static, rain, model, explain=False)
    else:
        raise SystemExit(f"unknown step {step!r}")
    out["s"] = time.perf_counter() - t0
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure(mpx: float) -> dict[str, dict[str, Any]]:
    """Every step on a DEM of ``mpx`` Mpx, each in a child process."""
    from bench.common import run_child

    with tempfile.TemporaryDirectory(prefix="onemap-cost-") as tmp:
        folder = Path(tmp)
        write_dem(folder, mpx)
        return {s: run_child("bench_costs", s, str(folder), timeout_s=7200) for s in STEPS}


def run(ctx: Any) -> list[dict[str, Any]]:
    from bench.common import row

    rows = []
    for mpx in sizes_mpx():
        m = measure(mpx)
        px = m["terrain"]["pixels"] / 1e6
        cells = m["static"]["cells"]
        for step in STEPS:
            r = m[step]
            rows.append(
                row(
                    f"{step} at {px:.0f} Mpx",
                    round(r["s"], 1),
                    "s",
                    notes=(
                        f"peak {r['peak_mb']:,.0f} MB ({r['peak_mb'] / px:,.0f} MB/Mpx), "
                        f"{r['s'] / px:.2f} s/Mpx; {cells:,} res-9 cells"
                    ),
                )
            )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], Path(sys.argv[3]))))
    else:
        for r in run(None):
            print(r)
