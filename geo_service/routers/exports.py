"""CSV export of the addresses inside an area (streamed from a server-side cursor)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import asyncpg
from fastapi.responses import StreamingResponse

from emergency.exposure import ADDRESS_CSV_COLUMNS, iter_addresses


def addresses_csv(pool: asyncpg.Pool, area_wkb: bytes, filename: str) -> StreamingResponse:
    """Every address in ``area_wkb`` (EPSG:4326) as CSV with a header row, UTF-8 with BOM
    (so spreadsheet programs read the Chinese text right)."""

    async def rows() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(ADDRESS_CSV_COLUMNS)
        yield ("\ufeff" + buf.getvalue()).encode()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            n = 0
            buf.seek(0)
            buf.truncate()
            async for r in iter_addresses(conn, area_wkb):
                writer.writerow(r)
                n += 1
                if n % 2000 == 0:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue().encode()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
