"""Render one vector tile (catalog layers + optional risk cells), async or sync.

The same SQL runs through asyncpg in the server (:func:`render_async`) and through
psycopg in the PMTiles exporter's threads (:func:`render_sync`).  Both apply the size cap:
a tile over :data:`~tiles.mvt.MAX_TILE_BYTES` has its largest layers rendered again with
coarser thinning and simplification until it fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from layers.catalog import Layer
from layers.sql import to_psycopg
from tiles import risk
from tiles.errors import UnknownRun
from tiles.mvt import MAX_TILE_BYTES, RISK_LAYER, LayerSet, vector_query
from tiles.tms import Tile

#: Coarsening steps tried before giving up on the size cap (each doubles the thinning).
MAX_COARSEN = 8


@dataclass(frozen=True)
class RiskRun:
    """A risk run as the tiles see it: id, status and finest H3 resolution of its cells."""

    id: int
    status: str
    res: int | None

    @property
    def immutable(self) -> bool:
        """A finished run's cells no longer change, so its tiles may be cached."""
        return self.status in ("done", "failed")


def _run_from_row(row: Sequence[Any] | None, run: int | None) -> RiskRun | None:
    if row is None:
        if run is not None:
            raise UnknownRun(f"no risk run {run}")
        return None
    return RiskRun(int(row[0]), str(row[1]), None if row[2] is None else int(row[2]))


def _risk_part(tile: Tile, run: RiskRun, coarsen: int):  # noqa: ANN202
    params, res = risk.cells_params(run.id, tile, run.res or 0, coarsen)
    rows = yield ("rows", risk.CELLS_SQL, params)
    mparams = risk.mvt_params(tile, rows, run.id, res)
    if mparams is None:
        return b""
    return bytes((yield ("val", risk.MVT_SQL, mparams)) or b"")


def _vector_part(layers: Sequence[Layer], tile: Tile, role: str, coarsen: int):  # noqa: ANN202
    q = vector_query(layers, tile, role, coarsen)
    if q is None:
        return b""
    return bytes((yield ("val", *q)) or b"")


def _steps(layerset: LayerSet, tile: Tile, role: str, run: RiskRun | None):  # noqa: ANN202
    """The whole rendering as a generator of SQL steps that receives each result.

    First all catalog layers in one statement.  Only when the tile is over the size cap,
    each part (layer) is rendered alone and the largest one is coarsened step by step
    until the tile fits, so the other layers keep their full detail.
    """
    with_risk = layerset.risk and run is not None and run.res is not None
    data = yield from _vector_part(layerset.layers, tile, role, 0)
    if with_risk:
        assert run is not None
        data += yield from _risk_part(tile, run, 0)
    if len(data) <= MAX_TILE_BYTES:
        return data
    parts: dict[str, bytes] = {}
    coarsen: dict[str, int] = {}
    for layer in layerset.layers:
        parts[layer.id] = yield from _vector_part((layer,), tile, role, 0)
        coarsen[layer.id] = 0
    if with_risk:
        assert run is not None
        parts[RISK_LAYER] = yield from _risk_part(tile, run, 0)
        coarsen[RISK_LAYER] = 0
    by_id = {lyr.id: lyr for lyr in layerset.layers}
    while sum(len(v) for v in parts.values()) > MAX_TILE_BYTES:
        candidates = [k for k in parts if coarsen[k] < MAX_COARSEN]
        if not candidates:
            break
        worst = max(candidates, key=lambda k: len(parts[k]))
        coarsen[worst] += 1
        if worst == RISK_LAYER:
            assert run is not None
            parts[worst] = yield from _risk_part(tile, run, coarsen[worst])
        else:
            parts[worst] = yield from _vector_part((by_id[worst],), tile, role, coarsen[worst])
    return b"".join(
        parts[k] for k in [*(lyr.id for lyr in layerset.layers), RISK_LAYER] if k in parts
    )


async def resolve_run_async(conn: Any, run: int | None) -> RiskRun | None:
    """The run ``run`` (or the latest finished one) via asyncpg; ``None`` if there is none."""
    if run is None:
        row = await conn.fetchrow(risk.LATEST_RUN_SQL)
    else:
        row = await conn.fetchrow(risk.RUN_SQL, int(run))
    return _run_from_row(row, run)


def resolve_run_sync(conn: Any, run: int | None) -> RiskRun | None:
    """As :func:`resolve_run_async`, on a psycopg connection."""
    if run is None:
        row = conn.execute(risk.LATEST_RUN_SQL).fetchone()
    else:
        row = conn.execute(*to_psycopg(risk.RUN_SQL, [int(run)])).fetchone()
    return _run_from_row(row, run)


async def render_async(
    conn: Any, layerset: LayerSet, tile: Tile, role: str, run: RiskRun | None = None
) -> bytes:
    """The MVT bytes of ``tile`` (``b""`` when empty) through an asyncpg connection."""
    gen = _steps(layerset, tile, role, run)
    try:
        kind, query, params = next(gen)
        while True:
            if kind == "val":
                result: Any = await conn.fetchval(query, *params)
            else:
                result = [tuple(r) for r in await conn.fetch(query, *params)]
            kind, query, params = gen.send(result)
    except StopIteration as stop:
        return bytes(stop.value)


def render_sync(
    conn: Any, layerset: LayerSet, tile: Tile, role: str, run: RiskRun | None = None
) -> bytes:
    """The MVT bytes of ``tile`` (``b""`` when empty) through a psycopg connection."""
    gen = _steps(layerset, tile, role, run)
    try:
        kind, query, params = next(gen)
        while True:
            cur = conn.execute(*to_psycopg(query, params))
            result: Any = cur.fetchone()[0] if kind == "val" else cur.fetchall()
            kind, query, params = gen.send(result)
    except StopIteration as stop:
        return bytes(stop.value)
