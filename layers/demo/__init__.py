"""Deterministic synthetic "demo city" generator (pure Python, no database).

A synthetic district in the Pearl River Delta hills: a DEM with hills, valleys
and a floodplain, rivers routed on it, nested admin units and management
grids, roads, buildings, standard addresses, venues, shelters, rescue teams,
cameras, hazard sites, sensors with a week of readings and historic incidents.

Examples:
    >>> from pathlib import Path
    >>> from layers.demo import generate_city
    >>> city = generate_city(Path("/tmp/demo"), scale=0.1)  # doctest: +SKIP
    >>> city.layers["grids"].crs.to_epsg()  # doctest: +SKIP
    4326
"""

from layers.demo.city import DemoCity, generate_city

__all__ = ["DemoCity", "generate_city"]
