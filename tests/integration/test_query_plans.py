"""Hot queries can use their spatial index (plans, not timings)."""

from __future__ import annotations

import asyncpg

from geo_service.features.spatial import locate_sql
from layers.catalog import CATALOG


async def test_locate_uses_the_knn_index(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO addresses (code, full_address, geom) "
            "SELECT 'A' || i, '某路' || i || '号', "
            "ST_SetSRID(ST_MakePoint(113 + random(), 22 + random()), 4326) "
            "FROM generate_series(1, 2000) i"
        )
        await conn.execute("ANALYZE addresses")
        await conn.execute("SET enable_seqscan = off")
        sql, values = locate_sql(CATALOG, "viewer", 113.4, 22.5)
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *values))
        assert "ix_addresses_geom" in plan, plan
        # The nearest-address part must not sort the whole table.
        assert "Seq Scan on addresses" not in plan, plan
    finally:
        await conn.close()
