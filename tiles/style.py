"""The MapLibre GL style (v8) of the command-centre map, built from the catalog.

Every source is on this server (absolute URLs from the request's base URL); glyphs come
from ``/fonts/{fontstack}/{range}.pbf`` (generated at set-up from Debian's Noto Sans CJK;
ideographs are drawn by the browser from the same local font).  No sprite (no icons) and no
external URL, so the map works offline.  Dark theme: a near-black background, a faint
hillshade, the catalog's colours, warnings coloured by level (fill and outline), cameras by
status and risk hexagons by level.  Every style layer carries ``metadata`` with the titles
(``onemap:title_zh``/``onemap:title_en``) and the switcher entry it belongs to
(``onemap:toggle``: the catalog layer id, or ``hillshade``/``dem``/``risk``).
"""

from __future__ import annotations

from typing import Any

from layers.catalog import WARNING_LEVELS, Catalog, Layer

BACKGROUND = "#0b1320"
#: The font stack used by labels (served by the font route of this server).
FONT_STACK = ["Noto Sans CJK SC Regular"]
#: Colours of the four warning levels (蓝/黄/橙/红), per the national 4-colour scheme.
WARNING_COLORS = {
    "blue": "#1e88e5",
    "yellow": "#fdd835",
    "orange": "#fb8c00",
    "red": "#e53935",
}
#: Colours of risk levels 1–4 (level 0 is not drawn).
RISK_COLORS = {1: "#1e88e5", 2: "#fdd835", 3: "#fb8c00", 4: "#e53935"}
#: Offline cameras are drawn grey, whatever the catalog colour.
OFFLINE_COLOR = "#607d8b"
#: Titles of the style layers that are not catalog layers (switcher entries).
EXTRA_TITLES = {
    "hillshade": ("山体阴影", "Hillshade"),
    "dem": ("地形晕渲", "Elevation"),
    "risk": ("风险格网 (H3)", "Risk hexagons (H3)"),
}
_KIND_ORDER = {"fill": 0, "line": 1, "circle": 2}


def _meta(toggle: str) -> dict[str, Any]:
    """``metadata`` of a style layer that is not drawn from a catalog layer."""
    zh, en = EXTRA_TITLES[toggle]
    return {"onemap:toggle": toggle, "onemap:title_zh": zh, "onemap:title_en": en}


def _only(layer: Layer, geometry: str) -> dict[str, Any]:
    """A filter keeping one geometry kind, for layers of mixed geometry (``Geometry``)."""
    if layer.geometry_type != "Geometry":
        return {}
    kinds = ["literal", [geometry, "Multi" + geometry]]
    return {"filter": ["in", ["geometry-type"], kinds]}


def _paint(layer: Layer) -> list[dict[str, Any]]:
    """The style layers of one catalog layer (source-layer = layer id)."""
    st = layer.style
    common: dict[str, Any] = {
        "source": "onemap",
        "source-layer": layer.id,
        "minzoom": layer.min_zoom,
        "layout": {"visibility": "visible" if layer.default_on else "none"},
        "metadata": {
            "onemap:toggle": layer.id,
            "onemap:title_zh": layer.title_zh,
            "onemap:title_en": layer.title_en,
        },
    }
    if layer.max_zoom < 22:
        common["maxzoom"] = layer.max_zoom + 1
    out: list[dict[str, Any]] = []
    if layer.id == "warnings":
        # Lifted warnings stay in the table (and the tiles) for the record; the map shows
        # the active ones (the screen narrows this further to the codes /warnings lists).
        common["filter"] = ["==", ["get", "status"], "active"]
    if st.kind == "fill" or layer.geometry_type == "Geometry":
        color: Any = st.color
        if layer.id == "warnings":
            color = ["match", ["get", "level"]]
            for level in WARNING_LEVELS:
                color += [level, WARNING_COLORS[level]]
            color.append(st.color)
        out.append(
            {
                "id": f"{layer.id}-fill",
                "type": "fill",
                **common,
                **_only(layer, "Polygon"),
                "paint": {
                    "fill-color": color,
                    "fill-opacity": st.opacity,
                    "fill-outline-color": color,
                },
            }
        )
        if layer.id == "warnings":
            # A bright outline: a warning area must read at a glance on a wall screen.
            out.append(
                {
                    "id": f"{layer.id}-outline",
                    "type": "line",
                    **common,
                    "paint": {"line-color": color, "line-width": 2.5, "line-opacity": 0.95},
                }
            )
    if st.kind == "line":
        out.append(
            {
                "id": f"{layer.id}-line",
                "type": "line",
                **common,
                "paint": {
                    "line-color": st.color,
                    "line-width": st.width,
                    "line-opacity": st.opacity,
                },
            }
        )
    if st.kind == "circle":
        # Thinned points carry point_count: grow with it (low zooms).
        count = ["coalesce", ["get", "point_count"], 1]
        circle_color: Any = st.color
        if layer.has_property("status") and layer.id == "cameras":
            circle_color = ["match", ["get", "status"], "offline", OFFLINE_COLOR, st.color]
        out.append(
            {
                "id": f"{layer.id}-circle",
                "type": "circle",
                **common,
                **_only(layer, "Point"),
                "paint": {
                    "circle-color": circle_color,
                    "circle-opacity": st.opacity,
                    "circle-radius": [
                        "interpolate",
                        ["linear"],
                        count,
                        1,
                        st.width,
                        100,
                        st.width * 3,
                    ],
                    "circle-stroke-color": BACKGROUND,
                    "circle-stroke-width": 0.5,
                },
            }
        )
    return out


def build_style(catalog: Catalog, base_url: str, role: str = "viewer") -> dict[str, Any]:
    """The MapLibre style document.

    Args:
        catalog: the layer catalog (every readable layer becomes style layers).
        base_url: this server's base URL, e.g. ``http://127.0.0.1:8000`` (no trailing ``/``).
        role: the caller's role; layers it may not read are left out.
    """
    base = base_url.rstrip("/")
    layers = catalog.readable_by(role)
    ids = ",".join(lyr.id for lyr in layers)
    style_layers: list[dict[str, Any]] = [
        {"id": "background", "type": "background", "paint": {"background-color": BACKGROUND}},
        {
            "id": "dem-relief",
            "type": "raster",
            "source": "dem",
            "metadata": _meta("dem"),
            "layout": {"visibility": "none"},
            "paint": {"raster-opacity": 0.5, "raster-fade-duration": 0},
        },
        {
            "id": "hillshade",
            "type": "raster",
            "source": "hillshade",
            "metadata": _meta("hillshade"),
            # No fade-in: every faded frame is a full repaint on a software-rendered wall PC.
            "paint": {"raster-opacity": 0.25, "raster-contrast": 0.1, "raster-fade-duration": 0},
        },
        {
            "id": "risk-fill",
            "type": "fill",
            "source": "risk",
            "source-layer": "risk",
            "filter": [">=", ["get", "level"], 1],
            "metadata": _meta("risk"),
            "layout": {"visibility": "visible"},
            "paint": {
                "fill-color": [
                    "match",
                    ["get", "level"],
                    *[v for lvl, c in RISK_COLORS.items() for v in (lvl, c)],
                    "rgba(0,0,0,0)",
                ],
                "fill-opacity": 0.45,
            },
        },
    ]
    ordered = sorted(layers, key=lambda lyr: _KIND_ORDER[lyr.style.kind])
    for layer in ordered:
        style_layers.extend(_paint(layer))
    if any(lyr.id == "admin_areas" for lyr in layers):
        style_layers.append(
            {
                "id": "admin_areas-label",
                "type": "symbol",
                "source": "onemap",
                "source-layer": "admin_areas",
                "minzoom": 11,
                "metadata": {"onemap:toggle": "admin_areas"},
                "layout": {
                    "text-field": ["get", "name"],
                    "text-font": FONT_STACK,
                    "text-size": ["match", ["get", "level"], "district", 16, "street", 14, 12],
                },
                "paint": {
                    "text-color": "#b3e5fc",
                    "text-halo-color": BACKGROUND,
                    "text-halo-width": 1.2,
                },
            }
        )
    for line_id, text_color in (("roads", "#cfd8dc"), ("rivers", "#90caf9")):
        if any(lyr.id == line_id for lyr in layers):
            style_layers.append(
                {
                    "id": f"{line_id}-label",
                    "type": "symbol",
                    "source": "onemap",
                    "source-layer": line_id,
                    "minzoom": 14,
                    "metadata": {"onemap:toggle": line_id},
                    "filter": ["has", "name"],
                    "layout": {
                        "symbol-placement": "line",
                        "text-field": ["get", "name"],
                        "text-font": FONT_STACK,
                        "text-size": 12,
                    },
                    "paint": {
                        "text-color": text_color,
                        "text-halo-color": BACKGROUND,
                        "text-halo-width": 1.0,
                    },
                }
            )
    return {
        "version": 8,
        "name": "OneMap command centre (dark)",
        "metadata": {"onemap:generated-from": "layers.catalog"},
        "center": [113.4, 22.5],
        "zoom": 12,
        "glyphs": f"{base}/fonts/{{fontstack}}/{{range}}.pbf",
        "sources": {
            "onemap": {"type": "vector", "url": f"{base}/tiles/{ids}/tilejson.json"},
            "risk": {"type": "vector", "url": f"{base}/tiles/risk/tilejson.json"},
            "hillshade": {
                "type": "raster",
                "url": f"{base}/raster/hillshade/tilejson.json",
                "tileSize": 256,
            },
            "dem": {"type": "raster", "url": f"{base}/raster/dem/tilejson.json", "tileSize": 256},
        },
        "layers": style_layers,
    }
