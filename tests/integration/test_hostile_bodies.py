"""Hostile request bodies get a 4xx quickly: huge, deeply nested, invalid UTF-8, giant polygons."""

from __future__ import annotations

import json
import time

import httpx
import pytest


def _ring(n: int) -> list[list[float]]:
    import math

    pts = [
        [113.4 + 0.01 * math.cos(2 * math.pi * i / n), 22.5 + 0.01 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return [*pts, pts[0]]


CASES = {
    "deeply nested arrays": b'{"geometry": {"type": "Polygon", "coordinates": '
    + b"[" * 200_000
    + b"]" * 200_000
    + b'}, "layers": ["venues"]}',
    "deeply nested objects": b'{"geometry": '
    + b'{"a": ' * 50_000
    + b"1"
    + b"}" * 50_000
    + b', "layers": ["venues"]}',
    "invalid utf-8": b'{"geometry": {"type": "Point", "coordinates": [113.4, 22.5]}, '
    b'"layers": ["\xff\xfe"]}',
    "truncated json": b'{"geometry": {"type": "Point", "coordinates": [113.4,',
    "not json": b"\x00\x01\x02 hello",
    "million-vertex polygon": json.dumps(
        {"geometry": {"type": "Polygon", "coordinates": [_ring(1_000_000)]}, "layers": ["venues"]}
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_hostile_body_is_4xx_fast(client: httpx.AsyncClient, name: str) -> None:
    t0 = time.monotonic()
    r = await client.post(
        "/geo/within", content=CASES[name], headers={"content-type": "application/json"}
    )
    elapsed = time.monotonic() - t0
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.json()["code"]
    # Bounded time: refused in seconds, not after minutes of parsing (generous for CI).
    assert elapsed < 10, f"{name} took {elapsed:.1f}s"
