"""Folium maps that need no internet: every script, style and tile comes from the OneMap server.

folium's defaults load Leaflet, jQuery, Bootstrap, Font Awesome and awesome-markers from
public CDNs and draw OpenStreetMap tiles.  A command centre runs offline, so each map here
replaces the class-wide asset lists *on the instance* with Leaflet served by the OneMap server
(``/vendor/leaflet/dist``), drops the rest (nothing drawn here uses them), and takes its
basemap from the server's raster tiles (``/raster/hillshade``).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element, Figure

#: China's four warning colours (GB/T 27962 and the CMA rainstorm signals), by name and 1–4.
LEVEL_COLOURS: dict[Any, str] = {
    "blue": "#1f6fe5",
    "yellow": "#f2c500",
    "orange": "#ff7f0e",
    "red": "#e0201b",
    0: "#7f8c8d",
    1: "#1f6fe5",
    2: "#f2c500",
    3: "#ff7f0e",
    4: "#e0201b",
}
#: Colours of overlays without a ``level`` column, in turn.
PLAIN_COLOURS = ("#17becf", "#e377c2", "#bcbd22", "#9467bd", "#8c564b", "#2ca02c")
DEFAULT_CENTRE = (22.5, 113.4)  # (lat, lon) of the demo district, degrees
MAX_TOOLTIP_FIELDS = 6


def leaflet_assets(base_url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(js, css) asset lists of a map: Leaflet from the server's ``/vendor``, nothing else."""
    dist = f"{base_url.rstrip('/')}/vendor/leaflet/dist"
    return [("leaflet", f"{dist}/leaflet.js")], [("leaflet_css", f"{dist}/leaflet.css")]


def level_colour(value: Any) -> str | None:
    """The colour of a warning level (name or 0–4), or None for anything else.

    >>> level_colour("red"), level_colour(2), level_colour(None)
    ('#e0201b', '#f2c500', None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return LEVEL_COLOURS.get(value.lower())
    try:
        return LEVEL_COLOURS.get(int(value))
    except (TypeError, ValueError):
        return None


def _style(colour: str, geom_type: str) -> dict[str, Any]:
    line = geom_type in ("LineString", "MultiLineString")
    return {
        "color": colour,
        "weight": 2.5 if line else 0.6,
        "opacity": 0.9,
        "fillColor": colour,
        "fillOpacity": 0.0 if line else 0.45,
    }


def _serialisable(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Datetime columns as ISO text and nested values as JSON-able, for ``to_json``."""
    out = gdf.copy()
    for name in out.columns:
        if name == out.geometry.name:
            continue
        col = out[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            out[name] = col.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif col.dtype == object and col.map(lambda v: isinstance(v, dict | list)).any():
            out = out.drop(columns=name)
    return out


def _overlay(
    gdf: gpd.GeoDataFrame, name: str, colour: str, tooltip: Sequence[str] | None
) -> folium.GeoJson:
    gdf = _serialisable(gdf.to_crs(4326))
    has_level = "level" in gdf.columns

    def style(feature: Mapping[str, Any]) -> dict[str, Any]:
        props = feature.get("properties") or {}
        geom_type = (feature.get("geometry") or {}).get("type", "")
        c = (level_colour(props.get("level")) if has_level else None) or colour
        return _style(c, geom_type)

    fields = [f for f in (tooltip or gdf.columns) if f in gdf.columns and f != gdf.geometry.name]
    fields = fields[:MAX_TOOLTIP_FIELDS]
    return folium.GeoJson(
        gdf.to_json(drop_id=True),
        name=name,
        style_function=style,
        marker=folium.CircleMarker(radius=4, weight=1, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=fields) if fields else None,
    )


def _legend() -> Element:
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;margin-right:6px;'
        f'background:{LEVEL_COLOURS[n]}"></span>{html.escape(label)}</div>'
        for n, label in (
            ("red", "red 红色"),
            ("orange", "orange 橙色"),
            ("yellow", "yellow 黄色"),
            ("blue", "blue 蓝色"),
        )
    )
    return Element(
        '<div style="position:absolute;bottom:40px;right:10px;z-index:1000;background:#fff;'
        'padding:6px 8px;border-radius:4px;font:12px sans-serif;opacity:0.9">'
        f"<b>warning level 预警等级</b>{rows}</div>"
    )


def offline_map(
    base_url: str,
    overlays: Sequence[gpd.GeoDataFrame | gpd.GeoSeries],
    *,
    names: Sequence[str] | None = None,
    basemap: str | None = "hillshade",
    location: tuple[float, float] | None = None,
    zoom_start: int = 13,
    height: str = "600px",
    tooltip: Sequence[str] | None = None,
) -> folium.Map:
    """A folium map over ``base_url``'s own tiles with ``overlays`` drawn as GeoJSON.

    Args:
        base_url: the OneMap server (its ``/vendor`` Leaflet and ``/raster`` tiles are used).
        overlays: GeoDataFrames (any CRS; drawn in EPSG:4326); a ``level`` column
            (blue/yellow/orange/red or 0–4) colours each feature by warning level.
        names: layer names in the layer control (default ``layer.attrs["layer"]`` or
            ``overlay 1…``).
        basemap: raster dataset of ``/raster/{basemap}/{z}/{x}/{y}.png`` (``hillshade``,
            ``dem``, ``slope`` …) or None for no basemap.
        location: (lat, lon) degrees of the centre; default: fit the overlays' bounds.
        zoom_start: initial zoom when the map does not fit the overlays.
        tooltip: columns shown on hover (default the first few).
    """
    base = base_url.rstrip("/")
    frames = [o.to_frame() if isinstance(o, gpd.GeoSeries) else o for o in overlays]
    frames = [f for f in frames if f is not None]
    m = folium.Map(
        location=location or DEFAULT_CENTRE,
        zoom_start=zoom_start,
        tiles=None,
        height=height,
        control_scale=True,
    )
    # Instance attributes shadow folium's class-wide CDN lists for this map only.
    m.default_js, m.default_css = leaflet_assets(base)
    if basemap:
        folium.TileLayer(
            tiles=f"{base}/raster/{basemap}/{{z}}/{{x}}/{{y}}.png",
            attr="OneMap",
            name=basemap,
            max_zoom=20,
        ).add_to(m)
    plain = itertools.cycle(PLAIN_COLOURS)
    any_level = False
    bounds: list[float] | None = None
    for i, gdf in enumerate(frames):
        if gdf.empty:
            continue
        name = (list(names)[i] if names and i < len(names) else None) or str(
            gdf.attrs.get("layer") or f"overlay {i + 1}"
        )
        any_level = any_level or "level" in gdf.columns
        _overlay(gdf, name, next(plain), tooltip).add_to(m)
        b = [float(v) for v in gdf.to_crs(4326).total_bounds]
        if bounds is None:
            bounds = b
        else:
            bounds = [*map(min, bounds[:2], b[:2]), *map(max, bounds[2:], b[2:])]
    if bounds is not None and location is None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    root = m.get_root()
    if any_level and isinstance(root, Figure):
        root.html.add_child(_legend())
    folium.LayerControl(collapsed=True).add_to(m)
    return m
