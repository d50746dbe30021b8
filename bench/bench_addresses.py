"""Parser and batch-geocoder throughput on one core (addresses per second).

Usage: ``python -m bench.bench_addresses DATABASE_URL`` (a database with the demo city).
"""

from __future__ import annotations

import sys
import time

from layers.addresses import parse
from layers.addresses.db import build_index, fetch_rows_sync
from layers.addresses.variants import make_variants


def main(url: str) -> None:
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
    print(f"parser:         {parse_rate:,.0f} addresses/s (one core)")
    print(f"batch geocode:  {geo_rate:,.0f} addresses/s (one core)")


if __name__ == "__main__":
    main(sys.argv[1])
