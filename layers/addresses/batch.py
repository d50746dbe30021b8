"""Geocode a CSV file column by column (the logic of ``onemap geocode``)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layers.addresses.index import AddressIndex

OUT_FIELDS = ("match_level", "score", "code", "full_address", "lon", "lat", "grid_code")
#: Addresses geocoded per database round of the cascade.
CHUNK = 1000


def geocode_csv(
    index: AddressIndex,
    conn: Any,
    src: Path,
    column: str,
    dst: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append the geocoding result columns to every row of ``src`` (looked up over the
    psycopg connection ``conn``); returns rows done. ``dst`` is written to a temporary
    file first and renamed at the end, so a failure leaves no half-written output."""
    with src.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        if column not in fields:
            raise KeyError(f"column {column!r} not in {fields}")
        rows = list(reader)
    part = dst.with_name(dst.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fields + [f"geo_{k}" for k in OUT_FIELDS])
        writer.writeheader()
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            found = index.geocode_many(conn, [row.get(column) or "" for row in chunk])
            for row, res in zip(chunk, found, strict=True):
                out = res.as_dict()
                writer.writerow({**row, **{f"geo_{k}": out[k] for k in OUT_FIELDS}})
            if progress:
                progress(len(chunk))
    part.replace(dst)
    return len(rows)
