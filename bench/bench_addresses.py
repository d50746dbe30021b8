"""Parser and batch-geocoder throughput on one core (addresses per second).

Usage: ``python -m bench.bench_addresses DATABASE_URL`` (a database with the demo city).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.common import row
from layers.addresses import parse
from layers.addresses.db import build_index, fetch_rows_sync
from layers.addresses.variants import make_variants


def measure(url: str) -> tuple[float, float]:
    """(parser, batch geocoder) throughput in addresses/s on one core."""
    rows, admin = fetch_rows_sync(url)
    index = build_index(rows, admin)
    texts = [t for t, _, _ in make_variants(rows, 20_000, seed=3)]
    g = index.gazetteer
    t = time.perf_counter()
    for s in texts:
        parse(s, g)
    parse_rate = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    index.geocode_many(texts)
    geo_rate = len(texts) / (time.perf_counter() - t)
    return parse_rate, geo_rate


def run(ctx: Any) -> list[dict[str, Any]]:
    """Harness entry (``make bench``): goals 20,000 and 3,000 addresses/s on one core."""
    parse_rate, geo_rate = measure(ctx.database_url)
    return [
        row(
            "address parser",
            round(parse_rate),
            "addresses/s",
            notes="20,000 messy demo-address variants, one core; goal ≥ 20,000",
        ),
        row(
            "batch geocoder (in process)",
            round(geo_rate),
            "addresses/s",
            notes="same variants through the scored cascade, one core; goal ≥ 3,000",
        ),
    ]


def main(url: str) -> None:
    parse_rate, geo_rate = measure(url)
    print(f"parser:         {parse_rate:,.0f} addresses/s (one core)")
    print(f"batch geocode:  {geo_rate:,.0f} addresses/s (one core)")


if __name__ == "__main__":
    main(sys.argv[1])
