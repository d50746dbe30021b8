"""Raster tiles (256×256 PNG in WebMercatorQuad) from the registered COGs, with rio-tiler.

Datasets are the rows of the ``rasters`` table plus two renderings derived from ``dem``:

====================  =====================================================================
``dem``               colour relief: the upper part of ``terrain`` (greens → browns → white),
                      stretched over the 2nd–98th percentile of the DEM
``hillshade``         grey hillshade (sun azimuth 315°, altitude 45°, Horn-like gradient),
                      computed from the DEM tile read with a one-pixel buffer
``slope``             slope in degrees, 0–45° on ``ylorrd`` (yellow → red)
rainfall / hand / …   the registered values on a colour map chosen by name (:data:`CMAPS`)
====================  =====================================================================

A tile entirely outside a dataset is a fully transparent PNG (one shared 256×256 image),
so every map client shows nothing there without treating it as an error; pixels outside
a partly covered tile are transparent through the PNG alpha channel.

Everything here is blocking (GDAL, NumPy): the server calls it in a worker thread.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from layers.rasters import RasterInfo
from tiles.errors import DatasetUnavailable, UnknownDataset
from tiles.tms import TILE_PX, Tile, web_mercator_quad

#: Renderings derived from the ``dem`` raster, when no raster of that name is registered.
DERIVED = ("hillshade", "slope")
#: Colour map (rio-tiler name) by dataset name; others use :data:`DEFAULT_CMAP`.
CMAPS = {
    "dem": "terrain",
    "hillshade": "gray",
    "slope": "ylorrd",
    "rainfall": "blues",
    "rain": "blues",
    "precipitation": "blues",
    "susceptibility": "reds",
    "landslide": "reds",
    "hand": "blues_r",  # low height above drainage = flood-prone = deep blue
    "twi": "ylgnbu",
    "flood": "blues",
    "depth": "blues",
    "risk": "ylorrd",
}
DEFAULT_CMAP = "viridis"
#: Slope range shown on the colour ramp (degrees); steeper is the darkest red.
SLOPE_MAX_DEG = 45.0
PNG_MEDIA_TYPE = "image/png"


@dataclass(frozen=True)
class RasterDataset:
    """A dataset as served: its name, the rendering and the COG it reads."""

    name: str
    rendering: str  # "relief", "hillshade", "slope" or "values"
    source: RasterInfo

    @property
    def cmap(self) -> str:
        return CMAPS.get(self.name, CMAPS.get(self.rendering, DEFAULT_CMAP))

    @property
    def mtime(self) -> float:
        try:
            return self.source.path.stat().st_mtime
        except OSError:
            return 0.0


def resolve_dataset(name: str, registered: dict[str, RasterInfo]) -> RasterDataset:
    """The dataset called ``name`` given the registered rasters (by name)."""
    if name in registered:
        rendering = "relief" if name == "dem" else "values"
        return RasterDataset(name, rendering, registered[name])
    if name in DERIVED and "dem" in registered:
        return RasterDataset(name, name, registered["dem"])
    known = sorted(set(registered) | (set(DERIVED) if "dem" in registered else set()))
    raise UnknownDataset(f"unknown raster dataset {name!r}; known: {', '.join(known) or 'none'}")


@lru_cache(maxsize=1)
def transparent_png() -> bytes:
    """A fully transparent 256×256 PNG."""
    from rio_tiler.models import ImageData

    img = ImageData(np.zeros((1, TILE_PX, TILE_PX), dtype="uint8"))
    img.array.mask = np.ones_like(img.array.mask)
    return img.render(img_format="PNG")


def _colormap(name: str) -> Any:
    from rio_tiler.colormap import cmap

    cm: Any = cmap.get(name)
    if name == "terrain":
        # Skip terrain's blue sea quarter: a land DEM runs green → brown → white.
        return {i: cm[64 + (i * 191) // 255] for i in range(256)}
    return cm


class RasterRenderer:
    """Renders PNG tiles; remembers each COG's value range (by path and mtime)."""

    def __init__(self) -> None:
        # rio_tiler's modules import each other in a cycle: a first import from several
        # worker threads at once fails ("partially initialized module"), as a screen's
        # first burst of parallel tile requests does.  Import it once, here, before any.
        import rio_tiler.io  # noqa: F401

        self._ranges: dict[tuple[str, float], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def value_range(self, ds: RasterDataset) -> tuple[float, float]:
        """2nd and 98th percentile of the COG's first band, read from an overview."""
        key = (str(ds.source.path), ds.mtime)
        with self._lock:
            hit = self._ranges.get(key)
        if hit is not None:
            return hit
        from rio_tiler.io import Reader

        try:
            with Reader(str(ds.source.path)) as src:
                img = src.preview(indexes=1, max_size=512)
        except Exception as exc:  # rasterio raises many classes; all mean "cannot read"
            raise DatasetUnavailable(f"raster {ds.name!r} cannot be read: {exc}") from None
        values = img.array.compressed()
        if values.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = (float(v) for v in np.percentile(values, (2, 98)))
            if hi <= lo:
                hi = lo + 1.0
        with self._lock:
            self._ranges[key] = (lo, hi)
        return lo, hi

    def render(self, ds: RasterDataset, tile: Tile) -> bytes | None:
        """The PNG of ``tile``; ``None`` when the tile lies outside the dataset."""
        from rio_tiler.errors import TileOutsideBounds
        from rio_tiler.io import Reader

        if not Path(ds.source.path).exists():
            raise DatasetUnavailable(f"the file of raster {ds.name!r} is missing")
        buffer = 1 if ds.rendering in ("hillshade", "slope") else 0
        try:
            with Reader(str(ds.source.path), tms=web_mercator_quad()) as src:
                img = src.tile(tile.x, tile.y, tile.z, tilesize=TILE_PX, indexes=1, buffer=buffer)
        except TileOutsideBounds:
            return None
        except Exception as exc:
            raise DatasetUnavailable(f"raster {ds.name!r} cannot be read: {exc}") from None
        band = img.array[0]
        valid = ~np.ma.getmaskarray(band)
        if not valid.any():
            return None
        values = np.ma.filled(band.astype("float64"), np.nan)
        if ds.rendering in ("hillshade", "slope"):
            scaled = self._terrain(values, tile, ds.rendering)
            valid = valid[1:-1, 1:-1] & np.isfinite(scaled)
        else:
            lo, hi = self.value_range(ds)
            scaled = (values - lo) / (hi - lo) * 255.0
        return _png(scaled, valid, ds.cmap)

    @staticmethod
    def _terrain(elev: np.ndarray, tile: Tile, rendering: str) -> np.ndarray:
        """Hillshade (0–255) or slope (scaled to 0–255) of a buffered elevation tile."""
        # Ground size of a pixel: Mercator metres shrink by cos(latitude) on the ground.
        px_m = tile.ground_pixel_m
        # Fill holes with neighbours' mean so edges do not become cliffs.
        if np.isnan(elev).any():
            elev = np.where(np.isnan(elev), np.nanmean(elev), elev)
        dz_drow, dz_dx = np.gradient(elev, px_m)
        core = (slice(1, -1), slice(1, -1))
        dz_dx, dz_dn = dz_dx[core], -dz_drow[core]  # rows run north → south
        if rendering == "slope":
            return np.degrees(np.arctan(np.hypot(dz_dx, dz_dn))) / SLOPE_MAX_DEG * 255.0
        # Lambert shading: unit surface normal · unit vector towards the sun.
        az, alt = math.radians(315.0), math.radians(45.0)
        sun_e, sun_n, sun_up = (
            math.sin(az) * math.cos(alt),
            math.cos(az) * math.cos(alt),
            math.sin(alt),
        )
        shade = (sun_up - dz_dx * sun_e - dz_dn * sun_n) / np.sqrt(1.0 + dz_dx**2 + dz_dn**2)
        return np.clip(shade, 0, 1) * 255.0


def _png(scaled: np.ndarray, valid: np.ndarray, cmap_name: str) -> bytes:
    from rio_tiler.models import ImageData

    index = np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype("uint8")
    arr = np.ma.MaskedArray(index[np.newaxis], mask=~valid[np.newaxis])
    return ImageData(arr).render(img_format="PNG", colormap=_colormap(cmap_name))
