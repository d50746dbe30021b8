"""A small seeded district (admin areas, grids, addresses, venues, incidents) and request helpers
for the Features tests."""

from __future__ import annotations

import httpx
import psycopg

N_VENUES = 30
CATEGORIES = ("school", "hospital", "shop")


def seed(db_url: str) -> None:
    """A small district: admin areas, 2 grids, addresses, 30 venues, 5 incidents (Chinese)."""
    env = "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
    with psycopg.connect(db_url) as conn:
        ins = conn.execute
        for code, name, level, parent, box in [
            ("D1", "青秀区", "district", None, (108.0, 22.5, 108.6, 23.0)),
            ("S1", "新竹街道", "street", "D1", (108.2, 22.7, 108.4, 22.9)),
            ("C1", "竹溪社区", "community", "S1", (108.25, 22.75, 108.35, 22.85)),
        ]:
            ins(
                f"INSERT INTO admin_areas (code, name, level, parent_code, geom) "
                f"VALUES (%s, %s, %s, %s, {env})",
                (code, name, level, parent, *box),
            )
        for code, box, worker in [
            ("G1", (108.25, 22.75, 108.30, 22.85), ("张三", "13800000001")),
            ("G2", (108.30, 22.75, 108.35, 22.85), ("李四", "13800000002")),
        ]:
            ins(
                "INSERT INTO grids (code, name, community_code, worker_name, worker_phone, "
                f"households, population, geom) VALUES (%s, %s, 'C1', %s, %s, 120, 360, {env})",
                (code, f"竹溪{code}网格", *worker, *box),
            )
        for i in range(5):
            ins(
                "INSERT INTO addresses (code, full_address, district, road, house_number, "
                "grid_code, geom) VALUES (%s, %s, '青秀区', '竹溪大道', %s, 'G1', "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                (
                    f"A{i}",
                    f"广西南宁市青秀区竹溪大道{i + 1}号",
                    f"{i + 1}号",
                    108.26 + i * 0.005,
                    22.79,
                ),
            )
        for i in range(N_VENUES):
            lon = 108.26 + i * 0.002
            ins(
                "INSERT INTO venues (code, name, category, key_site, capacity, grid_code, geom) "
                "VALUES (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, 22.80), 4326))",
                (
                    f"V{i:02d}",
                    f"竹溪第{i}场所" if i % 3 else f"竹溪第{i}小学",
                    CATEGORIES[i % 3],
                    i % 2 == 0,
                    i * 10,
                    "G1" if lon < 108.30 else "G2",
                    lon,
                ),
            )
        for i in range(5):
            ins(
                "INSERT INTO incidents (code, kind, description, status, reported_at, reporter, "
                "grid_code, geom) VALUES (%s, 'flood', %s, 'open', %s, '王五', 'G1', "
                "ST_SetSRID(ST_MakePoint(108.27, 22.78), 4326))",
                (f"I{i}", f"积水{i}", f"2024-01-0{i + 1}T08:00:00Z"),
            )


def db_scalar(db_url: str, sql: str, *args: object) -> object:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return row[0]


async def err(c: httpx.AsyncClient, url: str, status: int = 400, **kw: object) -> dict:
    r = await c.get(url, **kw)  # type: ignore[arg-type]
    assert r.status_code == status, (url, r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"code", "detail"}
    return body
