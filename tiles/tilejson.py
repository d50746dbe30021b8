"""TileJSON 3.0 documents and OGC API – Tiles tileset descriptions (plain dicts)."""

from __future__ import annotations

from typing import Any

from layers.catalog import Layer
from tiles import risk
from tiles.mvt import RISK_LAYER, LayerSet, vector_layer_fields
from tiles.tms import MAX_ZOOM, TMS_ID

WORLD_BOUNDS = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
#: Highest zoom the catalog layers are served at (clients over-zoom beyond).
CATALOG_MAX_ZOOM = 22
OGC_TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
OGC_CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"


def vector_layer_doc(layer: Layer, role: str) -> dict[str, Any]:
    return {
        "id": layer.id,
        "description": f"{layer.title_zh} — {layer.title_en}. {layer.description}".strip(),
        "fields": vector_layer_fields(layer, role),
        "minzoom": layer.min_zoom,
        "maxzoom": min(layer.max_zoom, CATALOG_MAX_ZOOM),
    }


def risk_layer_doc() -> dict[str, Any]:
    return {
        "id": RISK_LAYER,
        "description": "Risk cells (H3 hexagons) of a risk run; max level 0–4 per hexagon",
        "fields": dict(risk.FIELDS),
        "minzoom": 0,
        "maxzoom": CATALOG_MAX_ZOOM,
    }


def vector_tilejson(
    layerset: LayerSet,
    role: str,
    tiles_url: str,
    bounds: tuple[float, float, float, float] | None,
    name: str | None = None,
) -> dict[str, Any]:
    """A TileJSON 3.0 document for a vector tile source.

    Args:
        layerset: the layers of each tile.
        role: the caller's role (decides which fields are listed).
        tiles_url: absolute tile URL template with ``{z}/{x}/{y}``.
        bounds: (west, south, east, north) of the data in degrees, or ``None`` (world).
    """
    vector_layers = [vector_layer_doc(lyr, role) for lyr in layerset.layers]
    if layerset.risk:
        vector_layers.append(risk_layer_doc())
    b = bounds or WORLD_BOUNDS
    minzoom = min(v["minzoom"] for v in vector_layers)
    maxzoom = max(v["maxzoom"] for v in vector_layers)
    center_zoom = max(minzoom, min(maxzoom, 12))
    return {
        "tilejson": "3.0.0",
        "name": name or ",".join(layerset.ids),
        "description": "OneMap vector tiles (Mapbox Vector Tile 2.1, extent 4096)",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": list(b),
        "center": [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, center_zoom],
        "vector_layers": vector_layers,
    }


def raster_tilejson(
    name: str, tiles_url: str, bounds: tuple[float, float, float, float], maxzoom: int = 18
) -> dict[str, Any]:
    """A TileJSON 3.0 document for a raster (PNG) tile source."""
    return {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": list(bounds),
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, min(maxzoom, 12)],
    }


def ogc_tilesets(base: str, layer: Layer) -> dict[str, Any]:
    """``/collections/{id}/tiles``: the tilesets of a collection (only WebMercatorQuad)."""
    coll = f"{base}/collections/{layer.id}"
    return {
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{coll}/tiles"},
            {"rel": "collection", "type": "application/json", "href": coll},
        ],
        "tilesets": [ogc_tileset(base, layer, summary=True)],
    }


def ogc_tileset(base: str, layer: Layer, summary: bool = False) -> dict[str, Any]:
    """One tileset of a collection (OGC API – Tiles, ``tileset`` / ``tilesetSummary``)."""
    coll = f"{base}/collections/{layer.id}"
    doc: dict[str, Any] = {
        "title": f"{layer.title_en} ({layer.title_zh})",
        "dataType": "vector",
        "crs": OGC_CRS_3857,
        "tileMatrixSetURI": OGC_TMS_URI,
        "links": [
            {
                "rel": "self",
                "type": "application/json",
                "href": f"{coll}/tiles/{TMS_ID}",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": "application/json",
                "href": OGC_TMS_URI,
            },
            {
                "rel": "item",
                "type": "application/vnd.mapbox-vector-tile",
                "templated": True,
                # Our path order is z/x/y; the template names make that explicit.
                "href": f"{coll}/tiles/{TMS_ID}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}",
            },
        ],
    }
    if not summary:
        doc["tileMatrixSetLimits"] = [
            {
                "tileMatrix": str(z),
                "minTileRow": 0,
                "maxTileRow": (1 << z) - 1,
                "minTileCol": 0,
                "maxTileCol": (1 << z) - 1,
            }
            for z in range(layer.min_zoom, min(layer.max_zoom, MAX_ZOOM) + 1)
        ]
        doc["layers"] = [
            {
                "id": layer.id,
                "dataType": "vector",
                "minTileMatrix": str(layer.min_zoom),
                "maxTileMatrix": str(min(layer.max_zoom, CATALOG_MAX_ZOOM)),
                "geometryDimension": {"Point": 0, "LineString": 1, "MultiLineString": 1}.get(
                    layer.geometry_type, 2
                ),
            }
        ]
    return doc


def tile_matrix_sets_doc(base: str) -> dict[str, Any]:
    """The ``/tileMatrixSets`` list (OGC API – Tiles): the one grid served."""
    return {
        "tileMatrixSets": [
            {
                "id": TMS_ID,
                "title": "Google Maps Compatible for the World (EPSG:3857)",
                "uri": OGC_TMS_URI,
                "links": [
                    {
                        "rel": "self",
                        "type": "application/json",
                        "href": f"{base}/tileMatrixSets/{TMS_ID}",
                    }
                ],
            }
        ]
    }


def tile_matrix_set_doc() -> dict[str, Any]:
    """The definition of ``WebMercatorQuad`` (OGC 2DTMS 2.0 JSON, from morecantile)."""
    from tiles.tms import web_mercator_quad

    return web_mercator_quad().model_dump(exclude_none=True, mode="json")
