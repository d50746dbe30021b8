"""Exceptions of the ``tiles`` package (no HTTP here; ``geo_service`` maps them).

Each class carries a stable machine-readable ``code``; the service maps the class to an
HTTP status (every one of them is a client-side "not found" or "bad input").
"""

from __future__ import annotations


class TilesError(Exception):
    """Base class of every error raised by :mod:`tiles`."""

    code = "tiles_error"


class TileOutOfRange(TilesError):
    """A tile address outside the tile matrix set (zoom 0–24, x/y inside the grid)."""

    code = "tile_out_of_range"


class UnknownTileMatrixSet(TilesError):
    """A tile matrix set other than the ones served (``WebMercatorQuad``)."""

    code = "unknown_tile_matrix_set"


class UnknownDataset(TilesError):
    """A raster dataset that is neither registered nor derived."""

    code = "unknown_dataset"


class DatasetUnavailable(TilesError):
    """A registered raster whose file cannot be read (moved or deleted)."""

    code = "dataset_unavailable"


class UnknownRun(TilesError):
    """A risk run that does not exist."""

    code = "unknown_run"


class InvalidTileRequest(TilesError):
    """Parameters that cannot make a tile (empty layer list, bad bbox, zoom range …)."""

    code = "invalid_tile_request"


class ExportFailed(TilesError):
    """A PMTiles export that could not be written (unwritable output, database error)."""

    code = "export_failed"
