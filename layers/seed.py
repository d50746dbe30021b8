"""Load the generated demo city into the database (``onemap demo``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.load import Progress, replace_layers
from layers.rasters import describe, register


@dataclass
class DemoLoad:
    counts: dict[str, int]
    readings: int
    dem_path: Path
    skipped: bool = False


def database_is_empty(url: str) -> bool:
    """True when no layer holds any row (the demo city has never been loaded)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM admin_areas) OR EXISTS (SELECT 1 FROM addresses)"
        ).fetchone()
    return not (row and row[0])


def load_demo(
    url: str,
    data_dir: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    center_lon: float = 113.4,
    center_lat: float = 22.5,
    if_empty: bool = False,
    generate_progress: Callable[[str, float], None] | None = None,
    load_progress: Progress | None = None,
) -> DemoLoad:
    """Generate the demo city and swap it into every layer in one transaction.

    Deterministic (same ``seed`` and ``scale`` → same rows) and idempotent (running it
    again replaces the layers with identical rows).  The DEM lands in
    ``data_dir/rasters/dem.tif`` and is registered as raster ``dem``.
    """
    from layers.demo import generate_city

    if if_empty and not database_is_empty(url):
        return DemoLoad({}, 0, Path(data_dir) / "rasters" / "dem.tif", skipped=True)
    city = generate_city(
        Path(data_dir) / "rasters",
        scale=scale,
        seed=seed,
        center_lon=center_lon,
        center_lat=center_lat,
        progress=generate_progress,
    )
    results = replace_layers(
        url,
        city.layers,
        readings=city.sensor_readings,
        source=f"demo city (scale {scale}, seed {seed})",
        progress=load_progress,
        action="demo.load",
    )
    dem = Path(data_dir) / "rasters" / "dem.tif"
    if city.dem_path.resolve() != dem.resolve():
        dem.parent.mkdir(parents=True, exist_ok=True)
        city.dem_path.replace(dem)
    register(url, describe("dem", dem), source="demo city")
    return DemoLoad({r.layer: r.rows_after for r in results}, len(city.sensor_readings), dem)
