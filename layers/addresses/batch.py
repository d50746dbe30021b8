"""Geocode a CSV file column by column (the logic of ``onemap geocode``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from layers.addresses.index import AddressIndex

OUT_FIELDS = ("match_level", "score", "code", "full_address", "lon", "lat", "grid_code")


def geocode_csv(
    index: AddressIndex,
    src: Path,
    column: str,
    dst: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append the geocoding result columns to every row of ``src``; returns rows done."""
    with src.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        if column not in fields:
            raise KeyError(f"column {column!r} not in {fields}")
        rows = list(reader)
    with dst.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fields + [f"geo_{k}" for k in OUT_FIELDS])
        writer.writeheader()
        for n, row in enumerate(rows, 1):
            res = index.geocode(row.get(column) or "").as_dict()
            writer.writerow({**row, **{f"geo_{k}": res[k] for k in OUT_FIELDS}})
            if progress and n % 500 == 0:
                progress(500)
        if progress:
            progress(len(rows) % 500)
    return len(rows)
