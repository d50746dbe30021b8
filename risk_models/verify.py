"""Verification of a warning map against what happened (复盘, after-action review).

:func:`verify` takes the cells of a run (H3 index + level 0..4) and the observed events
(lon/lat degrees, EPSG:4326), locates each event in its cell at the cells' resolution and
reports, for each level threshold k (≥ blue, ≥ yellow, ≥ orange, red): the events in cells at
≥ k (hits), the hit rate (probability of detection), the share of the area at ≥ k and the share
that held no event (the false-alarm area). The hit-rate-vs-area curve is the usual way to
judge a susceptibility or warning map (a "success-rate curve", Chung & Fabbri 2003): a good
map puts most events in little area.

```python
from risk_models.verify import verify, plot_curve
result = verify(cells, events_lonlat)        # JSON-ready dict
plot_curve(result, "curve.png")
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risk_models.errors import ModelInputError
from risk_models.h3agg import latlng_to_cells

LEVEL_THRESHOLDS: tuple[tuple[int, str], ...] = (
    (1, "blue"),
    (2, "yellow"),
    (3, "orange"),
    (4, "red"),
)


def verify(
    cells: pd.DataFrame,
    events_lonlat: np.ndarray,
    *,
    land_cells: np.ndarray | pd.Index | None = None,
) -> dict[str, Any]:
    """Hits, hit rate and area per level threshold of a warning map (JSON-ready).

    Args:
        cells: one row per cell, columns ``h3`` (int64 H3 index) and ``level`` (0 none … 4 red).
        events_lonlat: ``(n, 2)`` observed events, lon/lat degrees (EPSG:4326).
        land_cells: the cells that count as the area (e.g. land cells only); default every
            row of ``cells``. Cells of it missing from ``cells`` count as level 0.

    Returns:
        ``n_events``, ``n_events_in_area`` (events in a cell of the area), ``n_cells``,
        ``res``, ``levels`` (per threshold: ``level``, ``name``, ``hits``, ``pod``,
        ``area_share``, ``false_alarm_area_share``, ``cells``) and ``curve`` (list of
        ``{level, area_share, hit_rate}`` from red down to blue, starting at (0, 0)).
    """
    if not {"h3", "level"} <= set(cells.columns):
        raise ModelInputError("cells need columns h3 and level")
    h3_idx = cells["h3"].to_numpy("int64")
    level = cells["level"].to_numpy("int64")
    if h3_idx.size == 0:
        raise ModelInputError("no cell to verify")
    import h3

    res = int(h3.get_resolution(h3.int_to_str(int(h3_idx[0]))))
    by_cell = pd.Series(level, index=h3_idx).groupby(level=0).max()
    area = by_cell.index if land_cells is None else pd.Index(np.asarray(land_cells, "int64"))
    area_levels = by_cell.reindex(area, fill_value=0).to_numpy("int64")
    pts = np.asarray(events_lonlat, dtype="float64").reshape(-1, 2)
    ok = np.isfinite(pts).all(axis=1)
    ev_cells = latlng_to_cells(pts[ok, 1], pts[ok, 0], res) if ok.any() else np.empty(0, "int64")
    in_area = pd.Index(area).get_indexer(ev_cells) >= 0
    ev_levels = by_cell.reindex(ev_cells[in_area], fill_value=0).to_numpy("int64")
    n_in = int(in_area.sum())
    event_cells = set(ev_cells[in_area].tolist())
    has_event = np.fromiter((c in event_cells for c in area.tolist()), bool, len(area))
    n_cells = int(len(area))
    rows = []
    for k, name in LEVEL_THRESHOLDS:
        at = area_levels >= k
        hits = int((ev_levels >= k).sum())
        rows.append(
            {
                "level": k,
                "name": name,
                "hits": hits,
                "pod": hits / n_in if n_in else None,
                "cells": int(at.sum()),
                "area_share": float(at.mean()) if n_cells else 0.0,
                "false_alarm_area_share": float((at & ~has_event).mean()) if n_cells else 0.0,
            }
        )
    curve: list[dict[str, Any]] = [{"level": 5, "area_share": 0.0, "hit_rate": 0.0}]
    curve += [
        {"level": r["level"], "area_share": r["area_share"], "hit_rate": r["pod"] or 0.0}
        for r in reversed(rows)
    ]
    return {
        "n_events": int(len(pts)),
        "n_events_in_area": n_in,
        "n_cells": n_cells,
        "res": res,
        "levels": rows,
        "curve": curve,
    }


def plot_curve(result: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """PNG of the hit rate against the share of area warned, one point per level threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {5: "#000000", 4: "#d7191c", 3: "#fd8d3c", 2: "#e6c700", 1: "#2c7bb6"}
    pts = [*result["curve"], {"level": 0, "area_share": 1.0, "hit_rate": 1.0}]
    x = [p["area_share"] for p in pts]
    y = [p["hit_rate"] for p in pts]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1, label="no skill")
    ax.plot(x, y, c="black", lw=1.5)
    for p in result["curve"][1:]:
        ax.scatter(p["area_share"], p["hit_rate"], c=colours[p["level"]], s=50, zorder=3)
        ax.annotate(
            f"≥ {dict(LEVEL_THRESHOLDS)[p['level']]}",
            (p["area_share"], p["hit_rate"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of area at or above the level")
    ax.set_ylabel("share of events in those cells (hit rate)")
    ax.set_title(title or f"{result['n_events_in_area']} events, {result['n_cells']:,} cells")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
