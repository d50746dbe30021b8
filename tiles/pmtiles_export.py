"""Export a vector-tile pyramid into one PMTiles v3 archive.

Tiles are rendered in parallel by a pool of threads, each with its own psycopg
connection, with the same SQL (and size cap) as the server; empty tiles are left out.
Tiles are gzip-compressed in the archive (PMTiles ``tile_compression = gzip``), written in
tile-id order (a clustered archive), first into a temporary file beside the output that is
renamed at the end: a failure never leaves a partial archive under the output name.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from layers.catalog import CATALOG, Catalog
from layers.sql import extent_sql
from tiles.errors import ExportFailed, InvalidTileRequest
from tiles.mvt import LayerSet, parse_layers
from tiles.render import RiskRun, render_sync, resolve_run_sync
from tiles.tilejson import vector_tilejson
from tiles.tms import MAX_ZOOM, check_tile, tiles_in_bbox

#: Tiles rendered per batch (keeps memory bounded while keeping tile-id order).
BATCH = 512
GZIP_LEVEL = 6


@dataclass(frozen=True)
class ExportResult:
    """What an export did: tiles examined (every address in the zoom range and bbox),
    written (non-empty; the archive header's ``addressed_tiles_count``), bytes, and the
    zoom range the archive really holds (its header's and metadata's ``minzoom``/``maxzoom``;
    empty zooms at the ends of the asked range are not claimed)."""

    path: Path
    tiles_examined: int
    tiles_written: int
    bytes_written: int
    minzoom: int
    maxzoom: int
    bbox: tuple[float, float, float, float]


def _check_output(out: Path) -> None:
    parent = out.resolve().parent
    if not parent.is_dir():
        raise ExportFailed(f"cannot write {out}: directory {parent} does not exist")
    if out.exists() and out.is_dir():
        raise ExportFailed(f"cannot write {out}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise ExportFailed(f"cannot write {out}: directory {parent} is not writable")


def _e7(v: float) -> int:
    return int(round(v * 10_000_000))


def export_pmtiles(
    url: str,
    layers: str,
    out: Path,
    *,
    minzoom: int,
    maxzoom: int,
    bbox: tuple[float, float, float, float] | None = None,
    role: str = "viewer",
    run: int | None = None,
    workers: int = 4,
    catalog: Catalog = CATALOG,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Render every tile of ``layers`` in ``minzoom..maxzoom`` over ``bbox`` into ``out``.

    Args:
        url: the OneMap database (PostgreSQL URL).
        layers: comma-separated layer ids (``risk`` for risk cells), as in ``/tiles/{layers}``.
        out: the ``.pmtiles`` file to write (replaced atomically).
        minzoom, maxzoom: zoom range, 0–24.
        bbox: (west, south, east, north) in EPSG:4326 degrees; default: the data's extent.
        role: whose view of the layers (sensitive properties need ``operator``).
        run: risk run for the ``risk`` layer (default: latest finished run).
        workers: rendering threads (one database connection each).
        progress: called as ``progress(done, total)`` after each batch.
    """
    if not (0 <= minzoom <= maxzoom <= MAX_ZOOM):
        raise InvalidTileRequest(f"need 0 ≤ minzoom ≤ maxzoom ≤ {MAX_ZOOM}")
    layerset = parse_layers(layers, catalog, role)
    out = Path(out)
    _check_output(out)
    try:
        with psycopg.connect(url) as conn:
            risk_run = resolve_run_sync(conn, run) if layerset.risk else None
            if bbox is None:
                tables = layerset.tables or ("admin_areas",)
                row = conn.execute(extent_sql(tables)).fetchone()
                if row is None or row[0] is None:
                    raise ExportFailed("the layers hold no data; give --bbox")
                bbox = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    except psycopg.Error as exc:
        raise ExportFailed(f"database error: {exc}") from None
    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InvalidTileRequest(f"invalid bbox {bbox}: need west < east, south < north")
    addresses = sorted(
        tiles_in_bbox(bbox, minzoom, maxzoom), key=lambda t: zxy_to_tileid(t[0], t[1], t[2])
    )

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise ExportFailed(f"cannot write {out}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            writer, zooms = _write(url, layerset, role, risk_run, addresses, f, workers, progress)
            written = len(zooms)
            if written == 0:
                raise ExportFailed("no tile holds any feature in that zoom range and bbox")
            minzoom, maxzoom = min(zooms), max(zooms)
            header = {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_lon_e7": _e7(west),
                "min_lat_e7": _e7(south),
                "max_lon_e7": _e7(east),
                "max_lat_e7": _e7(north),
                "center_zoom": (minzoom + maxzoom) // 2,
                "center_lon_e7": _e7((west + east) / 2),
                "center_lat_e7": _e7((south + north) / 2),
            }
            doc = vector_tilejson(layerset, role, "", bbox, name="onemap:" + layers)
            metadata = {
                "name": doc["name"],
                "format": "pbf",
                "type": "overlay",
                "description": doc["description"],
                "vector_layers": doc["vector_layers"],
                "minzoom": minzoom,
                "maxzoom": maxzoom,
            }
            writer.finalize(header, metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an archive is meant to be served
        os.replace(tmp, out)
    except psycopg.Error as exc:
        raise ExportFailed(f"database error: {exc}") from None
    except OSError as exc:
        raise ExportFailed(f"cannot write {out}: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(
        out,
        len(addresses),
        written,
        out.stat().st_size,
        minzoom,
        maxzoom,
        (west, south, east, north),
    )


def _write(
    url: str,
    layerset: LayerSet,
    role: str,
    risk_run: RiskRun | None,
    addresses: list[tuple[int, int, int]],
    f: object,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[Writer, list[int]]:
    """Render ``addresses`` in parallel and write them in order; returns the writer (to be
    finalised) and the zoom of each tile written."""
    local = threading.local()
    conns: list[psycopg.Connection] = []
    lock = threading.Lock()

    def render(addr: tuple[int, int, int]) -> bytes:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = psycopg.connect(url, autocommit=True)
            local.conn = conn
            with lock:
                conns.append(conn)
        data = render_sync(conn, layerset, check_tile(*addr), role, risk_run)
        # Compressed here, in the rendering threads (zlib releases the GIL); level 6 as
        # zlib's default: level 9 costs about twice the time for a few per cent.
        return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if data else b""

    writer = Writer(f)
    written: list[int] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, batch in _batches(addresses):
                for addr, data in zip(batch, pool.map(render, batch), strict=True):
                    if data:
                        writer.write_tile(zxy_to_tileid(*addr), data)
                        written.append(addr[0])
                if progress is not None:
                    progress(done, len(addresses))
    finally:
        for c in conns:
            c.close()
    return writer, written


def _batches(items: list[tuple[int, int, int]]) -> Iterator[tuple[int, list[tuple[int, int, int]]]]:
    for i in range(0, len(items), BATCH):
        batch = items[i : i + BATCH]
        yield i + len(batch), batch
