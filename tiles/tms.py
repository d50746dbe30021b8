"""The tile grid: OGC ``WebMercatorQuad`` from morecantile, and tile-address checks.

Examples:
    >>> t = check_tile(1, 1, 0)
    >>> round(t.bounds_3857[0]), round(t.pixel_m, 2)
    (0, 78271.52)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile

from tiles.errors import TileOutOfRange, UnknownTileMatrixSet

TMS_ID = "WebMercatorQuad"
MIN_ZOOM = 0
MAX_ZOOM = 24
#: Screen pixels of a tile (the MVT extent is 4096 units over these).
TILE_PX = 256
#: Zoom from which vector tiles carry every feature unsimplified.
FULL_DETAIL_ZOOM = 14


@lru_cache(maxsize=1)
def web_mercator_quad() -> morecantile.TileMatrixSet:
    return morecantile.tms.get(TMS_ID)


def tile_matrix_set(tms_id: str) -> morecantile.TileMatrixSet:
    """The tile matrix set called ``tms_id``; only ``WebMercatorQuad`` is served."""
    if tms_id != TMS_ID:
        raise UnknownTileMatrixSet(f"unknown tile matrix set {tms_id!r}; use {TMS_ID}")
    return web_mercator_quad()


@dataclass(frozen=True)
class Tile:
    """A checked tile address with its bounds.

    Attributes:
        z, x, y: the address (XYZ scheme, y down from the north).
        bounds_3857: (xmin, ymin, xmax, ymax) in EPSG:3857 metres.
        bounds_4326: (west, south, east, north) in degrees.
    """

    z: int
    x: int
    y: int
    bounds_3857: tuple[float, float, float, float]
    bounds_4326: tuple[float, float, float, float]

    @property
    def width_m(self) -> float:
        """Tile width in EPSG:3857 metres."""
        return self.bounds_3857[2] - self.bounds_3857[0]

    @property
    def pixel_m(self) -> float:
        """Size of one of the 256 screen pixels, in EPSG:3857 metres."""
        return self.width_m / TILE_PX

    @property
    def ground_pixel_m(self) -> float:
        """Ground size of one screen pixel at the tile centre (metres, Mercator scale removed)."""
        lat = (self.bounds_4326[1] + self.bounds_4326[3]) / 2
        return self.pixel_m * math.cos(math.radians(lat))


def check_tile(z: int, x: int, y: int) -> Tile:
    """The tile at ``z/x/y``; :class:`TileOutOfRange` when it is not in the grid."""
    z, x, y = int(z), int(x), int(y)
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise TileOutOfRange(f"zoom {z} is outside {MIN_ZOOM}–{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile {z}/{x}/{y} is outside the grid (0 ≤ x, y < {n} at zoom {z})")
    return _tile(z, x, y)


#: Bounds are pure functions of the address; morecantile's geographic bounds go through
#: pyproj (~100 µs), which would dominate a cached tile's answer.
@lru_cache(maxsize=65536)
def _tile(z: int, x: int, y: int) -> Tile:
    tms = web_mercator_quad()
    t = morecantile.Tile(x, y, z)
    b = tms.xy_bounds(t)
    g = tms.bounds(t)
    return Tile(z, x, y, (b.left, b.bottom, b.right, b.top), (g.left, g.bottom, g.right, g.top))


def tiles_in_bbox(
    bbox_4326: tuple[float, float, float, float], minzoom: int, maxzoom: int
) -> list[tuple[int, int, int]]:
    """Every ``(z, x, y)`` touching ``bbox_4326`` (west, south, east, north; degrees)."""
    tms = web_mercator_quad()
    out: list[tuple[int, int, int]] = []
    for z in range(minzoom, maxzoom + 1):
        out.extend((t.z, t.x, t.y) for t in tms.tiles(*bbox_4326, zooms=[z]))
    return out
