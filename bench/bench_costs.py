"""Cost curves of the risk pipeline against DEM size: terrain chain, static table and a
nowcast, time and peak memory of each step, at several sizes of one synthetic DEM.

Each size is a square synthetic DEM of 30 m pixels (the hills and valleys of
:func:`bench.bench_risk.synth_dem`) written block by block as a tiled GeoTIFF; every step runs
in its own child process (``python -m bench.bench_costs --child STEP DIR``), so its peak
resident memory (``ru_maxrss``) is the step's alone:

- ``terrain``: :func:`risk_models.terrain.terrain_arrays` (fill, D8, accumulation, streams,
  HAND, slope, relief, curvature, TWI) on the whole DEM in memory — only up to
  ``ONEMAP_BENCH_COST_INMEM_MPX`` (default 36; it needs about 115 MB per Mpx);
- ``tiles``: the same chain windowed (:func:`risk_models.terrain_tiles.derive_terrain_tiled`,
  tiles of 2048 px) in one process, writing the COGs;
- ``tiles_2w``: the windowed chain on a 2-worker Dask LocalCluster; its peak is the largest of
  the client and the workers;
- ``static``: :func:`risk_models.pipeline.build_static` at H3 res 9 with 200 synthetic
  sites (terrain again, the H3 aggregation and the susceptibility fit) — up to the same size;
- ``static_tiles``: the same table band by band from the windowed chain's COGs
  (:func:`risk_models.static_tiles.build_static_tiled`) in one process;
- ``nowcast``: the landslide and flood nowcast of the typhoon scenario on the table (the
  in-memory one where it was built, else the banded one).

Sizes (Mpx) come from ``ONEMAP_BENCH_COST_MPX`` (default ``1,4,9``; the province curve is
``9,36,144,260``), and ``ONEMAP_BENCH_COST_STEPS`` picks steps (default all; the
windowed chain must run before ``static_tiles``). Reported per size: seconds and peak MB
per step, and seconds per Mpx, so the growth can be read off (linear when the per-Mpx
figures stay flat).
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
STEPS = ("terrain", "tiles", "tiles_2w", "static", "static_tiles", "nowcast")
#: Steps that hold the whole DEM in memory (the nowcast runs on the table's cells).
IN_MEMORY = ("terrain", "static")
SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"


def sizes_mpx() -> list[float]:
    raw = os.environ.get("ONEMAP_BENCH_COST_MPX", "1,4,9")
    return [float(x) for x in raw.split(",") if x.strip()]


def in_memory_limit_mpx() -> float:
    return float(os.environ.get("ONEMAP_BENCH_COST_INMEM_MPX", "36"))


def side_px(mpx: float) -> int:
    """The side of the square DEM of about ``mpx`` Mpx (a multiple of 10 px)."""
    return int(round(np.sqrt(mpx * 1e6) / 10) * 10)


def write_dem(folder: Path, mpx: float, block: int = 2048) -> Path:
    """A square synthetic DEM of about ``mpx`` million 30 m pixels (EPSG:32649), written block
    by block so that even the largest size never sits in memory whole.

    The hills of :func:`bench.bench_risk.synth_dem`: Gaussian-smoothed noise on a grid 10×
    coarser, interpolated bilinearly, plus a gentle tilt.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window
    from scipy import ndimage

    side = side_px(mpx)
    rng = np.random.default_rng(7)
    coarse = ndimage.gaussian_filter(rng.normal(size=(side // 10, side // 10)), 3.0)
    scale = 400.0 / np.abs(coarse).max()
    step = (coarse.shape[0] - 1) / (side - 1)  # ndimage.zoom's corner-aligned mapping
    path = folder / "dem.tif"
    profile = {
        "driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32",
        "crs": "EPSG:32649", "transform": Affine(RES_M, 0, 700_000.0, 0, -RES_M, 2_540_000.0),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
        "nodata": -9999.0, "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, side, block):
            for c0 in range(0, side, block):
                yy, xx = np.mgrid[r0 : min(r0 + block, side), c0 : min(c0 + block, side)]
                base = ndimage.map_coordinates(coarse, [yy * step, xx * step], order=1)
                elev = 200.0 + scale * base + 0.02 * (side - yy) + 0.01 * xx
                dst.write(elev.astype("float32"), 1, window=Window(c0, r0, *elev.shape[::-1]))
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
    elif step in ("tiles", "tiles_2w"):
        out.update(_tiles(dem, folder / step, workers=2 if step == "tiles_2w" else 0))
    elif step == "static":
        static = pipeline.build_static(dem, res=9, sites_lonlat=_sites(dem))
        static.to_pickle(folder / "static.pkl")
        out["cells"] = len(static)
    elif step == "static_tiles":
        from risk_models.static_tiles import build_static_tiled
        from risk_models.terrain_tiles import LAYERS

        layers = {name: folder / "tiles" / f"{name}.tif" for name in LAYERS}
        static = build_static_tiled(dem, layers, res=9, sites_lonlat=_sites(dem))
        if not (folder / "static.pkl").exists():
            static.to_pickle(folder / "static.pkl")
        out["cells"] = len(static)
    elif step == "nowcast":
        import pandas as pd

        static = pd.read_pickle(folder / "static.pkl")
        t0 = time.perf_counter()  # the table's read is not the refresh
        rain = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", static)
        for model in ("landslide", "flood"):
            pipeline.nowcast(static, rain, model, explain=False)
    else:
        raise SystemExit(f"unknown step {step!r}")
    out.setdefault("s", time.perf_counter() - t0)
    out["peak_mb"] = max(
        out.get("peak_mb", 0.0), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return out


def _tiles(dem: Path, out_dir: Path, workers: int) -> dict[str, Any]:
    """The windowed terrain chain, in-process or on ``workers`` Dask workers: seconds until
    the last tile pass and for writing the COGs, and the peak of the busiest worker."""
    import rasterio

    from risk_models.terrain_tiles import derive_terrain_tiled

    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            marks[stage] = time.perf_counter() - t0

    out: dict[str, Any] = {}
    if workers:
        from risk_models.dask_runner import client_map, dask_client

        with dask_client("local", n_workers=workers) as client:
            t0 = time.perf_counter()
            derive_terrain_tiled(dem, out_dir, map_fn=client_map(client), progress=progress)
            peaks = client.run(
                lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ).values()
            out["peak_mb"] = max(peaks)
    else:
        derive_terrain_tiled(dem, out_dir, progress=progress)
    with rasterio.open(out_dir / "slope_deg.tif") as ds:
        out["pixels"] = ds.width * ds.height
    out["s"] = marks["write"]
    out["compute_s"] = marks["drainage"]
    out["write_s"] = marks["write"] - marks["drainage"]
    # the client's serial solves between tile passes (everything else is per-tile tasks)
    out["serial_s"] = (
        (marks["fill solve"] - marks["fill"])
        + (marks["accumulation solve"] - marks["directions"])
        + (marks["drainage solve"] - marks["accumulation"])
    )
    return out


def measure(mpx: float) -> dict[str, dict[str, Any]]:
    """Every step on a DEM of ``mpx`` Mpx, each in a child process."""
    from bench.common import run_child

    wanted = os.environ.get("ONEMAP_BENCH_COST_STEPS")
    chosen = [s.strip() for s in wanted.split(",")] if wanted else list(STEPS)
    steps = [
        s for s in STEPS if s in chosen and (mpx <= in_memory_limit_mpx() or s not in IN_MEMORY)
    ]
    with tempfile.TemporaryDirectory(prefix="onemap-cost-") as tmp:
        folder = Path(tmp)
        write_dem(folder, mpx)
        return {s: run_child("bench_costs", s, str(folder), timeout_s=7200) for s in steps}


def run(ctx: Any) -> list[dict[str, Any]]:
    from bench.common import row

    rows = []
    for mpx in sizes_mpx():
        m = measure(mpx)
        px = side_px(mpx) ** 2 / 1e6
        cells = f"; {m['static_tiles']['cells']:,} res-9 cells" if "static_tiles" in m else ""
        for step, r in m.items():
            split = ""
            if "compute_s" in r:
                split = (
                    f"; tiles {r['compute_s']:.1f} s + COGs {r['write_s']:.1f} s, of which "
                    f"serial solves {r['serial_s']:.1f} s"
                )
            if step == "tiles":
                # every tile pass and COG is a task: with 10 workers the parallel part /10
                ten = r["serial_s"] + (r["s"] - r["serial_s"]) / 10
                split += f"; 10 workers ≈ {ten:.0f} s"
            peer, peer_s = "", None
            if step == "tiles_2w":
                peer, peer_s = "tiles in one process", m["tiles"]["s"]
            elif step == "tiles" and "terrain" in m:
                peer, peer_s = "terrain in memory (no COGs)", m["terrain"]["s"]
            elif step == "static_tiles" and "static" in m:
                # the in-memory table includes its terrain; the banded one reads the COGs
                peer, peer_s = "static in memory (terrain included)", m["static"]["s"]
            rows.append(
                row(
                    f"{step} at {px:.0f} Mpx",
                    round(r["s"], 1),
                    "s",
                    peer=peer,
                    peer_value=None if peer_s is None else round(peer_s, 1),
                    notes=(
                        f"peak {r['peak_mb']:,.0f} MB ({r['peak_mb'] / px:,.0f} MB/Mpx), "
                        f"{r['s'] / px:.2f} s/Mpx{split}{cells}"
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
