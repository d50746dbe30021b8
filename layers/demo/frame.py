"""The metric raster frame every demo-city geometry is built on.

All generation happens in a local metric CRS, WGS 84 / UTM zone 49N
(EPSG:32649), on a square grid of ``RES_M`` (30 m) cells centred on the
requested longitude/latitude.  Only the final layers are reprojected to
EPSG:4326 (see :mod:`layers.demo.city`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer

METRIC_CRS = "EPSG:32649"
GEO_CRS = "EPSG:4326"
RES_M = 30.0
#: DEM side length at scale 1 (pixels) and the hard cap at any scale.
BASE_SIDE_PX = 1024
MAX_SIDE_PX = 3000
MIN_SIDE_PX = 384


def side_px_for_scale(scale: float) -> int:
    """DEM side length in pixels: 1024 at scale 1, growing with ``scale ** 0.25``.

    Feature counts grow linearly with ``scale``, so feature density grows with
    ``sqrt(scale)`` (a denser city), while the DEM stays within 384..3000 px.
    """
    side = 16 * round(BASE_SIDE_PX / 16 * scale**0.25)
    return int(min(MAX_SIDE_PX, max(MIN_SIDE_PX, side)))


@dataclass(frozen=True)
class Frame:
    """A north-up square grid in EPSG:32649.

    Attributes:
        width, height: size in cells (pixels).
        res_m: cell size in metres.
        x_min, y_max: west and north edges of the grid in metres (EPSG:32649).
    """

    width: int
    height: int
    res_m: float
    x_min: float
    y_max: float

    @classmethod
    def around(cls, center_lon: float, center_lat: float, scale: float) -> Frame:
        """The frame centred on a WGS 84 lon/lat (degrees), sized for ``scale``."""
        to_utm = Transformer.from_crs(GEO_CRS, METRIC_CRS, always_xy=True)
        cx, cy = to_utm.transform(center_lon, center_lat)
        side = side_px_for_scale(scale)
        half_m = side * RES_M / 2
        # Snap the origin to whole cells so the grid is stable for a given centre.
        x_min = float(np.floor((cx - half_m) / RES_M) * RES_M)
        y_max = float(np.ceil((cy + half_m) / RES_M) * RES_M)
        return cls(side, side, RES_M, x_min, y_max)

    @property
    def transform(self) -> Affine:
        """Affine transform from (col, row) to EPSG:32649 metres."""
        return Affine(self.res_m, 0.0, self.x_min, 0.0, -self.res_m, self.y_max)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of rasters on this frame."""
        return (self.height, self.width)

    @property
    def side_m(self) -> float:
        """Side length of the frame in metres."""
        return self.width * self.res_m

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) in metres."""
        return (
            self.x_min,
            self.y_max - self.height * self.res_m,
            self.x_min + self.width * self.res_m,
            self.y_max,
        )

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the frame (m, EPSG:32649)."""
        x0, y0, x1, y1 = self.bounds
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def cell_xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates (m) of the given cells."""
        x = self.x_min + (np.asarray(cols) + 0.5) * self.res_m
        y = self.y_max - (np.asarray(rows) + 0.5) * self.res_m
        return x, y

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row/col of the cells containing points (m), clipped to the grid."""
        cols = np.floor((np.asarray(x) - self.x_min) / self.res_m).astype(np.int64)
        rows = np.floor((self.y_max - np.asarray(y)) / self.res_m).astype(np.int64)
        return np.clip(rows, 0, self.height - 1), np.clip(cols, 0, self.width - 1)

    def sample(self, grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nearest-cell values of ``grid`` (shaped like the frame) at points (m)."""
        rows, cols = self.rowcol(x, y)
        return grid[rows, cols]

    def km_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates in km relative to the frame centre (east, north)."""
        half = self.side_m / 2000.0
        step = self.res_m / 1000.0
        xs = (np.arange(self.width, dtype=np.float32) + 0.5) * step - half
        ys = half - (np.arange(self.height, dtype=np.float32) + 0.5) * step
        return np.meshgrid(xs, ys)


def to_geo(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert EPSG:32649 metres to WGS 84 lon/lat degrees."""
    tr = Transformer.from_crs(METRIC_CRS, GEO_CRS, always_xy=True)
    return tr.transform(np.asarray(x), np.asarray(y))


def farthest_points(xy: np.ndarray, n: int, first: int = 0) -> np.ndarray:
    """Indices of ``n`` well-spread points picked by farthest-point sampling.

    Args:
        xy: (m, 2) candidate coordinates (any metric unit).
        n: number of points to pick (``<= m``).
        first: index of the first pick.

    Returns:
        Integer indices into ``xy`` in pick order.
    """
    n = min(n, len(xy))
    picks = np.empty(n, dtype=np.int64)
    picks[0] = first
    dist = np.hypot(*(xy - xy[first]).T)
    for i in range(1, n):
        picks[i] = int(np.argmax(dist))
        dist = np.minimum(dist, np.hypot(*(xy - xy[picks[i]]).T))
    return picks
