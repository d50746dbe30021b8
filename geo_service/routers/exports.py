"""CSV exports streamed from a server-side cursor: the addresses inside an area, a warning's
evacuation list."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
from fastapi.responses import StreamingResponse

from emergency.exposure import ADDRESS_CSV_COLUMNS, iter_addresses

#: Rows written per chunk of the streamed body.
CHUNK_ROWS = 2000

RowSource = Callable[[asyncpg.Connection], AsyncIterator[Sequence[Any]]]


def streamed_csv(
    pool: asyncpg.Pool, columns: Sequence[str], rows: RowSource, filename: str
) -> StreamingResponse:
    """CSV with a header row, UTF-8 with BOM (so spreadsheet programs read the Chinese text
    right), of the rows ``rows(conn)`` yields in one read-only transaction."""

    async def body() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        yield ("\ufeff" + buf.getvalue()).encode()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            buf.seek(0)
            buf.truncate()
            n = 0
            async for r in rows(conn):
                writer.writerow(r)
                n += 1
                if n % CHUNK_ROWS == 0:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue().encode()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def addresses_csv(pool: asyncpg.Pool, area_wkb: bytes, filename: str) -> StreamingResponse:
    """Every address in ``area_wkb`` (EPSG:4326) as CSV."""
    return streamed_csv(
        pool, ADDRESS_CSV_COLUMNS, lambda conn: iter_addresses(conn, area_wkb), filename
    )
